#!/usr/bin/env bash
# Set up and run every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo test --workspace --locked "$@"
# The deployment files: alert rules, unit, manifests.
bash scripts/deploy-check.sh
# The S3 archive is an optional feature: keep it building.
cargo check -p tessera-node --features s3 --locked
