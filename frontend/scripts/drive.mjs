#!/usr/bin/env node
// Drives the demo page in Debian's headless Chromium (playwright-core, never a downloaded browser)
// and prints what happened as one JSON object on stdout's last line.
//
//   node scripts/drive.mjs --url http://127.0.0.1:PORT/ [--click '#call-fail' --click '#throw' ...]
//                          [--screenshot out.png] [--timeout-ms 60000] [--chromium /usr/bin/chromium]
//                          [--drop-header traceparent ...]
//
// --drop-header removes a header from the page's calls to /trace before they leave the browser:
// `--drop-header traceparent` makes the page a plain Sentry frontend (sentry-trace + baggage
// only), the case the backend must bridge into OpenTelemetry by itself.
// Each click on a call button waits until the page reports the call finished (body[data-calls]);
// a click on #throw waits, when Sentry is on, until the error envelope's POST has been answered.
// Before closing, every envelope POST still in flight is awaited, so nothing is lost on exit.
//
// Output: { traceId, traceIds, sentry, calls: [{url, status, sent: {sentry-trace, baggage,
//   traceparent}, traceresponse}], envelopes: [{url, status, items: [{type, event_id, trace_id,
//   span_id, parent_span_id, transaction}]}], errorEvent, pageErrors }
import { run, withChromium } from "./chromium.mjs";

function parseArgs(argv) {
  const opts = { clicks: [], dropHeaders: [], timeoutMs: 60000, chromium: "/usr/bin/chromium" };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case "--url": opts.url = value; i++; break;
      case "--click": opts.clicks.push(value); i++; break;
      case "--screenshot": opts.screenshot = value; i++; break;
      case "--timeout-ms": opts.timeoutMs = Number(value); i++; break;
      case "--chromium": opts.chromium = value; i++; break;
      case "--drop-header": opts.dropHeaders.push(value.toLowerCase()); i++; break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!opts.url) throw new Error("--url is required");
  return opts;
}

// A Sentry envelope: a header line, then (item header line, payload line) pairs. The browser SDK
// sends it uncompressed, one JSON document per line.
export function parseEnvelope(body) {
  const lines = (body || "").split("\n");
  const items = [];
  for (let i = 1; i + 1 < lines.length; i += 2) {
    let header;
    let payload;
    try {
      header = JSON.parse(lines[i]);
      payload = JSON.parse(lines[i + 1]);
    } catch {
      continue;
    }
    const trace = payload?.contexts?.trace ?? {};
    items.push({
      type: header.type,
      event_id: payload?.event_id ?? null,
      trace_id: trace.trace_id ?? null,
      span_id: trace.span_id ?? null,
      parent_span_id: trace.parent_span_id ?? null,
      transaction: payload?.transaction ?? null,
      message: payload?.exception?.values?.[0]?.value ?? null,
    });
  }
  return items;
}

const isEnvelope = (url) => /\/api\/[^/]+\/envelope\/?/.test(new URL(url).pathname);

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const origin = new URL(opts.url).origin;
  const calls = [];
  const envelopes = [];
  const pending = new Set();
  const pageErrors = [];
  const callWork = [];
  const browser = {
    name: "drive.mjs",
    executablePath: opts.chromium,
    timeoutMs: opts.timeoutMs,
    viewport: { width: 900, height: 640 },
  };

  await withChromium(browser, async (context, page) => {
    page.on("pageerror", (err) => pageErrors.push(err.message));
    const isCall = (url) => {
      const u = new URL(url);
      return u.origin === origin && u.pathname === "/trace";
    };
    if (opts.dropHeaders.length > 0) {
      await page.route(isCall, async (route) => {
        const headers = await route.request().allHeaders();
        for (const name of opts.dropHeaders) delete headers[name];
        await route.continue({ headers });
      });
    }

    page.on("request", (request) => {
      const url = request.url();
      if (isEnvelope(url)) {
        const record = { url, status: null, items: parseEnvelope(request.postData()) };
        envelopes.push(record);
        const done = request.response()
          .then((res) => { record.status = res ? res.status() : null; })
          .catch(() => {})
          .finally(() => pending.delete(done));
        pending.add(done);
        return;
      }
      if (isCall(url)) {
        const record = { url, status: null, sent: {}, traceresponse: null };
        calls.push(record);
        callWork.push(request.allHeaders().then((headers) => {
          for (const name of ["sentry-trace", "baggage", "traceparent", "tracestate"]) {
            if (headers[name] !== undefined && !opts.dropHeaders.includes(name)) {
              record.sent[name] = headers[name];
            }
          }
        }).catch(() => {}));
        callWork.push(request.response().then(async (res) => {
          if (!res) return;
          record.status = res.status();
          record.traceresponse = (await res.headerValue("traceresponse")) ?? null;
        }).catch(() => {}));
      }
    });

    await page.goto(opts.url, { waitUntil: "load" });
    await page.waitForSelector("body[data-ready='true']");
    const sentry = await page.getAttribute("body", "data-sentry");
    const traceIds = [];

    for (const selector of opts.clicks) {
      if (selector === "#throw") {
        const sent = sentry === "on"
          ? page.waitForRequest((r) => isEnvelope(r.url())
              && parseEnvelope(r.postData()).some((item) => item.type === "event"))
          : null;
        await page.click(selector);
        if (sent) await (await sent).response();
        continue;
      }
      const before = Number(await page.getAttribute("body", "data-calls"));
      await page.click(selector);
      await page.waitForFunction((n) => Number(document.body.dataset.calls) > n, before);
      traceIds.push((await page.textContent("#trace-id")).trim());
    }

    if (opts.screenshot) await page.screenshot({ path: opts.screenshot, fullPage: true });
    // Every envelope still in flight (the page-load transaction, say) finishes before the close.
    while (pending.size > 0) await Promise.all([...pending]);
    await Promise.all(callWork);

    const errorItem = envelopes.flatMap((e) => e.items).find((item) => item.type === "event") ?? null;
    const result = {
      traceId: traceIds.at(-1) ?? null,
      traceIds,
      sentry,
      jaegerLink: await page.getAttribute("#jaeger-link", "href"),
      calls,
      envelopes,
      errorEvent: errorItem,
      pageErrors,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  });
}

run("drive.mjs", main);
