// Releases (premieres): a timeline around now, each release's state and readiness per
// node, and schedule, move and cancel. A release opens only once the cluster commits it.

import { h, table, fill, pill, api, act, fmt, contentOptions } from "../app.js";

const STATE_KIND = { scheduled: "warn", open: "ok", ended: "", cancelled: "danger" };

/** A `datetime-local` value as an RFC 3339 time in the browser's zone. */
function rfc3339(local) {
  return new Date(local).toISOString();
}

function localValue(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

function scheduleForm() {
  const err = h("p", { class: "error", hidden: true, role: "alert" });
  const content = h("input", { name: "content", list: "release-content", required: true, placeholder: "live/NAME or vod/ASSET" });
  const at = h("input", { name: "at", type: "datetime-local", step: "1", required: true, value: localValue(Date.now() + 5 * 60000) });
  const end = h("input", { name: "end", type: "datetime-local", step: "1" });
  const regions = h("input", { name: "regions", placeholder: "every region" });
  const form = h("form", { class: "inline-form" },
    h("datalist", { id: "release-content" }),
    h("label", {}, "Content", content), h("label", {}, "Opens", at), h("label", {}, "Ends (optional)", end),
    h("label", {}, "Regions", regions), h("button", { class: "primary", type: "submit" }, "Schedule"), err);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { content: content.value.trim(), at: rfc3339(at.value),
      regions: regions.value.split(",").map((r) => r.trim()).filter(Boolean) };
    if (end.value) body.end = rfc3339(end.value);
    const r = await act(() => api("POST", "/api/v1/releases", body), `${body.content} scheduled: gated on every node until it opens`, err);
    if (r !== undefined) { content.value = ""; end.value = ""; }
  });
  return form;
}

function timeline(list) {
  const now = Date.now();
  const live = list.filter((r) => r.state === "scheduled" || r.state === "open" || (r.end_ms && r.end_ms > now - 3600e3));
  if (!live.length) return h("div", { class: "empty" }, "Nothing scheduled or open around now.");
  const from = Math.min(now - 15 * 60e3, ...live.map((r) => r.at_ms));
  const to = Math.max(now + 60 * 60e3, ...live.map((r) => (r.end_ms ?? r.at_ms) + 15 * 60e3));
  const x = (ms) => `${(100 * (ms - from)) / (to - from)}%`;
  const rows = live.slice().sort((a, b) => a.at_ms - b.at_ms).map((r) => {
    const endMs = r.end_ms ?? to;
    return h("div", { class: "tl-row" },
      h("div", { class: "tl-label" }, r.content),
      h("div", { class: "tl-track" },
        h("div", { class: `tl-bar ${r.state}`, style: `left:${x(r.at_ms)};width:calc(${x(endMs)} - ${x(r.at_ms)})`,
          title: `${r.content}: ${r.state}, opens ${fmt.time(r.at_ms)}` })));
  });
  return h("div", { class: "timeline" },
    h("div", { class: "tl-axis" }, h("span", {}, fmt.time(from)), h("span", {}, fmt.time(to))),
    h("div", { class: "tl-body" }, h("div", { class: "tl-now-layer" }, h("div", { class: "tl-now", style: `left:${x(now)}`, title: "now" })), rows));
}

function readiness(r) {
  const serving = r.nodes.filter((n) => n.serves);
  if (!serving.length) return h("span", { class: "muted" }, "no node serves its regions");
  return h("div", {},
    h("div", {}, `${r.ready_nodes} of ${r.serving_nodes} nodes ready`),
    h("div", { class: "chips" }, serving.map((n) => h("span", {
      class: `chip ${n.ready ? "ok" : "warn"}`, title: n.detail || "has not said yet" }, `node ${n.node}`))));
}

function actions(r) {
  if (r.state !== "scheduled") {
    if (r.state !== "open") return null;
    return h("button", { onclick: () => {
      if (!confirm(`Take ${r.content} down now?`)) return;
      act(() => api("PUT", `/api/v1/releases/${r.id}`, { end: new Date(Date.now() + 2000).toISOString() }), `${r.content} will be taken down`);
    } }, "End now");
  }
  const when = h("input", { type: "datetime-local", step: "1", value: localValue(r.at_ms), "aria-label": `New time for release ${r.id}` });
  return h("div", { class: "row-actions" }, when,
    h("button", { onclick: () => act(() => api("PUT", `/api/v1/releases/${r.id}`, { at: rfc3339(when.value) }), `Release ${r.id} moved`) }, "Move"),
    h("button", { onclick: () => act(() => api("PUT", `/api/v1/releases/${r.id}`, { at: new Date(Date.now() + 3000).toISOString() }), `Release ${r.id} opens in a few seconds`) }, "Open now"),
    h("button", { class: "danger", onclick: () => {
      if (!confirm(`Cancel the release of ${r.content}? The content stays gated.`)) return;
      act(() => api("DELETE", `/api/v1/releases/${r.id}`), `Release ${r.id} cancelled`);
    } }, "Cancel"));
}

const columns = [
  ["Content", (r) => h("div", {}, h("strong", {}, r.content), h("div", { class: "muted small" }, `release ${r.id}`))],
  ["State", (r) => pill(r.state, STATE_KIND[r.state])],
  ["Opens", (r) => h("div", {}, fmt.time(r.at_ms), h("div", { class: "muted small" },
    r.opened_ms ? `committed open ${fmt.ago(r.opened_ms)} (${r.commit_after_ms} ms after its time)` : fmt.ago(r.at_ms)))],
  ["Ends", (r) => r.end_ms ? fmt.time(r.end_ms) : "—"],
  ["Regions", (r) => r.regions.length ? r.regions.join(", ") : "all"],
  ["Readiness", readiness],
  ["", actions, "actions"],
];

export const releases = {
  title: "Releases",
  sections: ["releases", "streams", "assets"],
  enter(root) {
    fill(root,
      h("header", { class: "page-head" }, h("h1", {}, "Releases"),
        h("p", { class: "muted" }, "A scheduled release keeps its content hidden on every node until the cluster commits it open; nodes prepare it ahead.")),
      h("section", { class: "card" }, h("h2", {}, "Schedule a premiere"), scheduleForm()),
      h("section", { class: "card" }, h("h2", {}, "Timeline"), h("div", { id: "releases-timeline" })),
      h("section", { class: "card" }, h("h2", {}, "All releases"), h("div", { id: "releases-list" })));
  },
  update(root, s) {
    const dl = root.querySelector("#release-content");
    if (dl) fill(dl, contentOptions());
    const list = root.querySelector("#releases-list");
    if (!s.releases) return fill(list, h("div", { class: "empty" }, "Waiting for the catalog…"));
    if (s.releases.error) return fill(list, h("p", { class: "error" }, s.releases.message));
    const ms = (t) => (t ? Date.parse(t) : null);
    const data = s.releases.data.map((r) => ({ ...r, key: r.id, at_ms: ms(r.at), end_ms: ms(r.end), opened_ms: ms(r.committed) }));
    fill(root.querySelector("#releases-timeline"), timeline(data));
    fill(list, table(columns, data, "No releases. Schedule one above: the content is gated from that moment."));
  },
};
