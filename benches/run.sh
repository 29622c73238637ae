#!/usr/bin/env bash
# Tessera's benchmarks, each beside the peer a user would otherwise pick, measured in the
# same run on this machine, reported as figures and ratios in docs/benchmarks.md.
#
#   benches/run.sh            # everything (about 27 minutes)
#   BENCH_QUICK=1 benches/run.sh   # shorter windows, for a smoke run
#   BENCH_ONLY=catalog benches/run.sh   # the catalog beside etcd alone (or delivery: parts,
#                                       # segments and held requests beside nginx; relay: the
#                                       # cluster's media path; release: premieres; license:
#                                       # content protection; rights: regions on every
#                                       # request; vod: uploads; placement:
#                                       # ladders across nodes: moves, distance and
#                                       # capacity, the last needing root for cgroups); the
#                                       # rest of the page keeps the last full run's figures
#
# Peers: nginx with libnginx-mod-rtmp (RTMP in, HLS out), ffmpeg's own HLS muxer (fMP4),
# nginx serving files, one ffmpeg command making the same transcoding ladder, etcd 3.4. Players: hls.js in Debian's Chromium (interop/player.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
export TESSERA_INTEROP=1
source scripts/setup.sh
need=()
command -v nginx >/dev/null || need+=(nginx)
[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need+=(libnginx-mod-rtmp)
command -v wrk >/dev/null || need+=(wrk)
command -v etcd >/dev/null || need+=(etcd-server)
if ((${#need[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
(cd interop && npm ci --no-audit --no-fund --silent)
cargo build --release --locked -p tessera-node -p tessera-bench
ulimit -n 65536 2>/dev/null || true

OUT=$PWD/target/bench
BIN=$PWD/target/release
QUICK=${BENCH_QUICK:-0}
catalog() {
    echo "bench: catalog beside etcd" >&2
    mkdir -p "$OUT/logs"
    python3 benches/catalog.py "$OUT" "$BIN/tessera" "$BIN/catalog_load" \
        "$([ "$QUICK" = 1 ] && echo 8 || echo 20)" "$([ "$QUICK" = 1 ] && echo 4 || echo 20)" \
        2> >(tee -a "$OUT/logs/catalog.log" >&2) || echo "bench: catalog benchmark failed" >&2
}
relay() {
    echo "bench: relay across a five-node cluster" >&2
    mkdir -p "$OUT/logs"
    python3 benches/relay.py "$OUT" "$BIN/tessera" "$([ "$QUICK" = 1 ] && echo 8 || echo 20)" \
        "$([ "$QUICK" = 1 ] && echo 1 || echo 3)" \
        2> >(tee -a "$OUT/logs/relay.log" >&2) || echo "bench: relay benchmark failed" >&2
}
release() {
    echo "bench: scheduled releases on three and five nodes" >&2
    mkdir -p "$OUT/logs"
    python3 benches/release.py "$OUT" "$BIN/tessera" "$BIN/release_probe" "$([ "$QUICK" = 1 ] && echo 5 || echo 30)" \
        2> >(tee -a "$OUT/logs/release.log" >&2) || echo "bench: release benchmark failed" >&2
}
license() {
    echo "bench: content protection: license requests, encryption cost" >&2
    mkdir -p "$OUT/logs"
    python3 benches/license.py "$OUT" "$BIN/tessera" "$BIN/multi_publish" "$([ "$QUICK" = 1 ] && echo 8 || echo 20)" \
        2> >(tee -a "$OUT/logs/license.log" >&2) || echo "bench: license benchmark failed" >&2
}
vod() {
    echo "bench: VOD uploads beside copying the file" >&2
    mkdir -p "$OUT/logs"
    python3 benches/vod.py "$OUT" "$BIN/tessera" "$([ "$QUICK" = 1 ] && echo 128 || echo 512)" \
        2> >(tee -a "$OUT/logs/vod.log" >&2) || echo "bench: vod benchmark failed" >&2
}
transcode() {
    echo "bench: VOD transcoding on one, two and three nodes beside one ffmpeg" >&2
    mkdir -p "$OUT/logs"
    python3 benches/transcode.py "$OUT" "$BIN/tessera" "$([ "$QUICK" = 1 ] && echo 8 || echo 20)" \
        2> >(tee -a "$OUT/logs/transcode.log" >&2) || echo "bench: transcode benchmark failed" >&2
}
rights() {
    echo "bench: regions on every request" >&2
    mkdir -p "$OUT/logs"
    python3 benches/rights.py "$OUT" "$BIN/tessera" "$([ "$QUICK" = 1 ] && echo 3 || echo 5)" "$([ "$QUICK" = 1 ] && echo 2 || echo 5)" \
        2> >(tee -a "$OUT/logs/rights.log" >&2) || echo "bench: rights benchmark failed" >&2
}
placement() {
    echo "bench: ladders across the cluster: a move after a kill, the cost of distance, capacity on 1-3 nodes" >&2
    mkdir -p "$OUT/logs"
    python3 benches/placement.py "$OUT" "$BIN/tessera" "$([ "$QUICK" = 1 ] && echo 4 || echo 12)" \
        2> >(tee -a "$OUT/logs/placement.log" >&2) || echo "bench: placement benchmark failed" >&2
    python3 benches/distance.py "$OUT" "$BIN/tessera" "$([ "$QUICK" = 1 ] && echo 20 || echo 60)" \
        2> >(tee -a "$OUT/logs/distance.log" >&2) || echo "bench: distance benchmark failed" >&2
    python3 benches/capacity.py "$OUT" "$BIN/tessera" "$([ "$QUICK" = 1 ] && echo 8 || echo 12)" \
        2> >(tee -a "$OUT/logs/capacity.log" >&2) || echo "bench: capacity benchmark failed" >&2
}
SECS=$([ "$QUICK" = 1 ] && echo 15 || echo 40)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; nginx -p "$OUT" -c nginx.conf -s stop 2>/dev/null || true; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
free_udp_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { local t=0; for p in "$@"; do [ -r /proc/$p/stat ] && t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat))); done; echo $t; }
rss_kb() { local t=0; for p in "$@"; do [ -r /proc/$p/status ] && t=$((t + $(awk '/VmRSS/{print $2}' /proc/$p/status))); done; echo $t; }
log() { echo "bench: $*" >&2; }

# --- nginx: RTMP->HLS peer, and static files -------------------------------------------
start_nginx() {
    NGINX_HTTP=$(free_port)
    NGINX_RTMP=$(free_port)
    mkdir -p "$OUT/nginx-hls" "$OUT/ffmpeg-hls" "$OUT/files" "$OUT/logs"
    cat >"$OUT/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
user root;
worker_processes 1;
pid $OUT/nginx.pid;
error_log $OUT/logs/error.log warn;
events { worker_connections 16384; }
rtmp {
    server {
        listen 127.0.0.1:$NGINX_RTMP;
        application live {
            live on;
            hls on;
            hls_path $OUT/nginx-hls;
            hls_fragment 1s;
            hls_playlist_length 6s;
        }
    }
}
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; video/mp4 mp4 m4s; }
    server {
        listen 127.0.0.1:$NGINX_HTTP;
        add_header Access-Control-Allow-Origin *;
        add_header Cache-Control no-cache;
        location /hls/ { alias $OUT/nginx-hls/; }
        location /ffhls/ { alias $OUT/ffmpeg-hls/; }
        location /files/ { alias $OUT/files/; }
    }
}
CONF
    nginx -p "$OUT" -c nginx.conf
}
NGINX_PIDS() { local m; m=$(cat "$OUT/nginx.pid"); echo "$m $(pgrep -P "$m" | tr '\n' ' ')"; }

