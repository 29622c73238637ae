#!/usr/bin/env bash
# A live test picture whose wall clock is burned in as a barcode (16 square blocks of
# HEIGHT/15 px, 24 px at 360p, in a strip at the top; block i is white when bit i of
# epoch-milliseconds mod 65536 is set), with a tone, encoded for low latency (x264
# zerolatency, 1 s GOP, no B-frames, 100 ms mux delay). The blocks scale with the picture,
# so the code survives the ladder's downscaling.
#
#   clock-feed.sh OUTPUT-ARGS...     e.g. clock-feed.sh -f mpegts 'srt://127.0.0.1:9000?...'
# Environment: SIZE (640x360), RATE (25), VBITRATE (1200k), PRESET (veryfast), BFRAMES (0; more than 0 encodes
# as OBS and x264's defaults do: High profile with that many B-frames, no zerolatency).
set -euo pipefail
SIZE=${SIZE:-640x360}
RATE=${RATE:-25}
VBITRATE=${VBITRATE:-1200k}
BFRAMES=${BFRAMES:-0}
W=${SIZE%x*}
H=${SIZE#*x}
B=$((H / 15))
# The clock strip is stacked above the picture (cheap), not computed over the whole frame.
GRAPH="testsrc2=size=${SIZE}:rate=${RATE},settb=1/1000,setpts='RTCTIME/1000',split[a][b];\
[b]crop=${W}:${B}:0:0,geq=lum='if(lt(X\,$((16 * B)))\,255*mod(floor(floor(T*1000)/pow(2\,floor(X/${B})))\,2)\,16)':cb=128:cr=128[code];\
[a]crop=${W}:$((H - B)):0:${B}[pic];[code][pic]vstack,settb=1/${RATE},setpts=N[out0]"
if [ "$BFRAMES" -gt 0 ]; then
    X264=(-preset "${PRESET:-veryfast}" -bf "$BFRAMES")
else
    X264=(-preset "${PRESET:-veryfast}" -tune zerolatency -bf 0)
fi
exec ffmpeg -hide_banner -loglevel error -nostdin \
    -re -f lavfi -i "$GRAPH" -re -f lavfi -i "sine=frequency=1000:sample_rate=48000" \
    -map 0:v -map 1:a \
    -c:v libx264 "${X264[@]}" -profile:v high -pix_fmt yuv420p \
    -g "$RATE" -keyint_min "$RATE" -sc_threshold 0 -b:v "$VBITRATE" -maxrate "$VBITRATE" -bufsize "$VBITRATE" \
    -c:a aac -b:a 96k -ac 2 \
    -muxdelay 0.1 -max_interleave_delta 0 -flush_packets 1 "$@"
