// The cluster: who leads, how far each member has got, and each node's region, capacity,
// load and what it holds (origins, ladders, VOD jobs); drain, undrain and remove.

import { h, table, fill, pill, api, act, fmt } from "../app.js";

function summary(c) {
  if (!c) return h("div", { class: "empty" }, "Waiting for the cluster's state…");
  if (c.error) return h("div", { class: "error" }, c.message || c.error);
  const card = (label, value, note) => h("div", { class: "stat" },
    h("div", { class: "stat-label" }, label), h("div", { class: "stat-value" }, value), note && h("div", { class: "muted small" }, note));
  const lag = c.commit != null && c.applied != null ? c.commit - c.applied : null;
  return h("div", { class: "stats" },
    card("Leader", c.leader != null ? `node ${c.leader}` : "none", c.leader == null ? "no quorum: writes wait" : null),
    card("Term", c.term),
    card("This node", `node ${c.id}`, c.state),
    card("Log", `${c.applied ?? "—"} applied`, `${c.commit ?? "—"} committed${lag ? `, ${lag} to apply` : ""}`),
    card("Members", c.members?.length ?? 0, c.snapshot != null ? `snapshot at ${c.snapshot}` : "no snapshot yet"));
}

function viewersOf(live, id) {
  const n = (live || []).find((x) => x.id === id);
  if (!n || n.error) return null;
  return (n.streams || []).reduce((sum, s) => sum + (s.viewers || 0), 0);
}

function nodeRows(nodes, c, live) {
  const members = c?.members || [];
  return (nodes || []).map((n) => {
    const m = members.find((x) => x.id === n.id);
    return { key: n.id, n, m, viewers: viewersOf(live, n.id), lastLog: c?.last_log };
  });
}

function state(row) {
  const { n } = row;
  const out = [];
  if (!n.member) out.push(pill("not a member", "warn"));
  if (!n.reachable) out.push(pill("unreachable", "danger"));
  else if (n.draining) out.push(pill("draining", "warn"));
  else out.push(pill("serving", "ok"));
  return out;
}

function actions(row) {
  const { n } = row;
  const drain = n.draining
    ? h("button", { onclick: () => act(() => api("DELETE", `/api/v1/nodes/${n.id}/drain`), `Node ${n.id} takes work again`) }, "Undrain")
    : h("button", { onclick: () => act(() => api("POST", `/api/v1/nodes/${n.id}/drain`), `Node ${n.id} is draining: its ladders move`) }, "Drain");
  const remove = h("button", {
    class: "danger",
    onclick: () => {
      if (!confirm(`Remove node ${n.id} (${n.http_addr}) from the cluster? Do this only for a node that is gone for good.`)) return;
      act(() => api("DELETE", `/api/v1/nodes/${n.id}`), `Node ${n.id} removed`);
    },
  }, "Remove");
  return h("div", { class: "row-actions" }, drain, remove);
}

const columns = [
  ["Node", (r) => h("div", {}, h("strong", {}, `node ${r.n.id}`), h("div", { class: "muted small" }, r.n.http_addr))],
  ["Role", (r) => r.m ? pill(r.m.role, r.m.role === "leader" ? "accent" : "") : pill("none", "warn")],
  ["Lag", (r) => r.m?.matched != null && r.lastLog != null ? `${r.lastLog - r.m.matched} entries` : "—", "num"],
  ["Region", (r) => r.n.region || "any"],
  ["Transcoding", (r) => r.n.transcode
    ? h("div", {}, `${r.n.transcode.reserved.toFixed(1)} of ${r.n.transcode.capacity.toFixed(1)} cores reserved`,
        h("div", { class: "meter" }, h("span", { style: `width:${Math.min(100, 100 * r.n.transcode.reserved / Math.max(r.n.transcode.capacity, 0.01))}%` })),
        h("div", { class: "muted small" }, `busy ${fmt.pct(r.n.transcode.busy)}`))
    : "—"],
  ["Holds", (r) => {
    const hd = r.n.holds;
    if (hd.nothing) return h("span", { class: "muted" }, "nothing");
    return h("div", { class: "small" },
      hd.origins.length ? h("div", {}, `origin of ${hd.origins.join(", ")}`) : null,
      hd.ladders.length ? h("div", {}, `ladders of ${hd.ladders.join(", ")}`) : null,
      hd.jobs.length ? h("div", {}, `${hd.jobs.length} VOD job${hd.jobs.length > 1 ? "s" : ""}`) : null);
  }],
  ["Viewers", (r) => r.viewers ?? "—", "num"],
  ["State", state],
  ["", actions, "actions"],
];

export const cluster = {
  title: "Cluster",
  sections: ["cluster", "nodes", "live"],
  enter(root) {
    fill(root,
      h("header", { class: "page-head" }, h("h1", {}, "Cluster"),
        h("p", { class: "muted" }, "The catalog's members and what each node does. Draining a node moves its ladders and stops new publishers, ladders and jobs on it.")),
      h("div", { id: "cluster-summary" }),
      h("section", { class: "card" }, h("h2", {}, "Nodes"), h("div", { id: "cluster-nodes" })));
  },
  update(root, s) {
    fill(root.querySelector("#cluster-summary"), summary(s.cluster));
    const nodes = s.nodes;
    const box = root.querySelector("#cluster-nodes");
    if (!nodes) return fill(box, h("div", { class: "empty" }, "Waiting for the nodes…"));
    if (nodes.error) return fill(box, h("div", { class: "error" }, nodes.message));
    fill(box, table(columns, nodeRows(nodes.data, s.cluster, s.live), "No nodes in the catalog yet."));
  },
};