start_node() { # extra flags...; sets NODE_PID HTTP SRT_ADDR
    local hp sp
    hp=$(free_port); sp=$(free_udp_port)
    "$BIN/tessera" node --http-listen 127.0.0.1:$hp --srt-listen 127.0.0.1:$sp --rtmp-listen 127.0.0.1:$(free_port) \
        --data-dir "$OUT/node-data-$hp" --cluster 127.0.0.1:0 \
        --log warn --max-publishers 1000 "$@" >>"$OUT/logs/node.log" 2>&1 &
    NODE_PID=$!
    pids+=($NODE_PID)
    HTTP="http://127.0.0.1:$hp"
    SRT_ADDR="127.0.0.1:$sp"
    for _ in $(seq 50); do curl -sf "$HTTP/healthz" >/dev/null && return; sleep 0.2; done
}
wait_url() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.2; done; return 1; }
play() { # name url [player.mjs options] -> $OUT/play-name.json
    local name=$1 url=$2
    shift 2
    node interop/player.mjs --url "$url" --seconds "$SECS" --out "$OUT/play-$name.json" "$@" >/dev/null || log "player for $name reported failure"
}

# Section 1: glass-to-glass of the clocked feed through Tessera (200 ms parts, the default, and
# 100 ms parts; hls.js and Shaka Player) and through the peers (hls.js).
latency() {
    local parts player
    for parts in 200 100; do
        log "latency: Tessera, ${parts} ms parts"
        start_node --part-target-ms $parts
        interop/clock-feed.sh -f mpegts -srt_streamid '#!::r=live/clock,m=publish' "srt://$SRT_ADDR?mode=caller&latency=120000&pkt_size=1316" 2>>"$OUT/logs/feed.log" &
        FEED=$!; pids+=($FEED)
        wait_url "$HTTP/live/clock/index.m3u8"
        curl -sf "$HTTP/live/clock/src/index.m3u8" >"$OUT/latency-$parts.m3u8"
        for player in hls.js shaka; do
            play "tessera-$parts-$player" "$HTTP/live/clock/index.m3u8" --player $player
        done
        curl -sf "$HTTP/metrics" >"$OUT/metrics-latency-$parts.txt"
        kill $FEED $NODE_PID 2>/dev/null || true
    done

    log "latency: nginx-rtmp HLS"
    interop/clock-feed.sh -f flv "rtmp://127.0.0.1:$NGINX_RTMP/live/clock" 2>>"$OUT/logs/feed.log" &
    FEED=$!; pids+=($FEED)
    wait_url "http://127.0.0.1:$NGINX_HTTP/hls/clock.m3u8"; sleep 4
    play nginx "http://127.0.0.1:$NGINX_HTTP/hls/clock.m3u8"
    kill $FEED 2>/dev/null || true

    log "latency: ffmpeg fMP4 HLS"
    interop/clock-feed.sh -f hls -hls_time 1 -hls_list_size 6 -hls_segment_type fmp4 \
        -hls_flags delete_segments+independent_segments "$OUT/ffmpeg-hls/index.m3u8" 2>>"$OUT/logs/feed.log" &
    FEED=$!; pids+=($FEED)
    wait_url "http://127.0.0.1:$NGINX_HTTP/ffhls/index.m3u8"; sleep 4
    play ffmpeg "http://127.0.0.1:$NGINX_HTTP/ffhls/index.m3u8"
    kill $FEED 2>/dev/null || true
    date -u '+%Y-%m-%d %H:%M UTC' >"$OUT/latency-run"
}

