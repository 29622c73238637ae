"""Live transcoding capacity on one, two and three nodes: how many streams, all published to
node 1, have ladders that all keep real time.

    python3 benches/capacity.py OUT_DIR TESSERA_BIN [STEP_SECONDS] [MAX_STREAMS]

- Each node has a fixed CPU budget of BUDGET cores (default 0.6), enforced by the kernel: the
  node process is put in a cgroup of its own (cgroup v1 `cpu` controller,
  `cpu.cfs_quota_us = BUDGET x cpu.cfs_period_us`) before it starts any worker, so its codec
  workers, its children, share that budget. `--transcode-capacity` is the same budget.
  Three nodes get 1.8 of the machine's 2 cores; the publishers (ffmpeg copying the sample)
  and this script run outside the budgets.
- Streams of the sample (640x360, 25 fps) with the ladder `source,240p:300,144p:150` are
  published to node 1 one more every STEP seconds. After each addition the run waits 4 s for
  the new ladder to start, then watches the rest of the step: the streams are kept if no
  worker falls behind (`tessera_transcode_skips_total`), drops a rung for load
  (`tessera_transcode_rungs_dropped_total`) or dies (`tessera_codec_worker_exits_total`),
  and node 1, which ingests every stream and runs every stream's encoder, loses no input
  (`tessera_ingest_errors_total`, `tessera_ingest_frames_dropped_total{reason="lagging"}`). The capacity is the most streams that kept
  real time; the run stops at the first step that did not, or at MAX_STREAMS.
Writes capacity.json.
"""
import json
import os
import shutil
import sys
import time

import benchlib

OUT, TESSERA = (sys.argv + [""] * 2)[1:3]
STEP = int(sys.argv[3]) if len(sys.argv) > 3 else 12
MAX_STREAMS = int(sys.argv[4]) if len(sys.argv) > 4 else 24
BUDGET = float(os.environ.get("BUDGET", "0.6"))
WORK = os.path.join(OUT or "/tmp", "capacity")
CGROUP = "/sys/fs/cgroup/cpu"
LADDER = "source,240p:300,144p:150"
BAD = (
    "tessera_transcode_skips_total",
    "tessera_transcode_rungs_dropped_total",
    "tessera_codec_worker_exits_total",
    # The origin losing input (SRT packets it could not take in time show as continuity
    # errors) or dropping frames for lag is a stream not kept either.
    "tessera_ingest_errors_total",
    'tessera_ingest_frames_dropped_total{reason="lagging"}',
)


def log(*a):
    print("bench: capacity:", *a, file=sys.stderr, flush=True)


def budget(name, pid):
    """Puts process `pid` (and what it starts later) under a cgroup of BUDGET cores."""
    path = os.path.join(CGROUP, name)
    os.makedirs(path, exist_ok=True)
    period = int(open(os.path.join(path, "cpu.cfs_period_us")).read())
    with open(os.path.join(path, "cpu.cfs_quota_us"), "w") as f:
        f.write(str(int(BUDGET * period)))
    with open(os.path.join(path, "cgroup.procs"), "w") as f:
        f.write(str(pid))
    return path


def bad_events(node):
    m = node.metrics()
    return sum(v for k, v in m.items() if k.split("{")[0] in BAD or k in BAD)


def throttled(paths):
    """Seconds the budgets held their nodes back so far."""
    total = 0
    for p in paths:
        for line in open(os.path.join(p, "cpu.stat")):
            if line.startswith("throttled_time"):
                total += int(line.split()[1]) / 1e9
    return total


def run(n):
    work = os.path.join(WORK, f"nodes-{n}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    logs = open(os.path.join(work, "nodes.log"), "ab")
    flags = ["--ladder", LADDER, "--transcode-capacity", str(BUDGET)]
    nodes = [benchlib.Node(TESSERA, work, i, logs, flags) for i in range(n)]
    # Each node enters its budget as soon as it is started, before any stream.
    paths = []
    start = benchlib.Node.start

    def budgeted(node, extra=()):
        start(node, extra)
        paths.append(budget(f"tessera-bench-{n}-{node.i}", node.proc.pid))

    benchlib.Node.start = budgeted
    try:
        nodes, token = benchlib.form(TESSERA, work, n, logs, flags)
    finally:
        benchlib.Node.start = start
    origin = nodes[0]
    pubs, kept, steps = [], 0, []
    for k in range(1, MAX_STREAMS + 1):
        pubs.append(benchlib.publisher(origin, f"s{k}", logs))
        time.sleep(4)
        before, held0 = bad_events(origin), throttled(paths)
        time.sleep(STEP - 4)
        bad = bad_events(origin) - before
        steps.append({"streams": k, "bad_events": bad, "throttled_s": round(throttled(paths) - held0, 2)})
        log(f"{n} node(s), {k} streams: {'real time' if bad == 0 else f'{bad:.0f} skips, drops or exits'}")
        if bad:
            break
        kept = k
    # Where the ladders of the streams that kept real time were made: streams per node.
    placed = {}
    for k in range(1, kept + 1):
        try:
            node = (benchlib.admin(origin, token, "GET", f"/api/v1/streams/s{k}").get("placement") or {}).get("node")
        except Exception:
            node = None
        placed[str(node)] = placed.get(str(node), 0) + 1
    # Ladders a crowded node asked to move elsewhere, over the whole run.
    sheds = 0
    for node in nodes:
        try:
            sheds += sum(v for k, v in node.metrics().items() if k.split("{")[0] == "tessera_ladder_sheds_total")
        except Exception:
            pass
    for p in pubs:
        benchlib.stop(p)
    for node in nodes:
        node.kill()
    # The workers end when their node's pipe closes; the budgets go once they have.
    for p in paths:
        for _ in range(100):
            try:
                os.rmdir(p)
                break
            except OSError:
                time.sleep(0.1)
    return {"nodes": n, "streams": kept, "steps": steps, "placed": placed, "sheds": sheds}


def main():
    if not os.access(os.path.join(CGROUP, "cgroup.procs"), os.W_OK):
        raise SystemExit(f"bench: capacity: needs a writable cgroup v1 cpu controller at {CGROUP} (run as root)")
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    runs = [run(n) for n in (1, 2, 3)]
    one = runs[0]["streams"] or 1
    result = {
        "run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "budget_cores": BUDGET,
        "step_s": STEP,
        "runs": runs,
        "ratio": {r["nodes"]: r["streams"] / one for r in runs},
    }
    with open(os.path.join(OUT, "capacity.json"), "w") as f:
        json.dump(result, f, indent=1)
    log(json.dumps({"streams": [r["streams"] for r in runs], "ratio": result["ratio"]}))


main()
