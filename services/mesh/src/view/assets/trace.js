// The trace page: GET /api/view/traces/{id} (every field the receiver decoded) → a waterfall
// and, on click, a span's details. Until the trace's spans arrive it waits and retries; after,
// it keeps polling so late spans still appear.
"use strict";

const $ = (id) => document.getElementById(id);
const rawId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const traceId = View.traceIdFrom(rawId) || rawId;
const POLL_MS = 2000;
let spans = [];
let selected = new URLSearchParams(location.search).get("span");

const us = (nanos) => nanos / 1000;
const statusOf = (s) => (s.status === "Ok" ? { code: "OK" } : s.status === "Unset" ? { code: "UNSET" }
  : { code: "ERROR", message: s.status.Error.message });
const kindOf = (s) => s.kind.toLowerCase();
const valueText = (v) => (typeof v === "string" ? v : JSON.stringify(v));

// How the span's parent relates to this trace: "root" (no parent), "incoming" (a parent that is
// not among the spans received: the caller's span from the incoming request's headers),
// "remote" (a span of this trace in another process, reached over the wire) or "local".
function parentKind(span, byId) {
  if (!span.parent_span_id) return "root";
  if (!byId.has(span.parent_span_id)) return "incoming";
  const hasIsRemote = (span.flags & 0x100) !== 0;
  return hasIsRemote && (span.flags & 0x200) !== 0 ? "remote" : "local";
}

// Depth-first order (children by start time), with each span's depth.
function ordered(list) {
  const byId = new Map(list.map((s) => [s.span_id, s]));
  const children = new Map();
  const roots = [];
  for (const s of list) {
    if (s.parent_span_id && byId.has(s.parent_span_id)) {
      if (!children.has(s.parent_span_id)) children.set(s.parent_span_id, []);
      children.get(s.parent_span_id).push(s);
    } else roots.push(s);
  }
  const byStart = (a, b) => a.start_unix_nanos - b.start_unix_nanos;
  const out = [];
  const walk = (s, depth) => {
    out.push({ span: s, depth });
    for (const c of (children.get(s.span_id) || []).sort(byStart)) walk(c, depth + 1);
  };
  for (const r of roots.sort(byStart)) walk(r, 0);
  return { rows: out, byId, children };
}

function idRows(root) {
  const span = root ? root.span_id : "0000000000000000";
  const jaegerId = traceId.startsWith("0000000000000000") ? traceId.slice(16) : traceId;
  const row = (label, id, header) => [
    View.el("dt", {}, label),
    View.el("dd", {}, View.el("code", { class: "id" }, id),
      View.el("code", { class: "header" }, header)),
  ];
  return [
    row("W3C", traceId, `traceparent: 00-${traceId}-${span}-01`),
    row("Jaeger", jaegerId, `uber-trace-id: ${jaegerId}:${span}:0:1`),
    row("Sentry", traceId, `sentry-trace: ${traceId}-${span}-1`),
  ];
}

function table(rows, cls) {
  return View.el("table", { class: `kv ${cls || ""}` },
    View.el("tbody", {}, rows.map(([k, v, extra]) =>
      View.el("tr", { dataset: { key: k } }, View.el("th", {}, k), View.el("td", { class: "value" }, v, extra || null)))));
}

function attrTable(map, cls) {
  const entries = Object.entries(map || {});
  if (!entries.length) return View.el("p", { class: "muted" }, "none");
  return table(entries.map(([k, v]) => [k, valueText(v)]), cls);
}