# Sections 3 and 4: parts and segments from memory beside nginx, then ten thousand held requests.
delivery() {
    log "delivery"
    date -u '+%Y-%m-%d %H:%M UTC' >"$OUT/delivery-run"
    start_node
    "$BIN/multi_publish" samples/sample.ts 600 1 "$SRT_ADDR" 2>>"$OUT/logs/pub.log" &
    local publisher=$!
    pids+=($publisher)
    wait_url "$HTTP/live/bench-0/index.m3u8"; sleep 6
    # Each object is the newest of its kind when its run starts: the store holds it for the
    # playlist's window (20 s), longer than the run, so every answer is a 200 from memory
    # (the report counts any other answer). nginx serves the same bytes from a file.
    DUR=$([ "$QUICK" = 1 ] && echo 5 || echo 10)
    local obj pl file
    for obj in part segment; do
        pl=$(curl -sf "$HTTP/live/bench-0/src/index.m3u8")
        if [ $obj = part ]; then
            file=$(echo "$pl" | sed -n 's/^#EXT-X-PART:.*URI="\(part-[0-9]*\.m4s\)".*/\1/p' | tail -1)
        else
            file=$(echo "$pl" | grep '^seg-' | tail -1)
        fi
        curl -sf "$HTTP/live/bench-0/src/$file" -o "$OUT/files/$file"
        stat -c %s "$OUT/files/$file" >"$OUT/delivery-$obj-bytes"
        wrk -t2 -c64 -d${DUR}s --latency "$HTTP/live/bench-0/src/$file" >"$OUT/wrk-tessera-$obj.txt" 2>&1 || true
        wrk -t2 -c64 -d${DUR}s --latency "http://127.0.0.1:$NGINX_HTTP/files/$file" >"$OUT/wrk-nginx-$obj.txt" 2>&1 || true
    done
    echo "{\"part_bytes\": $(cat "$OUT/delivery-part-bytes"), \"segment_bytes\": $(cat "$OUT/delivery-segment-bytes")}" >"$OUT/delivery-sizes.json"

    # Ten thousand blocked playlist requests
    log "blocking: 10000 held requests"
    RSS0=$(rss_kb $NODE_PID)
    "$BIN/blocking_load" "$HTTP/live/bench-0/src/index.m3u8" 10000 >"$OUT/blocking.json" 2>"$OUT/logs/blocking.log" || true
    RSS1=$(rss_kb $NODE_PID)
    curl -sf "$HTTP/metrics" >"$OUT/metrics-blocking.txt"
    echo "{\"rss_before_kb\": $RSS0, \"rss_after_kb\": $RSS1}" >"$OUT/blocking-rss.json"
    # The same over HTTP/2: 64 connections of about 160 streams each (the node allows 200).
    log "blocking: 10000 held requests over HTTP/2"
    "$BIN/blocking_load" "$HTTP/live/bench-0/src/index.m3u8" 10000 --h2 64 >"$OUT/blocking-h2.json" 2>"$OUT/logs/blocking-h2.log" || true
    curl -sf "$HTTP/metrics" >"$OUT/metrics-blocking-h2.txt"
    kill "$publisher" "$NODE_PID" 2>/dev/null || true
}

