"""Ladders across the cluster: how long a ladder takes to resume on another node after the
node making it is killed (kill -9), over many trials, and what the link carries.

    python3 benches/placement.py OUT_DIR TESSERA_BIN [TRIALS]

- Three nodes: node 1 makes no ladders (`--transcode-capacity 0`); nodes 2 and 3 give two
  cores each. The sample (640x360, 25 fps, a keyframe a second) is published to node 1 over
  SRT, looped, with the ladder `source,240p:300,144p:150` (2 s segments, 200 ms parts).
- Each trial kills the node that makes the ladder, then polls node 1's 240p playlist every
  20 ms. Two times, from the kill: *placed again* (the stream's placement names the other
  node under a new epoch, from the admin API) and *resumed* (the rung lists media newer
  than its newest 100 ms after the kill, by which time whatever the killed worker had sent
  is in). The killed node is started again from its folder and rejoins before the next
  trial, which kills whichever node then makes the ladder.
Writes placement.json.
"""
import json
import os
import shutil
import sys
import time

import benchlib

OUT, TESSERA = (sys.argv + [""] * 2)[1:3]
TRIALS = int(sys.argv[3]) if len(sys.argv) > 3 else 12
WORK = os.path.join(OUT or "/tmp", "placement")
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
LOGS = open(os.path.join(WORK, "nodes.log"), "ab")
LADDER = "source,240p:300,144p:150"
STREAM = "move"


def log(*a):
    print("bench: placement:", *a, file=sys.stderr, flush=True)


def api(node, token, path):
    return benchlib.admin(node, token, "GET", path)


def placement(node, token):
    p = api(node, token, f"/api/v1/streams/{STREAM}?consistency=local").get("placement")
    return (p["node"], p["epoch"]) if p else None


def newest_media(node):
    """The newest media the 240p playlist lists, as (segment, part): a whole segment counts
    as after all its parts; gaps are not media."""
    text = benchlib.get(node.url(f"/live/{STREAM}/240p/index.m3u8"), timeout=2)
    msn, part, newest, gap = 0, 0, (-1, 0), False
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            msn = int(line.split(":")[1])
        elif line == "#EXT-X-GAP":
            gap = True
        elif line.startswith("#EXT-X-PART:"):
            newest = max(newest, (msn, part))
            part += 1
        elif line and not line.startswith("#"):
            if not gap:
                newest = max(newest, (msn, 1 << 30))
            msn, part, gap = msn + 1, 0, False
    return newest


def main():
    nodes, token = benchlib.form(TESSERA, WORK, 3, LOGS, ["--ladder", LADDER, "--transcode-capacity", "2"])
    # Node 1 makes none: started again with capacity 0 (its folder keeps its membership).
    nodes[0].kill()
    nodes[0].flags = ["--ladder", LADDER, "--transcode-capacity", "0"]
    nodes[0].start()
    origin = nodes[0]
    pub = benchlib.publisher(origin, STREAM, LOGS)
    benchlib.wait("the ladder", lambda: newest_media(origin)[0] >= 2, within=60, bench="placement")
    placed_ms, resumed_ms = [], []
    for trial in range(TRIALS):
        node_id, epoch = benchlib.wait("a placement", lambda: placement(origin, token), bench="placement")
        victim = nodes[node_id - 1]
        benchlib.wait("media in the rung", lambda: newest_media(origin)[0] >= 0, bench="placement")
        t0 = time.monotonic()
        victim.kill()
        time.sleep(0.1)
        before = newest_media(origin)
        placed = resumed = None
        while resumed is None and time.monotonic() - t0 < 30:
            now = time.monotonic()
            if placed is None:
                p = placement(origin, token)
                if p and p[1] > epoch:
                    placed = now - t0
            if newest_media(origin) > before:
                resumed = now - t0
            time.sleep(0.02)
        if resumed is None:
            raise SystemExit("bench: placement: the ladder did not resume within 30 s")
        placed = placed if placed is not None else resumed
        placed_ms.append(placed * 1000)
        resumed_ms.append(resumed * 1000)
        log(f"trial {trial + 1}: node {node_id} killed; placed again after {placed * 1000:.0f} ms, "
            f"resumed after {resumed * 1000:.0f} ms")
        victim.start()
        benchlib.wait("the killed node back", lambda: any(
            n["id"] == node_id and n.get("transcode") for n in api(origin, token, "/api/v1/nodes?consistency=local")["data"]),
            within=60, bench="placement")
        time.sleep(1)
    m = origin.metrics()
    rtt = {k: v for k, v in m.items() if k.startswith("tessera_remote_round_trip_seconds")}
    benchlib.stop(pub)
    for n in nodes:
        n.kill()
    q = lambda v, x: benchlib.percentile(v, x)
    result = {
        "run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "trials": TRIALS,
        "placed_ms": {"p50": q(placed_ms, 0.5), "p99": q(placed_ms, 0.99), "max": max(placed_ms)},
        "resumed_ms": {"p50": q(resumed_ms, 0.5), "p99": q(resumed_ms, 0.99), "max": max(resumed_ms),
                       "all": [round(x) for x in resumed_ms]},
        "round_trip": rtt,
        "segment_s": 2.0,
    }
    with open(os.path.join(OUT, "placement.json"), "w") as f:
        json.dump(result, f, indent=1)
    log(json.dumps(result))


main()
