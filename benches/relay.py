"""Every node serves every stream: how fast parts reach other nodes, what the origin uploads
as nodes are added, how long a stream is gone when its origin dies, and what a viewer on
another node sees, on a five-node Tessera cluster on loopback.

    python3 benches/relay.py OUT_DIR TESSERA_BIN [SECONDS] [TRIALS]

- Propagation: the bundled sample (640x360, passthrough) published to node 1 over SRT;
  viewers on 1, 2, 3 and then 4 other nodes keep them following it, through a relay tree
  of degree FANOUT (the origin feeds at most FANOUT nodes, they feed the rest). Each follower measures,
  per part, its arrival time minus the origin's publish time (same host, same clock):
  p50/p99 over a window, from the nodes' `tessera_relay_part_delay_seconds` histograms.
- Upload: the origin's bytes sent to followers per part published, per follower count,
  and every node's, to show where the rest of the tree's traffic goes.
- Failover: kill -9 the origin, start the publisher on another node; the time from that
  publisher's start to the first new part listed on a third node, and from the kill.
- Viewer: hls.js (interop/player.mjs) plays the clocked feed from the origin, then from a
  follower: glass-to-glass p50 of each.
Writes relay.json.
"""
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import benchlib
from benchlib import get, stop

OUT, TESSERA = (sys.argv + [""] * 2)[1:3]
SECONDS = int(sys.argv[3]) if len(sys.argv) > 3 else 20
TRIALS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
NODES = 5
FANOUT = 2
WORK = os.path.join(OUT or "/tmp", "relay")
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
LOGS = open(os.path.join(WORK, "nodes.log"), "ab")


def log(*a):
    print("bench: relay:", *a, file=sys.stderr, flush=True)


def wait(what, check, within=30):
    return benchlib.wait(what, check, within, bench="relay benchmark")


def histogram(m, name):
    """(upper bound, cumulative count) pairs of a histogram, sorted."""
    rows = []
    for k, v in m.items():
        if k.startswith(name + "_bucket{"):
            le = k.split('le="')[1].split('"')[0]
            rows.append((float("inf") if le == "+Inf" else float(le), v))
    return sorted(rows)


def quantile(q, before, after):
    """q-quantile of what a histogram recorded between two scrapes (Prometheus-style linear
    interpolation inside the bucket)."""
    b = dict(before)
    rows = [(le, c - b.get(le, 0)) for le, c in after]
    total = rows[-1][1] if rows else 0
    if total <= 0:
        return None
    rank, lo, prev = q * total, 0.0, 0.0
    for le, c in rows:
        if c >= rank:
            if le == float("inf"):
                return lo
            return lo + (le - lo) * ((rank - prev) / max(c - prev, 1e-9))
        lo, prev = le, c
    return lo


def publisher(node, name, clock=False):
    return benchlib.publisher(node, name, LOGS, clock=clock)


class Viewers:
    """Keeps nodes following a stream: a playlist request per node every second."""

    def __init__(self, name):
        self.name, self.nodes, self.done = name, [], False
        threading.Thread(target=self.run, daemon=True).start()

    def add(self, node):
        self.nodes.append(node)

    def run(self):
        while not self.done:
            for n in list(self.nodes):
                try:
                    get(n.url(f"/live/{self.name}/src/index.m3u8"), timeout=2)
                except Exception:
                    pass
            time.sleep(1)


def last_part(node, name):
    """The sequence number of the newest part the node lists for the passthrough rendition."""
    text = get(node.url(f"/live/{name}/src/index.m3u8"), timeout=2)
    best = None
    for line in text.splitlines():
        if line.startswith("#EXT-X-PART:"):
            uri = line.split('URI="')[1].split('"')[0]
            best = int(uri.removeprefix("part-").removesuffix(".m4s"))
    return best


