// Plays an HLS URL with hls.js (or, with --player shaka, Shaka Player) in Debian's Chromium
// and reports what a viewer would see.
//
//   node player.mjs --url URL [--seconds 30] [--until-ended] [--record FILE] [--out FILE]
//                   [--screenshot FILE] [--config JSON] [--cycle-levels SECONDS] [--switch-by currentLevel|nextLevel]
//                   [--player hls.js|shaka]
//
// --config is the player's own configuration (hls.js's, or Shaka's `configure` object);
// --cycle-levels is hls.js's alone. Prints a JSON summary. Exits non-zero if playback never
// started or the player hit a fatal error; the caller asserts the rest from the summary.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
  return acc;
}, []));
const seconds = Number(args.seconds || 30);

// The page and the player come from their own origin, so playback is cross-origin as in production.
const shaka = args.player === 'shaka';
if (args.player && !['hls.js', 'shaka'].includes(args.player)) throw new Error(`unknown --player ${args.player}`);
const files = {
  '/': [path.join(here, shaka ? 'player-shaka.html' : 'player.html'), 'text/html'],
  '/player-common.js': [path.join(here, 'player-common.js'), 'application/javascript'],
  '/hls.min.js': [path.join(here, 'node_modules/hls.js/dist/hls.min.js'), 'application/javascript'],
  '/shaka-player.compiled.js': [path.join(here, 'node_modules/shaka-player/dist/shaka-player.compiled.js'), 'application/javascript'],
};
const server = http.createServer((req, res) => {
  const f = files[req.url.split('?')[0]];
  if (!f) { res.writeHead(404); return res.end(); }
  res.writeHead(200, { 'content-type': f[1] });
  fs.createReadStream(f[0]).pipe(res);
});
await new Promise(r => server.listen(0, '127.0.0.1', r));
const pageUrl = `http://127.0.0.1:${server.address().port}/`;

// playwright gives every launch a fresh, empty profile directory of its own.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required'],
});
const page = await browser.newPage({ viewport: { width: 660, height: 400 } });
const record = args.record ? fs.createWriteStream(args.record, { flags: 'a' }) : null;
const media = [];
const asked = new Map();
page.on('request', (r) => asked.set(r, Date.now()));
page.on('response', async (r) => {
  if (!r.url().includes('.m3u8')) {
    media.push({ asked: asked.get(r.request()) ?? null, at: Date.now(), url: r.url().split('/').pop(), status: r.status() });
  }
  asked.delete(r.request());
  if (!record || !r.url().includes('.m3u8')) return;
  try {
    const body = await r.text();
    record.write(JSON.stringify({ at: Date.now(), url: r.url(), status: r.status(), body }) + '\n');
  } catch (_) { /* the page went away */ }
});
const consoleErrors = [];
page.on('pageerror', e => consoleErrors.push(String(e)));
// --console FILE keeps the page's console (with --config '{"debug":true}', hls.js's own log).
const consoleLog = args.console ? fs.createWriteStream(args.console) : null;
if (consoleLog) page.on('console', m => consoleLog.write(`${Date.now()} ${m.text()}\n`));

await page.goto(pageUrl);
const config = args.config ? JSON.parse(args.config) : {};
if (args['cycle-levels']) config.cycleLevels = { every: Number(args['cycle-levels']), how: args['switch-by'] || 'currentLevel' };
await page.evaluate(([url, config]) => window.startPlayer(url, config), [args.url, config]);

const deadline = Date.now() + seconds * 1000;
let s;
while (Date.now() < deadline) {
  await page.waitForTimeout(500);
  s = await page.evaluate(() => window.tessera);
  if (s.fatal.length) break;
  if (args['until-ended'] && s.ended) break;
}
if (args.screenshot) await page.screenshot({ path: args.screenshot });
s = await page.evaluate(() => window.tessera);
await browser.close();
server.close();
if (record) record.end();

const pct = (xs, p) => { if (!xs.length) return null; const v = [...xs].sort((a, b) => a - b); return v[Math.min(v.length - 1, Math.floor(p / 100 * v.length))]; };
const times = s.samples.map(x => x.currentTime);
const summary = {
  url: args.url,
  started: s.started,
  startupMs: s.playingAt ? s.playingAt - (s.samples[0]?.at ?? s.playingAt) : null,
  playedSeconds: times.length ? Math.max(...times) - Math.min(...times.filter(t => t > 0), Infinity) : 0,
  stalls: s.waiting,
  stallsAt: s.stallsAt || [],
  fatal: s.fatal,
  nonFatalErrors: s.errors.length,
  errorKinds: [...new Set(s.errors.map(e => e.details))],
  ended: s.ended,
  discontinuities: s.discontinuities,
  glassToGlassMs: { p50: pct(s.g2g, 50), p90: pct(s.g2g, 90), min: pct(s.g2g, 0), samples: s.g2g.length },
  hlsLatencyMs: { p50: pct(s.hlsLatency, 50), p90: pct(s.hlsLatency, 90), samples: s.hlsLatency.length },
  jumped: s.jumped || null,
  levels: s.levels,
  forcedSwitches: s.forced || 0,
  switches: s.switches,
  // Presented frames by picture height: which renditions were actually shown.
  framesByHeight: s.heights,
  endOfStream: !!s.eos,
  seeks: s.seeks || 0,
  seekedAt: s.seekedAt ?? null,
  last: s.samples[s.samples.length - 1] || null,
  // Playback reached the last frame of an ended stream. hls.js does not always fire the
  // media 'ended' event when ENDLIST arrives after the last part was already buffered live
  // (it never calls endOfStream: a race in its fragment tracker, hls.js issue 7754), so the
  // player sits on the last frame; this is reported beside the 'ended' event.
  reachedEnd: !!s.samples.length && (() => { const l = s.samples[s.samples.length - 1]; return Math.abs(l.duration - l.currentTime) < 0.3; })(),
  lastMedia: media.slice(-6),
  // Every segment and part response: when it was asked for and when it came, to tell a late
  // part from a late request when a stall needs explaining.
  mediaLog: media,
  pageErrors: consoleErrors,
};
const out = JSON.stringify(summary, null, 2);
if (args.out) fs.writeFileSync(args.out, out);
console.log(out);
process.exit(s.started && !s.fatal.length ? 0 : 1);
