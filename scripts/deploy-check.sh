#!/usr/bin/env bash
# Checks the files under deploy/ offline: the Prometheus rules (syntax and their unit tests).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v promtool >/dev/null 2>&1 || { echo "deploy-check: promtool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/tessera-rules.yml
promtool test rules deploy/prometheus/tessera-rules.test.yml
