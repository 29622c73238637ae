// Tokens and keys: issue playback tokens (signed by the cluster's license service), revoke
// and restore viewers (every node refuses their key requests and signed playback once it
// has applied the revocation), and set a content's encryption.

import { h, table, fill, api, act, contentOptions } from "../app.js";

function issueForm() {
  const err = h("p", { class: "error", hidden: true, role: "alert" });
  const subject = h("input", { name: "subject", required: true, placeholder: "the viewer's id, e.g. user-1842" });
  const content = h("input", { name: "content", required: true, list: "access-content", placeholder: "live/NAME or vod/ASSET" });
  const hours = h("input", { name: "hours", type: "number", min: "0.1", step: "0.1", value: "24", required: true });
  const streams = h("input", { name: "max_streams", type: "number", min: "1", placeholder: "no limit" });
  const out = h("div", { class: "issued", hidden: true });
  const form = h("form", { class: "inline-form", id: "issue-form" }, h("datalist", { id: "access-content" }),
    h("label", {}, "Viewer", subject), h("label", {}, "Content", content), h("label", {}, "Valid for (hours)", hours),
    h("label", {}, "Concurrent players", streams), h("button", { class: "primary", type: "submit" }, "Issue token"), err, out);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { subject: subject.value.trim(), content: content.value.trim(),
      expires: new Date(Date.now() + Number(hours.value) * 3600e3).toISOString() };
    if (streams.value) body.max_streams = Number(streams.value);
    const t = await act(() => api("POST", "/api/v1/tokens", body), `Token issued for ${body.subject}`, err);
    if (!t) return;
    const [kind, name] = body.content.split("/");
    const url = `${location.origin}/${kind}/${name}/index.m3u8?token=${encodeURIComponent(t.token)}`;
    const field = h("input", { readonly: true, value: url, class: "mono", "aria-label": "Playback URL" });
    fill(out, h("div", { class: "muted small" }, `Expires ${new Date(t.expires).toLocaleString()}. The playback URL:`),
      h("div", { class: "copy-row" }, field, h("button", { type: "button", onclick: () => { field.select(); navigator.clipboard?.writeText(url); } }, "Copy")));
    out.hidden = false;
  });
  return form;
}

function revokeForm() {
  const err = h("p", { class: "error", hidden: true, role: "alert" });
  const subject = h("input", { name: "subject", required: true, placeholder: "the viewer's id" });
  const form = h("form", { class: "inline-form", id: "revoke-form" }, h("label", {}, "Viewer", subject),
    h("button", { class: "danger", type: "submit" }, "Revoke"), err);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const who = subject.value.trim();
    if (await act(() => api("POST", "/api/v1/revocations", { subject: who }), `${who} revoked: players stop at their next key or signed request`, err) !== undefined) form.reset();
  });
  return form;
}

function protectForm() {
  const err = h("p", { class: "error", hidden: true, role: "alert" });
  const content = h("input", { name: "content", required: true, list: "access-content", placeholder: "live/NAME or vod/ASSET" });
  const mode = h("select", { name: "encryption" }, [["none", "none"], ["aes-128", "AES-128 (whole segments)"], ["cbcs", "cbcs (SAMPLE-AES, FairPlay/Widevine/PlayReady)"]]
    .map(([v, label]) => h("option", { value: v }, label)));
  const signed = h("input", { type: "checkbox", name: "signed_urls" });
  const form = h("form", { class: "inline-form", id: "protect-form" }, h("label", {}, "Content", content), h("label", {}, "Encryption", mode),
    h("label", { class: "check" }, signed, "Playback tokens required"), h("button", { type: "submit" }, "Apply"), err);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const [kind, ...rest] = content.value.trim().split("/");
    const name = rest.join("/");
    const path = kind === "live" ? `/api/v1/streams/${encodeURIComponent(name)}` : kind === "vod" ? `/api/v1/assets/${encodeURIComponent(name)}` : null;
    if (!path || !name) { err.textContent = "Content: live/NAME or vod/ASSET"; err.hidden = false; return; }
    act(() => api("PUT", path, { encryption: mode.value, signed_urls: signed.checked }), `${content.value}: ${mode.value}, keys from the license service`, err);
  });
  return form;
}

const revokedColumns = [
  ["Viewer", (r) => h("code", {}, r.subject)],
  ["", (r) => h("button", { onclick: () => act(() => api("DELETE", `/api/v1/revocations/${encodeURIComponent(r.subject)}`), `${r.subject} may watch again`) }, "Restore"), "actions"],
];

export const access = {
  title: "Tokens & keys",
  sections: ["revocations", "streams", "assets"],
  enter(root) {
    fill(root,
      h("header", { class: "page-head" }, h("h1", {}, "Tokens & keys"),
        h("p", { class: "muted" }, "Playback tokens name a viewer and one content; content keys are made, rotated and served by the license service.")),
      h("section", { class: "card" }, h("h2", {}, "Issue a playback token"), issueForm()),
      h("div", { class: "two" },
        h("section", { class: "card" }, h("h2", {}, "Revoke a viewer"), revokeForm(), h("h3", {}, "Revoked viewers"), h("div", { id: "access-revoked" })),
        h("section", { class: "card" }, h("h2", {}, "Encryption and keys"), protectForm())));
  },
  update(root, s) {
    const dl = root.querySelector("#access-content");
    if (dl) fill(dl, contentOptions());
    const box = root.querySelector("#access-revoked");
    const r = s.revocations;
    if (!r) return fill(box, h("div", { class: "empty" }, "Waiting for the catalog…"));
    if (r.error) return fill(box, h("p", { class: "error" }, r.message));
    fill(box, table(revokedColumns, r.data.map((subject) => ({ subject, key: subject })), "Nobody is revoked."));
  },
};
