#!/usr/bin/env bash
# Installs Debian's Chromium for the browser end-to-end test (driven by playwright-core).
# Idempotent and quick when /usr/bin/chromium is already there. Never downloads a browser build
# of its own (playwright's installer would; it cannot reach its hosts): Debian's package only.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# apt-get update only when the package lists do not know chromium yet (a fresh machine).
if ! apt-cache show chromium >/dev/null 2>&1; then
  $sudo apt-get update -qq
fi
$sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
test -x /usr/bin/chromium
echo "chromium installed: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