function showDetails(span, byId, start) {
  const status = statusOf(span);
  const pk = parentKind(span, byId);
  const parent = byId.get(span.parent_span_id);
  const parentLink = () => View.el("a", { href: `?span=${parent.span_id}`, onclick: (e) => { e.preventDefault(); select(parent.span_id); } },
    `${parent.service_name} ${parent.name}`);
  const parentCell = pk === "root" ? View.el("span", { class: "muted" }, "none — root of the trace")
    : [View.el("code", {}, span.parent_span_id), " ",
       pk === "incoming" ? View.el("span", { class: "badge remote" }, "incoming remote parent — the caller's span, from the request's headers; not in this trace")
         : pk === "remote" ? [parentLink(), " ", View.el("span", { class: "badge" }, "remote — another process")]
           : parentLink()];
  const d = $("details");
  d.replaceChildren(
    View.el("h2", {}, View.el("span", { class: "svc", style: `color:${View.color(span.service_name)}` }, span.service_name), " ", span.name),
    View.el("div", { class: "badges" },
      View.el("span", { class: "badge" }, kindOf(span)),
      View.el("span", { class: `badge status-${status.code.toLowerCase()}` }, status.code),
      pk === "incoming" ? View.el("span", { class: "badge remote" }, "incoming remote parent") : null),
    table([
      ["span id", View.el("code", { id: "detail-span-id" }, span.span_id)],
      ["parent span id", View.el("span", { id: "detail-parent" }, parentCell)],
      ["status", View.el("span", { id: "detail-status" }, status.code,
        status.message ? View.el("span", { class: "status-message" }, ` — ${status.message}`) : null)],
      ["start", `+${View.duration(us(span.start_unix_nanos) - start)} (${View.date(us(span.start_unix_nanos))})`],
      ["duration", View.duration(us(span.end_unix_nanos - span.start_unix_nanos))],
      ["kind", kindOf(span)],
      ["scope", `${span.scope_name}${span.scope_version ? ` ${span.scope_version}` : ""}`],
      span.trace_state ? ["tracestate", span.trace_state] : null,
      ["flags", `0x${span.flags.toString(16).padStart(3, "0")}`],
    ].filter(Boolean), "span-fields"),
    View.el("h3", {}, "Attributes"), attrTable(span.attributes, "attributes"),
    View.el("h3", {}, `Logs (${span.events.length} event${span.events.length === 1 ? "" : "s"})`),
    span.events.length ? View.el("ol", { class: "logs" }, span.events.map((e) =>
      View.el("li", {},
        View.el("div", { class: "log-head" }, View.el("span", { class: "offset" }, `+${View.duration(us(e.time_unix_nanos) - start)}`),
          " ", View.el("strong", {}, e.name)),
        attrTable(e.attributes, "log-fields")))) : View.el("p", { class: "muted" }, "none"),
    View.el("h3", {}, `Links (${span.links.length})`),
    span.links.length ? View.el("ul", { class: "links" }, span.links.map((l) =>
      View.el("li", {},
        l.trace_id === span.trace_id ? "this trace" : View.el("a", { href: `/trace/${l.trace_id}` }, View.el("code", {}, l.trace_id)),
        " span ", View.el("code", {}, l.span_id),
        l.trace_state ? ` tracestate ${l.trace_state}` : "",
        Object.keys(l.attributes).length ? attrTable(l.attributes) : null))) : View.el("p", { class: "muted" }, "none"),
    View.el("h3", {}, "Resource"), attrTable(span.resource, "resource"));
  d.dataset.spanId = span.span_id;
}

function select(spanId) {
  selected = spanId;
  history.replaceState(null, "", `${location.pathname}?span=${spanId}`);
  render();
}

