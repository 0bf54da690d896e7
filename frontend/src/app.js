// The tracebridge demo page.
//
// Service a serves this page and its settings (GET /config.json). With a Sentry DSN configured the
// page runs @sentry/browser with browser tracing: every fetch to a carries `sentry-trace`,
// `baggage` (the Sentry DSC) and `traceparent`, all with the browser's trace id, so the backend
// continues the browser's trace and an uncaught error here lands in Sentry under the same id.
// Without a DSN the page still calls the mesh; the backend then starts the trace.
// Either way the trace id shown comes from the `traceresponse` header a answers with.
import * as Sentry from "@sentry/browser";

const $ = (id) => document.getElementById(id);

// `traceresponse: {version}-{trace-id}-{parent-id}-{flags}` (W3C Trace Context Level 2).
const TRACERESPONSE = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

async function loadConfig() {
  try {
    const res = await fetch("/config.json", { headers: { accept: "application/json" } });
    if (!res.ok) return {};
    const config = await res.json();
    return config && typeof config === "object" ? config : {};
  } catch {
    // No config endpoint (a static server, an older a): run without Sentry and Jaeger links.
    return {};
  }
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function initSentry(config) {
  const dsn = typeof config.sentryDsn === "string" ? config.sentryDsn.trim() : "";
  if (!dsn) return false;
  Sentry.init({
    dsn,
    environment: config.environment || undefined,
    release: config.release || undefined,
    integrations: [Sentry.browserTracingIntegration()],
    tracesSampleRate: 1.0,
    // Only a (this page's own origin) gets the trace headers: a third-party host never sees them,
    // and a's CORS does not have to be opened to other origins.
    tracePropagationTargets: [new RegExp(`^${escapeRegExp(window.location.origin)}/`)],
    // Also send W3C `traceparent`, so a backend that only speaks W3C continues the same trace.
    propagateTraceparent: true,
  });
  return true;
}

// Only http(s) links: the Jaeger UI address comes from configuration, never a `javascript:` URL.
function jaegerTraceUrl(base, traceId) {
  if (typeof base !== "string" || !/^https?:\/\//i.test(base)) return null;
  return `${base.replace(/\/+$/, "")}/trace/${traceId}`;
}

function showTraceId(traceId, config) {
  $("trace-id").textContent = traceId || "none (no traceresponse header)";
  const link = $("jaeger-link");
  const href = traceId && jaegerTraceUrl(config.jaegerUiUrl, traceId);
  if (href) {
    link.href = href;
    link.hidden = false;
  } else {
    link.removeAttribute("href");
    link.hidden = true;
  }
}

async function callMesh(path, config) {
  const status = $("status");
  status.textContent = `GET ${path} …`;
  try {
    const res = await fetch(path, { headers: { accept: "application/json" } });
    const text = await res.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: show it as it came.
    }
    const match = TRACERESPONSE.exec(res.headers.get("traceresponse") || "");
    const traceId = match ? match[1] : body && typeof body.trace_id === "string" ? body.trace_id : "";
    showTraceId(traceId, config);
    $("response").textContent = body ? JSON.stringify(body, null, 2) : text;
    status.textContent = `GET ${path} → ${res.status} ${res.statusText}`;
  } catch (err) {
    showTraceId("", config);
    $("response").textContent = "";
    status.textContent = `GET ${path} failed: ${err.message}`;
  } finally {
    // Lets a test driver wait for the end of each call without timing guesses.
    document.body.dataset.calls = String(Number(document.body.dataset.calls || 0) + 1);
  }
}

async function main() {
  const config = await loadConfig();
  const sentryOn = initSentry(config);
  $("sentry").textContent = sentryOn
    ? `on, environment ${config.environment || "production"}`
    : "off (no DSN configured): the backend starts each trace";

  $("call-mesh").addEventListener("click", () => callMesh("/trace", config));
  $("call-fail").addEventListener("click", () => callMesh("/trace?fail=c", config));
  $("throw").addEventListener("click", () => {
    // Thrown outside the click handler's stack, so it is truly uncaught: Sentry's global error
    // handler reports it, with the page's current trace id in `contexts.trace`.
    setTimeout(() => {
      throw new Error("tracebridge demo: uncaught browser error");
    }, 0);
    $("browser-error").textContent = sentryOn
      ? "thrown, uncaught: reported to Sentry with the page's trace id"
      : "thrown, uncaught (Sentry off: only the console saw it)";
  });

  $("status").textContent = "none yet";
  document.body.dataset.sentry = sentryOn ? "on" : "off";
  document.body.dataset.calls = "0";
  document.body.dataset.ready = "true";
}

main();
