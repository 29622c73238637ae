"""Helpers shared by the benchmark scripts run from benches/: free ports, polling, Tessera
nodes as processes (a cluster formed with the documented commands), their metrics, and
publishers."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

SAMPLE = "samples/sample.ts"


def port(kind=socket.SOCK_STREAM):
    """A free loopback port (TCP, or UDP with socket.SOCK_DGRAM)."""
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait(what, check, within=30, every=0.05, bench="benchmark"):
    """Polls `check` until it returns something true (exceptions count as not yet)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            v = check()
            if v:
                return v
        except Exception:
            pass
        time.sleep(every)
    raise SystemExit(f"{bench}: timed out waiting for {what}")


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def get_bytes(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def admin(node, token, method, path, body=None):
    """An admin API call on `node`; its JSON answer (None when empty)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(node.url(path), data=data, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read() or b"null")


class Node:
    """One `tessera node` process with its own folder and loopback ports."""

    def __init__(self, tessera, work, i, logs, flags=()):
        self.tessera, self.i, self.logs, self.flags = tessera, i, logs, list(flags)
        self.data = os.path.join(work, f"node-{i}")
        self.http = f"127.0.0.1:{port()}"
        self.srt = f"127.0.0.1:{port(socket.SOCK_DGRAM)}"
        self.quic = f"127.0.0.1:{port(socket.SOCK_DGRAM)}"
        self.rtmp = f"127.0.0.1:{port()}"
        self.proc = None
        # A command the node runs under (`taskset -c 0` pins it to one core).
        self.prefix = []

    def start(self, extra=()):
        self.proc = subprocess.Popen(
            [*self.prefix, self.tessera, "node", "--data-dir", self.data, "--cluster", self.quic, "--http", self.http, "--srt",
             self.srt, "--rtmp", self.rtmp, "--log", os.environ.get("BENCH_LOG", "warn"), *self.flags, *extra],
            stdout=self.logs, stderr=self.logs)
        wait(f"node {self.i}", lambda: get(f"http://{self.http}/healthz") is not None)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def url(self, path):
        return f"http://{self.http}{path}"

    def metrics(self):
        """name{labels} -> value, from /metrics."""
        out = {}
        for line in get(self.url("/metrics")).splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out


def form(tessera, work, n, logs, flags=()):
    """A cluster of `n` nodes formed with `tessera cluster init` and `--join`; returns the
    nodes (ids 1..n in order) and the admin token."""
    nodes = [Node(tessera, work, i, logs, flags) for i in range(n)]
    out = subprocess.run([tessera, "cluster", "init", "--data-dir", nodes[0].data, "--cluster", nodes[0].quic,
                          "--http", nodes[0].http], capture_output=True, text=True, check=True)
    tokens = dict(line.split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
    nodes[0].start()
    for node in nodes[1:]:
        node.start(["--join", nodes[0].quic, "--token", tokens["join-token"]])
    return nodes, tokens["admin-token"]


def publisher(node, name, logs, source=SAMPLE, clock=False):
    """ffmpeg (or the clocked test feed) publishing `name` to `node` over SRT, in its own
    process group."""
    url = f"srt://{node.srt}?mode=caller&latency=120000&pkt_size=1316"
    sid = f"#!::r=live/{name},m=publish"
    if clock:
        argv = ["interop/clock-feed.sh", "-f", "mpegts", "-srt_streamid", sid, url]
    else:
        argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", source, "-c", "copy",
                "-f", "mpegts", "-srt_streamid", sid, url]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logs, stderr=logs, start_new_session=True)


def stop(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


def percentile(values, q):
    """The q-quantile (0..1) of `values`, by linear interpolation."""
    v = sorted(values)
    if not v:
        return None
    k = (len(v) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)
