// The search page: filters → GET /api/traces (Jaeger's search API), newest trace first,
// refreshed every two seconds so new traces appear without a reload. The filters live in the
// page's query string, so a search can be linked to.
"use strict";

const $ = (id) => document.getElementById(id);
const form = {
  service: $("service"),
  operation: $("operation"),
  minDuration: $("min-duration"),
  errors: $("errors-only"),
};
const REFRESH_MS = 2000;
let inFlight = false;
let lastRendered = "";
let generation = 0;

function readUrl() {
  const q = new URLSearchParams(location.search);
  form.minDuration.value = q.get("minDuration") || "";
  form.errors.checked = q.get("errors") === "true";
  return { service: q.get("service") || "", operation: q.get("operation") || "" };
}

function pageQuery() {
  const q = new URLSearchParams();
  if (form.service.value) q.set("service", form.service.value);
  if (form.operation.value) q.set("operation", form.operation.value);
  if (form.minDuration.value.trim()) q.set("minDuration", form.minDuration.value.trim());
  if (form.errors.checked) q.set("errors", "true");
  return q;
}

// The page's filters as Jaeger API parameters.
function apiQuery() {
  const page = pageQuery();
  const q = new URLSearchParams();
  for (const key of ["service", "operation", "minDuration"]) {
    if (page.has(key)) q.set(key, page.get(key));
  }
  if (page.get("errors") === "true") q.append("tag", "error:true");
  q.set("limit", "100");
  return q;
}

function fillSelect(select, values, allLabel, wanted) {
  const current = wanted !== undefined ? wanted : select.value;
  select.replaceChildren(View.el("option", { value: "" }, allLabel),
    ...values.map((v) => View.el("option", { value: v }, v)));
  if (current && !values.includes(current)) select.append(View.el("option", { value: current }, current));
  select.value = current;
}

async function loadServices(wanted) {
  const { body } = await View.json("/api/services");
  fillSelect(form.service, (body && body.data) || [], "All services", wanted);
}

async function loadOperations(wanted) {
  const service = form.service.value;
  if (!service) {
    fillSelect(form.operation, [], "All operations", "");
    form.operation.disabled = true;
    return;
  }
  form.operation.disabled = false;
  const { body } = await View.json(`/api/services/${encodeURIComponent(service)}/operations`);
  fillSelect(form.operation, (body && body.data) || [], "All operations", wanted);
}

// One row's numbers from a Jaeger trace.
function summarize(trace) {
  const ids = new Set(trace.spans.map((s) => s.spanID));
  const parentOf = (s) => (s.references || []).find((r) => r.refType === "CHILD_OF");
  const roots = trace.spans.filter((s) => { const p = parentOf(s); return !p || !ids.has(p.spanID); });
  roots.sort((a, b) => a.startTime - b.startTime);
  const root = roots[0] || trace.spans[0];
  const start = Math.min(...trace.spans.map((s) => s.startTime));
  const end = Math.max(...trace.spans.map((s) => s.startTime + s.duration));
  const services = new Map();
  for (const s of trace.spans) {
    const name = trace.processes[s.processID].serviceName;
    services.set(name, (services.get(name) || 0) + 1);
  }
  const errors = trace.spans.filter((s) => s.tags.some((t) => t.key === "error" && t.value === true)).length;
  return {
    id: trace.traceID, start, duration: end - start, errors, spans: trace.spans.length,
    rootService: trace.processes[root.processID].serviceName, rootName: root.operationName,
    services: [...services.entries()].sort((a, b) => a[0].localeCompare(b[0])),
  };
}

function render(traces, query) {
  // Newest first by start time (the API lists the trace received last first).
  const rows = traces.map(summarize).sort((a, b) => b.start - a.start);
  const longest = Math.max(1, ...rows.map((r) => r.duration));
  const tbody = $("results").tBodies[0];
  tbody.replaceChildren(...rows.map((r) => {
    const href = `/trace/${r.id}`;
    return View.el("tr", { class: r.errors ? "trace-row has-error" : "trace-row", dataset: { traceId: r.id },
                            onclick: (e) => { if (!e.target.closest("a")) location.href = href; } },
      View.el("td", { class: "when", title: View.date(r.start) }, View.time(r.start)),
      View.el("td", { class: "root" },
        View.el("a", { href }, View.el("span", { class: "svc", style: `color:${View.color(r.rootService)}` }, r.rootService),
          " ", View.el("strong", {}, r.rootName))),
      View.el("td", { class: "services" }, r.services.map(([name, n]) => View.serviceChip(name, n))),
      View.el("td", { class: "num" }, r.spans),
      View.el("td", { class: r.errors ? "num errors" : "num" }, r.errors ? `${r.errors} error${r.errors > 1 ? "s" : ""}` : "–"),
      View.el("td", { class: "dur" },
        View.el("span", { class: "dur-track" },
          View.el("span", { class: "dur-bar", style: `width:${Math.max(3, (100 * r.duration) / longest).toFixed(1)}%` })),
        View.el("span", { class: "dur-text" }, View.duration(r.duration))),
      View.el("td", {}, View.el("code", { class: "id" }, r.id)));
  }));
  const filtered = query.toString().replace(/&?limit=\d+/, "");
  $("summary").textContent = `${rows.length} trace${rows.length === 1 ? "" : "s"}` +
    (filtered ? " matching the filters" : " received") + ", newest first · updates automatically";
  document.body.dataset.rows = String(rows.length);
  document.body.dataset.query = query.toString();
  document.body.dataset.generation = String(++generation);
}

async function refresh() {
  if (inFlight) return;
  inFlight = true;
  const query = apiQuery();
  try {
    const { status, body } = await View.json(`/api/traces?${query}`);
    if (status !== 200) {
      const msg = (body && body.errors && body.errors[0] && body.errors[0].msg) || `HTTP ${status}`;
      $("summary").textContent = `Cannot search: ${msg}`;
      $("summary").classList.add("error-text");
      return;
    }
    $("summary").classList.remove("error-text");
    // Re-render only when something changed, so a row being hovered or clicked stays put.
    const key = query.toString() + JSON.stringify(body.data.map((t) => [t.traceID, t.spans.length]));
    if (key !== lastRendered) {
      lastRendered = key;
      render(body.data, query);
    }
  } catch (e) {
    $("summary").textContent = `Cannot reach the view: ${e.message}`;
  } finally {
    inFlight = false;
  }
}

function filtersChanged() {
  history.replaceState(null, "", `${location.pathname}${pageQuery().toString() ? `?${pageQuery()}` : ""}`);
  lastRendered = "";
  refresh();
}

async function main() {
  const wanted = readUrl();
  await loadServices(wanted.service);
  await loadOperations(wanted.operation);
  form.service.addEventListener("change", async () => { await loadOperations(""); filtersChanged(); });
  for (const input of [form.operation, form.errors]) input.addEventListener("change", filtersChanged);
  form.minDuration.addEventListener("change", filtersChanged);
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); filtersChanged(); });
  $("find").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = View.traceIdFrom($("find-id").value);
    if (!id) {
      $("find-error").textContent = "not a trace id, traceparent, uber-trace-id or sentry-trace";
      return;
    }
    location.href = `/trace/${id}`;
  });
  await refresh();
  setInterval(async () => {
    await refresh();
    // New services show up in the list as their spans arrive.
    if (document.activeElement !== form.service) await loadServices();
  }, REFRESH_MS);
}

main();
