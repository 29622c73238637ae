// Streams: the catalog's streams with their origin, ladder placement and viewers; one
// stream's preview, renditions (bitrate, state), viewers per node and relay tree; create,
// protect and delete.

import { h, table, fill, pill, api, act, fmt, sections } from "../app.js";
import { play } from "./player.js";

let stopPlayer = null;
let treeAsked = 0;

function selected() {
  const m = location.hash.match(/^#\/streams\/(.+)$/);
  return m ? decodeURIComponent(m[1]) : null;
}

/** Each node's view of `name` (from the feed's `live` section). */
function onNodes(live, name) {
  return (live || []).flatMap((n) => {
    const st = (n.streams || []).find((x) => x.name === name);
    return st ? [{ node: n.id, ...st }] : [];
  });
}

function listColumns(live) {
  return [
    ["Stream", (s) => h("a", { href: `#/streams/${encodeURIComponent(s.name)}` }, s.name)],
    ["State", (s) => s.origin ? pill("live", "ok") : pill("idle")],
    ["Origin", (s) => s.origin ? `node ${s.origin.node}` : "—"],
    ["Ladder", (s) => s.placement
      ? h("div", {}, `node ${s.placement.node}`, h("div", { class: "muted small" }, `${s.ladder || "node default"}${s.placement.moves ? ` · moved ${s.placement.moves}×` : ""}`))
      : h("span", { class: "muted" }, s.ladder || "node default")],
    ["Renditions", (s) => {
      const r = onNodes(live, s.name).find((x) => x.renditions?.length)?.renditions || [];
      return r.length ? `${r.filter((x) => x.offered).length} of ${r.length}` : "—";
    }, "num"],
    ["Viewers", (s) => onNodes(live, s.name).reduce((n, x) => n + (x.viewers || 0), 0), "num"],
    ["Publishing", (s) => s.token_sha256 ? pill("token") : pill("open", "warn")],
  ];
}

function createForm() {
  const err = h("p", { class: "error", hidden: true, role: "alert" });
  const name = h("input", { name: "name", required: true, placeholder: "e.g. news", pattern: "[A-Za-z0-9_.\\-]{1,64}" });
  const ladder = h("input", { name: "ladder", placeholder: "node default, or e.g. 1080p:6000,720p:3000,480p:1200" });
  const token = h("input", { name: "token", type: "password", placeholder: "leave empty for open publishing", autocomplete: "new-password" });
  const form = h("form", { class: "inline-form" },
    h("label", {}, "Name", name), h("label", {}, "Ladder", ladder), h("label", {}, "Publish token", token),
    h("button", { class: "primary", type: "submit" }, "Create stream"), err);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { name: name.value.trim() };
    if (ladder.value.trim()) body.ladder = ladder.value.trim();
    if (token.value) body.token = token.value;
    if (await act(() => api("POST", "/api/v1/streams", body), `Stream ${body.name} created`, err) !== undefined) form.reset();
  });
  return form;
}

function protectionForm(name) {
  const err = h("p", { class: "error", hidden: true, role: "alert" });
  const mode = h("select", { name: "encryption" }, ["none", "aes-128", "cbcs"].map((m) => h("option", { value: m }, m)));
  const signed = h("input", { type: "checkbox", name: "signed_urls" });
  const regions = h("input", { name: "regions", placeholder: "every region" });
  const form = h("form", { class: "inline-form" },
    h("label", {}, "Encryption", mode), h("label", { class: "check" }, signed, "Playback tokens required"),
    h("label", {}, "Regions", regions), h("button", { type: "submit" }, "Apply"), err);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const body = { encryption: mode.value, signed_urls: signed.checked,
      regions: regions.value.split(",").map((r) => r.trim()).filter(Boolean) };
    act(() => api("PUT", `/api/v1/streams/${encodeURIComponent(name)}`, body), `Protection of ${name} applied`, err);
  });
  return form;
}

const renditionColumns = [
  ["Rendition", (r) => r.name],
  ["Picture", (r) => r.resolution ? `${r.resolution[0]}×${r.resolution[1]}` : "audio"],
  ["Bitrate", (r) => h("div", {}, fmt.bits(r.average_bandwidth), h("div", { class: "muted small" }, `peak ${fmt.bits(r.bandwidth)}`)), "num"],
  ["Codecs", (r) => h("code", {}, r.codecs || "—")],
  ["State", (r) => r.dropped ? pill(`dropped: ${r.dropped}`, "danger") : r.offered ? pill("offered", "ok") : pill("starting", "warn")],
  ["Last segment", (r) => r.last_msn ?? "—", "num"],
];

