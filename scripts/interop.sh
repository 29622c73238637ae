#!/usr/bin/env bash
# Interop against real tools and the real binary: `tessera node` runs as its own process,
# ffmpeg (libsrt) publishes to it, ffprobe and curl read what it serves.
# Fails, never skips, when a tool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
for tool in ffmpeg ffprobe curl openssl; do
    command -v "$tool" >/dev/null || { echo "interop: $tool missing" >&2; exit 1; }
done

cargo build -p tessera-node --bin tessera --locked
BIN=target/debug/tessera
WORK=$(mktemp -d)
HTTP_PORT=$((20000 + RANDOM % 20000))
SRT_PORT=$((HTTP_PORT + 1))
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

fail=0
check() { # name, command...
    local name=$1; shift
    if "$@"; then echo "interop: ok   $name"; else echo "interop: FAIL $name"; fail=$((fail + 1)); fi
}

$BIN node --http-listen 127.0.0.1:$HTTP_PORT --srt-listen 127.0.0.1:$SRT_PORT --log warn >"$WORK/node.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null && break; sleep 0.2; done

ffmpeg -hide_banner -loglevel error -re -stream_loop 3 -i samples/sample.ts -c copy -f mpegts \
    -srt_streamid '#!::r=live/interop,m=publish' \
    "srt://127.0.0.1:$SRT_PORT?mode=caller&latency=120000&pkt_size=1316" </dev/null 2>"$WORK/ffmpeg.log" &
pids+=($!)

URL="http://127.0.0.1:$HTTP_PORT/live/interop/index.m3u8"
for _ in $(seq 75); do curl -sf "$URL" >/dev/null && break; sleep 0.2; done

probe() {
    ffprobe -hide_banner -v error -show_entries stream=codec_name,width,height,sample_rate -of compact "$URL" >"$WORK/probe.txt" 2>&1 &&
        grep -q 'codec_name=h264.*width=640.*height=360' "$WORK/probe.txt" &&
        grep -q 'codec_name=aac.*sample_rate=48000' "$WORK/probe.txt"
}
check "ffprobe reads video and audio from the multivariant playlist" probe

decode() {
    ffmpeg -hide_banner -v error -t 4 -i "$URL" -f null - >"$WORK/decode.txt" 2>&1 && ! grep -qi error "$WORK/decode.txt"
}
check "ffmpeg decodes 4 s of the live stream without errors" decode

blocking() {
    local pl msn
    pl=$(curl -sf "http://127.0.0.1:$HTTP_PORT/live/interop/src/index.m3u8")
    msn=$(echo "$pl" | grep -c '^seg-')
    msn=$(( $(echo "$pl" | sed -n 's/#EXT-X-MEDIA-SEQUENCE://p') + msn ))
    curl -sf "http://127.0.0.1:$HTTP_PORT/live/interop/src/index.m3u8?_HLS_msn=$msn" | grep -q "^seg-$msn.m4s"
}
check "blocking reload returns once the segment exists" blocking

metrics() { curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" | grep -q '^tessera_parts_published_total'; }
check "metrics exported" metrics

# HTTPS with HTTP/2 by ALPN, on a second node with a self-signed certificate.
tls() {
    local port=$((HTTP_PORT + 2))
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
        -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1 || return 1
    $BIN node --http-listen 127.0.0.1:$port --srt-listen 127.0.0.1:$((port + 1)) --log warn \
        --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" >"$WORK/tls.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do curl -skf "https://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
    [ "$(curl -sk --http2 -o /dev/null -w '%{http_version}' "https://127.0.0.1:$port/healthz")" = 2 ]
}
check "HTTPS serves HTTP/2" tls

if ((fail)); then
    echo "interop: node log:"; tail -50 "$WORK/node.log"
    echo "$((5 - fail)) passed, $fail failed"
    exit 1
fi
echo "5 passed, 0 failed"
