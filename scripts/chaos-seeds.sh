#!/usr/bin/env bash
# Runs the whole-catalog chaos scenario on N new seeds (default 1000), each with a fault
# window of TESSERA_CHAOS_SECONDS (default 2). A failure prints the command that replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
TESSERA_CHAOS_NEW_SEEDS="${1:-1000}" TESSERA_CHAOS_SECONDS="${TESSERA_CHAOS_SECONDS:-2}" \
    cargo test --release -p tessera-chaos catalog_new_seeds -- --nocapture
