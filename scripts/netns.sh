#!/usr/bin/env bash
# The namespace suite (nodes as separate hosts; needs root), with ROUNDS rounds of faults in
# its partition test (default 20; CI runs 1 as part of the test command). Each round cuts
# another node off, cuts the leader's outgoing packets, loses a fifth of every packet on
# 2 Mbit/s links, and kills and restarts a node; every acknowledged write must survive.
set -euo pipefail
cd "$(dirname "$0")/.."
TESSERA_NETNS_ROUNDS="${1:-20}" cargo test --locked -p tessera-tests --test it netns -- --test-threads 1 --nocapture
