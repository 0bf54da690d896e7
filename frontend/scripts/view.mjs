#!/usr/bin/env node
// Drives `mesh --serve`'s trace view in Debian's headless Chromium (playwright-core, never a
// downloaded browser) and prints what it saw as one JSON object on stdout's last line.
//
//   node scripts/view.mjs --view http://127.0.0.1:V --page http://127.0.0.1:A/ --trace ID
//                         --incoming ID2 --shots DIR [--timeout-ms 90000] [--chromium /usr/bin/chromium]
//
// 1. the search page: every trace (screenshot view-search.png), then "Errors only" → the rows left;
// 2. opens trace ID from the filtered list, clicks service-c's `ping.PingC/Ping` span and reads
//    its `rpc.grpc.status_code` and status from the details (screenshot view-trace.png); then
//    trace ID2 (one that came with a parent in its headers): the spans marked as having the
//    incoming remote parent, and the first one's parent as the details show it;
// 3. the demo page on service a: "Call the mesh" — its trace shows up in a search tab opened at
//    the start, without a reload — then its trace link, which opens the view in a new tab;
//    reads the trace id the view shows (screenshot view-linked.png).
//
// Output: { allRows, errorRows, errorQuery, openedTraceId, spanCount, statusCode, spanStatus,
//   spanParent, incomingInFailing, incomingRows, incomingParent, demoTraceId, demoLink, linkedUrl, linkedTraceId, linkedW3c, pageErrors }
import { join } from "node:path";
import { run, withChromium } from "./chromium.mjs";