function render() {
  const { rows, byId } = ordered(spans);
  const start = Math.min(...spans.map((s) => us(s.start_unix_nanos)));
  const end = Math.max(...spans.map((s) => us(s.end_unix_nanos)));
  const total = Math.max(end - start, 1);
  const root = rows[0] && rows[0].span;
  const services = [...new Set(spans.map((s) => s.service_name))].sort();
  const errors = spans.filter((s) => statusOf(s).code === "ERROR").length;
  const depth = Math.max(...rows.map((r) => r.depth)) + 1;

  document.title = `${root.service_name}: ${root.name} · trace ${traceId.slice(0, 8)}`;
  $("title").replaceChildren(View.el("span", { class: "svc", style: `color:${View.color(root.service_name)}` }, root.service_name), " ", root.name);
  $("meta").replaceChildren(
    View.el("span", {}, View.el("b", {}, "Started "), View.date(start)),
    View.el("span", {}, View.el("b", {}, "Duration "), View.duration(total)),
    View.el("span", {}, View.el("b", {}, "Spans "), spans.length),
    View.el("span", {}, View.el("b", {}, "Depth "), depth),
    View.el("span", { class: errors ? "errors" : "" }, View.el("b", {}, "Errors "), errors),
    View.el("span", { class: "services" }, services.map((s) => View.serviceChip(s, 0))));
  $("ids").replaceChildren(...idRows(root).flat());
  $("state").textContent = "";

  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const header = View.el("div", { class: "wf-row wf-header" },
    View.el("div", { class: "wf-name" }, "Service · operation"),
    View.el("div", { class: "wf-track" }, ticks.map((t) =>
      View.el("span", { class: "tick", style: `left:${t * 100}%` }, View.duration(t * total)))));
  const body = rows.map(({ span, depth: d }) => {
    const s = us(span.start_unix_nanos) - start;
    const dur = us(span.end_unix_nanos - span.start_unix_nanos);
    const status = statusOf(span);
    const pk = parentKind(span, byId);
    const color = View.color(span.service_name);
    const left = (100 * s) / total;
    const width = Math.max((100 * dur) / total, 0.3);
    return View.el("div", {
      class: `wf-row span-row${span.span_id === selected ? " selected" : ""}${status.code === "ERROR" ? " error" : ""}`,
      tabindex: "0", role: "button",
      dataset: { spanId: span.span_id, service: span.service_name, name: span.name },
      onclick: () => select(span.span_id),
      onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(span.span_id); } },
    },
    View.el("div", { class: "wf-name", style: `padding-left:${0.5 + d * 1.1}rem`, title: `${span.service_name} ${span.name}` },
      View.el("span", { class: "dot", style: `background:${color}` }),
      View.el("span", { class: "svc" }, span.service_name), " ",
      View.el("span", { class: "op" }, span.name),
      status.code === "ERROR" ? View.el("span", { class: "err-icon", title: status.message || "error" }, "!") : null,
      pk === "incoming" ? View.el("span", { class: "badge remote small", title: `parent ${span.parent_span_id} came with the request's headers` }, "incoming parent") : null),
    View.el("div", { class: "wf-track" },
      View.el("span", { class: "bar", style: `left:${left}%;width:${width}%;background:${status.code === "ERROR" ? "#d93025" : color}` }),
      View.el("span", { class: width > 30 ? "bar-label inside" : "bar-label",
        style: width > 30 ? `left:${left + 0.6}%` : left + width > 75 ? `right:${100 - left + 0.6}%` : `left:${left + width + 0.6}%` },
      View.duration(dur))));
  });
  $("waterfall").replaceChildren(header, ...body);
  const chosen = spans.find((x) => x.span_id === selected);
  if (chosen) showDetails(chosen, byId, start);
  document.body.dataset.traceId = traceId;
  document.body.dataset.spans = String(spans.length);
}

async function load() {
  let status;
  let body;
  try {
    ({ status, body } = await View.json(`/api/view/traces/${encodeURIComponent(traceId)}`));
  } catch (e) {
    $("state").textContent = `Cannot reach the view: ${e.message}`;
    return;
  }
  if (status === 404) {
    $("title").textContent = `Trace ${traceId}`;
    $("ids").replaceChildren(...idRows(null).flat());
    $("state").textContent = "No spans of this trace have arrived (yet) — waiting for them…";
    return;
  }
  if (status !== 200) {
    $("state").textContent = (body && body.errors && body.errors[0].msg) || `HTTP ${status}`;
    return;
  }
  const fresh = JSON.stringify(body.spans.map((s) => s.span_id));
  if (fresh !== JSON.stringify(spans.map((s) => s.span_id))) {
    spans = body.spans;
    render();
  }
}

load().then(() => setInterval(load, POLL_MS));
