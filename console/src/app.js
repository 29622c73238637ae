// The console's frame: sign-in, the admin API with the tab's token, the live feed of
// sections (/api/v1/console/events, server-sent events read through fetch so the token
// travels in a header, never in a URL), the page router and the DOM helpers pages use.

import { pages } from "./pages.js";

const TOKEN_KEY = "tessera.admin-token";

/** The sections the feed has delivered, by name (see nodes/src/console/events.rs). */
export const sections = {};
let current = null; // { name, page, root }
let feedAbort = null;

// ---- DOM helpers -------------------------------------------------------------------

/** An element: `h("td", { class: "num" }, "42")`. Text children are text, never HTML. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    // Through the CSSOM: the page's policy refuses style attributes.
    else if (k === "style") el.style.cssText = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A table of `rows` under `columns` ([label, row => cell, class?]), or the empty state. */
export function table(columns, rows, empty) {
  if (!rows || rows.length === 0) return h("div", { class: "empty" }, empty);
  return h("table", {},
    h("thead", {}, h("tr", {}, columns.map(([label, , cls]) => h("th", { class: cls }, label)))),
    h("tbody", {}, rows.map((row) => h("tr", { "data-key": row.key ?? "" },
      columns.map(([, cell, cls]) => h("td", { class: cls }, cell(row)))))));
}

/** Replaces what `el` holds. */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

/** A datalist's options: every stream (`live/NAME`) and asset (`vod/ID`) the feed knows. */
export function contentOptions() {
  return [
    ...(sections.streams?.data || []).map((s) => `live/${s.name}`),
    ...(sections.assets?.data || []).map((a) => `vod/${a.id}`),
  ].map((c) => h("option", { value: c }));
}

export function pill(text, kind = "") {
  return h("span", { class: `pill ${kind}` }, text);
}

export function toast(message, kind = "ok") {
  const t = h("div", { class: `toast ${kind}` }, message);
  document.getElementById("toasts").append(t);
  setTimeout(() => t.remove(), kind === "error" ? 8000 : 4000);
}

export const fmt = {
  time(ms) {
    if (ms === null || ms === undefined) return "—";
    return new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  },
  ago(ms) {
    if (!ms) return "—";
    const s = Math.round((Date.now() - ms) / 1000);
    const abs = Math.abs(s);
    const span = abs < 90 ? `${abs} s` : abs < 5400 ? `${Math.round(abs / 60)} min` : abs < 172800
      ? `${Math.round(abs / 3600)} h` : `${Math.round(abs / 86400)} days`;
    return s >= 0 ? `${span} ago` : `in ${span}`;
  },
  bits(bps) {
    if (!bps) return "—";
    return bps >= 1e6 ? `${(bps / 1e6).toFixed(2)} Mb/s` : `${Math.round(bps / 1e3)} kb/s`;
  },
  bytes(n) {
    if (n === null || n === undefined) return "—";
    const u = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
  },
  pct(x) { return `${Math.round((x || 0) * 100)}%`; },
};

// ---- the admin API -----------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

/** Calls the admin API; answers its JSON (or null), throws an ApiError with its message. */
export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "unreachable", `The node did not answer (${e.message}).`);
  }
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  // 401: no token; 403 `forbidden`: a token the node does not know (any longer).
  if (res.status === 401 || (res.status === 403 && json?.error === "forbidden")) signOut("The node no longer accepts this token.");
  if (!res.ok) {
    throw new ApiError(res.status, json?.error ?? "http", json?.message ?? `${res.status} ${res.statusText}`);
  }
  return json;
}

/** Runs `action`, says `done` when it succeeds and its error where it failed. */
export async function act(action, done, errorEl) {
  if (errorEl) errorEl.hidden = true;
  try {
    const out = await action();
    if (done) toast(done);
    return out;
  } catch (e) {
    if (errorEl) { errorEl.textContent = e.message; errorEl.hidden = false; } else toast(e.message, "error");
    return undefined;
  }
}

