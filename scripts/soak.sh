#!/usr/bin/env bash
# The soak (benches/soak.py): publishers and LL-HLS players on one node, then on three.
#
#   scripts/soak.sh [MINUTES]   the full soak: 45 SRT and 5 RTMP publishers (2 with a
#                               ladder) and 1,000 players, MINUTES (default 60) on each
#                               cluster size; slopes in target/soak/soak-Nnode.json
#   scripts/soak.sh ci          3 minutes on one node with 10+2 publishers and 200 players,
#                               failing if memory or descriptors grow or players see errors
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
OUT=$PWD/target/soak
mkdir -p "$OUT"
if [ "${1:-}" = ci ]; then
    cargo build --locked -q -p tessera-node -p tessera-bench
    BIN=$PWD/target/debug
    python3 benches/soak.py "$OUT" "$BIN/tessera" "$BIN/multi_publish" "$BIN/ll_players" \
        --nodes 1 --minutes 3 --srt 10 --rtmp 2 --ladders 1 --players 200 --check
    exit
fi
cargo build --release --locked -q -p tessera-node -p tessera-bench
BIN=$PWD/target/release
for nodes in 1 3; do
    python3 benches/soak.py "$OUT" "$BIN/tessera" "$BIN/multi_publish" "$BIN/ll_players" --nodes "$nodes" --minutes "${1:-60}"
done
