"""The transcoding ladder beside ffmpeg: the same feeds through Tessera's codec worker and
through one ffmpeg command producing the same ladder (libx264, same preset, tune, bitrates
and keyframe cadence), in the same run.

    python3 benches/ladder.py OUT_DIR TESSERA_BIN LADDER_BENCH_BIN [SECONDS]

For each feed (1080p30 and 720p30, H.264 High with B-frames, like OBS's defaults): frames
per second, CPU seconds per stream-minute, and each rung's bitrate, SSIM and PSNR against
the source scaled to the rung's size (ffmpeg's ssim and psnr filters). Speed and CPU are
the median of RUNS runs, Tessera and ffmpeg alternating, because the machine is shared.
Then the default ladder of the 720p feed pinned to one core, against real time. Writes
ladder.json.
"""
import json
import os
import re
import resource
import subprocess
import sys
import time

OUT, TESSERA, LADDER_BENCH = sys.argv[1], sys.argv[2], sys.argv[3]
SECONDS = int(sys.argv[4]) if len(sys.argv) > 4 else 20
RUNS = int(os.environ.get("LADDER_RUNS", "3"))
LADDER = "source,720p:2500,480p:1200,360p:600"
RUNGS = [(720, 2500), (480, 1200), (360, 600)]
FEEDS = [("1080p30", 1920, 1080, "8000k"), ("720p30", 1280, 720, "5000k")]
os.makedirs(OUT, exist_ok=True)


def log(*a):
    print("bench: ladder:", *a, file=sys.stderr)


