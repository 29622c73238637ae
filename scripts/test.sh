#!/usr/bin/env bash
# Set up and run every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo test --workspace --locked "$@"
