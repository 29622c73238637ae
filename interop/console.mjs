// The console driven as an operator would, in Debian's Chromium, against a three-node
// cluster that scripts/interop.sh started (a stream `console` published to node 1 with its
// ladder made on node 2 or 3, a Prometheus scraping the three): sign in, see the cluster,
// watch the stream, drain the node that makes its ladder and watch the ladder move, upload a
// film and play it, schedule its premiere and watch it open, encrypt the stream and revoke a
// viewer whose player then stops, kill a node and see the alert.
// Each step writes a screenshot to --shots; the first failure ends the run (exit 1).
//   node interop/console.mjs --base http://127.0.0.1:PORT --token ADMIN --film FILE \
//        --kill-pid PID --kill-node N --shots DIR

import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : true]);
  return acc;
}, []));
const base = args.base;
const shots = args.shots;
fs.mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--autoplay-policy=no-user-gesture-required'],
});
const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
const problems = [];
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy/.test(m.text())) problems.push(m.text()); });

let n = 0;
async function shot(name) {
  n += 1;
  await page.screenshot({ path: path.join(shots, `${String(n).padStart(2, '0')}-${name}.png`), fullPage: true });
}
function step(what) { console.log(`console: ${what}`); }
async function go(hash) {
  await page.goto(`${base}/console/#/${hash}`);
  await page.waitForSelector('.feed[data-state="live"]', { timeout: 15000 });
}
/** The admin API from inside the page, with the console's own token. */
async function apiGet(p) {
  return page.evaluate(async (p) => {
    const r = await fetch(p, { headers: { Authorization: `Bearer ${sessionStorage.getItem('tessera.admin-token')}` } });
    return r.json();
  }, p);
}
async function videoPlays(selector, seconds) {
  await page.waitForFunction(([s, t]) => {
    const v = document.querySelector(s);
    return v && v.currentTime > t && !v.paused;
  }, [selector, seconds], { timeout: 60000 });
}

