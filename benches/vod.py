"""VOD uploads: how fast a node stores an upload, beside copying the same file to the same
disk, in the same invocation.

    python3 benches/vod.py OUT_DIR TESSERA_BIN [MIB]

- Upload: one node; a client on loopback sends a file of MIB mebibytes over tus 1.0 in
  8 MiB PATCH requests, each with its SHA-256 (`Upload-Checksum`), each acknowledged only
  once the node has written and fsynced it. The upload is declared one byte longer than
  the file and that byte is never sent, so what is timed is the storing of the bytes, not
  the reading-through of a film at the end (the file is random bytes). Three runs.
- Peer: the same file copied to the same disk in 8 MiB writes, each followed by an fsync,
  as the node does (and once with a single fsync at the end, as `cp` and `sync` do).
Writes vod.json.
"""
import base64
import hashlib
import http.client
import json
import os
import shutil
import statistics
import sys
import time

import benchlib

OUT, TESSERA = (sys.argv + [""] * 2)[1:3]
MIB = int(sys.argv[3]) if len(sys.argv) > 3 else 512
CHUNK = 8 << 20
WORK = os.path.join(OUT or "/tmp", "vod")
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
LOGS = open(os.path.join(WORK, "nodes.log"), "ab")
ADMIN = "vod-bench-admin"


def log(*a):
    print("bench: vod:", *a, file=sys.stderr, flush=True)


def upload(node, path, size):
    """Seconds to store `size` bytes of `path` over tus."""
    host, port = node.http.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    auth = {"Authorization": f"Bearer {ADMIN}", "Tus-Resumable": "1.0.0"}
    conn.request("POST", "/api/v1/uploads", headers={**auth, "Upload-Length": str(size + 1)})
    r = conn.getresponse()
    r.read()
    assert r.status == 201, r.status
    url = r.getheader("Location")
    started = time.monotonic()
    offset = 0
    with open(path, "rb") as f:
        while offset < size:
            chunk = f.read(CHUNK)
            digest = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
            headers = {**auth, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream",
                       "Upload-Checksum": f"sha256 {digest}"}
            conn.request("PATCH", url, body=chunk, headers=headers)
            r = conn.getresponse()
            r.read()
            assert r.status == 204, (r.status, offset)
            offset = int(r.getheader("Upload-Offset"))
    seconds = time.monotonic() - started
    conn.request("DELETE", url, headers=auth)
    conn.getresponse().read()
    return seconds


def copy(path, fsync_every_chunk):
    """Seconds to copy `path` to the same disk."""
    target = os.path.join(WORK, "copy.bin")
    started = time.monotonic()
    with open(path, "rb") as src, open(target, "wb") as dst:
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                break
            dst.write(chunk)
            if fsync_every_chunk:
                dst.flush()
                os.fsync(dst.fileno())
        dst.flush()
        os.fsync(dst.fileno())
    seconds = time.monotonic() - started
    os.remove(target)
    return seconds


def main():
    path = os.path.join(WORK, "film.bin")
    with open(path, "wb") as f:
        for _ in range(MIB // 8):
            f.write(os.urandom(CHUNK))
    size = os.path.getsize(path)
    node = benchlib.Node(TESSERA, WORK, 0, LOGS, ["--admin-token", ADMIN, "--upload-max-bytes", str(size * 2)])
    node.start()
    runs = {"upload": [], "copy_fsync_each": [], "copy_fsync_end": []}
    try:
        for _ in range(3):
            runs["upload"].append(upload(node, path, size))
            runs["copy_fsync_each"].append(copy(path, True))
            runs["copy_fsync_end"].append(copy(path, False))
    finally:
        node.kill()
    mib = size / (1 << 20)
    rate = {k: mib / statistics.median(v) for k, v in runs.items()}
    log(f"{mib:.0f} MiB: upload {rate['upload']:.0f} MiB/s, copy (fsync each 8 MiB) {rate['copy_fsync_each']:.0f} MiB/s, "
        f"copy (fsync at the end) {rate['copy_fsync_end']:.0f} MiB/s")
    result = {"run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "mib": mib, "chunk_mib": CHUNK >> 20,
              "mib_per_s": rate, "seconds": runs}
    with open(os.path.join(OUT, "vod.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
