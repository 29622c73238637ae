#!/usr/bin/env bash
# Two builds of Tessera side by side on the latency, passthrough-cost and delivery
# benchmarks (sections 1 to 3 of docs/benchmarks.md), in one invocation, rounds alternating:
#
#   benches/compare.sh OLD_BIN_DIR [NEW_BIN_DIR]   # each holding `tessera` (and the new one `multi_publish`)
#   BENCH_QUICK=1 benches/compare.sh ...           # shorter windows
#   COMPARE_ONLY=cost-1,delivery benches/compare.sh ...
#
# OLD_BIN_DIR is typically a release build of an earlier commit:
#   git worktree add /tmp/old COMMIT && (cd /tmp/old && cargo build --release -p tessera-node)
# NEW_BIN_DIR defaults to this tree's release build. The table goes to stdout and, with the
# raw figures, to target/bench-compare/.
set -euo pipefail
cd "$(dirname "$0")/.."
export TESSERA_INTEROP=1
source scripts/setup.sh
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
(cd interop && npm ci --no-audit --no-fund --silent)
OLD=$(realpath "${1:?usage: benches/compare.sh OLD_BIN_DIR [NEW_BIN_DIR]}")
if [ -z "${2:-}" ]; then
    cargo build --release --locked -p tessera-node -p tessera-bench
    NEW=$PWD/target/release
else
    NEW=$(realpath "$2")
fi
OUT=$PWD/target/bench-compare
rm -rf "$OUT" && mkdir -p "$OUT"
QUICK=${BENCH_QUICK:-0}
python3 benches/compare.py "$OUT" "$OLD" "$NEW" "$([ "$QUICK" = 1 ] && echo 8 || echo 20)" "$([ "$QUICK" = 1 ] && echo 1 || echo 2)" | tee "$OUT/compare.md"