const treeColumns = [
  ["Node", (n) => `node ${n.node}`],
  ["Role", (n) => n.origin ? pill("origin", "accent") : n.following ? pill("relay") : n.holds ? pill("holds") : h("span", { class: "muted" }, "—")],
  ["Pulls from", (n) => n.origin ? "the publisher" : n.upstream != null ? `node ${n.upstream}` : "—"],
  ["Behind origin", (n) => !n.behind ? "—" : n.behind.segments ? `${n.behind.segments} segments` : `${n.behind.parts ?? 0} parts`, "num"],
  ["Viewers", (n) => n.viewers ?? 0, "num"],
];

async function refreshTree(root, name) {
  if (Date.now() - treeAsked < 2000) return;
  treeAsked = Date.now();
  const box = root.querySelector("#stream-tree");
  try {
    const s = await api("GET", `/api/v1/streams/${encodeURIComponent(name)}?consistency=local`);
    const viewers = Object.fromEntries(onNodes(sections.live, name).map((x) => [x.node, x.viewers]));
    if (box.isConnected) fill(box, table(treeColumns, s.nodes.map((n) => ({ ...n, key: n.node, viewers: viewers[n.node] })), "No node holds it."));
  } catch (e) {
    if (box.isConnected) fill(box, h("p", { class: "error" }, e.message));
  }
}

function detail(root, name) {
  const back = h("a", { href: "#/streams", class: "back" }, "← All streams");
  fill(root,
    h("header", { class: "page-head" }, back, h("h1", {}, name), h("p", { id: "stream-line", class: "muted" })),
    h("div", { class: "two" },
      h("section", { class: "card" }, h("h2", {}, "Preview"), h("div", { id: "stream-player", class: "player" })),
      h("section", { class: "card" }, h("h2", {}, "Renditions"), h("div", { id: "stream-renditions" }))),
    h("section", { class: "card" }, h("h2", {}, "Nodes: origin, relays and viewers"), h("div", { id: "stream-tree" })),
    h("section", { class: "card" }, h("h2", {}, "Protection"), protectionForm(name),
      h("div", { class: "danger-zone" }, h("button", {
        class: "danger",
        onclick: () => {
          if (!confirm(`Delete the stream ${name}?`)) return;
          act(() => api("DELETE", `/api/v1/streams/${encodeURIComponent(name)}`), `Stream ${name} deleted`)
            .then((r) => { if (r !== undefined) location.hash = "#/streams"; });
        },
      }, "Delete stream"))));
  stopPlayer = play(root.querySelector("#stream-player"), `/live/${encodeURIComponent(name)}/index.m3u8`, { content: `live/${name}` });
}

export const streams = {
  title: "Streams",
  sections: ["streams", "live"],
  enter(root) {
    treeAsked = 0;
    const name = selected();
    if (name) return detail(root, name);
    fill(root,
      h("header", { class: "page-head" }, h("h1", {}, "Streams"),
        h("p", { class: "muted" }, "Publish with SRT (streamid #!::r=live/NAME,m=publish) or RTMP (rtmp://node/live/NAME) to any node; every node serves every stream.")),
      h("section", { class: "card" }, h("h2", {}, "New stream"), createForm()),
      h("section", { class: "card" }, h("h2", {}, "All streams"), h("div", { id: "streams-list" })));
  },
  update(root, s) {
    const name = selected();
    if (name) {
      const rec = s.streams?.data?.find((x) => x.name === name);
      const line = root.querySelector("#stream-line");
      if (line) line.textContent = !rec ? "Not in the catalog." : rec.origin
        ? `Live from node ${rec.origin.node} since ${fmt.time(rec.origin.since_ms)}${rec.placement ? `; its ladder is made on node ${rec.placement.node}` : ""}.`
        : "Not live: nobody publishes it now.";
      const views = onNodes(s.live, name);
      const r = (views.find((x) => x.renditions?.length)?.renditions || []).slice().sort((a, b) => b.bandwidth - a.bandwidth);
      const box = root.querySelector("#stream-renditions");
      if (box) fill(box, table(renditionColumns, r.map((x) => ({ ...x, key: x.name })), "No renditions yet: nothing has been published."));
      refreshTree(root, name);
      return;
    }
    const list = root.querySelector("#streams-list");
    if (!s.streams) return fill(list, h("div", { class: "empty" }, "Waiting for the catalog…"));
    if (s.streams.error) return fill(list, h("p", { class: "error" }, s.streams.message));
    const rows = s.streams.data.map((x) => ({ ...x, key: x.name }));
    fill(list, table(listColumns(s.live), rows, "No streams yet. Create one above, or publish: a node creates the stream it is sent."));
  },
  leave() {
    if (stopPlayer) stopPlayer();
    stopPlayer = null;
  },
};
