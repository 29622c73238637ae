"""The cost of distance: a rung made on another node against one made on the origin, in the
same run, and what the link between them carries.

    python3 benches/distance.py OUT_DIR TESSERA_BIN [SECONDS]

- Two nodes, each giving two cores to ladders, with the ladder `source,240p:300,144p:150`.
  Two streams of the sample (640x360, 25 fps) are published to node 1 side by side: `near`
  keeps its ladder on node 1 (the origin has room: the default), `far` is pinned to node 2
  (`PUT /api/v1/streams/far {"placement": {"pin": [2]}}`) before it is published.
- For each stream, one client follows the passthrough's playlist and one the 240p rung's,
  with blocking reloads (`_HLS_msn`, `_HLS_part`), and notes when each part first shows.
  A rung part's *delay* is when it showed less when the same part of the passthrough did.
  Glass-to-glass of a rung is the passthrough's plus this delay (the publisher, the origin's
  ingest and the player are the same for both), so the difference between the two streams'
  delays is the difference in glass-to-glass that distance makes.
- Bytes on the wire: node 1's `tessera_remote_bytes_total{kind="transcode.worker"}`, sent
  (source video to the worker) and received (rung packets back), over the window; only
  `far` uses the link.
Writes distance.json.
"""
import json
import os
import shutil
import sys
import threading
import time

import benchlib

OUT, TESSERA = (sys.argv + [""] * 2)[1:3]
SECONDS = int(sys.argv[3]) if len(sys.argv) > 3 else 60
WORK = os.path.join(OUT or "/tmp", "distance")
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
LOGS = open(os.path.join(WORK, "nodes.log"), "ab")
LADDER = "source,240p:300,144p:150"
KIND = 'kind="transcode.worker"'


def log(*a):
    print("bench: distance:", *a, file=sys.stderr, flush=True)


def parts(text):
    """Every part a media playlist lists, as (segment, index)."""
    msn, i, out = 0, 0, []
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            msn = int(line.split(":")[1])
        elif line.startswith("#EXT-X-PART:"):
            out.append((msn, i))
            i += 1
        elif line and not line.startswith("#"):
            msn, i = msn + 1, 0
    return out


def follow(node, stream, rendition, arrivals, stop):
    """Blocking reloads, each for the part after the newest: when each part first shows."""
    want = None
    while not stop.is_set():
        q = "" if want is None else f"?_HLS_msn={want[0]}&_HLS_part={want[1]}"
        try:
            text = benchlib.get(node.url(f"/live/{stream}/{rendition}/index.m3u8{q}"), timeout=8)
        except Exception:
            time.sleep(0.05)
            continue
        now = time.monotonic()
        listed = parts(text)
        if not listed:
            time.sleep(0.05)
            continue
        newest = max(listed)
        if want is not None and newest >= want and newest not in arrivals:
            arrivals[newest] = now
        # Past a segment's last part, the next one's first.
        want = (newest[0], newest[1] + 1) if want is None or newest >= want else (want[0] + 1, 0)


def remote_bytes(node):
    m = node.metrics()
    pick = lambda d: sum(v for k, v in m.items() if k.startswith("tessera_remote_bytes_total") and KIND in k and d in k)
    return pick('direction="sent"'), pick('direction="received"')


def main():
    nodes, token = benchlib.form(TESSERA, WORK, 2, LOGS, ["--ladder", LADDER, "--transcode-capacity", "2"])
    origin = nodes[0]
    benchlib.wait("two members", lambda: len(benchlib.admin(origin, token, "GET", "/api/v1/nodes")["data"]) == 2,
                  bench="distance")
    benchlib.admin(origin, token, "POST", "/api/v1/streams", {"name": "far"})
    benchlib.admin(origin, token, "PUT", "/api/v1/streams/far", {"placement": {"pin": [2]}})
    pubs = [benchlib.publisher(origin, s, LOGS) for s in ("near", "far")]
    for s in ("near", "far"):
        benchlib.wait(f"{s}'s rung", lambda: parts(benchlib.get(origin.url(f"/live/{s}/240p/index.m3u8"))),
                      within=60, bench="distance")
    placed = {s: benchlib.admin(origin, token, "GET", f"/api/v1/streams/{s}")["placement"]["node"] for s in ("near", "far")}
    log(f"near made on node {placed['near']}, far on node {placed['far']}")
    if placed != {"near": 1, "far": 2}:
        raise SystemExit(f"bench: distance: the ladders are not where the run needs them: {placed}")
    time.sleep(4)
    arrivals = {(s, r): {} for s in ("near", "far") for r in ("src", "240p")}
    stop = threading.Event()
    threads = [threading.Thread(target=follow, args=(origin, s, r, a, stop), daemon=True) for (s, r), a in arrivals.items()]
    sent0, received0 = remote_bytes(origin)
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(SECONDS)
    stop.set()
    elapsed = time.monotonic() - t0
    sent1, received1 = remote_bytes(origin)
    rtt = {k: v for k, v in origin.metrics().items() if k.startswith("tessera_remote_round_trip_seconds")}
    for p in pubs:
        benchlib.stop(p)
    for n in nodes:
        n.kill()
    q = benchlib.percentile
    result = {"run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seconds": SECONDS, "placed": placed}
    for s in ("near", "far"):
        src, rung = arrivals[(s, "src")], arrivals[(s, "240p")]
        delays = [(rung[k] - src[k]) * 1000 for k in rung if k in src]
        if len(delays) < 20:
            raise SystemExit(f"bench: distance: only {len(delays)} parts of {s} seen in both renditions")
        result[s] = {"parts": len(delays), "p50": q(delays, 0.5), "p99": q(delays, 0.99), "max": max(delays)}
    result["extra_ms"] = {k: result["far"][k] - result["near"][k] for k in ("p50", "p99")}
    result["link_kbit_s"] = {"to_worker": (sent1 - sent0) * 8 / 1000 / elapsed,
                             "from_worker": (received1 - received0) * 8 / 1000 / elapsed}
    result["round_trip"] = rtt
    with open(os.path.join(OUT, "distance.json"), "w") as f:
        json.dump(result, f, indent=1)
    log(json.dumps(result))


main()