/** The bearer header, for libraries that make their own requests (tus). */
export function authHeaders() { return { Authorization: `Bearer ${token()}` }; }

// ---- the feed ------------------------------------------------------------------------

function feedState(state, text) {
  const el = document.getElementById("feed-state");
  el.dataset.state = state;
  el.textContent = text;
}

async function readFeed(signal) {
  const res = await fetch("/api/v1/console/events", { headers: authHeaders(), signal });
  if (res.status === 401 || res.status === 403) { signOut("The node no longer accepts this token."); return; }
  if (!res.ok || !res.body) throw new Error(`the feed answered ${res.status}`);
  feedState("live", "Live");
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the feed ended");
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) deliver(name, JSON.parse(data.join("\n")));
    }
  }
}

function deliver(name, value) {
  sections[name] = value;
  if (name === "cluster") {
    document.getElementById("node-line").textContent =
      `Node ${value.id} · ${value.state} · term ${value.term}`;
    // Every page says when this node is cut off: what it shows may then be old.
    const banner = document.getElementById("banner");
    banner.hidden = value.leader != null;
    banner.textContent = `Node ${value.id} follows no leader: it cannot reach a quorum, so what it shows may be old `
      + `(catalog applied up to ${value.applied ?? "nothing"}) and changes made here wait. Open another node's console.`;
  }
  if (name === "alerts") {
    const firing = (value.alerts || []).filter((a) => a.state === "firing").length;
    const badge = document.getElementById("alert-count");
    badge.hidden = firing === 0;
    badge.textContent = firing;
  }
  if (current && current.page.sections.includes(name)) current.page.update(current.root, sections);
}

async function runFeed() {
  let pause = 1000;
  while (token()) {
    feedAbort = new AbortController();
    try {
      await readFeed(feedAbort.signal);
      pause = 1000;
    } catch (e) {
      if (feedAbort.signal.aborted) return;
      feedState("down", `Reconnecting (${e.message})`);
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 10000);
    }
  }
}

// ---- pages and sign-in ---------------------------------------------------------------

function route() {
  const name = (location.hash.replace(/^#\/?/, "").split("/")[0]) || "cluster";
  const page = pages[name] || pages.cluster;
  if (current?.page.leave) current.page.leave(current.root);
  const root = document.getElementById("page");
  root.replaceChildren();
  current = { name, page, root };
  for (const a of document.querySelectorAll(".sidebar a")) {
    a.classList.toggle("active", a.dataset.page === name);
    if (a.dataset.page === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  document.title = `${page.title} · Tessera`;
  page.enter(root, sections);
  page.update(root, sections);
}

function showShell() {
  document.getElementById("login").hidden = true;
  document.getElementById("shell").hidden = false;
  route();
  runFeed();
}

export function signOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  feedAbort?.abort();
  for (const k of Object.keys(sections)) delete sections[k];
  if (current?.page.leave) current.page.leave(current.root);
  current = null;
  document.getElementById("shell").hidden = true;
  document.getElementById("login").hidden = false;
  const err = document.getElementById("login-error");
  err.hidden = !reason;
  err.textContent = reason || "";
}

async function signIn(event) {
  event.preventDefault();
  const input = document.getElementById("login-token");
  const err = document.getElementById("login-error");
  const res = await fetch("/api/v1/cluster", { headers: { Authorization: `Bearer ${input.value}` } })
    .catch(() => null);
  if (!res || !res.ok) {
    err.textContent = !res ? "The node did not answer." : res.status === 401 || res.status === 403
      ? "This node does not accept that token." : `The node answered ${res.status}.`;
    err.hidden = false;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, input.value);
  input.value = "";
  err.hidden = true;
  showShell();
}

document.getElementById("login-form").addEventListener("submit", signIn);
document.getElementById("sign-out").addEventListener("click", () => signOut());
window.addEventListener("hashchange", () => { if (token()) route(); });
if (token()) showShell(); else signOut();
