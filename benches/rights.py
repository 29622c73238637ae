"""Regions on every request: the part GET throughput of a stream whose rights name regions
(each request looks the viewer up and checks the rule) beside the same stream without a rule,
in one invocation.

    python3 benches/rights.py OUT_DIR TESSERA_BIN [SECONDS] [ROUNDS]

- One node (`--trusted-proxy 127.0.0.1`), the sample published to it, and an address table
  of 20 000 ranges (a realistic override table: the lookup is measured at that size) that
  puts 127.0.0.0/8 and 198.51.100.0/24 in `eu`.
- Each round takes the stream's newest part and runs `wrk -t2 -c64` on it three ways (noting
  the requests per second and the node's CPU time per request, the steadier of the two on a
  machine the load generator shares): with
  no rule; with the rule `["eu"]` (the viewer, 127.0.0.1, is in eu: every answer is 200);
  and with the rule through a trusted proxy (`X-Forwarded-For: 198.51.100.7`, so the
  viewer's address comes from the header chain). The rule is set and cleared between runs
  by the admin API. Rounds alternate so drift hits every way alike; each way's median is
  reported, and the ratios to the run without a rule.
Writes rights.json.
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

import benchlib

OUT, TESSERA = (sys.argv + [""] * 2)[1:3]
SECONDS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 5
WORK = os.path.join(OUT or "/tmp", "rights")


def log(*a):
    print("bench: rights:", *a, file=sys.stderr, flush=True)


def table():
    """20 000 ranges across prefix lengths /16 to /28, then the two that matter."""
    lines = []
    for i in range(20_000):
        prefix = 16 + i % 13
        a, b = 11 + i % 200, (i // 200) % 256
        lines.append(f"{a}.{b}.{(i * 7) % 256}.0/{prefix}={'us' if i % 2 else 'asia'}")
    return lines + ["127.0.0.0/8=eu", "198.51.100.0/24=eu"]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url, pid, headers=()):
    """Requests per second, and the node's CPU microseconds per request."""
    argv = ["wrk", "-t2", "-c64", f"-d{SECONDS}s"]
    for h in headers:
        argv += ["-H", h]
    cpu0 = cpu_seconds(pid)
    out = subprocess.run(argv + [url], capture_output=True, text=True).stdout
    cpu = cpu_seconds(pid) - cpu0
    total = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if bad:
        raise SystemExit(f"bench: rights: {bad.group(1)} answers were not 200 for {url}")
    return rps, cpu / total * 1e6


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    logs = open(os.path.join(WORK, "nodes.log"), "ab")
    nodes, token = benchlib.form(TESSERA, WORK, 1, logs, ["--trusted-proxy", "127.0.0.1"])
    node = nodes[0]
    pub = benchlib.publisher(node, "match", logs)
    try:
        benchlib.admin(node, token, "PUT", "/api/v1/regions", {"ranges": table()})
        playlist = node.url("/live/match/src/index.m3u8")
        benchlib.wait("the stream's parts", lambda: "#EXT-X-PART" in benchlib.get(playlist), bench="rights")
        rule = lambda regions: benchlib.admin(node, token, "PUT", "/api/v1/streams/match", {"regions": regions})
        ways = {"open": [], "limited": [], "limited_via_proxy": []}
        pid = node.proc.pid
        # A first run warms the node's caches and the connections' paths; it is not counted.
        parts = re.findall(r'URI="(part-\d+\.m4s)"', benchlib.get(playlist))
        wrk(node.url(f"/live/match/src/{parts[-1]}"), pid)
        for r in range(ROUNDS):
            parts = re.findall(r'URI="(part-\d+\.m4s)"', benchlib.get(playlist))
            part = node.url(f"/live/match/src/{parts[-1]}")
            rule([])
            ways["open"].append(wrk(part, pid))
            rule(["eu"])
            ways["limited"].append(wrk(part, pid))
            ways["limited_via_proxy"].append(wrk(part, pid, ["X-Forwarded-For: 198.51.100.7"]))
            log(f"round {r + 1}: " + ", ".join(f"{k} {v[-1][0]:.0f} req/s {v[-1][1]:.1f} us" for k, v in ways.items()))
        # From outside the rule's regions every request is refused: the rule holds under load.
        rule(["asia"])
        refused = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", part],
                                 capture_output=True, text=True).stdout
        rule([])
        size = len(benchlib.get_bytes(part))
    finally:
        benchlib.stop(pub)
        node.kill()
    med = {k: statistics.median(r for r, _ in v) for k, v in ways.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in ways.items()}
    result = {
        "run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": SECONDS,
        "rounds": ROUNDS,
        "table_ranges": len(table()),
        "req_s": med,
        "cpu_us_per_request": cpu,
        "all": ways,
        "ratio": {k: med[k] / med["open"] for k in med},
        "cpu_ratio": {k: cpu[k] / cpu["open"] for k in cpu},
        "refused_elsewhere": refused,
        "part_bytes": size,
    }
    with open(os.path.join(OUT, "rights.json"), "w") as f:
        json.dump(result, f, indent=1)
    log(json.dumps({"req_s": med, "ratio": result["ratio"], "cpu_us": cpu, "cpu_ratio": result["cpu_ratio"]}))


main()
