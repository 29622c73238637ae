// Video on demand: upload a film from the browser (tus, resumable, with its progress),
// the assets with their jobs' progress, retry of dead-lettered jobs, and play.

import { h, table, fill, pill, api, act, fmt, authHeaders, toast } from "../app.js";
import { play } from "./player.js";

const STATE_KIND = { uploaded: "warn", transcoding: "accent", ready: "ok", failed: "danger", recording: "accent" };
let upload = null;
let stopPlayer = null;

function uploadCard() {
  const file = h("input", { type: "file", name: "file", accept: "video/*,.mp4,.mov,.ts,.m2ts", required: true });
  const title = h("input", { name: "title", placeholder: "the file's name" });
  const bar = h("progress", { max: 100, value: 0, hidden: true });
  const line = h("p", { class: "muted small", "aria-live": "polite" });
  const err = h("p", { class: "error", hidden: true, role: "alert" });
  const start = h("button", { class: "primary", type: "submit" }, "Upload");
  const pause = h("button", { type: "button", hidden: true }, "Pause");
  const form = h("form", { class: "inline-form" },
    h("label", {}, "Film", file), h("label", {}, "Title", title), start, pause, h("div", { class: "wide" }, bar, line), err);
  pause.addEventListener("click", () => {
    if (!upload) return;
    if (pause.textContent === "Pause") { upload.abort(); pause.textContent = "Resume"; line.textContent += " — paused"; }
    else { upload.start(); pause.textContent = "Pause"; }
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = file.files[0];
    if (!f) return;
    err.hidden = true;
    bar.hidden = false;
    bar.value = 0;
    start.disabled = true;
    pause.hidden = false;
    pause.textContent = "Pause";
    const began = Date.now();
    upload = new window.tus.Upload(f, {
      endpoint: "/api/v1/uploads",
      headers: authHeaders(),
      chunkSize: 8 * 1024 * 1024,
      retryDelays: [0, 1000, 3000, 5000, 10000],
      removeFingerprintOnSuccess: true,
      metadata: { filename: f.name, title: title.value.trim() || f.name.replace(/\.[^.]+$/, "") },
      onProgress(sent, total) {
        bar.value = (100 * sent) / total;
        const rate = sent / Math.max((Date.now() - began) / 1000, 0.001);
        line.textContent = `${fmt.bytes(sent)} of ${fmt.bytes(total)} (${Math.floor(bar.value)}%) · ${fmt.bytes(rate)}/s`;
      },
      onSuccess() {
        line.textContent = `${f.name} uploaded (${fmt.bytes(f.size)}): it is being transcoded.`;
        toast(`${f.name} uploaded`);
        start.disabled = false;
        pause.hidden = true;
        form.reset();
        upload = null;
      },
      onError(e) {
        const body = e.originalResponse?.getBody?.();
        let message = e.message;
        try { message = JSON.parse(body).message || message; } catch { /* not JSON */ }
        err.textContent = `The upload failed: ${message}`;
        err.hidden = false;
        start.disabled = false;
        pause.hidden = true;
      },
    });
    upload.findPreviousUploads().then((previous) => {
      if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
      upload.start();
    });
  });
  return form;
}

function jobs(a) {
  if (!a.jobs.length) return h("span", { class: "muted" }, "—");
  return h("div", { class: "chips" }, a.jobs.map((j) => {
    const kind = { done: "ok", leased: "accent", pending: "", dead: "danger" }[j.state];
    const label = `${j.rendition}: ${j.state}${j.state === "leased" && j.segments_total ? ` ${Math.round((100 * j.segments_done) / j.segments_total)}%` : ""}`;
    const chip = h("span", { class: `chip ${kind}`, title: j.last_error || `${j.attempts} attempt(s)` }, label);
    if (j.state !== "dead") return chip;
    return h("span", { class: "chip-group" }, chip, h("button", {
      class: "small",
      onclick: () => act(() => api("POST", `/api/v1/assets/${a.id}/jobs/${encodeURIComponent(j.rendition)}/retry`), `${a.title}: ${j.rendition} tried again`),
    }, "Retry"));
  }));
}

function actions(a, root) {
  return h("div", { class: "row-actions" },
    h("button", {
      disabled: a.renditions.length === 0,
      onclick: () => {
        if (stopPlayer) stopPlayer();
        root.querySelector("#vod-player-card").hidden = false;
        root.querySelector("#vod-player-title").textContent = a.title;
        stopPlayer = play(root.querySelector("#vod-player"), `/vod/${encodeURIComponent(a.id)}/index.m3u8`, { content: `vod/${a.id}` });
      },
    }, "Play"),
    h("button", { class: "danger", onclick: () => {
      if (!confirm(`Delete ${a.title}, its source and its renditions?`)) return;
      act(() => api("DELETE", `/api/v1/assets/${a.id}`), `${a.title} deleted`);
    } }, "Delete"));
}

function columns(root) {
  return [
    ["Title", (a) => h("div", {}, h("strong", {}, a.title), h("div", { class: "muted small" }, a.id))],
    ["Source", (a) => h("div", { class: "small" }, `${a.source.container} · ${fmt.bytes(a.source.size)} · ${Math.round(a.source.duration_ms / 1000)} s`,
      h("div", { class: "muted" }, [a.source.video, a.source.audio].filter(Boolean).join(" · ")))],
    ["State", (a) => pill(a.state, STATE_KIND[a.state])],
    ["Progress", (a) => h("div", {}, h("div", { class: "meter" }, h("span", { style: `width:${Math.round(a.progress * 100)}%` })),
      h("div", { class: "muted small" }, fmt.pct(a.progress)))],
    ["Jobs", jobs],
    ["Added", (a) => fmt.ago(a.created_ms)],
    ["", (a) => actions(a, root), "actions"],
  ];
}

export const vod = {
  title: "Video on demand",
  sections: ["assets"],
  enter(root) {
    fill(root,
      h("header", { class: "page-head" }, h("h1", {}, "Video on demand"),
        h("p", { class: "muted" }, "Uploads resume where they stopped; each film becomes a ladder made by the nodes' VOD workers.")),
      h("section", { class: "card" }, h("h2", {}, "Upload a film"), uploadCard()),
      h("section", { class: "card", id: "vod-player-card", hidden: true }, h("h2", { id: "vod-player-title" }), h("div", { id: "vod-player", class: "player" })),
      h("section", { class: "card" }, h("h2", {}, "Library"), h("div", { id: "vod-list" })));
  },
  update(root, s) {
    const list = root.querySelector("#vod-list");
    if (!s.assets) return fill(list, h("div", { class: "empty" }, "Waiting for the catalog…"));
    if (s.assets.error) return fill(list, h("p", { class: "error" }, s.assets.message));
    const rows = s.assets.data.slice().sort((a, b) => b.created_ms - a.created_ms).map((a) => ({ ...a, key: a.id }));
    fill(list, table(columns(root), rows, "The library is empty. Upload a film above."));
  },
  leave() {
    if (stopPlayer) stopPlayer();
    stopPlayer = null;
  },
};
