"""Content protection: license requests per second on one core, and what AES-128 and cbcs
cost a node per stream.

    python3 benches/license.py OUT_DIR TESSERA_BIN MULTI_PUBLISH_BIN [SECONDS]

- License: one node, pinned to one core (taskset), serves an encrypted live stream; wrk,
  pinned to the other core, asks for its key with a valid token over 64 kept-alive
  connections. Requests per second and latency percentiles, as wrk reports them. Each
  request is checked in full: token signature and expiry, revocation, release, key, region
  and stream limit.
- Encryption cost: ten streams published to one node (the bundled sample, passthrough),
  each with one viewer that fetches every part as it is listed (so the node encrypts every
  part and segment it serves, once); the node's CPU seconds per stream-minute in clear,
  with AES-128 and with cbcs, in the same invocation.
- Encryption alone (`encrypt_cost`, beside MULTI_PUBLISH_BIN): the sample packaged as a node
  packages it, every part encrypted over and over on one core: CPU per stream-minute and
  throughput of AES-128 and cbcs beside a plain copy.
Writes license.json.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

import benchlib
from benchlib import get

OUT, TESSERA, MULTI = (sys.argv + [""] * 3)[1:4]
SECONDS = int(sys.argv[4]) if len(sys.argv) > 4 else 20
WORK = os.path.join(OUT or "/tmp", "license")
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
LOGS = open(os.path.join(WORK, "nodes.log"), "ab")
ADMIN = "license-bench-admin"
KEK = os.path.join(WORK, "kek")
with open(KEK, "w") as f:
    f.write(os.urandom(32).hex())
STREAMS = 10


def log(*a):
    print("bench: license:", *a, file=sys.stderr, flush=True)


def wait(what, check, within=30):
    return benchlib.wait(what, check, within, bench="license benchmark")


def api(node, method, path, body=None):
    req = urllib.request.Request(node.url(path), method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def start(i, pin=None):
    node = benchlib.Node(TESSERA, WORK, i, LOGS, ["--kek-file", KEK, "--admin-token", ADMIN])
    if pin is not None:
        node.prefix = ["taskset", "-c", str(pin)]
    node.start()
    return node


def token(node, content, **extra):
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    body = {"subject": "bench", "content": content, "expires": expires, **extra}
    return api(node, "POST", "/api/v1/tokens", body)["token"]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url):
    """wrk on the other core against `url`: requests per second, latency percentiles, refusals."""
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{SECONDS}s", "--latency", url],
                         capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    pct = {}
    for p, v, unit in re.findall(r"\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\b", out):
        pct[p] = float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return {"requests_per_s": rate, "p50_ms": pct.get("50"), "p99_ms": pct.get("99"),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0, "connections": 64, "seconds": SECONDS}


def license_rate():
    """Key requests per second: a token without a stream limit, then one with a limit (each
    request then counts the viewer's stream, on this node: a one-node cluster counts all)."""
    node = start(0, pin=0)
    rows = []
    try:
        api(node, "PUT", "/api/v1/streams/keyed", {"encryption": "aes-128"})
        feed = benchlib.publisher(node, "keyed", LOGS)
        t = token(node, "live/keyed")
        playlist = wait("a key in the playlist", lambda: (lambda p: p if "#EXT-X-KEY" in p else None)(
            get(node.url(f"/live/keyed/src/index.m3u8?token={t}"))))
        key_uri = re.search(r'#EXT-X-KEY:METHOD=AES-128,URI="([^"]+)"', playlist).group(1)
        limited = token(node, "live/keyed", max_streams=2)
        for label, uri in [("no stream limit", key_uri), ("stream limit", key_uri.replace(t, limited))]:
            url = node.url(uri)
            assert len(urllib.request.urlopen(url, timeout=5).read()) == 16
            row = wrk(url)
            row["token"] = label
            log(f"{label}: {row['requests_per_s']:.0f} key requests/s on one core, p50 {row['p50_ms']} ms, "
                f"p99 {row['p99_ms']} ms, {row['non_2xx']} refused")
            rows.append(row)
        benchlib.stop(feed)
    finally:
        node.kill()
    return rows


class Viewer:
    """Fetches every part of one stream's passthrough as it is listed."""

    def __init__(self, node, name, token):
        self.node, self.name, self.token, self.done, self.fetched = node, name, token, False, 0
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        seen = set()
        q = f"?token={self.token}" if self.token else ""
        while not self.done:
            try:
                text = get(self.node.url(f"/live/{self.name}/src/index.m3u8{q}"), timeout=3)
                listed = re.findall(r'URI="((?:part-\d+\.m4s)|(?:init-[\w-]+\.mp4))"', text)
                for uri in listed + re.findall(r"^(seg-\d+\.m4s)$", text, re.M):
                    if uri not in seen:
                        seen.add(uri)
                        with urllib.request.urlopen(self.node.url(f"/live/{self.name}/src/{uri}"), timeout=3) as r:
                            r.read()
                        self.fetched += 1
            except Exception:
                pass
            time.sleep(0.1)


MODES = [None, "aes-128", "cbcs"]


def encryption_cost(mode):
    node = start(1 + MODES.index(mode))
    encrypted = mode is not None
    try:
        names = [f"bench-{i}" for i in range(STREAMS)]
        if encrypted:
            for n in names:
                api(node, "PUT", f"/api/v1/streams/{n}", {"encryption": mode})
        pub = subprocess.Popen([MULTI, "samples/sample.ts", str(SECONDS + 15), str(STREAMS), node.srt],
                               stdout=LOGS, stderr=LOGS)
        wait("every stream", lambda: all(
            "#EXTINF" in get(node.url(f"/live/{n}/src/index.m3u8" + (f"?token={token(node, 'live/' + n)}" if encrypted else "")))
            for n in names), within=40)
        viewers = [Viewer(node, n, token(node, f"live/{n}") if encrypted else None) for n in names]
        time.sleep(3)
        c0, f0 = cpu_seconds(node.proc.pid), sum(v.fetched for v in viewers)
        time.sleep(SECONDS)
        c1, f1 = cpu_seconds(node.proc.pid), sum(v.fetched for v in viewers)
        for v in viewers:
            v.done = True
        pub.kill()
        pub.wait()
    finally:
        node.kill()
    row = {"mode": mode or "clear", "streams": STREAMS, "seconds": SECONDS, "files_fetched": f1 - f0,
           "cpu_s_per_stream_minute": (c1 - c0) / (STREAMS * SECONDS / 60.0)}
    log(f"{row['mode']}: {row['cpu_s_per_stream_minute']:.3f} CPU-s per stream-minute "
        f"({row['files_fetched']} files fetched)")
    return row


def encryption_alone():
    tool = os.path.join(os.path.dirname(MULTI), "encrypt_cost")
    out = subprocess.run(["taskset", "-c", "1", tool, "samples/sample.ts", "6"], capture_output=True, text=True,
                         check=True).stdout
    row = json.loads(out)
    log(f"encryption alone at {row['bitrate_kbps']:.0f} kb/s: AES-128 {row['aes128']['mb_per_s']:.0f} MB/s, "
        f"cbcs {row['cbcs']['mb_per_s']:.0f} MB/s, copy {row['copy']['mb_per_s']:.0f} MB/s")
    return row


def main():
    result = {"run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    result["license"] = license_rate()
    result["cost"] = [encryption_cost(m) for m in MODES]
    result["alone"] = encryption_alone()
    with open(os.path.join(OUT, "license.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
