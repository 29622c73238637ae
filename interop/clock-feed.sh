#!/usr/bin/env bash
# A live test picture whose wall clock is burned in as a barcode (16 blocks of 24x24 px in
# a strip at the top; block i is white when bit i of epoch-milliseconds mod 65536 is set), with a
# tone, encoded for low latency (x264 zerolatency, 1 s GOP, no B-frames, 100 ms mux delay).
#
#   clock-feed.sh OUTPUT-ARGS...     e.g. clock-feed.sh -f mpegts 'srt://127.0.0.1:9000?...'
# Environment: SIZE (640x360), RATE (25), VBITRATE (1200k).
set -euo pipefail
SIZE=${SIZE:-640x360}
RATE=${RATE:-25}
VBITRATE=${VBITRATE:-1200k}
W=${SIZE%x*}
H=${SIZE#*x}
# The clock strip is stacked above the picture (cheap), not computed over the whole frame.
GRAPH="testsrc2=size=${SIZE}:rate=${RATE},settb=1/1000,setpts='RTCTIME/1000',split[a][b];\
[b]crop=${W}:24:0:0,geq=lum='if(lt(X\,384)\,255*mod(floor(floor(T*1000)/pow(2\,floor(X/24)))\,2)\,16)':cb=128:cr=128[code];\
[a]crop=${W}:$((H - 24)):0:24[pic];[code][pic]vstack,settb=1/${RATE},setpts=N[out0]"
exec ffmpeg -hide_banner -loglevel error -nostdin \
    -re -f lavfi -i "$GRAPH" -re -f lavfi -i "sine=frequency=1000:sample_rate=48000" \
    -map 0:v -map 1:a \
    -c:v libx264 -preset veryfast -tune zerolatency -profile:v high -pix_fmt yuv420p \
    -g "$RATE" -keyint_min "$RATE" -sc_threshold 0 -bf 0 -b:v "$VBITRATE" -maxrate "$VBITRATE" -bufsize "$VBITRATE" \
    -c:a aac -b:a 96k -ac 2 \
    -muxdelay 0.1 -max_interleave_delta 0 -flush_packets 1 "$@"
