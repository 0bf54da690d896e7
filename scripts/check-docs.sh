#!/usr/bin/env bash
# The docs show the examples verbatim: every middleware/examples/*.rs that docs/adding-the-middleware.md
# presents must appear there word for word (the examples are compiled by clippy/test, so the docs
# cannot show code that does not build).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python3 - "$root" <<'PY'
import glob, os, re, sys
root = sys.argv[1]
doc = open(os.path.join(root, "docs/adding-the-middleware.md")).read()
blocks = re.findall(r"^```rust\n(.*?)^```$", doc, re.S | re.M)
missing = []
for f in sorted(glob.glob(os.path.join(root, "middleware/examples/*.rs"))):
    name = os.path.basename(f)
    if name not in doc:
        continue  # an example the guide does not present
    if open(f).read() not in blocks:
        missing.append(name)
if missing:
    sys.exit("docs/adding-the-middleware.md is out of step with: " + ", ".join(missing))
print("docs/adding-the-middleware.md: examples verbatim")
PY
