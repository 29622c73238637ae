"""The soak: publishers (SRT, RTMP, some with ladders) and LL-HLS players on one node or
three, for a given time; samples each node's resident memory, descriptors, threads and runtime tasks, and
the players' part latency, and reports their slopes (per hour, after a warm-up).

  python3 benches/soak.py OUT TESSERA MULTI_PUBLISH LL_PLAYERS --nodes N --minutes M
      [--srt S] [--rtmp R] [--ladders L] [--players P] [--check]

--check fails the run if something grew that should stay flat: resident memory,
descriptors or runtime tasks in the last third of the run well above the middle third, players' errors
above 2 % of their parts, a node gone. Writes OUT/soak-Nnode.json."""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

from benchlib import form, percentile, stop, wait, get

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("tessera")
p.add_argument("multi_publish")
p.add_argument("ll_players")
p.add_argument("--nodes", type=int, default=1)
p.add_argument("--minutes", type=float, default=60)
p.add_argument("--srt", type=int, default=45)
p.add_argument("--rtmp", type=int, default=5)
p.add_argument("--ladders", type=int, default=2)
p.add_argument("--players", type=int, default=1000)
p.add_argument("--check", action="store_true")
a = p.parse_args()

os.makedirs(a.out, exist_ok=True)
work = os.path.join(a.out, f"soak-{a.nodes}")
subprocess.run(["rm", "-rf", work])
logs = open(os.path.join(a.out, f"soak-{a.nodes}node.log"), "w")
seconds = int(a.minutes * 60)
# Some SRT streams get a ladder (`bench-I` for I < L).
ladders = [f"--stream-ladder=bench-{i}=source,240p:300" for i in range(a.ladders)]
# The DVR window fills within the warm-up (the first fifth, not in the slopes): each
# rendition's playlist state lists its window's segments, so memory rightly grows until the
# window is full; with the default hour, an hour's soak would measure only that filling.
dvr = max(30, seconds // 6)
nodes, token = form(a.tessera, work, a.nodes, logs, flags=["--ladder", "source", "--dvr-window-s", str(dvr), *ladders])
# Publishers behave as encoders do: one that a node closes (a fenced origin, a cut) connects
# again a second later. multi_publish does so itself; the RTMP publishers are restarted.
pub_log_path = os.path.join(a.out, f"soak-{a.nodes}node-publishers.log")
pub_log = open(pub_log_path, "w")
publishers = subprocess.Popen([a.multi_publish, "samples/sample.ts", str(seconds + 60), str(a.srt), *[n.srt for n in nodes]],
                              stdout=logs, stderr=pub_log, start_new_session=True)
ending = threading.Event()
rtmp_restarts = [0]
rtmp = []


def rtmp_publisher(i):
    node = nodes[i % len(nodes)]
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", "samples/sample-rtmp.flv",
           "-c", "copy", "-f", "flv", f"rtmp://{node.rtmp}/live/rtmp-{i}"]
    while not ending.is_set():
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logs, stderr=logs, start_new_session=True)
        rtmp.append(proc)
        proc.wait()
        if ending.wait(1):
            return
        rtmp_restarts[0] += 1


supervisors = [threading.Thread(target=rtmp_publisher, args=(i,), daemon=True) for i in range(a.rtmp)]
for t in supervisors:
    t.start()
streams = [f"bench-{i}" for i in range(a.srt)] + [f"rtmp-{i}" for i in range(a.rtmp)]
for s in streams:
    wait(f"stream {s}", lambda: get(nodes[-1].url(f"/live/{s}/src/index.m3u8")), within=60, bench="soak")
urls = [n.url(f"/live/{s}/src/index.m3u8") for s in streams for n in nodes]
# The players outlast the sampling by half a minute: their ending is not part of the soak.
players = subprocess.Popen([a.ll_players, str(a.players), str(seconds + 30), "10", *urls], stdout=subprocess.PIPE,
                           stderr=logs, text=True, start_new_session=True)


def sample(node):
    pid = node.proc.pid
    status = open(f"/proc/{pid}/status").read()
    field = lambda name: int(next(l.split()[1] for l in status.splitlines() if l.startswith(name + ":")))
    return {"rss_mb": field("VmRSS") / 1024, "fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": field("Threads")}