def timed(cmd, cwd=None):
    """Runs cmd; returns (stdout, wall seconds, CPU seconds of it and its children)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {p.stderr[-2000:]}")
    return p.stdout, wall, (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)


def quality(encoded, source, w, h):
    """SSIM (all planes) and PSNR (average, dB) of a raw H.264 rung against the source."""
    graph = (f"[0:v]setpts=PTS-STARTPTS,split[a1][a2];[1:v]scale={w}:{h}:flags=bicubic,setpts=PTS-STARTPTS,"
             f"split[r1][r2];[a1][r1]ssim;[a2][r2]psnr")
    p = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-framerate", "30", "-i", encoded, "-i", source,
                        "-lavfi", graph, "-f", "null", "-"], capture_output=True, text=True)
    ssim = re.search(r"SSIM .*All:([0-9.]+)", p.stderr)
    psnr = re.search(r"PSNR .*average:([0-9.]+)", p.stderr)
    return (float(ssim.group(1)) if ssim else None, float(psnr.group(1)) if psnr else None)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def size_of(short, w, h):
    """A rung's size as Tessera's planner computes it (even, source aspect)."""
    other = round(short * max(w, h) / min(w, h) / 2) * 2
    return (other, short) if w >= h else (short, other)


results = {"ladder": LADDER, "preset": "veryfast", "tune": "zerolatency", "seconds": SECONDS, "feeds": []}
for name, w, h, rate in FEEDS:
    src = os.path.join(OUT, f"feed-{name}.ts")
    log(f"making the {name} feed")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={w}x{h}:rate=30,noise=alls=6:allf=t", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=48000", "-t", str(SECONDS), "-c:v", "libx264", "-preset", "veryfast",
                    "-profile:v", "high", "-bf", "3", "-g", "60", "-b:v", rate, "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-f", "mpegts", src], check=True)
    rungs = [(short, kbps, *size_of(short, w, h)) for short, kbps in RUNGS if short < min(w, h)]

    tdir = os.path.join(OUT, f"ladder-tessera-{name}")
    fdir = os.path.join(OUT, f"ladder-ffmpeg-{name}")
    os.makedirs(fdir, exist_ok=True)
    labels = "".join(f"[v{i}]" for i in range(len(rungs)))
    graph = f"[0:v]split={len(rungs)}{labels};" + ";".join(
        f"[v{i}]scale={rw}:{rh}:flags=bicubic[o{i}]" for i, (_, _, rw, rh) in enumerate(rungs))
    ffcmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", src, "-filter_complex", graph]
    for i, (short, kbps, rw, rh) in enumerate(rungs):
        peak = kbps * 11 // 10
        ffcmd += ["-map", f"[o{i}]", "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "high",
                  "-b:v", f"{kbps}k", "-maxrate", f"{peak}k", "-bufsize", f"{peak}k",
                  "-force_key_frames", "source", "-x264-params", "scenecut=0", "-f", "h264",
                  os.path.join(fdir, f"{short}p.h264")]
    runs = {"tessera": [], "ffmpeg": []}
    for run in range(RUNS):
        log(f"{name}: run {run + 1}/{RUNS}")
        out, wall, cpu = timed([LADDER_BENCH, TESSERA, src, LADDER, tdir])
        t = json.loads(out.strip().splitlines()[-1])
        runs["tessera"].append((t["frames"] / wall, cpu))
        _, fwall, fcpu = timed(ffcmd)
        runs["ffmpeg"].append((t["frames"] / fwall, fcpu))
    media, frames = t["media_seconds"], t["frames"]
    result = {}
    for who, rs in runs.items():
        cpu = median([c for _, c in rs])
        result[who] = {"fps": median([f for f, _ in rs]), "cpu_seconds": cpu, "cpu_s_per_stream_minute": cpu / (media / 60),
                       "runs": [{"fps": f, "cpu_seconds": c} for f, c in rs], "rungs": {}}
    tessera, ffmpeg = result["tessera"], result["ffmpeg"]

    for short, kbps, rw, rh in rungs:
        for who, d, res in (("tessera", tdir, tessera), ("ffmpeg", fdir, ffmpeg)):
            f = os.path.join(d, f"{short}p.h264")
            ssim, psnr = quality(f, src, rw, rh)
            res["rungs"][f"{short}p"] = {"size": f"{rw}x{rh}", "target_kbps": kbps,
                                         "kbps": os.path.getsize(f) * 8 / media / 1000, "ssim": ssim, "psnr": psnr}
    results["feeds"].append({"feed": name, "source": f"{w}x{h}", "frames": frames, "media_seconds": media,
                             "tessera": tessera, "ffmpeg": ffmpeg})
    log(f"{name}: Tessera {tessera['fps']:.1f} fps, {tessera['cpu_s_per_stream_minute']:.1f} CPU-s/min; "
        f"ffmpeg {ffmpeg['fps']:.1f} fps, {ffmpeg['cpu_s_per_stream_minute']:.1f} CPU-s/min")

# The default ladder of the 720p feed on one core, beside ffmpeg making the same on one core.
src = os.path.join(OUT, "feed-720p30.ts")
pinned_ff = os.path.join(OUT, "ladder-onecore-ffmpeg")
os.makedirs(pinned_ff, exist_ok=True)
ffcmd = ["taskset", "-c", "0", "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", src, "-filter_complex",
         "[0:v]split=2[a][b];[a]scale=854:480:flags=bicubic[o0];[b]scale=640:360:flags=bicubic[o1]"]
for i, (short, kbps) in enumerate([(480, 1200), (360, 600)]):
    peak = kbps * 11 // 10
    ffcmd += ["-map", f"[o{i}]", "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "high",
              "-b:v", f"{kbps}k", "-maxrate", f"{peak}k", "-bufsize", f"{peak}k", "-force_key_frames", "source",
              "-x264-params", "scenecut=0", "-f", "h264", os.path.join(pinned_ff, f"{short}p.h264")]
one = {"tessera": [], "ffmpeg": []}
for run in range(RUNS):
    log(f"720p30 on one core: run {run + 1}/{RUNS}")
    out, wall, _ = timed(["taskset", "-c", "0", LADDER_BENCH, TESSERA, src, LADDER, os.path.join(OUT, "ladder-onecore")])
    t = json.loads(out.strip().splitlines()[-1])
    one["tessera"].append(t["frames"] / wall)
    _, fwall, _ = timed(ffcmd)
    one["ffmpeg"].append(t["frames"] / fwall)
fps = median(one["tessera"])
results["one_core_720p"] = {"fps": fps, "realtime_factor": fps / 30.0, "ffmpeg_fps": median(one["ffmpeg"]), "runs": one}
log(f"one core: Tessera {fps:.1f} fps, ffmpeg {median(one['ffmpeg']):.1f} fps")

with open(os.path.join(OUT, "ladder.json"), "w") as f:
    json.dump(results, f, indent=2)
