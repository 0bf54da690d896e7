// Shared by the view's pages: formatting, colours, element building. Plain browser JavaScript,
// no framework and nothing loaded from elsewhere.
"use strict";

const View = {
  // Duration from microseconds: "840 µs", "12.3 ms", "1.52 s".
  duration(us) {
    if (Math.round(us) < 1000) return `${Math.round(us)} µs`;
    if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)} ms`;
    return `${(us / 1e6).toFixed(2)} s`;
  },

  // Wall-clock time from unix microseconds, local time with milliseconds.
  time(us) {
    const d = new Date(us / 1000);
    const pad = (n, w = 2) => String(n).padStart(w, "0");
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  },

  date(us) {
    return new Date(us / 1000).toLocaleString();
  },

  // A stable colour per service.
  color(service) {
    const palette = ["#3b6fd4", "#16a085", "#8e44ad", "#d35400", "#2c8c3c", "#b8860b", "#c0392b", "#2980b9"];
    let h = 0;
    for (const c of service) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    return palette[h % palette.length];
  },

  // el("td", {class: "x", dataset: {k: v}}, child, "text", ...)
  el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "style") node.style.cssText = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  },

  serviceChip(service, count) {
    return View.el("span", { class: "chip", style: `--c:${View.color(service)}` },
      service, count > 1 ? View.el("small", {}, ` ×${count}`) : null);
  },

  // The trace id in a pasted value: 32 (or fewer) hex digits, a W3C traceparent, a Jaeger
  // uber-trace-id or a Sentry sentry-trace. Returns 32 lower-case hex digits or null.
  traceIdFrom(text) {
    let value = (text || "").trim().replace(/%3A/gi, ":");
    value = value.replace(/^(traceparent|uber-trace-id|sentry-trace)\s*:\s*/i, "");
    let id = null;
    let m;
    if ((m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/i.exec(value))) id = m[1];
    else if ((m = /^([0-9a-f]{1,32}):[0-9a-f]{1,16}:[0-9a-f]{1,16}:[0-9a-f]{1,2}$/i.exec(value))) id = m[1];
    else if ((m = /^([0-9a-f]{32})-[0-9a-f]{16}(-[01])?$/i.exec(value))) id = m[1];
    else if ((m = /^([0-9a-f]{1,32})$/i.exec(value))) id = m[1];
    if (!id || /^0+$/.test(id)) return null;
    return id.toLowerCase().padStart(32, "0");
  },

  async json(url) {
    const res = await fetch(url, { headers: { accept: "application/json" } });
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    return { status: res.status, body };
  },
};
