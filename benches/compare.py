"""Two builds of Tessera side by side on sections 1 to 3 of docs/benchmarks.md (latency,
passthrough cost, delivery), measured in one invocation, interleaved so that both see the
same machine: `benches/compare.sh OLD_BIN_DIR NEW_BIN_DIR`. Writes OUT/compare.json and
prints a Markdown table of each measure for both and their ratio (new / old).

Each measure runs `rounds` times per build, alternating old and new; the table shows the
median of the rounds, and the spread of the old build's rounds (max / min) as the noise the
ratio should be read against."""
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import get, port, wait  # noqa: E402

OUT, OLD, NEW = sys.argv[1], sys.argv[2], sys.argv[3]
SECS = int(sys.argv[4]) if len(sys.argv) > 4 else 20
ROUNDS = int(sys.argv[5]) if len(sys.argv) > 5 else 2
HZ = os.sysconf("SC_CLK_TCK")
os.makedirs(os.path.join(OUT, "logs"), exist_ok=True)
LOG = open(os.path.join(OUT, "logs", "compare.log"), "a")


def log(msg):
    print(f"compare: {msg}", file=sys.stderr, flush=True)


class Node:
    def __init__(self, bindir, name):
        self.bin = os.path.join(bindir, "tessera")
        self.http = f"127.0.0.1:{port()}"
        self.srt = f"127.0.0.1:{port(socket.SOCK_DGRAM)}"
        data = os.path.join(OUT, f"data-{name}-{time.monotonic_ns()}")
        self.proc = subprocess.Popen(
            [self.bin, "node", "--data-dir", data, "--http-listen", self.http, "--srt-listen", self.srt,
             "--rtmp-listen", f"127.0.0.1:{port()}", "--cluster", f"127.0.0.1:{port(socket.SOCK_DGRAM)}",
             "--log", "warn", "--max-publishers", "1000"],
            stdout=LOG, stderr=LOG)
        wait("the node", lambda: get(f"http://{self.http}/healthz"), bench="compare")

    def cpu_ticks(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def latency(bindir, name):
    """Glass-to-glass through hls.js in Chromium, from the clocked feed over SRT."""
    node = Node(bindir, name)
    feed = subprocess.Popen(
        ["interop/clock-feed.sh", "-f", "mpegts", "-srt_streamid", "#!::r=live/clock,m=publish",
         f"srt://{node.srt}?mode=caller&latency=120000&pkt_size=1316"], stdout=LOG, stderr=LOG)
    try:
        wait("the clock stream", lambda: get(f"http://{node.http}/live/clock/index.m3u8"), within=30, bench="compare")
        out = os.path.join(OUT, f"play-{name}.json")
        subprocess.run(["node", "interop/player.mjs", "--url", f"http://{node.http}/live/clock/index.m3u8",
                        "--seconds", str(SECS), "--out", out], stdout=LOG, stderr=LOG)
        with open(out) as f:
            s = json.load(f)
        return {"glass_to_glass_p50_ms": s["glassToGlassMs"]["p50"], "glass_to_glass_p90_ms": s["glassToGlassMs"]["p90"],
                "stalls": s["stalls"]}
    finally:
        feed.terminate()
        feed.wait()
        node.stop()


def cost(bindir, name, streams):
    """CPU and memory per stream with `streams` passthrough publishers of the sample."""
    node = Node(bindir, name)
    warm = 5
    pub = subprocess.Popen([os.path.join(NEW, "multi_publish"), "samples/sample.ts", str(SECS + warm + 5), str(streams),
                            node.srt], stdout=LOG, stderr=LOG)
    try:
        time.sleep(warm)
        t0 = node.cpu_ticks()
        time.sleep(SECS)
        cpu = (node.cpu_ticks() - t0) / HZ
        return {f"cpu_s_per_stream_min_{streams}": cpu / (streams * SECS / 60), f"rss_mb_per_stream_{streams}": node.rss_mb() / streams}
    finally:
        pub.terminate()
        pub.wait()
        node.stop()


def wrk(url, seconds):
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", url], capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    return rps, p99


def delivery(bindir, name):
    """Requests per second and p99 for one live part and one segment from memory."""
    node = Node(bindir, name)
    pub = subprocess.Popen([os.path.join(NEW, "multi_publish"), "samples/sample.ts", "600", "1", node.srt],
                           stdout=LOG, stderr=LOG)
    try:
        base = f"http://{node.http}/live/bench-0/src"
        wait("the stream", lambda: get(f"{base}/index.m3u8"), within=30, bench="compare")
        time.sleep(6)
        playlist = get(f"{base}/index.m3u8")
        seg = [l for l in playlist.splitlines() if l.startswith("seg-")][-1]
        part = re.search(r'URI="(part-\d+\.m4s)"', playlist).group(1)
        out = {}
        for what, file in (("part", part), ("segment", seg)):
            rps, p99 = wrk(f"{base}/{file}", max(5, SECS // 2))
            out[f"{what}_req_per_s"], out[f"{what}_p99_ms"] = rps, p99
        return out
    finally:
        pub.terminate()
        pub.wait()
        node.stop()


MEASURES = [("latency", latency), ("cost-1", lambda b, n: cost(b, n, 1)), ("cost-10", lambda b, n: cost(b, n, 10)),
            ("cost-50", lambda b, n: cost(b, n, 50)), ("delivery", delivery)]
only = os.environ.get("COMPARE_ONLY")
results = {"old": {}, "new": {}}
for measure, run in MEASURES:
    if only and measure not in only.split(","):
        continue
    for r in range(ROUNDS):
        for which, bindir in (("old", OLD), ("new", NEW)) if r % 2 == 0 else (("new", NEW), ("old", OLD)):
            log(f"{measure}: {which} build, round {r + 1}")
            try:
                got = run(bindir, f"{measure}-{which}-{r}")
            except Exception as e:  # a failed round is reported, not fatal
                log(f"{measure} {which} round {r + 1} failed: {e}")
                continue
            for k, v in got.items():
                results[which].setdefault(k, []).append(v)
with open(os.path.join(OUT, "compare.json"), "w") as f:
    json.dump(results, f, indent=1)

lower_is_better = ("_ms", "cpu_", "rss_", "stalls")
print("| measure | old build | new build | new / old | old rounds' spread |")
print("|---|---|---|---|---|")
for key in results["old"]:
    old, new = results["old"][key], results["new"].get(key, [])
    if not old or not new:
        continue
    o, n = statistics.median(old), statistics.median(new)
    spread = f"{max(old) / min(old):.2f}" if min(old) > 0 else "n/a"
    better = "lower is better" if any(t in key for t in lower_is_better) else "higher is better"
    print(f"| {key} ({better}) | {o:.3f} | {n:.3f} | {n / o:.2f} | {spread} |" if o else f"| {key} | {o} | {n} | n/a | |")
