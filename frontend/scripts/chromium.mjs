// What drive.mjs and view.mjs share: Debian's headless Chromium through playwright-core (never
// a downloaded browser) in a fresh profile, under a watchdog, closed and removed afterwards.
import { chromium } from "playwright-core";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

// Runs `body(context, page)` with Chromium at `executablePath` (`page`: the context's first
// tab). After `timeoutMs` the process exits with status 2, naming `name`; whatever happens,
// the browser is closed and its profile removed.
export async function withChromium({ name, executablePath, timeoutMs, viewport }, body) {
  const userDataDir = await mkdtemp(join(tmpdir(), "tracebridge-chromium-"));
  const watchdog = setTimeout(() => {
    console.error(`${name}: timed out after ${timeoutMs} ms`);
    process.exit(2);
  }, timeoutMs);
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      viewport,
      // Keep Chromium from calling hosts this closed network refuses.
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    const page = context.pages()[0] ?? (await context.newPage());
    return await body(context, page);
  } finally {
    clearTimeout(watchdog);
    if (context) await context.close();
    await rm(userDataDir, { recursive: true, force: true });
  }
}

// Runs `main`; a failure prints its stack, naming `name`, and exits with status 1.
export function run(name, main) {
  main().catch((err) => {
    console.error(`${name}: ${err.stack || err}`);
    process.exit(1);
  });
}
