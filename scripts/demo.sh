#!/usr/bin/env bash
# Set up, build and run the demo: a node on the default ports publishing the bundled
# sample to itself over SRT. Open the printed URL in a player.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec cargo run --release -p tessera-node --bin tessera -- demo "$@"