case "${BENCH_ONLY:-}" in
    catalog | relay | release | license | rights | vod | transcode | placement | delivery | latency)
        [ "$BENCH_ONLY" != delivery ] && [ "$BENCH_ONLY" != latency ] || start_nginx
        "$BENCH_ONLY"
        python3 benches/report.py "$OUT" docs/benchmarks.md >"$OUT/benchmarks.md" && mv "$OUT/benchmarks.md" docs/benchmarks.md
        exit 0
        ;;
esac
rm -rf "$OUT" && mkdir -p "$OUT"
date -u '+%Y-%m-%d %H:%M UTC' >"$OUT/run-started"
start_nginx

# --- 1. Latency -------------------------------------------------------------------------
latency

# --- 2. Passthrough cost ----------------------------------------------------------------
cost() { # peer N seconds -> $OUT/cost-peer-N.json
    local peer=$1 n=$2 secs=$3 warm=5 t0 t1 srv=() pubs=()
    case $peer in
    tessera)
        start_node; srv=($NODE_PID)
        "$BIN/multi_publish" samples/sample.ts $((secs + warm)) "$n" "$SRT_ADDR" 2>>"$OUT/logs/pub.log" &
        pubs+=($!) ;;
    ffmpeg)
        local targets=()
        for i in $(seq 0 $((n - 1))); do
            local p; p=$(free_udp_port); mkdir -p "$OUT/ffcost/$i"
            ffmpeg -hide_banner -loglevel error -nostdin -i "srt://127.0.0.1:$p?mode=listener&latency=120000" -c copy -bsf:a aac_adtstoasc \
                -f hls -hls_time 2 -hls_list_size 10 -hls_segment_type fmp4 -hls_flags delete_segments \
                "$OUT/ffcost/$i/index.m3u8" 2>>"$OUT/logs/ffcost.log" &
            srv+=($!); pids+=($!); targets+=("127.0.0.1:$p")
        done
        sleep 1
        "$BIN/multi_publish" samples/sample.ts $((secs + warm)) "$n" "${targets[@]}" 2>>"$OUT/logs/pub.log" &
        pubs+=($!) ;;
    nginx)
        srv=($(NGINX_PIDS))
        for i in $(seq 0 $((n - 1))); do
            ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i samples/sample.ts -c copy -f flv \
                "rtmp://127.0.0.1:$NGINX_RTMP/live/cost$i" 2>>"$OUT/logs/rtmppub.log" &
            pubs+=($!); pids+=($!)
        done ;;
    esac
    pids+=("${pubs[@]}")
    sleep $warm
    t0=$(cpu_ticks "${srv[@]}")
    sleep "$secs"
    t1=$(cpu_ticks "${srv[@]}")
    local rss; rss=$(rss_kb "${srv[@]}")
    kill "${pubs[@]}" 2>/dev/null || true
    [ "$peer" != nginx ] && kill "${srv[@]}" 2>/dev/null || true
    wait "${pubs[@]}" 2>/dev/null || true
    python3 - "$peer" "$n" "$secs" "$t0" "$t1" "$rss" "$(getconf CLK_TCK)" >"$OUT/cost-$peer-$n.json" <<'PY'
