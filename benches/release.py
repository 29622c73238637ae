"""Scheduled releases: how close together the nodes of a cluster open a premiere, how long
after its time the cluster commits it, and what pre-positioning saves the origin.

    python3 benches/release.py OUT_DIR TESSERA_BIN PROBE_BIN [TRIALS]

- Visibility skew, on 3 and then 5 nodes on loopback: a live stream published to node 1
  (and pre-positioned on the others) is released TRIALS times (each release taken down
  a second later, then scheduled again). A probe per node polls the stream's media
  playlist on a kept-alive connection from 20 ms before the release time (busy: only around
  the release, so the probes do not starve the nodes beforehand); the node's
  opening is its first 200. Skew is the last node's opening minus the first's; open delay
  is each node's opening minus the release time. Commit latency is the leader's open
  delay (it serves the moment it applies the opening entry, right after the commit).
- The origin at release, with pre-positioning (the other nodes follow the rehearsal
  beforehand) and without it (`--release-prewarm-s 0`: they start at the release time,
  as viewers arriving there would make them): the origin's relay upload in the 3 s after
  the release against the 3 s before it, and each node's open delay.
Writes release.json.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import benchlib
from benchlib import get, percentile, stop

OUT, TESSERA, PROBE = (sys.argv + [""] * 3)[1:4]
TRIALS = int(sys.argv[4]) if len(sys.argv) > 4 else 30
WORK = os.path.join(OUT or "/tmp", "release")
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
LOGS = open(os.path.join(WORK, "nodes.log"), "ab")
LEAD_MS = 1500


def log(*a):
    print("bench: release:", *a, file=sys.stderr, flush=True)


def wait(what, check, within=30):
    return benchlib.wait(what, check, within, bench="release benchmark")


def rfc3339(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def api(node, token, method, path, body=None):
    req = urllib.request.Request(node.url(path), method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def now_ms():
    return int(time.time() * 1000)


def release_once(nodes, token, name="premiere", lead_ms=LEAD_MS, watch=None):
    """Schedules the release of live stream `name` `lead_ms` ahead (taken down a second
    after it), probes every node, and returns (open time per node minus the release time,
    ms; the same on the leader: the commit latency). `watch(at_ms)` runs while the probe
    waits (to sample the origin around the release)."""
    at = now_ms() + lead_ms
    r = api(nodes[1], token, "POST", "/api/v1/releases",
            {"content": f"live/{name}", "at": rfc3339(at), "end": rfc3339(at + 1000 + lead_ms)})
    path = f"/live/{name}/src/index.m3u8"
    probe = subprocess.Popen([PROBE, str(at - 20), str(at + 8000)] + [n.url(path) for n in nodes],
                             stdout=subprocess.PIPE, text=True)
    if watch:
        watch(at)
    seen = json.loads(probe.communicate()[0])
    delays = [s["first_ok_ms"] - at if s["first_ok_ms"] is not None else None for s in seen]
    wait("the takedown", lambda: api(nodes[0], token, "GET", f"/api/v1/releases/{r['id']}")["state"] == "ended",
         within=20)
    # The leader serves the moment it applies the opening entry, right after it commits.
    return delays, delays[leader_index(nodes, token)]


def rehearse(node, name):
    """Publishes the sample as `name` to `node` and waits until the node holds it."""
    feed = benchlib.publisher(node, name, LOGS)
    wait(f"the rehearsal of {name} on its origin",
         lambda: any(s["name"] == name for s in json.loads(get(node.url("/streams")))["streams"]))
    return feed


CLUSTERS = []


def cluster(n, flags=()):
    CLUSTERS.append(n)
    work = os.path.join(WORK, f"cluster-{len(CLUSTERS)}-{n}-nodes")
    return benchlib.form(TESSERA, work, n, LOGS, flags)


def leader_index(nodes, token):
    return api(nodes[0], token, "GET", "/api/v1/cluster")["leader"] - 1


def skew_trials(n):
    nodes, token = cluster(n)
    feed = rehearse(nodes[0], "premiere")
    try:
        # Pre-positioned: every node ready before the first release.
        first = api(nodes[1], token, "POST", "/api/v1/releases",
                    {"content": "live/premiere", "at": rfc3339(now_ms() + 60_000)})
        wait("every node ready", lambda: api(nodes[1], token, "GET", f"/api/v1/releases/{first['id']}")[
            "ready_nodes"] == n, within=30)
        api(nodes[1], token, "DELETE", f"/api/v1/releases/{first['id']}")
        skews, delays, commits = [], [], []
        for t in range(TRIALS):
            d, commit = release_once(nodes, token)
            if None in d:
                log(f"{n} nodes, trial {t + 1}: a node did not open: {d}")
                continue
            skews.append(max(d) - min(d))
            delays.extend(d)
            commits.append(commit)
            log(f"{n} nodes, trial {t + 1}/{TRIALS}: skew {skews[-1]:.1f} ms, opened {min(d):.1f}..{max(d):.1f} ms "
                f"after its time, committed {commit:.1f} ms after")
        row = {"nodes": n, "releases": len(skews),
               "skew_p50_ms": percentile(skews, 0.5), "skew_p99_ms": percentile(skews, 0.99),
               "skew_max_ms": max(skews) if skews else None,
               "open_delay_p50_ms": percentile(delays, 0.5), "open_delay_p99_ms": percentile(delays, 0.99),
               "commit_p50_ms": percentile(commits, 0.5), "commit_p99_ms": percentile(commits, 0.99)}
        log(f"{n} nodes: {row}")
        return row
    finally:
        stop(feed)
        for node in nodes:
            node.kill()


def origin_at_release(prewarm):
    """The origin's upload around the release, and each node's open delay, on 5 nodes."""
    flags = [] if prewarm else ["--release-prewarm-s", "0"]
    nodes, token = cluster(5, flags)
    rows = []
    try:
        for t in range(3):
            # A stream of its own each time: no node follows it before its release but
            # for pre-positioning.
            name = f"event{t}"
            samples = {}

            def watch(at):
                sent = lambda: nodes[0].metrics().get("tessera_relay_bytes_sent_total", 0)
                time.sleep(max(0, (at - 3000 - now_ms()) / 1000))
                samples["before"] = sent()
                time.sleep(max(0, (at - now_ms()) / 1000))
                samples["at"] = sent()
                time.sleep(3)
                samples["after"] = sent()

            feed = rehearse(nodes[0], name)
            delays, commit = release_once(nodes, token, name, lead_ms=8000, watch=watch)
            stop(feed)
            row = {"before_3s_bytes": samples["at"] - samples["before"], "after_3s_bytes": samples["after"] - samples["at"],
                   "open_delays_ms": delays, "commit_ms": commit}
            log(f"{'with' if prewarm else 'without'} pre-positioning, trial {t + 1}: {row}")
            rows.append(row)
        return {"prepositioned": prewarm, "trials": rows,
                "after_3s_bytes_p50": percentile([r["after_3s_bytes"] for r in rows], 0.5),
                "before_3s_bytes_p50": percentile([r["before_3s_bytes"] for r in rows], 0.5),
                "slowest_open_ms_p50": percentile([max(d for d in r["open_delays_ms"] if d is not None)
                                                   for r in rows], 0.5)}
    finally:
        for node in nodes:
            node.kill()


def main():
    result = {"trials": TRIALS, "run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    result["skew"] = [skew_trials(3), skew_trials(5)]
    result["origin"] = [origin_at_release(True), origin_at_release(False)]
    with open(os.path.join(OUT, "release.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
