// What the player pages (player.html: hls.js; player-shaka.html: Shaka Player) share: the
// state interop/player.mjs reads (window.tessera), glass-to-glass read from the picture, and
// what the video element reports (start, seeks, stalls, the end).
// Glass-to-glass latency: the publisher burns its wall clock into the picture as 16 square
// blocks of (height / 15) pixels at the top left, block i white when bit i of (epoch ms mod
// 65536) is set. Each presented frame is drawn to a canvas, the code read back, and compared
// with the wall clock at the moment the frame is presented. The blocks scale with the
// picture, so every rendition of a ladder carries the code.
const BLOCKS = 16, SIZE = 24;
const state = {
  started: false, playingAt: null, waiting: 0, fatal: [], errors: [], g2g: [], hlsLatency: [],
  discontinuities: 0, ended: false, samples: [], frames: 0,
  levels: [], switches: [], heights: {},
};
window.tessera = state;
const video = document.getElementById('video');
const canvas = document.createElement('canvas');
canvas.width = BLOCKS * SIZE; canvas.height = SIZE;
const ctx = canvas.getContext('2d', { willReadFrequently: true });

function readClock() {
  // The strip in the picture's own pixels, drawn onto the canvas's fixed 24 px blocks.
  const block = video.videoHeight / 15;
  ctx.drawImage(video, 0, 0, BLOCKS * block, block, 0, 0, BLOCKS * SIZE, SIZE);
  const px = ctx.getImageData(0, 0, BLOCKS * SIZE, SIZE).data;
  let code = 0;
  for (let i = 0; i < BLOCKS; i++) {
    const x = i * SIZE + SIZE / 2, y = SIZE / 2, o = (y * BLOCKS * SIZE + x) * 4;
    const luma = 0.299 * px[o] + 0.587 * px[o + 1] + 0.114 * px[o + 2];
    if (luma > 128) code |= 1 << i;
  }
  return code;
}

function onFrame(now, meta) {
  state.frames++;
  const h = meta.height || video.videoHeight;
  state.heights[h] = (state.heights[h] || 0) + 1;
  const shownAt = performance.timeOrigin + (meta.expectedDisplayTime || now);
  const code = readClock();
  const latency = ((Math.round(shownAt) - code) % 65536 + 65536) % 65536;
  if (state.frames % 5 === 0 && latency < 30000) state.g2g.push(latency);
  video.requestVideoFrameCallback(onFrame);
}

// The video element's events: when playback starts (and, with `seekTo`, the viewer's seek
// one second later), seeks, stalls (with `levelOf()`, the rendition playing) and the end.
function trackVideo(seekTo, levelOf) {
  video.addEventListener('playing', () => {
    if (!state.playingAt) {
      state.playingAt = Date.now();
      // A viewer seeking (VOD): one second into playback, to `seekTo` seconds.
      if (seekTo != null) setTimeout(() => { state.viewerSeek = true; video.currentTime = seekTo; }, 1000);
    }
    state.started = true;
  });
  // Where the viewer's seek landed (players seek too: to the buffered start, and when a
  // level switch flushes the buffer).
  video.addEventListener('seeked', () => {
    state.seeks = (state.seeks || 0) + 1;
    if (state.viewerSeek) { state.seekedAt = video.currentTime; state.viewerSeek = false; }
  });
  // A seek shows 'waiting' too; only waiting outside a seek is a stall.
  video.addEventListener('seeking', () => { state.seeking = true; });
  video.addEventListener('seeked', () => { state.seeking = false; });
  video.addEventListener('waiting', () => {
    if (!state.started || state.seeking) return;
    state.waiting++;
    const b = video.buffered;
    (state.stallsAt = state.stallsAt || []).push({ at: Date.now(), t: video.currentTime, level: levelOf(),
      bufferedEnd: b.length ? b.end(b.length - 1) : null, ranges: b.length });
  });
  video.addEventListener('ended', () => { state.ended = true; });
  video.requestVideoFrameCallback(onFrame);
}

// Every 250 ms: a sample of where playback stands, with the player's own idea of its latency
// (`latency()`, seconds behind the live edge), and `each()` for what the page adds.
function sampleEvery250ms(latency, each) {
  setInterval(() => {
    const b = video.buffered;
    const l = latency();
    const s = { at: Date.now(), currentTime: video.currentTime, latency: l, waiting: state.waiting, duration: video.duration, bufferedEnd: b.length ? b.end(b.length - 1) : null, paused: video.paused };
    state.samples.push(s);
    if (each) each();
    if (state.started && Number.isFinite(l)) state.hlsLatency.push(Math.round(l * 1000));
    const g = state.g2g.length ? state.g2g[state.g2g.length - 1] : '-';
    document.getElementById('stats').textContent = `t=${video.currentTime.toFixed(1)} latency=${(l || 0).toFixed(2)} g2g=${g}ms stalls=${state.waiting}`;
  }, 250);
}