def main():
    result = {"seconds": SECONDS, "trials": TRIALS, "nodes": NODES, "fanout": FANOUT,
              "run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    nodes, _admin = benchlib.form(TESSERA, WORK, NODES, LOGS, ["--relay-fanout", str(FANOUT)])
    try:
        # --- propagation and upload -----------------------------------------------------
        feed = publisher(nodes[0], "bench")
        wait("the stream on its origin", lambda: get(nodes[0].url("/live/bench/index.m3u8")))
        viewers = Viewers("bench")
        rows = []
        for followers in (1, 2, 3, 4):
            while len(viewers.nodes) < followers:
                n = nodes[1 + len(viewers.nodes)]
                viewers.add(n)
                wait(f"node {n.i} following", lambda: get(n.url("/live/bench/src/index.m3u8")))
            time.sleep(3)
            before = nodes[0].metrics()
            sent_before = [n.metrics().get("tessera_relay_bytes_sent_total", 0) for n in nodes]
            hist_before = [histogram(n.metrics(), "tessera_relay_part_delay_seconds") for n in viewers.nodes]
            time.sleep(SECONDS)
            after = nodes[0].metrics()
            sent_after = [n.metrics().get("tessera_relay_bytes_sent_total", 0) for n in nodes]
            hist_after = [histogram(n.metrics(), "tessera_relay_part_delay_seconds") for n in viewers.nodes]
            sent = after.get("tessera_relay_bytes_sent_total", 0) - before.get("tessera_relay_bytes_sent_total", 0)
            parts = after.get("tessera_parts_published_total", 0) - before.get("tessera_parts_published_total", 0)
            merged_b = {}
            merged_a = {}
            for hb, ha in zip(hist_before, hist_after):
                for le, c in hb:
                    merged_b[le] = merged_b.get(le, 0) + c
                for le, c in ha:
                    merged_a[le] = merged_a.get(le, 0) + c
            mb, ma = sorted(merged_b.items()), sorted(merged_a.items())
            row = {"followers": followers, "parts": parts, "bytes_sent": sent,
                   "upload_bytes_per_part": sent / parts if parts else None,
                   "every_node_bytes_per_part": [(a - b) / parts if parts else None for a, b in zip(sent_after, sent_before)],
                   "delay_p50_ms": (quantile(0.5, mb, ma) or 0) * 1000, "delay_p99_ms": (quantile(0.99, mb, ma) or 0) * 1000}
            log(f"{followers} followers: {row['upload_bytes_per_part']:.0f} bytes uploaded per part, "
                f"propagation p50 {row['delay_p50_ms']:.1f} ms, p99 {row['delay_p99_ms']:.1f} ms")
            rows.append(row)
        result["propagation"] = rows
        viewers.done = True
        stop(feed)

        # --- failover -----------------------------------------------------------------------
        trials = []
        origin, viewer = 0, 2
        for t in range(TRIALS):
            name = f"failover{t}"
            feed = publisher(nodes[origin], name)
            wait("the stream", lambda: get(nodes[origin].url(f"/live/{name}/index.m3u8")))
            wait("the viewer's node following", lambda: get(nodes[viewer].url(f"/live/{name}/src/index.m3u8")))
            time.sleep(4)
            seen = last_part(nodes[viewer], name)
            killed = time.monotonic()
            nodes[origin].kill()
            stop(feed)
            successor = 1 if origin == 0 else 0
            started = time.monotonic()
            feed = publisher(nodes[successor], name)
            wait("a new part on the viewer's node", lambda: (last_part(nodes[viewer], name) or 0) > (seen or 0), within=60)
            now = time.monotonic()
            trials.append({"from_publisher_ms": (now - started) * 1000, "from_kill_ms": (now - killed) * 1000})
            log(f"failover {t + 1}/{TRIALS}: new parts on a third node {trials[-1]['from_publisher_ms']:.0f} ms after "
                f"the publisher came back ({trials[-1]['from_kill_ms']:.0f} ms after the kill)")
            stop(feed)
            nodes[origin].start()
            time.sleep(2)
            origin = successor
        result["failover"] = trials

        # --- a viewer on the origin and on a follower ----------------------------------------
        feed = publisher(nodes[origin], "clocked", clock=True)
        wait("the clocked stream", lambda: get(nodes[origin].url("/live/clocked/index.m3u8")))
        follower = nodes[viewer]
        players = {}
        for label, node in (("origin", nodes[origin]), ("follower", follower)):
            path = os.path.join(WORK, f"play-{label}.json")
            subprocess.run(["node", "interop/player.mjs", "--url", node.url("/live/clocked/index.m3u8"),
                            "--seconds", str(SECONDS), "--out", path], stdout=subprocess.DEVNULL, stderr=LOGS)
            s = json.load(open(path))
            players[label] = {"g2g_p50_ms": s["glassToGlassMs"]["p50"], "g2g_p90_ms": s["glassToGlassMs"]["p90"],
                              "stalls": s["stalls"], "played_s": s["playedSeconds"]}
            log(f"hls.js from the {label}: glass-to-glass p50 {players[label]['g2g_p50_ms']} ms, stalls {s['stalls']}")
        result["players"] = players
        stop(feed)
    finally:
        for n in nodes:
            n.kill()
    with open(os.path.join(OUT, "relay.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
