// A preview player: hls.js (from npm, served by the node) where MediaSource exists, the
// browser's own HLS otherwise. Fatal errors are shown under the picture.

import { h, api } from "../app.js";

/** A player for `url` in `box`; answers a function that stops it. */
export function play(box, url, { content } = {}) {
  const video = h("video", { controls: true, muted: true, autoplay: true, playsinline: true, class: "preview" });
  const status = h("p", { class: "muted small player-status" }, "Loading…");
  box.replaceChildren(video, status);
  let hls = null;
  let triedToken = false;
  const start = (src) => {
    if (hls) hls.destroy();
    if (window.Hls && window.Hls.isSupported()) {
      hls = new window.Hls({ lowLatencyMode: true, backBufferLength: 30 });
      hls.on(window.Hls.Events.ERROR, async (_e, data) => {
        if (!data.fatal) return;
        const code = data.response?.code;
        // Signed content: the console issues itself a short playback token and tries again.
        if ((code === 401 || code === 403) && content && !triedToken) {
          triedToken = true;
          const expires = new Date(Date.now() + 3600e3).toISOString();
          const t = await api("POST", "/api/v1/tokens", { subject: "console-preview", content, expires })
            .catch(() => null);
          if (t?.token) { start(`${url}?token=${encodeURIComponent(t.token)}`); return; }
        }
        status.textContent = `Playback stopped: ${data.details}${code ? ` (HTTP ${code})` : ""}`;
        status.className = "error small player-status";
      });
      hls.on(window.Hls.Events.MANIFEST_PARSED, (_e, data) => {
        status.textContent = `${data.levels.length} rendition${data.levels.length === 1 ? "" : "s"}`;
      });
      hls.on(window.Hls.Events.LEVEL_SWITCHED, (_e, data) => {
        const l = hls.levels[data.level];
        if (l) status.textContent = `Playing ${l.height ? `${l.height}p` : l.name ?? ""} at ${Math.round(l.bitrate / 1000)} kb/s`;
      });
      hls.loadSource(src);
      hls.attachMedia(video);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = src;
      status.textContent = "Playing with the browser's own HLS";
    } else {
      status.textContent = "This browser cannot play HLS.";
      status.className = "error small player-status";
    }
  };
  start(url);
  return () => { if (hls) hls.destroy(); video.removeAttribute("src"); video.load(); };
}
