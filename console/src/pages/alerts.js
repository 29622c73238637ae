// Alerts: what the cluster's Prometheus has pending or firing under
// deploy/prometheus/tessera-rules.yml (the node's `prometheus_url`).

import { h, table, fill, pill, fmt } from "../app.js";

const columns = [
  ["Alert", (a) => h("div", {}, h("strong", {}, a.labels.alertname), h("div", { class: "muted small" }, a.annotations?.summary || ""))],
  ["Severity", (a) => pill(a.labels.severity || "none", a.labels.severity === "critical" ? "danger" : "warn")],
  ["State", (a) => pill(a.state, a.state === "firing" ? "danger" : "warn")],
  ["Where", (a) => a.labels.instance || "the cluster"],
  ["Since", (a) => fmt.ago(Date.parse(a.activeAt))],
  ["What it means", (a) => h("div", { class: "small" }, a.annotations?.description || "")],
];

export const alerts = {
  title: "Alerts",
  sections: ["alerts"],
  enter(root) {
    fill(root,
      h("header", { class: "page-head" }, h("h1", {}, "Alerts"),
        h("p", { class: "muted" }, "What the alert rules (deploy/prometheus/tessera-rules.yml) find, as the cluster's Prometheus evaluates them.")),
      h("section", { class: "card" }, h("div", { id: "alerts-list" })));
  },
  update(root, s) {
    const box = root.querySelector("#alerts-list");
    const a = s.alerts;
    if (!a) return fill(box, h("div", { class: "empty" }, "Waiting…"));
    if (!a.configured) {
      return fill(box, h("div", { class: "empty" }, "No Prometheus is configured. Set ",
        h("code", {}, "prometheus_url"), " in the node's configuration to the server that loads deploy/prometheus/tessera-rules.yml."));
    }
    if (a.error) return fill(box, h("p", { class: "error" }, `Prometheus at ${a.source} did not answer: ${a.error}`));
    const rows = (a.alerts || []).slice().sort((x, y) => (x.state === y.state ? 0 : x.state === "firing" ? -1 : 1))
      .map((x, i) => ({ ...x, key: i }));
    fill(box, h("p", { class: "muted small" }, `From ${a.source}`),
      table(columns, rows, "All clear: no alert is pending or firing."));
  },
};
