"""VOD transcoding: how fast a cluster turns a 1080p film into the four-rung ladder, on one,
two and three nodes, beside one ffmpeg process making the same ladder on the same cores, in
the same invocation.

    python3 benches/transcode.py OUT_DIR TESSERA_BIN [SECONDS]

- The film: SECONDS (default 20) of 1080p25 with B-frames (x264 veryfast, keyframes every
  2 s) and AAC, made by ffmpeg.
- Tessera: the film uploaded with `tessera vod upload` to node 1 of a cluster sharing an
  archive folder, with the default VOD ladder (1080p 5000, 720p 2800, 480p 1400, 360p 800
  kb/s, x264 veryfast, an IDR every segment). Timed from the asset's record (the upload's
  last byte) to every rendition done. Each node runs one job at a time (`--vod-workers 1`)
  and is pinned to one core (`taskset`); the machine has as many cores as `nproc` says, so
  a third node shares a core with the first.
- ffmpeg: one process, the film decoded once and split to the four rungs, the same
  encoder settings (x264 veryfast, the same average and peak rates, a keyframe every 4 s,
  no scene cuts), the audio copied into each rung, pinned to the same cores.
Throughput is source seconds per wall second. Writes transcode.json.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import benchlib

OUT, TESSERA = (sys.argv + [""] * 2)[1:3]
SECONDS = int(sys.argv[3]) if len(sys.argv) > 3 else 20
WORK = os.path.join(OUT or "/tmp", "transcode")
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
LOGS = open(os.path.join(WORK, "nodes.log"), "ab")
CORES = os.cpu_count() or 1
RUNGS = [(1920, 1080, 5000), (1280, 720, 2800), (854, 480, 1400), (640, 360, 800)]


def log(*a):
    print("bench: transcode:", *a, file=sys.stderr, flush=True)


def film():
    path = os.path.join(WORK, "film.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25", "-f", "lavfi",
                    "-i", "sine=frequency=440:sample_rate=48000", "-t", str(SECONDS), "-c:v", "libx264", "-preset",
                    "veryfast", "-bf", "2", "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", path],
                   check=True)
    return path


def ffmpeg_ladder(path, cores):
    """Wall seconds for one ffmpeg process to make the ladder on `cores`."""
    split = f"[0:v]split={len(RUNGS)}" + "".join(f"[in{i}]" for i in range(len(RUNGS))) + ";"
    split += ";".join(f"[in{i}]scale={w}:{h}:flags=bicubic[out{i}]" for i, (w, h, _) in enumerate(RUNGS))
    argv = ["taskset", "-c", cores, "ffmpeg", "-v", "error", "-y", "-i", path, "-filter_complex", split]
    for i, (_, _, kbps) in enumerate(RUNGS):
        argv += ["-map", f"[out{i}]", "-map", "0:a", "-c:a", "copy", "-c:v", "libx264", "-preset", "veryfast",
                 "-b:v", f"{kbps}k", "-maxrate", f"{kbps * 11 // 10}k", "-bufsize", f"{kbps * 11 // 10}k",
                 "-sc_threshold", "0", "-force_key_frames", "expr:gte(t,n_forced*4)", "-f", "mp4",
                 os.path.join(WORK, f"ffmpeg-{i}.mp4")]
    started = time.monotonic()
    subprocess.run(argv, check=True)
    return time.monotonic() - started


def tessera_ladder(path, pins, slots=1):
    """Wall seconds for a cluster of len(pins) nodes (node i pinned to cores pins[i]) to
    make the ladder, from the asset's record to the last rendition done; and where each
    rendition was made."""
    run = os.path.join(WORK, f"cluster-{len(pins)}-{slots}")
    archive = os.path.join(run, "archive")
    flags = ["--cold-url", archive, "--vod-workers", str(slots)]
    nodes = [benchlib.Node(TESSERA, run, i, LOGS, flags) for i in range(len(pins))]
    for node, cores in zip(nodes, pins):
        node.prefix = ["taskset", "-c", cores]
    out = subprocess.run([TESSERA, "cluster", "init", "--data-dir", nodes[0].data, "--cluster", nodes[0].quic,
                          "--http", nodes[0].http], capture_output=True, text=True, check=True)
    tokens = dict(line.split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
    admin = tokens["admin-token"]
    try:
        nodes[0].start()
        for node in nodes[1:]:
            node.start(["--join", nodes[0].quic, "--token", tokens["join-token"]])
        # Every node a voter before the film arrives.
        benchlib.wait("the cluster", lambda: members(nodes[0], admin) == len(nodes), within=60)
        up = subprocess.run([TESSERA, "vod", "upload", path, "--title", "bench", "--node", f"http://{nodes[0].http}",
                             "--admin-token", admin], capture_output=True, text=True, check=True,
                            env={**os.environ, "XDG_CACHE_HOME": os.path.join(run, "cache")})
        asset = next(line.split(": ", 1)[1] for line in up.stdout.splitlines() if line.startswith("asset: "))
        started = time.monotonic()
        while True:
            a = api(nodes[0], admin, f"/api/v1/assets/{asset}")
            if a["state"] in ("ready", "failed"):
                break
            time.sleep(0.1)
        seconds = time.monotonic() - started
        assert a["state"] == "ready", a
        made = {j["rendition"]: j["output_node"] for j in a["jobs"]}
        return seconds, made
    finally:
        for node in nodes:
            node.kill()


def api(node, admin, path):
    req = urllib.request.Request(node.url(path), headers={"Authorization": f"Bearer {admin}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def members(node, admin):
    try:
        status = api(node, admin, "/api/v1/cluster")
    except Exception:
        return 0
    return sum(1 for m in status.get("members", []) if m.get("role") in ("leader", "follower"))


def main():
    path = film()
    both = "0,1" if CORES >= 2 else "0"
    second = "1" if CORES >= 2 else "0"
    runs = {}
    runs["ffmpeg_1core"] = ffmpeg_ladder(path, "0")
    log(f"ffmpeg, one core: {SECONDS / runs['ffmpeg_1core']:.2f} s/s")
    runs["nodes_1"], made_1 = tessera_ladder(path, ["0"])
    log(f"one node, one core: {SECONDS / runs['nodes_1']:.2f} s/s")
    runs["ffmpeg_2core"] = ffmpeg_ladder(path, both)
    log(f"ffmpeg, two cores: {SECONDS / runs['ffmpeg_2core']:.2f} s/s")
    runs["nodes_2"], made_2 = tessera_ladder(path, ["0", second])
    log(f"two nodes, a core each: {SECONDS / runs['nodes_2']:.2f} s/s")
    runs["nodes_3"], made_3 = tessera_ladder(path, ["0", second, "0"])
    log(f"three nodes on two cores: {SECONDS / runs['nodes_3']:.2f} s/s")
    runs["node_2slots"], _ = tessera_ladder(path, [both], slots=2)
    log(f"one node, two cores, two jobs at once: {SECONDS / runs['node_2slots']:.2f} s/s")
    result = {"run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "film_seconds": SECONDS, "cores": CORES,
              "seconds": runs, "throughput": {k: SECONDS / v for k, v in runs.items()},
              "made_by": {"1": made_1, "2": made_2, "3": made_3}}
    with open(os.path.join(OUT, "transcode.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
