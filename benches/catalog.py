"""The catalog beside etcd: a 3-node Tessera cluster (formed with `tessera cluster init` and
`tessera node --join`) and a 3-member etcd 3.4 cluster, on loopback, each with its default
timeouts, under the same client load in the same run.

    python3 benches/catalog.py OUT_DIR TESSERA_BIN CATALOG_LOAD_BIN [SECONDS] [TRIALS]

Writes: CLIENTS concurrent clients spread over the three members, each writing new keys one
after another (Tessera: `PUT /api/v1/streams/NAME` on the admin API; etcd: `POST /v3/kv/put`
on its HTTP/JSON gateway), the same ~100-byte record. Both answer once the write is
committed by a quorum and fsynced.

Leader loss: kill -9 the leader, then write through the survivors, a new attempt every 50 ms
(not waiting for earlier ones to fail), until a write commits; the time from the kill to that
write. The killed member is restarted from its folder between trials.
Writes catalog.json.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import benchlib
from benchlib import port

OUT, TESSERA, LOAD = (sys.argv + [""] * 3)[1:4]
SECONDS = int(sys.argv[4]) if len(sys.argv) > 4 else 20
TRIALS = int(sys.argv[5]) if len(sys.argv) > 5 else 10
CLIENTS = [16, 64]
WORK = os.path.join(OUT or "/tmp", "catalog")
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
LOGS = open(os.path.join(WORK, "members.log"), "ab")


def log(*a):
    print("bench: catalog:", *a, file=sys.stderr)


def http_json(url, token=None, timeout=2):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


def wait(what, check, within=30):
    return benchlib.wait(what, check, within, bench="catalog benchmark")


class Member:
    def __init__(self, argv):
        self.argv = argv
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdout=LOGS, stderr=LOGS)

    def alive(self):
        return self.proc and self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()


def load(target, urls, *args):
    p = subprocess.run([LOAD, *args[:1], target, ",".join(urls), *map(str, args[1:])],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"catalog_load failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout)


# --- Tessera ---------------------------------------------------------------------------
class Tessera:
    name = "tessera"

    def __init__(self):
        self.nodes = []
        for i in range(3):
            http, cluster = port(), port(socket.SOCK_DGRAM)
            data = os.path.join(WORK, f"tessera-{i}")
            argv = [TESSERA, "node", "--data-dir", data, "--cluster", f"127.0.0.1:{cluster}",
                    "--http", f"127.0.0.1:{http}", "--srt", f"127.0.0.1:{port(socket.SOCK_DGRAM)}",
                    "--rtmp", f"127.0.0.1:{port()}", "--log", os.environ.get("CATALOG_LOG", "warn")]
            self.nodes.append((Member(argv), f"http://127.0.0.1:{http}", f"127.0.0.1:{cluster}", data))
        first = self.nodes[0]
        out = subprocess.run([TESSERA, "cluster", "init", "--data-dir", first[3], "--cluster", first[2],
                              "--http", first[1].removeprefix("http://")], capture_output=True, text=True, check=True)
        tokens = dict(line.split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
        self.token, join = tokens["admin-token"], tokens["join-token"]
        first[0].start()
        wait("the first node", lambda: self.status(first[1]))
        for m, _, _, _ in self.nodes[1:]:
            m.argv += ["--join", first[2], "--token", join]
            m.start()
        wait("three voters", lambda: len([x for x in self.status(first[1])["members"]
                                          if x["role"] in ("leader", "follower")]) == 3)
        for m, *_ in self.nodes[1:]:
            m.argv = m.argv[:m.argv.index("--join")]  # restarts come from the folder alone

    def status(self, url):
        return http_json(f"{url}/api/v1/cluster", self.token)

    def urls(self):
        return [u for _, u, _, _ in self.nodes]

    def leader(self):
        """(index of the leader, its pid) as the members agree."""
        for i, (m, url, _, _) in enumerate(self.nodes):
            if m.alive():
                s = self.status(url)
                if s.get("leader") is not None:
                    for j, (mm, u2, c2, _) in enumerate(self.nodes):
                        if any(x["id"] == s["leader"] and x["addr"] == c2 for x in s["members"]):
                            return j, mm.proc.pid
        return None

    def healthy(self, i):
        s = self.status(self.nodes[i][1])
        return s.get("leader") is not None and s.get("applied") == s.get("commit")

    def args(self):
        return [self.token]

    def stop(self):
        for m, *_ in self.nodes:
            m.stop()


# --- etcd ------------------------------------------------------------------------------
class Etcd:
    name = "etcd"

    def __init__(self):
        peers = [(f"e{i}", port(), port()) for i in range(3)]
        initial = ",".join(f"{n}=http://127.0.0.1:{p}" for n, _, p in peers)
        self.nodes = []
        for n, client, peer in peers:
            argv = ["etcd", "--name", n, "--data-dir", os.path.join(WORK, f"etcd-{n}"),
                    "--listen-client-urls", f"http://127.0.0.1:{client}",
                    "--advertise-client-urls", f"http://127.0.0.1:{client}",
                    "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                    "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                    "--initial-cluster", initial, "--initial-cluster-state", "new",
                    "--initial-cluster-token", "bench", "--log-level", "warn", "--logger", "zap"]
            m = Member(argv)
            m.start()
            self.nodes.append((m, f"http://127.0.0.1:{client}"))
        wait("an etcd leader", lambda: self.leader())

    def urls(self):
        return [u for _, u in self.nodes]

    def member_status(self, url):
        req = urllib.request.Request(f"{url}/v3/maintenance/status", data=b"{}", method="POST")
        with urllib.request.urlopen(req, timeout=2) as r:
            return json.load(r)

    def leader(self):
        for m, url in self.nodes:
            if m.alive():
                s = self.member_status(url)
                if s.get("leader"):
                    for j, (mm, u2) in enumerate(self.nodes):
                        if mm.alive() and self.member_status(u2)["header"]["member_id"] == s["leader"]:
                            return j, mm.proc.pid
        return None

    def healthy(self, i):
        s = self.member_status(self.nodes[i][1])
        return bool(s.get("leader"))

    def args(self):
        return []

    def stop(self):
        for m, _ in self.nodes:
            m.stop()


def writes(store):
    rows = []
    for clients in CLIENTS:
        r = load(store.name, store.urls(), "write", clients, SECONDS, *store.args())
        r["store"] = store.name
        log(f"{store.name} writes, {clients} clients: {r['writes_per_s']:.0f}/s, p50 {r['p50_ms']:.1f} ms, "
            f"p99 {r['p99_ms']:.1f} ms, {r['errors']} errors")
        rows.append(r)
    return rows


def recoveries(store):
    times = []
    for t in range(TRIALS):
        i, pid = wait(f"{store.name} leader", store.leader)
        survivors = [u for j, u in enumerate(store.urls()) if j != i]
        r = load(store.name, survivors, "recover", pid, *store.args())
        times.append(r["recovery_ms"])
        log(f"{store.name} leader loss {t + 1}/{TRIALS}: first write after {r['recovery_ms']:.0f} ms")
        member = store.nodes[i][0]
        member.proc.wait()
        member.start()
        wait(f"{store.name} member back", lambda: store.healthy(i), within=60)
        time.sleep(2)
    return times


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(-(-len(xs) * q // 1)) - 1))]


def main():
    result = {"seconds": SECONDS, "trials": TRIALS, "run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "etcd_version": subprocess.run(["etcd", "--version"], capture_output=True, text=True).stdout.split("\n")[0]}
    for make in (Tessera, Etcd):
        store = make()
        try:
            result[f"{store.name}_writes"] = writes(store)
            rec = recoveries(store)
            result[f"{store.name}_recovery_ms"] = rec
            result[f"{store.name}_recovery"] = {"p50": pct(rec, 0.5), "p99": pct(rec, 0.99), "max": max(rec)}
        finally:
            store.stop()
    with open(os.path.join(OUT, "catalog.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
