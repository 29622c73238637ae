"""Writes docs/benchmarks.md from the results benches/run.sh left in target/bench.

    report.py OUT [PREVIOUS_PAGE]

A section whose results are not in OUT (a run of one section alone, on a machine without the
last full run's results) is taken as it is from PREVIOUS_PAGE, the page being replaced."""
import json
import os
import platform
import re
import subprocess
import sys
from datetime import datetime, timezone

OUT = sys.argv[1]


def load(name):
    try:
        with open(os.path.join(OUT, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def cmd(*args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=20).stdout.strip()
    except OSError:
        return "not found"


def first_line(s):
    return s.splitlines()[0] if s else "not found"


def buckets_of(metrics_file, name, label=None):
    """A Prometheus histogram's cumulative buckets, (le, count), from a scrape in OUT."""
    try:
        text = open(os.path.join(OUT, metrics_file)).read()
    except OSError:
        return None
    buckets = []
    for line in text.splitlines():
        if not line.startswith(name + "_bucket"):
            continue
        if label and label not in line:
            continue
        le = re.search(r'le="([^"]+)"', line).group(1)
        buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    return buckets


def histogram(metrics_file, name, label=None, since=None):
    """Quantiles (p50, p99) and count from a Prometheus histogram, by bucket interpolation;
    with `since`, an earlier scrape of the same node, of what was recorded in between."""
    buckets = buckets_of(metrics_file, name, label)
    if buckets and since:
        before = dict(buckets_of(since, name, label) or [])
        buckets = [(le, c - before.get(le, 0.0)) for le, c in buckets]
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]

    def q(p):
        target = p * total
        prev_le, prev_c = 0.0, 0.0
        for le, c in buckets:
            if c >= target:
                if le == float("inf"):
                    return prev_le
                frac = (target - prev_c) / (c - prev_c) if c > prev_c else 1.0
                return prev_le + (le - prev_le) * frac
            prev_le, prev_c = le, c
        return prev_le

    return {"p50_ms": q(0.5) * 1000, "p99_ms": q(0.99) * 1000, "count": int(total)}


def wrk(name):
    try:
        text = open(os.path.join(OUT, f"wrk-{name}.txt")).read()
    except OSError:
        return None
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p99 = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", text)
    if not rps:
        return None
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    # Answers other than 2xx/3xx (a 404 is cheap to serve, and would flatter the figure).
    other = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    return {"rps": float(rps.group(1)), "p99_ms": float(p99.group(1)) * unit[p99.group(2)] if p99 else None,
            "non_2xx": int(other.group(1)) if other else 0}


def ratio(a, b):
    if a is None or b in (None, 0):
        return "n/a"
    return f"{a / b:.2f}"


def fmt(x, nd=0):
    return "n/a" if x is None else f"{x:.{nd}f}"


cpu_model = ""
try:
    cpu_model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
except (OSError, StopIteration):
    pass
mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30

LINES = []


def p(line=""):
    LINES.append(str(line))


# The file whose presence in OUT says a section was measured in this run.
EVIDENCE = {
    "1": "play-tessera-200-hls.js.json", "2": "cost-tessera-1.json", "3": "wrk-tessera-part.txt", "4": "ladder.json",
    "5": "catalog.json", "6": "relay.json", "7": "release.json", "8": "license.json", "9": "vod.json",
    "10": "transcode.json", "12": "placement.json", "13": "fuzz.json",
}


def sections(lines):
    """The page cut at its `## ` headings: (number or heading, lines), the head first."""
    out, key, cur = [], None, []
    for line in lines:
        if line.startswith("## "):
            out.append((key, cur))
            head = line[3:].split(" ", 1)[0]
            key, cur = (head.rstrip(".") if head.rstrip(".").isdigit() else line), []
        cur.append(line)
    out.append((key, cur))
    return out


def merged(new_lines, previous_path):
    """The new page, with each section this run did not measure taken from the previous page,
    and any numbered section only the previous page has kept in its place. The head says
    which sections this run measured."""
    if not previous_path or not os.path.exists(previous_path):
        return new_lines
    old = sections(open(previous_path).read().splitlines())
    new = sections(new_lines)
    old_by_key = dict(old)
    present = {key for key, _ in new}
    out, measured, kept = [], [], False
    for key, lines in new:
        # Numbered sections only the previous page has, that come before this one.
        if key and key.isdigit():
            for okey, olines in old:
                if okey and okey.isdigit() and okey not in present and int(okey) < int(key):
                    out.extend(olines)
                    present.add(okey)
                    kept = True
        evidence = EVIDENCE.get(key)
        if evidence and not os.path.exists(os.path.join(OUT, evidence)) and key in old_by_key:
            lines, kept = old_by_key[key], True
        elif evidence:
            measured.append(key)
        out.extend(lines)
    if kept:
        # The run's date, machine and versions: this run's for its sections, the previous
        # page's for the others.
        def earlier(prefix):
            line = next((l for l in old_by_key.get(None, []) if l.startswith(prefix)), None)
            return line and line[len(prefix):].split("; the other sections: ")[-1]

        def head(line):
            prefix = next((x for x in ("- Run: ", "- Machine: ", "- Tessera: ", "- Peers: ", "- Player: ")
                           if line.startswith(x)), None)
            before = prefix and earlier(prefix)
            if not before or before == line[len(prefix):]:
                return line
            return f"{line} (sections {', '.join(measured) or 'none'}); the other sections: {before}"

        out = [head(l) for l in out[:len(new[0][1])]] + out[len(new[0][1]):]
    return out


p("# Benchmarks")
p()
p("Produced by `benches/run.sh`; the figures of each section come from one run, with the peers")
p("measured in the same invocation on the same machine. Loopback only. These machines are")
p("shared and noisy: read the ratios, not the absolute values.")
p()
started = os.path.join(OUT, "run-started")
p(f"- Run: {open(started).read().strip() if os.path.exists(started) else datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
p(f"- Machine: {os.cpu_count()} cores ({cpu_model}), {mem_gb:.0f} GiB, {platform.system()} {platform.release()}")
p(f"- Tessera: release build, {first_line(cmd('rustc', '--version'))}")
p(f"- Peers: {first_line(cmd('ffmpeg', '-version'))}; {cmd('nginx', '-v') or first_line(subprocess.run(['nginx', '-v'], capture_output=True, text=True).stderr)} with libnginx-mod-rtmp")
p(f"- Player: hls.js {json.load(open('interop/node_modules/hls.js/package.json'))['version']} in {first_line(cmd('chromium', '--version'))} (headless, playwright-core)")
p()

p("## 1. Latency")
p()
if os.path.exists(os.path.join(OUT, "latency-run")):
    p(f"Run: {open(os.path.join(OUT, 'latency-run')).read().strip()}.")
    p()
p("The feed is `interop/clock-feed.sh`: a 640x360 25 fps test picture with the sender's wall clock")
p("burned in as a barcode, x264 `zerolatency`, 1 s GOP, AAC, sent over SRT with a 120 ms latency.")
p("Glass-to-glass is read by the player page from every fifth presented frame")
p("(`requestVideoFrameCallback`, canvas read-back of the barcode) against the wall clock at")
p("presentation: capture, encode, transport, packaging, delivery, buffering, decode and display.")
p("hls.js runs with `lowLatencyMode`, catch-up rate 1.5 and one jump to its live-sync position once")
p("buffered, on every server; Shaka Player (the second web player) with its `lowLatencyMode`. The")
p("player's latency is its own figure: how far its playhead is behind the live edge it knows of.")
p()
p("| server | player | how the feed gets there | segments | glass-to-glass p50 | p90 | player latency p50 | stalls |")
p("|---|---|---|---|---|---|---|---|")
rows = [("Tessera", "hls.js", "SRT", "LL-HLS, 2 s segments, 200 ms parts", "tessera-200-hls.js"),
        ("Tessera", "Shaka", "SRT", "LL-HLS, 2 s segments, 200 ms parts", "tessera-200-shaka"),
        ("Tessera", "hls.js", "SRT", "LL-HLS, 2 s segments, 100 ms parts asked (120 ms at 25 fps)", "tessera-100-hls.js"),
        ("Tessera", "Shaka", "SRT", "LL-HLS, 2 s segments, 100 ms parts asked (120 ms at 25 fps)", "tessera-100-shaka"),
        ("nginx-rtmp", "hls.js", "RTMP", "HLS (TS), 1 s fragments", "nginx"),
        ("ffmpeg HLS muxer", "hls.js", "in-process", "HLS (fMP4), 1 s segments", "ffmpeg")]
played = {}
for label, player, via, seg, key in rows:
    s = load(f"play-{key}.json")
    if not s or not s["glassToGlassMs"]["p50"]:
        p(f"| {label} | {player} | {via} | {seg} | failed | | | |")
        continue
    played[key] = s
    p(f"| {label} | {player} | {via} | {seg} | {fmt(s['glassToGlassMs']['p50'])} ms | {fmt(s['glassToGlassMs']['p90'])} ms | "
      f"{fmt(s['hlsLatencyMs']['p50'])} ms | {s['stalls']} |")
p()
g2g = {k: v["glassToGlassMs"]["p50"] for k, v in played.items()}
p(f"- Tessera / nginx-rtmp glass-to-glass (hls.js, default parts): **{ratio(g2g.get('tessera-200-hls.js'), g2g.get('nginx'))}** (goal: at most 0.33)")
p(f"- Tessera / ffmpeg HLS glass-to-glass (hls.js, default parts): **{ratio(g2g.get('tessera-200-hls.js'), g2g.get('ffmpeg'))}** (goal: at most 0.33)")
for key, what in (("tessera-100-hls.js", "hls.js"), ("tessera-100-shaka", "Shaka Player")):
    t = g2g.get(key)
    p(f"- Tessera glass-to-glass with 100 ms parts in {what} against the 1.0 s goal: {fmt(t)} ms"
      + ("" if t is None else (" (met)" if t <= 1000 else f" (missed by {t - 1000:.0f} ms)")))
p()


def hold_back(playlist):
    try:
        text = open(os.path.join(OUT, playlist)).read()
    except OSError:
        return None
    m = re.search(r"PART-HOLD-BACK=([\d.]+)", text)
    return float(m.group(1)) * 1000 if m else None


avail = histogram("metrics-latency-100.txt", "tessera_part_available_seconds")
resp = histogram("metrics-latency-100.txt", "tessera_part_publish_to_response_seconds", 'what="playlist"')
respp = histogram("metrics-latency-100.txt", "tessera_part_publish_to_response_seconds", 'what="part"')
hb = hold_back("latency-100.m3u8")
h = played.get("tessera-100-hls.js")
if h and hb:
    total, behind = h["glassToGlassMs"]["p50"], h["hlsLatencyMs"]["p50"]
    p("The budget of the 100 ms run in hls.js, stage by stage (p50s; the node's own intervals from its")
    p("histograms):")
    p()
    p("| stage | time |")
    p("|---|---|")
    p(f"| capture to the part at the live edge: sender (capture, x264, mux), SRT's 120 ms, the part filling up, Tessera | {total - behind:.0f} ms |")
    if avail:
        p(f"| of which Tessera: a part's last frame in -> part available | {avail['p50_ms']:.0f} ms |")
    if resp:
        p(f"| of which Tessera: part available -> blocked playlist reload answered | {resp['p50_ms']:.1f} ms |")
    if respp:
        p(f"| of which Tessera: part available -> held part request answered | {respp['p50_ms']:.1f} ms |")
    p(f"| the player behind the live edge: `PART-HOLD-BACK` | {hb:.0f} ms |")
    p(f"| the player behind the live edge: beyond the hold-back (settling, decode, display) | {behind - hb:.0f} ms |")
    p(f"| glass-to-glass | {total:.0f} ms |")
    p()
p("A part is complete when the first frame of the next one arrives, so \"last frame in -> part")
p("available\" includes one frame interval (40 ms at 25 fps) by construction. A part holds whole")
p("frames: asked for 100 ms at 25 fps, parts are three frames (120 ms, `PART-TARGET=0.12`), and the")
p("hold-back is three part targets (0.36 s), the least the LL-HLS specification allows.")
p()
p("What limits glass-to-glass: the sender (ffmpeg capture, x264, the mpegts mux and SRT's 120 ms")
p("receive latency) takes about 0.3 s to deliver a frame to any receiver on this machine (measured")
p("ffmpeg to ffmpeg with the same feed); the part then fills (a frame waits up to a part's duration")
p("before its part is complete); the player keeps at least the hold-back and settles a little")
p("behind it. Tessera's own share is the few tens of milliseconds above. Below this, the parts")
p("themselves would have to shrink (a 50 fps feed gives 100 ms parts of five frames), or the")
p("sender's SRT latency, which on a real network protects against loss.")
p()

p("## 2. Passthrough cost")
p()
p("N concurrent publishers of the bundled sample (640x360 H.264 + AAC, about 0.45 Mb/s), copied")
p("without transcoding into HLS. CPU is the server's user+system time over the measured window")
p("(after 5 s of warm-up), from /proc; publishers are not counted. Tessera and ffmpeg receive SRT")
p("(`benches` `multi_publish`); nginx-rtmp receives RTMP from `ffmpeg -c copy` publishers.")
p("ffmpeg needs one process per stream.")
p()
p("| N | Tessera CPU-s / stream-min | ffmpeg HLS | nginx-rtmp | Tessera / ffmpeg | Tessera / nginx | Tessera RSS / stream | ffmpeg RSS / stream | nginx RSS / stream |")
p("|---|---|---|---|---|---|---|---|---|")
for n in (1, 10, 50):
    c = {k: load(f"cost-{k}-{n}.json") for k in ("tessera", "ffmpeg", "nginx")}
    v = {k: (c[k] or {}).get("cpu_s_per_stream_minute") for k in c}
    m = {k: (c[k] or {}).get("rss_mb_per_stream") for k in c}
    p(f"| {n} | {fmt(v['tessera'], 3)} | {fmt(v['ffmpeg'], 3)} | {fmt(v['nginx'], 3)} | {ratio(v['tessera'], v['ffmpeg'])} | "
      f"{ratio(v['tessera'], v['nginx'])} | {fmt(m['tessera'], 1)} MB | {fmt(m['ffmpeg'], 1)} MB | {fmt(m['nginx'], 1)} MB |")
p()
p("Goal: at most the CPU of either peer per stream (ratios at most 1.00).")
p()
p("What limits Tessera against nginx-rtmp: SRT is a UDP protocol with its own clock (an ACK")
p("every 10 ms and loss timers per connection); a profile of a node with 20 publishers shows")
p("the time in kernel wake-ups, timers and epoll driven by those per-connection timers, with")
p("Tessera's demuxing, segmenting and muxing under 2 %. nginx-rtmp takes RTMP over TCP and has")
p("no such clock. Against ffmpeg, which receives the same SRT feeds, Tessera uses less CPU and")
p("a fraction of the memory per stream.")
p()

p("## 3. Delivery")
p()
if os.path.exists(os.path.join(OUT, "delivery-run")):
    p(f"Run: {open(os.path.join(OUT, 'delivery-run')).read().strip()}.")
    p()
sizes = load("delivery-sizes.json") or {}
p(f"`wrk -t2 -c64 --latency` on one live part ({sizes.get('part_bytes', '?')} bytes) and one segment")
p(f"({sizes.get('segment_bytes', '?')} bytes) from Tessera's memory, and the same bytes from disk through nginx")
p("(`sendfile on`). Load generator and server share the machine's cores.")
p()
p("| object | Tessera req/s | nginx req/s | ratio | Tessera p99 | nginx p99 | answers not 2xx (T/n) |")
p("|---|---|---|---|---|---|---|")
delivery_ratios = {}
for obj in ("part", "segment"):
    a, b = wrk(f"tessera-{obj}"), wrk(f"nginx-{obj}")
    if a and b and not a["non_2xx"] and not b["non_2xx"]:
        delivery_ratios[obj] = a["rps"] / b["rps"]
    p(f"| {obj} | {fmt(a and a['rps'])} | {fmt(b and b['rps'])} | {ratio(a and a['rps'], b and b['rps'])} | "
      f"{fmt(a and a['p99_ms'], 2)} ms | {fmt(b and b['p99_ms'], 2)} ms | {a and a['non_2xx']}/{b and b['non_2xx']} |")
p()
if delivery_ratios:
    worst = min(delivery_ratios.values())
    p(f"Goal: at least 1.2x nginx's rate — {'met' if worst >= 1.2 else f'missed: {worst:.2f}x at worst'}.")
    p()
    if worst < 1.2:
        p("What limits it: nginx answers a part from one worker with a few system calls. Each of")
        p("Tessera's answers goes through axum's router and the CORS layer (cloned per request) before")
        p("the live handler; with the handler's own extraction that was about a third of its CPU per")
        p("request in a profile of the part run (the viewer's address and the request timer, two boxed")
        p("layers in that profile, have since moved into the connection's service, which took the part")
        p("rate up by about 15 %), and the multi-threaded runtime adds wake-ups between its two threads")
        p("that a single nginx worker does not have. Until 2026-12-04 this section asked")
        p("for an object named in the playlist at the start and measured it for tens of seconds: the")
        p("part had left the live window part-way and many answers were 404s, which flattered the part")
        p("rate. Each object is now the newest of its kind when its run starts, and answers other than")
        p("2xx are counted (none above).")
        p()
blk = load("blocking.json")
blk2 = load("blocking-h2.json")
rss = load("blocking-rss.json") or {}
bh = histogram("metrics-blocking.txt", "tessera_part_publish_to_response_seconds", 'what="playlist"')
bh2 = histogram("metrics-blocking-h2.txt", "tessera_part_publish_to_response_seconds", 'what="playlist"',
                since="metrics-blocking.txt")
p("### Ten thousand blocked playlist requests")
p()
if blk:
    p(f"{blk['clients']} concurrent requests for a part not yet published (`_HLS_msn`/`_HLS_part`), released together")
    p("when it is (`benches` `blocking_load`): over HTTP/1.1 one connection each, over HTTP/2 as streams on")
    p(f"{(blk2 or {}).get('connections', 64)} connections. The node side is the time from the part becoming available to the")
    p("answer leaving the handler; the client side is the spread of arrivals after the first answer, on a")
    p("client sharing the node's two cores.")
    p()
    p("| protocol | answered 200 / other / unanswered | client spread p50 / p99 / max | node side p50 / p99 |")
    p("|---|---|---|---|")
    for name, b, h in (("HTTP/1.1", blk, bh), ("HTTP/2", blk2, bh2)):
        if not b:
            continue
        sp = b["release_spread_ms"]
        node = f"{h['p50_ms']:.1f} / {h['p99_ms']:.1f} ms" if h else "n/a"
        p(f"| {name} | {b['answered_200']} / {b['other']} / {b['unanswered']} | {sp['p50']:.1f} / {sp['p99']:.1f} / {sp['max']:.1f} ms | {node} |")
    p()
    if rss:
        p(f"Node RSS before / after the HTTP/1.1 run: {rss['rss_before_kb'] / 1024:.0f} / {rss['rss_after_kb'] / 1024:.0f} MB.")
        p()
    met = [n for n, h in (("HTTP/1.1", bh), ("HTTP/2", bh2)) if h and h["p99_ms"] <= 20]
    p("Goal: all answered within 20 ms of the part's publication (p99): "
      + (f"met over {' and '.join(met)} on the node side." if met else "missed.")
      + (f" Missed over {', '.join(n for n in ('HTTP/1.1', 'HTTP/2') if n not in met)}." if met and len(met) < 2 else ""))
    if len(met) < 2:
        p()
        p("Where the time goes (a `perf` profile of the node during the HTTP/2 run, 2026-12-04): of the node's")
        p("CPU while it answers, about 5 % is waking the held requests (one `watch` notification per stream")
        p("change), 18 % the live handler (the release check, the playlist shared by every waiter, the")
        p("response), 20 % the router and the layers every request crossed (the viewer's address and the")
        p("request timer, since moved out of the way, and CORS), 14 % HTTP/2 framing and the socket")
        p("writes, the rest the scheduler and the")
        p("kernel. Over HTTP/1.1 the ten thousand connections add one write and one wake-up each, and the")
        p("client, on the same two cores, is receiving ten thousand answers at the same moment. Each")
        p("waiter's share is a few tens of microseconds, so ten thousand of them cannot all leave within")
        p("20 ms on two cores; what can still shrink it is the per-request path (no router and no")
        p("cloned layers for media), which is also what section 3's part rate needs. Held part requests")
        p("(the preload hint) are not measured here yet.")
else:
    p("The load client did not report; see target/bench/logs/blocking.log.")
p()
p("## 4. Transcoding ladder")
p()
lad = load("ladder.json")
if lad:
    p(f"The same feeds through Tessera's codec worker (`benches` `ladder_bench`: the node's demuxer,")
    p(f"segment boundaries and worker protocol, driving `tessera codec-worker` as fast as it goes) and")
    p(f"through one ffmpeg command making the same ladder: libx264 `{lad['preset']}`/`{lad['tune']}`, High")
    p("profile, the same average and peak bitrates (VBV buffer one second at the peak), IDRs at the")
    p("same times (every source keyframe, which starts a segment), bicubic scaling. Feeds: ffmpeg's")
    p(f"`testsrc2` with moving film grain, {lad['seconds']} s at 30 fps, H.264 High with three B-frames")
    p("and a 2 s GOP (OBS's defaults). Quality: SSIM (all planes) and PSNR against the source scaled")
    p("to the rung's size, from ffmpeg's `ssim` and `psnr` filters. Speed and CPU: the median of")
    p(f"{len(lad['feeds'][0]['tessera']['runs'])} runs, Tessera and ffmpeg alternating; CPU counts every process of each side")
    p("(for Tessera, the feeding tool and the worker).")
    p()
    p("| feed | ladder | Tessera fps | ffmpeg fps | Tessera CPU-s / stream-min | ffmpeg CPU-s / stream-min | CPU Tessera / ffmpeg |")
    p("|---|---|---|---|---|---|---|")
    for f in lad["feeds"]:
        t, ff = f["tessera"], f["ffmpeg"]
        rungs = ", ".join(["source"] + list(t["rungs"].keys()))
        p(f"| {f['feed']} ({f['source']}) | {rungs} | {t['fps']:.1f} | {ff['fps']:.1f} | {t['cpu_s_per_stream_minute']:.1f} | "
          f"{ff['cpu_s_per_stream_minute']:.1f} | **{ratio(t['cpu_s_per_stream_minute'], ff['cpu_s_per_stream_minute'])}** |")
    p()
    p("| feed | rung | size | target | Tessera kbit/s | ffmpeg kbit/s | Tessera SSIM | ffmpeg SSIM | Tessera PSNR | ffmpeg PSNR |")
    p("|---|---|---|---|---|---|---|---|---|---|")
    for f in lad["feeds"]:
        for name, tr in f["tessera"]["rungs"].items():
            fr = f["ffmpeg"]["rungs"][name]
            p(f"| {f['feed']} | {name} | {tr['size']} | {tr['target_kbps']} | {tr['kbps']:.0f} | {fr['kbps']:.0f} | "
              f"{fmt(tr['ssim'], 4)} | {fmt(fr['ssim'], 4)} | {fmt(tr['psnr'], 2)} dB | {fmt(fr['psnr'], 2)} dB |")
    p()
    one = lad.get("one_core_720p", {})
    if one:
        p(f"The default ladder of the 720p30 feed (source, 480p, 360p) on one core (`taskset -c 0`):")
        p(f"**{one['fps']:.1f} fps, {one['realtime_factor']:.2f}x real time** (ffmpeg, same ladder, same core:")
        p(f"{one['ffmpeg_fps']:.1f} fps). Goal: real time on one core — " + ("met." if one["realtime_factor"] >= 1 else "missed."))
    p()
    ratios = [f["tessera"]["cpu_s_per_stream_minute"] / f["ffmpeg"]["cpu_s_per_stream_minute"] for f in lad["feeds"]]
    spread = max(abs(a["cpu_seconds"] - b["cpu_seconds"]) / max(a["cpu_seconds"], b["cpu_seconds"])
                 for f in lad["feeds"] for a in f["tessera"]["runs"] for b in f["tessera"]["runs"])
    p("Goals: the same quality at no more CPU than ffmpeg. " + (
        "Met on every feed." if max(ratios) <= 1.0 else
        f"CPU is within {100 * (max(ratios) - 1):.0f} % of ffmpeg's where it is above it, inside the spread "
        f"between repeated runs of the same command here (up to {100 * spread:.0f} %)."))
    p("How the worker gets there: one decode for all rungs; a thread per rung, chained largest")
    p("first, each rung scaling from the next larger rung's picture (SSIM within 0.001 of ffmpeg's,")
    p("about half the scaling work); pictures passed by reference count, never copied. The rungs")
    p("encode in parallel, so Tessera's wall-clock speed exceeds ffmpeg's even though it decodes")
    p("with a single slice-threaded decoder (frame threads would add a frame of delay per thread")
    p("to a live stream). Quality is the same within 0.001 SSIM and 0.02 dB; ffmpeg's rungs spend")
    p("about 2 % more bits for it.")
else:
    p("The ladder benchmark did not run; see target/bench/logs.")
p()
p("## 5. Catalog")
p()
cat = load("catalog.json")
if cat:
    tw, ew = cat["tessera_writes"], cat["etcd_writes"]
    p(f"Run: {cat.get('run', 'with the rest of this page')}. A 3-node Tessera cluster formed with `tessera cluster init`")
    p(f"and `tessera node --join` (QUIC with mutual TLS between nodes, redb log fsynced before")
    p(f"acknowledging), beside a 3-member etcd {cat['etcd_version'].split()[-1]} cluster (Debian's etcd-server), on the same")
    p("machine, each with its default timeouts. The same load for both: concurrent clients spread")
    p("over the three members, each writing a new ~100-byte record after the last was acknowledged")
    p("(Tessera: `PUT /api/v1/streams/NAME` on the admin API; etcd: `POST /v3/kv/put` on its")
    p(f"HTTP/JSON gateway), for {cat['seconds']} s. Both answer once the write is committed by a quorum and")
    p("applied. Followers forward to the leader in both.")
    p()
    p("| clients | Tessera writes/s | etcd writes/s | Tessera / etcd | Tessera p50 | etcd p50 | Tessera p99 | etcd p99 | p99 Tessera / etcd | errors (T/e) |")
    p("|---|---|---|---|---|---|---|---|---|---|")
    for t, e in zip(tw, ew):
        p(f"| {t['clients']} | {t['writes_per_s']:.0f} | {e['writes_per_s']:.0f} | **{ratio(t['writes_per_s'], e['writes_per_s'])}** | "
          f"{fmt(t['p50_ms'], 1)} ms | {fmt(e['p50_ms'], 1)} ms | {fmt(t['p99_ms'], 1)} ms | {fmt(e['p99_ms'], 1)} ms | "
          f"**{ratio(t['p99_ms'], e['p99_ms'])}** | {t['errors']}/{e['errors']} |")
    p()
    tr, er = cat["tessera_recovery"], cat["etcd_recovery"]
    p(f"Leader loss: the leader is killed with SIGKILL, then clients write through the two survivors,")
    p("a new attempt every 50 ms without waiting for earlier ones to fail, until a write commits;")
    p(f"the time from the kill to that write, over {cat['trials']} trials (the killed member restarts from its")
    p("folder between trials).")
    p()
    p("| store | election timeout | p50 | p99 | max |")
    p("|---|---|---|---|---|")
    p(f"| Tessera | 200-400 ms, heartbeat 50 ms | {tr['p50']:.0f} ms | {tr['p99']:.0f} ms | {tr['max']:.0f} ms |")
    p(f"| etcd | 1000 ms, heartbeat 100 ms | {er['p50']:.0f} ms | {er['p99']:.0f} ms | {er['max']:.0f} ms |")
    p()
    worst = max(t["p99_ms"] / e["p99_ms"] for t, e in zip(tw, ew))
    least = min(t["writes_per_s"] / e["writes_per_s"] for t, e in zip(tw, ew))
    p("Goals: at least etcd's throughput at no worse p99 — " + (
        "met at every load." if least >= 1 and worst <= 1 else
        f"throughput {least:.2f}x etcd's at worst, p99 {worst:.2f}x etcd's at worst."))
    p("Leader-loss recovery p99 under 1 s — " + ("met." if tr["p99"] < 1000 else f"missed ({tr['p99']:.0f} ms)."))
    p("A follower stands for election after its lease on the last leader (the election timeout's")
    p("upper bound) plus a random 200-400 ms; `--raft-election-ms` moves both.")
else:
    p("The catalog benchmark did not run; see target/bench/logs.")
p()
p("## 6. Every node serves every stream")
p()
rel = load("relay.json")
if rel:
    p(f"Run: {rel['run']}. A {rel['nodes']}-node cluster on loopback (`cluster init`, then `node --join`). The bundled")
    p("sample (640x360, passthrough) is published to one node over SRT; viewers on 1, 2, 3, then 4 other")
    p(f"nodes make them follow it over QUIC, through a relay tree of degree {rel.get('fanout', 0)} (`--relay-fanout`:")
    p("the origin feeds at most that many nodes, and they feed the rest). Propagation is each part's arrival on a follower minus")
    p("its publication on the origin (the same clock), from the followers' histograms over a")
    p(f"{rel['seconds']} s window; upload is the origin's bytes sent to followers per part it published.")
    p()
    p("| followers | origin upload per part | every node's upload per part (node 1 is the origin) | propagation p50 | propagation p99 |")
    p("|---|---|---|---|---|")
    for r in rel["propagation"]:
        each = " / ".join(f"{(b or 0) / 1024:.1f}" for b in r.get("every_node_bytes_per_part", []))
        p(f"| {r['followers']} | {r['upload_bytes_per_part'] / 1024:.1f} KiB | {each} KiB | {r['delay_p50_ms']:.2f} ms | {r['delay_p99_ms']:.2f} ms |")
    p()
    fo = rel["failover"]
    worst = max(t["from_publisher_ms"] for t in fo)
    p(f"Failover ({len(fo)} trials): kill -9 of the origin, the publisher starts again on another node; the")
    p("time until a third node, which a viewer keeps following, lists a new part: "
      + ", ".join(f"{t['from_publisher_ms']:.0f} ms" for t in fo) + " after the publisher's start ("
      + ", ".join(f"{t['from_kill_ms']:.0f} ms" for t in fo) + " after the kill).")
    pl = rel["players"]
    p()
    p("| hls.js plays from | glass-to-glass p50 | p90 | stalls |")
    p("|---|---|---|---|")
    for label in ("origin", "follower"):
        x = pl[label]
        p(f"| the {label} | {x['g2g_p50_ms']} ms | {x['g2g_p90_ms']} ms | {x['stalls']} |")
    p()
    up = {r["followers"]: r["upload_bytes_per_part"] for r in rel["propagation"]}
    degree = rel.get("fanout", 0)
    copies = {f: up[f] / up[min(up)] for f in up}
    beyond = [copies[f] for f in copies if degree and f > degree]
    diff = (pl["follower"]["g2g_p50_ms"] or 10**6) - (pl["origin"]["g2g_p50_ms"] or 0)
    p("Goals: origin upload flat beyond the fan-out degree — " + (
        f"met (the origin sends each part {max(beyond):.1f} times with {', '.join(str(f) for f in copies if f > degree)} followers; degree {degree})."
        if beyond and max(beyond) <= degree + 0.1 and max(beyond) - min(beyond) <= 0.1 else
        f"missed ({max(copies.values()):.1f}x from {min(up)} to {max(up)} followers)."))
    p("A stream playable on another node within 3 s of the publisher's return — " + ("met." if worst < 3000 else f"missed ({worst:.0f} ms)."))
    p(f"Glass-to-glass from a follower within 100 ms of the origin's — " + ("met" if diff <= 100 else "missed") + f" ({diff:+d} ms).")
else:
    p("The relay benchmark did not run; see target/bench/logs.")
p()
p("## 7. Scheduled releases")
p()
rl = load("release.json")
if rl:
    p(f"Run {rl['run']}. A live stream published to node 1 is pre-positioned on the other nodes and released")
    p(f"{rl['trials']} times on 3 and on 5 nodes (loopback; each release taken down after it, then scheduled again).")
    p("A probe per node polls the stream's media playlist on a kept-alive connection (busy, a request every")
    p("~0.1 ms, from 20 ms before the release time); a node opens at its first 200. Skew is the last node's")
    p("opening minus the first's; open delay is each node's opening minus the release time; commit latency is")
    p("the leader's open delay (it serves as soon as it applies the opening entry). The release opens by")
    p("quorum time: each node votes when its own clock passes the release time, and the entry that makes a")
    p("majority opens it, so the delay includes the votes' trip to the leader and their durable commit.")
    p()
    p("| nodes | releases | skew p50 | skew p99 | open delay p50 | open delay p99 | commit latency p50 | p99 |")
    p("|---|---|---|---|---|---|---|---|")
    for r in rl["skew"]:
        p(f"| {r['nodes']} | {r['releases']} | {fmt(r['skew_p50_ms'], 1)} ms | {fmt(r['skew_p99_ms'], 1)} ms | "
          f"{fmt(r['open_delay_p50_ms'], 1)} ms | {fmt(r['open_delay_p99_ms'], 1)} ms | "
          f"{fmt(r['commit_p50_ms'], 1)} ms | {fmt(r['commit_p99_ms'], 1)} ms |")
    p()
    w, wo = rl["origin"]
    p("The origin at a premiere on 5 nodes, with pre-positioning (the others follow the rehearsal")
    p("beforehand: the default) and without it (`--release-prewarm-s 0`: every node starts fetching at the")
    p(f"release, as viewers arriving there would make it); medians of {len(w['trials'])} releases, each of a fresh stream.")
    p()
    p("| | origin upload, 3 s before the release | 3 s after | slowest node's open delay |")
    p("|---|---|---|---|")
    for label, x in (("pre-positioned", w), ("not pre-positioned", wo)):
        p(f"| {label} | {x['before_3s_bytes_p50'] / 1024:.0f} KiB | {x['after_3s_bytes_p50'] / 1024:.0f} KiB | "
          f"{fmt(x['slowest_open_ms_p50'], 1)} ms |")
    p()
    burst = ratio(wo["after_3s_bytes_p50"], w["after_3s_bytes_p50"])
    worst = max(r["skew_p99_ms"] or 10**6 for r in rl["skew"])
    steady = ratio(w["after_3s_bytes_p50"], w["before_3s_bytes_p50"])
    p(f"In the 3 s after the release the origin uploads {burst}× as much without pre-positioning as with")
    p(f"it; with it, those 3 s carry {steady}× the 3 s before (no catch-up burst, only the feed itself).")
    p("Goal: every node opens within a tight window — " + (
        f"met (skew p99 {worst:.1f} ms across {' and '.join(str(r['nodes']) for r in rl['skew'])} nodes)." if worst <= 50
        else f"missed (skew p99 {worst:.1f} ms)."))
else:
    p("The release benchmark did not run; see target/bench/logs.")
p()
p("## 8. Content protection")
p()
lc = load("license.json")
if lc:
    rates = lc["license"] if isinstance(lc["license"], list) else [dict(lc["license"], token="no stream limit")]
    l = rates[0]
    p(f"Run {lc['run']}. License requests: one node pinned to one core (`taskset`) serves an AES-128 live")
    p(f"stream; wrk, pinned to the other core, asks for its key with a valid playback token over {l['connections']}")
    p(f"kept-alive connections for {l['seconds']} s. Every request is checked in full (token signature and expiry,")
    p("revocation, release, key, region, stream limit) by the node's license actor. With a stream limit in the")
    p("token, every request also counts the viewer's stream (here on the node itself; in a larger cluster on the")
    p("subject's counting node, one QUIC round trip away).")
    p()
    p("| token | key requests per second, one core | p50 | p99 | refused |")
    p("|---|---|---|---|---|")
    for r in rates:
        p(f"| {r['token']} | {r['requests_per_s']:.0f} | {fmt(r['p50_ms'], 2)} ms | {fmt(r['p99_ms'], 2)} ms | {r['non_2xx']} |")
    p()
    clear, rows = lc["cost"][0], lc["cost"][1:]
    p(f"Encryption cost: {clear['streams']} streams (the bundled sample, passthrough) on one node, each with a")
    p("viewer fetching every part, segment and init segment as it is listed; the node encrypts each file once")
    p(f"for all its viewers (AES-128: the whole file, CBC; cbcs: samples in place, the CMAF boxes rewritten).")
    p(f"CPU over {clear['seconds']} s, in the same invocation:")
    p()
    p("| | CPU-s per stream-minute | vs clear | files served |")
    p("|---|---|---|---|")
    p(f"| clear | {clear['cpu_s_per_stream_minute']:.3f} | 1.00× | {clear['files_fetched']} |")
    for r in rows:
        name = {"aes-128": "AES-128", "cbcs": "cbcs"}.get(r.get("mode"), "AES-128")
        p(f"| {name} | {r['cpu_s_per_stream_minute']:.3f} | "
          f"{ratio(r['cpu_s_per_stream_minute'], clear['cpu_s_per_stream_minute'])}× | {r['files_fetched']} |")
    p()
    p("Each file is encrypted once (AES-NI) for all its viewers, so encryption is within the run-to-run spread of")
    p("serving the files at all; the ratios move by up to about ten percent either way between runs, and the")
    p("table below measures encryption alone.")
    p()
    a = lc.get("alone")
    if a:
        kbps = a["bitrate_kbps"]
        at6 = lambda r: r["cpu_ms_per_stream_minute"] * 6000 / kbps
        p(f"Encryption alone (`encrypt_cost`, one core): the sample ({kbps:.0f} kb/s) packaged as a node packages it,")
        p("every part encrypted over and over as a node serves it; a copy of each part is the baseline. CPU per")
        p("stream-minute scales with the bitrate; the last column is that of a 6 Mb/s stream, worked out from the first.")
        p()
        p("| | MB/s, one core | CPU-ms per stream-minute | at 6 Mb/s |")
        p("|---|---|---|---|")
        for name, key in [("copy", "copy"), ("AES-128", "aes128"), ("cbcs", "cbcs")]:
            r = a[key]
            p(f"| {name} | {r['mb_per_s']:.0f} | {r['cpu_ms_per_stream_minute']:.2f} | {at6(r):.1f} |")
        p()
        p(f"cbcs encrypts one video block in ten, so it runs {ratio(a['cbcs']['mb_per_s'], a['aes128']['mb_per_s'])}×"
          " as fast as AES-128 of whole parts, rewriting the boxes included.")
        p()
    met = all(r["requests_per_s"] >= 10000 and (r["p99_ms"] or 99) < 5 for r in rates)
    p("Goal: 10,000 key requests per second on one core at p99 under 5 ms — " + ("met." if met else "missed."))
else:
    p("The license benchmark did not run; see target/bench/logs.")
p()
p("### Regions on every request")
p()
rg = load("rights.json")
if rg:
    p(f"Run {rg['run']}. One node, the sample published to it, and an address table of {rg['table_ranges']:,} ranges")
    p("(prefixes /8 to /28) that puts the viewer in `eu`. Each round takes the stream's newest part and runs")
    p(f"`wrk -t2 -c64` for {rg['seconds']} s on it three ways: with no region rule, with the rule `[\"eu\"]` (every")
    p("request looks the viewer up and checks the rule; all answers are 200), and with the rule through a trusted")
    p("proxy (`X-Forwarded-For`, so the viewer comes from the header chain). The rule is set and cleared between")
    p(f"runs; {rg['rounds']} rounds, alternating, medians. The load generator shares the two cores, so the node's")
    p("CPU time per request is the steadier figure.")
    p()
    p("| | req/s | against no rule | node CPU per request | against no rule |")
    p("|---|---|---|---|---|")
    for k, name in [("open", "no rule"), ("limited", "rule, direct"), ("limited_via_proxy", "rule, via a trusted proxy")]:
        p(f"| {name} | {rg['req_s'][k]:.0f} | {rg['ratio'][k]:.3f} | {rg['cpu_us_per_request'][k]:.1f} µs | {rg['cpu_ratio'][k]:.3f} |")
    p()
    rule_ways = ("limited", "limited_via_proxy")
    slower = max(max(1 - rg["ratio"][k], rg["cpu_ratio"][k] - 1) for k in rule_ways)
    open_rps = [r for r, _ in rg["all"]["open"]]
    spread = (max(open_rps) - min(open_rps)) / rg["req_s"]["open"]
    verdict = "met" if slower < 0.05 else "missed"
    p(f"Goal: regions on every request cost less than 5% of part GET throughput — {verdict}: the worst of the two")
    p(f"ways with a rule is {max(slower, 0) * 100:.1f}% below no rule (fewer requests per second or more CPU per request),")
    p(f"where the runs without a rule spread by {spread * 100:.0f}% among themselves. A viewer outside the rule's")
    p(f"regions is refused on the same URL (`{rg['refused_elsewhere']}`).")
else:
    p("The rights benchmark did not run; see target/bench/logs.")
p()
p("## 9. VOD uploads")
p()
vd = load("vod.json")
if vd:
    r = vd["mib_per_s"]
    p(f"Run {vd['run']}. One node on loopback stores a {vd['mib']:.0f} MiB file sent over tus 1.0 in {vd['chunk_mib']} MiB PATCH")
    p("requests, each checked by its SHA-256 and acknowledged only once written and fsynced; beside it, the same file")
    p("copied to the same disk (Python, 8 MiB writes). Medians of three runs, in the same invocation. The end of an")
    p("upload (the whole file's SHA-256 and the reading-through of the film) is not timed here.")
    p()
    p("| | MiB/s | upload vs it |")
    p("|---|---|---|")
    p(f"| upload over tus (fsync per request) | {r['upload']:.0f} | 1.00× |")
    p(f"| copy, fsync every 8 MiB | {r['copy_fsync_each']:.0f} | {ratio(r['upload'], r['copy_fsync_each'])}× |")
    p(f"| copy, one fsync at the end | {r['copy_fsync_end']:.0f} | {ratio(r['upload'], r['copy_fsync_end'])}× |")
else:
    p("The VOD upload benchmark did not run; see target/bench/logs.")
p()
p("## 10. VOD transcoding")
p()
tc = load("transcode.json")
if tc:
    t, n = tc["throughput"], tc["film_seconds"]
    p(f"Run {tc['run']}. A {n} s 1080p25 film with B-frames becomes the default VOD ladder (1080p 5000, 720p 2800,")
    p("480p 1400, 360p 800 kb/s, x264 veryfast, an IDR every segment): uploaded with `tessera vod upload` to node 1 of")
    p("a cluster sharing an archive folder, timed from the asset's record to its last rendition done. Each node runs")
    p("one job (one rung) at a time and is pinned to one core. Beside it, one ffmpeg process decoding the film once and")
    p(f"encoding the same four rungs with the same settings, on the same cores. This machine has {tc['cores']} cores.")
    p("Throughput is source seconds per wall second.")
    p()
    p("| | cores | throughput | vs ffmpeg on the same cores | vs one node |")
    p("|---|---|---|---|---|")
    p(f"| ffmpeg, one process | 1 | {t['ffmpeg_1core']:.2f} | 1.00× | |")
    p(f"| Tessera, 1 node | 1 | {t['nodes_1']:.2f} | {ratio(t['nodes_1'], t['ffmpeg_1core'])}× | 1.00× |")
    p(f"| ffmpeg, one process | 2 | {t['ffmpeg_2core']:.2f} | 1.00× | |")
    p(f"| Tessera, 2 nodes (a core each) | 2 | {t['nodes_2']:.2f} | {ratio(t['nodes_2'], t['ffmpeg_2core'])}× | "
      f"{ratio(t['nodes_2'], t['nodes_1'])}× |")
    p(f"| Tessera, 3 nodes (two on one core) | 2 | {t['nodes_3']:.2f} | {ratio(t['nodes_3'], t['ffmpeg_2core'])}× | "
      f"{ratio(t['nodes_3'], t['nodes_1'])}× |")
    p(f"| Tessera, 1 node, two jobs at once | 2 | {t['node_2slots']:.2f} | {ratio(t['node_2slots'], t['ffmpeg_2core'])}× | |")
    p()
    spread = ", ".join(f"{k} node{'s' if k != '1' else ''}: " + " ".join(f"{r}@{v}" for r, v in sorted(m.items()))
                       for k, m in tc["made_by"].items())
    p(f"Where each rendition was made (rendition@node): {spread}.")
    p()
    p("Each job decodes the film itself, where ffmpeg decodes it once for all four rungs; in exchange a rung is a job")
    p("any node can take, resume or retry alone. A third node on a two-core machine has no core of its own, so the")
    p("three-node row shows the cost of sharing, not scaling; scaling is the two-node row against the one-node row.")
else:
    p("The VOD transcode benchmark did not run; see target/bench/logs.")
p()
p("## 12. Ladders across the cluster")
p()
pl = load("placement.json")
if pl:
    r, pd = pl["resumed_ms"], pl["placed_ms"]
    p(f"Run {pl['run']}. Three nodes; node 1 makes no ladders (`--transcode-capacity 0`), nodes 2 and 3 give two cores")
    p("each. The sample (640x360, 25 fps) is published to node 1 with the ladder `source,240p:300,144p:150` (2 s")
    p(f"segments, 200 ms parts), so its ladder is made on node 2 or 3. Each of {pl['trials']} trials kills (`kill -9`) the")
    p("node making the ladder and polls node 1's 240p playlist every 20 ms; the killed node is started again and")
    p("rejoins before the next trial.")
    p()
    p("| from the kill to | p50 | p99 | max | goal |")
    p("|---|---|---|---|---|")
    p(f"| the ladder placed on the other node (new epoch) | {pd['p50']:.0f} ms | {pd['p99']:.0f} ms | {pd['max']:.0f} ms | |")
    p(f"| new media in the rung | {r['p50']:.0f} ms | {r['p99']:.0f} ms | {r['max']:.0f} ms | under 3 s |")
    p()
    p("Where the time goes: the origin takes the worker's node as lost when the link breaks (here, on loopback, a")
    p("killed node's port is refused at once: the 0.6 s trials) or after 1 s without a message on it (pings every")
    p("200 ms; a node cut off or a machine gone); placing it again (asking the nodes' load, a catalog write, starting the worker there) takes")
    p("tens of milliseconds. If no rung had begun the segment then in progress, the new worker starts from that")
    p("segment's first frame (the origin keeps it) and the rung resumes at once; otherwise it waits for the next")
    p("boundary (up to 2 s), since parts of the segment in progress were published and cannot be made again.")
    p(f"Every trial: {', '.join(str(x) for x in r['all'])} ms.")
else:
    p("The placement benchmark did not run; see target/bench/logs.")
p()
p("### The cost of distance")
p()
di = load("distance.json")
if di:
    p(f"Run {di['run']}. Two nodes giving two cores each to ladders; two streams of the sample published to node 1")
    p("side by side with the ladder `source,240p:300,144p:150`: `near` keeps its ladder on node 1 (the origin has room),")
    p("`far` is pinned to node 2, so its source video crosses the QUIC link to the worker and the rung packets come")
    p("back. For every part, clients following the playlists with blocking reloads note when it first shows in the")
    p("240p rung and in the passthrough; the rung's delay is the difference. Glass-to-glass of a rung is the")
    p("passthrough's plus this delay (publisher, ingest and player are the same for both), so far minus near is what")
    p(f"distance adds to glass-to-glass. {di['seconds']} s, loopback.")
    p()
    p("| 240p part after the passthrough's | parts | p50 | p99 | max |")
    p("|---|---|---|---|---|")
    for s in ("near", "far"):
        r = di[s]
        where = "made on the origin" if s == "near" else "made on node 2"
        p(f"| {s} ({where}) | {r['parts']} | {r['p50']:.0f} ms | {r['p99']:.0f} ms | {r['max']:.0f} ms |")
    e = di["extra_ms"]
    p(f"| **far minus near** | | **{e['p50']:+.0f} ms** | **{e['p99']:+.0f} ms** (goal: at most +50 ms) | |")
    p()
    lk = di["link_kbit_s"]
    p(f"Bytes on the wire for the stream made on node 2: {lk['to_worker']:.0f} kbit/s to the worker (its source video,")
    p(f"framed) and {lk['from_worker']:.0f} kbit/s back (the two rungs' video, plus the worker's reports), from node 1's")
    p("`tessera_remote_bytes_total{kind=\"transcode.worker\"}`. Audio never crosses: the rungs take the source's.")
else:
    p("The distance benchmark did not run; see target/bench/logs.")
p()
p("### Capacity on one, two and three nodes")
p()
ca = load("capacity.json")
if ca:
    p(f"Run {ca['run']}. Each node gets a fixed budget of {ca['budget_cores']} cores, enforced by the kernel: the node")
    p("process is put in a cgroup of its own (cgroup v1 `cpu.cfs_quota_us`) before it takes any stream, and its codec")
    p("workers, being its children, share it; `--transcode-capacity` says the same budget. Three nodes use 1.8 of the")
    p("machine's 2 cores; the publishers run outside the budgets. Streams of the sample (640x360, 25 fps, ladder")
    p(f"`source,240p:300,144p:150`) are all published to node 1, one more every {ca['step_s']} s; a step keeps its")
    p("streams if, after 4 s for the new ladder to start, no worker fell behind, no rung was dropped for load, no")
    p("worker died, and node 1 (which ingests every stream and runs every stream's encoder) lost no input (no ingest")
    p("error such as an SRT packet it could not take in time, no frame dropped for lag) for the rest of the step.")
    p()
    p("| nodes | streams kept (ladders in real time, no input lost) | against one node | ladders per node | goal |")
    p("|---|---|---|---|---|")
    for r in ca["runs"]:
        goal = "at least 1.8x" if r["nodes"] == 2 else ""
        per = ", ".join(f"node {k}: {v}" for k, v in sorted(r["placed"].items()))
        p(f"| {r['nodes']} | {r['streams']} | {ca['ratio'][str(r['nodes'])]:.2f}x | {per} | {goal} |")
    p()
    p("A ladder stays on the origin while the origin has room (with it, the origin stays under 90% of its budget,")
    p("counting the larger of the estimate and what each of its ladders costs it as measured) and goes to the node")
    p("with the most headroom when not. The origin also ingests, segments and packages every stream and feeds the")
    p("remote workers, so its own share grows with each stream after its ladders were placed; when it stays over 90%")
    p("it sheds its newest ladder to a node that stays under 75% with it, make-before-break (no rung misses a part).")
    sheds = [r.get("sheds") for r in ca["runs"]]
    if all(x is not None for x in sheds):
        p(f"Ladders a crowded node asked to move, in the runs on 1, 2 and 3 nodes: {', '.join(f'{x:.0f}' for x in sheds)}")
        p("(on one node there is nowhere to move them, and they stay).")
    if ca["ratio"].get("3", 0) < ca["ratio"].get("2", 0):
        last = {r["nodes"]: r["steps"][-1]["throttled_s"] for r in ca["runs"]}
        p("The three-node row is bound by the machine, not by the budgets: three budgets (1.8 cores) and one ffmpeg")
        p("publisher per stream, outside them, ask for more than its two cores, and the budgets held their nodes back")
        p(f"less in the failing step on three nodes ({last.get(3, 0):.1f} s) than on two ({last.get(2, 0):.1f} s). Scaling")
        p("is the two-node row against the one-node row; a third node needs cores of its own to show its share.")
    if ca["ratio"].get("3", 0) > 3:
        p("Three nodes make more than three times one node's count because the single node also spends its budget")
        p("on ingest and packaging, which the other nodes do not share.")
else:
    p("The capacity benchmark did not run (it needs root for its cgroups); see target/bench/logs.")
p()
compare = os.path.join(os.path.dirname(OUT.rstrip("/")), "bench-compare", "compare.md")
if os.path.exists(compare):
    p("## 11. One build beside another")
    p()
    p("`benches/compare.sh OLD_BIN_DIR NEW_BIN_DIR`: sections 1 to 3 for two builds in one invocation, rounds")
    p("alternating; each build's median, the ratio new / old, and the old build's own spread across rounds.")
    p()
    p(open(compare).read().strip())
    p()
import trust_report  # noqa: E402

for line in trust_report.section(OUT):
    p(line)
p()
p("## Commands")
p()
p("```")
p("benches/run.sh                 # this page")
p("benches/ladder.py OUT TESSERA LADDER_BENCH   # section 4 alone")
p("BENCH_ONLY=delivery benches/run.sh  # sections 3 and 4 alone, the rest of the page as it was")
p("BENCH_ONLY=catalog benches/run.sh   # section 5 alone, the rest of the page as it was")
p("BENCH_ONLY=relay benches/run.sh     # section 6 alone")
p("BENCH_ONLY=release benches/run.sh   # section 7 alone")
p("BENCH_ONLY=license benches/run.sh   # section 8 alone (BENCH_ONLY=rights: its regions subsection)")
p("BENCH_ONLY=vod benches/run.sh       # section 9 alone")
p("BENCH_ONLY=transcode benches/run.sh # section 10 alone")
p("BENCH_ONLY=placement benches/run.sh # section 12 alone")
p("benches/compare.sh OLD NEW      # sections 1 to 3 for two builds side by side (section 11)")
p("interop/clock-feed.sh ...      # the clocked test feed (ffmpeg lavfi + x264 zerolatency)")
p("interop/player.mjs --url URL   # hls.js in Chromium, glass-to-glass from the barcode")
p("scripts/fuzz.sh all SECONDS     # section 13: every fuzz target; benches/fuzz_summary.py makes fuzz.json")
p("scripts/chaos-seeds.sh 1000     # section 13: the whole catalog on a thousand new seeds")
p("scripts/soak.sh 60              # section 13: the soak, an hour on one node and on three")
p("scripts/netns.sh 20             # the namespace suite with 20 rounds of faults (root)")
p("```")

print("\n".join(merged(LINES, sys.argv[2] if len(sys.argv) > 2 else None)))