function parseArgs(argv) {
  const opts = { timeoutMs: 90000, chromium: "/usr/bin/chromium" };
  for (let i = 0; i < argv.length; i += 2) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case "--view": opts.view = value.replace(/\/$/, ""); break;
      case "--page": opts.page = value; break;
      case "--trace": opts.trace = value; break;
      case "--incoming": opts.incoming = value; break;
      case "--shots": opts.shots = value; break;
      case "--timeout-ms": opts.timeoutMs = Number(value); break;
      case "--chromium": opts.chromium = value; break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  for (const required of ["view", "page", "trace", "incoming", "shots"]) {
    if (!opts[required]) throw new Error(`--${required} is required`);
  }
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const pageErrors = [];
  const browser = {
    name: "view.mjs",
    executablePath: opts.chromium,
    timeoutMs: opts.timeoutMs,
    viewport: { width: 1360, height: 820 },
  };
  await withChromium(browser, async (context, page) => {
    context.on("page", (p) => p.on("pageerror", (err) => pageErrors.push(`${p.url()}: ${err.message}`)));
    page.on("pageerror", (err) => pageErrors.push(`${page.url()}: ${err.message}`));
    const rowIds = () => page.$$eval("#results tbody tr", (rows) => rows.map((r) => r.dataset.traceId));

    // A search tab left open: the trace the demo page makes in step 3 must appear in it
    // without a reload.
    const live = await context.newPage();
    await live.goto(`${opts.view}/`, { waitUntil: "load" });
    await live.waitForFunction(() => Number(document.body.dataset.rows) >= 6);

    // 1. Search: all traces (the demo sent six), then errors only.
    await page.goto(`${opts.view}/`, { waitUntil: "load" });
    await page.waitForFunction(() => Number(document.body.dataset.rows) >= 6);
    const allRows = await rowIds();
    await page.screenshot({ path: join(opts.shots, "view-search.png") });
    // The list is re-rendered for the new filter (a page that ignored the filter would show
    // the same rows: the test sees them).
    const queryBefore = await page.getAttribute("body", "data-query");
    await page.check("#errors-only");
    await page.waitForFunction((q) => document.body.dataset.query !== q, queryBefore, { timeout: 15000 })
      .catch(() => {});
    const errorRows = await rowIds();
    const errorQuery = await page.getAttribute("body", "data-query");

    // 2. The failing trace, and c's server span of ping.PingC/Ping.
    await Promise.all([
      page.waitForURL(`**/trace/${opts.trace}`),
      page.click(`#results tr[data-trace-id="${opts.trace}"] td.root a`),
    ]);
    await page.waitForSelector("body[data-spans]");
    const openedTraceId = await page.getAttribute("body", "data-trace-id");
    const spanCount = Number(await page.getAttribute("body", "data-spans"));
    const incomingRows = () => page.$$eval(".span-row", (rows) => rows
      .filter((r) => r.querySelector(".badge.remote"))
      .map((r) => ({ service: r.dataset.service, name: r.dataset.name, spanId: r.dataset.spanId })));
    const incomingInFailing = await incomingRows();
    await page.click('.span-row[data-service="service-c"][data-name="ping.PingC/Ping"]');
    const cell = '#details tr[data-key="rpc.grpc.status_code"] td';
    await page.waitForSelector(cell);
    const statusCode = (await page.textContent(cell)).trim();
    const spanStatus = (await page.textContent("#detail-status")).trim();
    const spanParent = (await page.textContent("#detail-parent")).trim();
    await page.screenshot({ path: join(opts.shots, "view-trace.png") });

    await page.goto(`${opts.view}/trace/${opts.incoming}`, { waitUntil: "load" });
    await page.waitForSelector("body[data-spans]");
    const incoming = await incomingRows();
    let incomingParent = null;
    if (incoming.length > 0) {
      await page.click(`.span-row[data-span-id="${incoming[0].spanId}"]`);
      await page.waitForSelector(`#details[data-span-id="${incoming[0].spanId}"]`);
      incomingParent = (await page.textContent("#detail-parent")).trim();
    }

    // 3. The demo page's trace link opens the view on that trace.
    await page.goto(opts.page, { waitUntil: "load" });
    await page.waitForSelector("body[data-ready='true']");
    const before = Number(await page.getAttribute("body", "data-calls"));
    await page.click("#call-mesh");
    await page.waitForFunction((n) => Number(document.body.dataset.calls) > n, before);
    // The page shows the link (or not) before it counts the call as done.
    const demoTraceId = (await page.textContent("#trace-id")).trim();
    await live.waitForSelector(`#results tr[data-trace-id="${demoTraceId}"]`, { timeout: 20000 }).catch(() => {});
    const liveRows = await live.$$eval("#results tbody tr", (rows) => rows.map((r) => r.dataset.traceId));
    const liveReloads = await live.evaluate(() => performance.getEntriesByType("navigation").length);
    const demoLink = (await page.isVisible("#jaeger-link")) ? await page.getAttribute("#jaeger-link", "href") : null;
    if (!demoLink) {
      process.stdout.write(`${JSON.stringify({ allRows, errorRows, errorQuery, openedTraceId, spanCount,
        statusCode, spanStatus, spanParent, incomingInFailing, incomingRows: incoming, incomingParent,
        demoTraceId, demoLink, liveRows, pageErrors })}\n`);
      return;
    }
    const [linked] = await Promise.all([context.waitForEvent("page"), page.click("#jaeger-link")]);
    await linked.waitForLoadState("load");
    await linked.waitForSelector("body[data-spans]");
    const linkedUrl = linked.url();
    const linkedTraceId = await linked.getAttribute("body", "data-trace-id");
    const linkedW3c = (await linked.textContent("#ids dd code.id")).trim();
    await linked.screenshot({ path: join(opts.shots, "view-linked.png") });

    const result = {
      allRows, errorRows, errorQuery, openedTraceId, spanCount, statusCode, spanStatus, spanParent,
      incomingInFailing, incomingRows: incoming, incomingParent, demoTraceId, demoLink, liveRows, liveReloads, linkedUrl, linkedTraceId, linkedW3c, pageErrors,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  });
}

run("view.mjs", main);