const started = Date.now();
try {
  // The front door: a node's address leads to the sign-in; a wrong token is refused there.
  step('sign in');
  await page.goto(`${base}/`);
  await page.waitForSelector('#login-form');
  if (!page.url().endsWith('/console/')) throw new Error(`/ led to ${page.url()}`);
  await page.fill('#login-token', 'not-a-token');
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#login-error:not([hidden])');
  await shot('sign-in-refused');
  await page.fill('#login-token', args.token);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('.feed[data-state="live"]', { timeout: 15000 });

  // The cluster: three nodes, one leader.
  step('cluster');
  await page.waitForFunction(() => document.querySelectorAll('#cluster-nodes tbody tr').length === 3, null, { timeout: 20000 });
  const roles = await page.$$eval('#cluster-nodes tbody tr', (rows) => rows.map((r) => r.children[1].textContent));
  if (roles.filter((r) => r === 'leader').length !== 1) throw new Error(`roles: ${roles}`);
  await shot('cluster');

  // The stream: listed with its ladder's node; its preview plays; its renditions show.
  step('stream');
  await go('streams');
  await page.waitForSelector('#streams-list tr[data-key="console"]', { timeout: 20000 });
  await shot('streams');
  await go('streams/console');
  await videoPlays('#stream-player video', 3);
  await page.waitForFunction(() => document.querySelectorAll('#stream-renditions tbody tr').length >= 3, null, { timeout: 20000 });
  await page.waitForSelector('#stream-tree tbody tr');
  await shot('stream-preview');

  // Drain the node making the ladder: the ladder moves to the other one.
  step('drain');
  const before = (await apiGet('/api/v1/streams/console')).placement.node;
  await go('cluster');
  await page.waitForSelector(`#cluster-nodes tr[data-key="${before}"] button`);
  await page.click(`#cluster-nodes tr[data-key="${before}"] button:text-is("Drain")`);
  await page.waitForSelector(`#cluster-nodes tr[data-key="${before}"] .pill:text-is("draining")`, { timeout: 15000 });
  await shot('node-draining');
  await go('streams');
  await page.waitForFunction((old) => {
    const cell = document.querySelector('#streams-list tr[data-key="console"] td:nth-child(4)');
    const m = cell && cell.textContent.match(/^node (\d+)/);
    return m && Number(m[1]) !== old;
  }, before, { timeout: 60000 });
  const after = (await apiGet('/api/v1/streams/console')).placement.node;
  step(`the ladder moved from node ${before} to node ${after}`);
  await shot('ladder-moved');
  await go('cluster');
  await page.click(`#cluster-nodes tr[data-key="${before}"] button:text-is("Undrain")`);
  await page.waitForSelector(`#cluster-nodes tr[data-key="${before}"] .pill:text-is("serving")`, { timeout: 15000 });

  // Upload a film from the browser (tus), watch it become ready, play it.
  step('upload');
  await go('vod');
  await page.setInputFiles('input[type=file]', args.film);
  await page.fill('input[name=title]', 'Console film');
  await page.click('#page form button[type=submit]');
  await page.waitForFunction(() => /uploaded/.test(document.querySelector('#page form p.muted')?.textContent || ''), null, { timeout: 60000 });
  await shot('uploaded');
  const row = '#vod-list tbody tr';
  await page.waitForFunction((r) => [...document.querySelectorAll(r)].some((tr) => /ready/.test(tr.children[2].textContent)), row, { timeout: 240000 });
  const asset = await page.$eval(row, (tr) => tr.dataset.key);
  await page.click(`${row}[data-key="${asset}"] button:text-is("Play")`);
  await videoPlays('#vod-player video', 2);
  await shot('vod-playing');

  // A premiere of the film 25 s ahead: gated until the cluster opens it, then served.
  step('premiere');
  await go('releases');
  const at = new Date(Date.now() + 25000);
  const local = new Date(at - at.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
  await page.fill('input[name=content]', `vod/${asset}`);
  await page.fill('input[name=at]', local);
  await page.click('#page form button[type=submit]');
  await page.waitForSelector('#releases-list .pill:text-is("scheduled")', { timeout: 15000 });
  // A ready film is ready on every node: each says so before the release opens.
  await page.waitForSelector('#releases-list td:has-text("3 of 3 nodes ready")', { timeout: 15000 });
  const gated = await page.evaluate((a) => fetch(`/vod/${a}/index.m3u8`, { cache: 'no-store' }).then((r) => r.status), asset);
  if (gated !== 404) throw new Error(`a scheduled film answered ${gated}, not 404`);
  await shot('premiere-scheduled');
  await page.waitForSelector('#releases-list .pill:text-is("open")', { timeout: 60000 });
  const open = await page.evaluate((a) => fetch(`/vod/${a}/index.m3u8`, { cache: 'no-store' }).then((r) => r.status), asset);
  if (open !== 200) throw new Error(`the opened film answered ${open}`);
  await shot('premiere-open');

  // Encrypt the stream, issue a viewer a playback token, play it in another tab; revoke the
  // viewer: that player stops at its next key request (keys rotate every 4 s).
  step('revoke');
  await go('access');
  await page.fill('#protect-form input[name=content]', 'live/console');
  await page.selectOption('#protect-form select[name=encryption]', 'aes-128');
  await page.click('#protect-form button[type=submit]');
  await page.waitForFunction(() => fetch('/live/console/src/index.m3u8', { cache: 'no-store' })
    .then((r) => r.text()).then((t) => t.includes('#EXT-X-KEY')), null, { timeout: 20000, polling: 500 });
  await page.fill('#issue-form input[name=subject]', 'viewer-7');
  await page.fill('#issue-form input[name=content]', 'live/console');
  await page.click('#issue-form button[type=submit]');
  await page.waitForSelector('#issue-form .issued:not([hidden]) input');
  const playback = await page.$eval('#issue-form .issued input', (i) => i.value);
  await shot('token-issued');
  const viewer = await browser.newPage();
  await viewer.goto(`${base}/streams`);
  await viewer.addScriptTag({ url: `${base}/console/vendor/hls.min.js` });
  await viewer.evaluate((url) => {
    const video = document.createElement('video');
    video.muted = true;
    document.body.append(video);
    window.stopped = null;
    const hls = new window.Hls({ lowLatencyMode: true });
    hls.on(window.Hls.Events.ERROR, (_e, d) => { if (d.fatal) window.stopped = `${d.details} (HTTP ${d.response?.code})`; });
    hls.loadSource(url);
    hls.attachMedia(video);
    video.play();
    window.video = video;
  }, playback);
  await viewer.waitForFunction(() => window.video.currentTime > 3 && !window.stopped, null, { timeout: 30000 });
  await page.fill('#revoke-form input[name=subject]', 'viewer-7');
  await page.click('#revoke-form button[type=submit]');
  const revokedAt = Date.now();
  await page.waitForSelector('#access-revoked tr[data-key="viewer-7"]', { timeout: 15000 });
  await shot('viewer-revoked');
  await viewer.waitForFunction(() => window.stopped, null, { timeout: 30000 });
  const why = await viewer.evaluate(() => window.stopped);
  if (!/key/i.test(why)) throw new Error(`the revoked player stopped for another reason: ${why}`);
  step(`the revoked viewer's player stopped ${((Date.now() - revokedAt) / 1000).toFixed(1)} s after the revocation: ${why}`);
  await viewer.close();

  // Kill a node: the alert fires on the alerts page (the rule waits 30 s).
  step('alert');
  await go('alerts');
  await page.waitForSelector('#alerts-list .empty, #alerts-list table', { timeout: 15000 });
  process.kill(Number(args['kill-pid']), 'SIGKILL');
  await page.waitForFunction(() => [...document.querySelectorAll('#alerts-list tbody tr')]
    .some((tr) => /TesseraNodeDown/.test(tr.textContent) && /firing/.test(tr.textContent)), null, { timeout: 90000 });
  await page.waitForFunction(() => !document.getElementById('alert-count').hidden);
  await shot('alert-firing');

  if (problems.length) throw new Error(problems.join('\n'));
  step(`every flow passed in ${Math.round((Date.now() - started) / 1000)} s; screenshots in ${shots}`);
  await browser.close();
} catch (e) {
  console.log(`console: FAILED: ${e.message}`);
  for (const p of problems) console.log(`console: ${p}`);
  await shot('failure').catch(() => {});
  await browser.close();
  process.exit(1);
}