import json, sys
peer, n, secs, t0, t1, rss, hz = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
cpu = (t1 - t0) / hz
print(json.dumps({"peer": peer, "streams": n, "seconds": secs, "cpu_seconds": cpu,
                  "cpu_s_per_stream_minute": cpu / (n * secs / 60.0), "rss_mb": rss / 1024, "rss_mb_per_stream": rss / 1024 / n}))
PY
    log "cost $peer N=$n: $(cat "$OUT/cost-$peer-$n.json")"
}
for n in 1 10 50; do
    secs=$([ "$QUICK" = 1 ] && echo 10 || { [ $n = 50 ] && echo 30 || echo 40; })
    for peer in tessera ffmpeg nginx; do cost $peer $n $secs; done
done

# --- 3. Delivery, and 4. ten thousand blocked playlist requests -------------------------
delivery

# --- 5. Transcoding ladder beside ffmpeg -------------------------------------------------
log "ladder"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
python3 benches/ladder.py "$OUT" "$BIN/tessera" "$BIN/ladder_bench" "$([ "$QUICK" = 1 ] && echo 8 || echo 20)" \
    2> >(tee -a "$OUT/logs/ladder.log" >&2) || log "ladder benchmark failed"

# --- 6. The catalog beside etcd ---------------------------------------------------------
catalog

# --- 7. Every node serves every stream --------------------------------------------------
relay

# --- 8. Scheduled releases ----------------------------------------------------------------
release

# --- 9. Content protection ------------------------------------------------------------------
license
rights

# --- 10. VOD uploads ------------------------------------------------------------------------
vod
transcode
placement

# --- Report -----------------------------------------------------------------------------
python3 benches/report.py "$OUT" docs/benchmarks.md >"$OUT/benchmarks.md" && mv "$OUT/benchmarks.md" docs/benchmarks.md
log "wrote docs/benchmarks.md"