def tasks(node):
    """The node's live runtime tasks, from a scrape of its /metrics (None if it has no such
    gauge). Scraped once a minute, Prometheus's default interval: a scrape also folds the
    node's histograms, so scraping more often would hide a recorder that holds samples."""
    try:
        for line in get(node.url("/metrics")).splitlines():
            if line.startswith("tessera_runtime_alive_tasks "):
                return float(line.split()[1])
    except OSError:
        return None
    return None


samples = []
start = time.monotonic()
while time.monotonic() - start < seconds:
    time.sleep(10)
    for i, n in enumerate(nodes):
        if n.proc.poll() is not None:
            raise SystemExit(f"soak: node {i} exited ({n.proc.returncode})")
        at = {"t_s": time.monotonic() - start, "node": i, **sample(n)}
        if len(samples) // a.nodes % 6 == 5:
            at["tasks"] = tasks(n)
        samples.append(at)
lines = [json.loads(l) for l in players.communicate(timeout=120)[0].splitlines() if l.strip()]
ending.set()
for proc in [publishers, *rtmp]:
    stop(proc)
for t in supervisors:
    t.join(timeout=5)
for proc in rtmp:
    stop(proc)
pub_log.close()
srt_reconnects = sum(1 for line in open(pub_log_path) if line.endswith("; connecting again\n"))
totals = lines[-1] if lines and "total_parts" in lines[-1] else {}
windows = [l for l in lines if "t_s" in l and l["t_s"] <= seconds]
for n in nodes:
    n.kill()


def slope(points):
    """Least-squares slope of (t_s, v), per hour."""
    if len(points) < 2:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return None if den == 0 else sum((t - mt) * (v - mv) for t, v in points) / den * 3600


warm = seconds * 0.2
result = {"nodes": a.nodes, "minutes": a.minutes, "dvr_window_s": dvr, "srt": a.srt, "rtmp": a.rtmp, "ladders": a.ladders,
          "players": a.players, "parts": totals.get("total_parts"), "errors": totals.get("total_errors"),
          "publisher_reconnects": srt_reconnects + rtmp_restarts[0], "per_node": []}
for i in range(a.nodes):
    mine = [s for s in samples if s["node"] == i and s["t_s"] >= warm]
    scraped = [s for s in mine if s.get("tasks") is not None]
    result["per_node"].append({
        k + "_per_hour": slope([(s["t_s"], s[k]) for s in mine]) for k in ("rss_mb", "fds", "threads")
    } | {k + "_end": mine[-1][k] if mine else None for k in ("rss_mb", "fds", "threads")}
      | {"tasks_per_hour": slope([(s["t_s"], s["tasks"]) for s in scraped]),
         "tasks_end": scraped[-1]["tasks"] if scraped else None})
lat = [(w["t_s"], w["latency_p50_ms"]) for w in windows if w["t_s"] >= warm and w["latency_p50_ms"] is not None]
result["latency_p50_ms"] = percentile([v for _, v in lat], 0.5)
result["latency_p99_ms"] = percentile([w["latency_p99_ms"] for w in windows if w["latency_p99_ms"] is not None], 0.5)
result["latency_p50_ms_per_hour"] = slope(lat)
json.dump({"result": result, "samples": samples, "windows": windows}, open(os.path.join(a.out, f"soak-{a.nodes}node.json"), "w"))
print(json.dumps(result))

if a.check:
    problems = []
    if not result["parts"]:
        problems.append("the players got no parts")
    elif (result["errors"] or 0) > 0.02 * result["parts"]:
        problems.append(f"players' errors {result['errors']} of {result['parts']} parts")
    for i in range(a.nodes):
        mine = [s for s in samples if s["node"] == i]
        third = max(1, len(mine) // 3)
        middle, last = mine[third:2 * third] or mine, mine[-third:]
        if max(s["rss_mb"] for s in last) > 1.3 * max(s["rss_mb"] for s in middle) + 16:
            problems.append(f"node {i}: resident memory grew: {[round(s['rss_mb']) for s in mine]}")
        if max(s["fds"] for s in last) > max(s["fds"] for s in middle) + 32:
            problems.append(f"node {i}: descriptors grew: {[s['fds'] for s in mine]}")
        scraped = [s["tasks"] for s in mine if s.get("tasks") is not None]
        if not scraped:
            problems.append(f"node {i}: /metrics never gave tessera_runtime_alive_tasks")
        elif scraped[-1] > 1.3 * scraped[len(scraped) // 2] + 64:
            problems.append(f"node {i}: runtime tasks grew: {scraped}")
    if problems:
        raise SystemExit("soak: " + "; ".join(problems))
