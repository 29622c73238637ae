#!/usr/bin/env bash
# Checks the files under deploy/ offline:
#   - the Prometheus configuration and rules (syntax, and the rules' unit tests);
#   - the systemd unit (systemd-analyze verify, against the built binary, and its exposure
#     score: 2.0 or less, "OK");
#   - the Kubernetes manifests against the API's schemas (kubernetes-validate, pinned, in a
#     virtual environment), strictly: an unknown field fails; and the pods' start script.
# The container file cannot be built here (no registry to pull its bases from).
set -euo pipefail
cd "$(dirname "$0")/.."
missing() { echo "deploy-check: $1 is missing (scripts/setup.sh installs it)" >&2; exit 1; }
command -v promtool >/dev/null 2>&1 || missing promtool
command -v systemd-analyze >/dev/null 2>&1 || missing systemd-analyze
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/tessera-rules.yml
promtool test rules deploy/prometheus/tessera-rules.test.yml

cargo build -q -p tessera-node --bin tessera --locked
unit=$(mktemp -d)/tessera.service
trap 'rm -rf "$(dirname "$unit")"' EXIT
sed "s|/usr/local/bin/tessera|$PWD/target/debug/tessera|" deploy/systemd/tessera.service >"$unit"
# Any complaint fails, but about the user the unit names, which this machine need not have.
complaints=$(systemd-analyze verify --man=no "$unit" 2>&1 | grep -v "User=\|Group=\|user tessera" || true)
[ -z "$complaints" ] || { echo "deploy-check: systemd-analyze verify: $complaints" >&2; exit 1; }
score=$(systemd-analyze security --offline=true "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for tessera.service: \([0-9.]*\).*/\1/p')
echo "deploy-check: systemd exposure $score"
[ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || { echo "deploy-check: exposure ${score:-unknown} above 2.0" >&2; exit 1; }

VENV=$PWD/target/deploy-venv
[ -x "$VENV/bin/kubernetes-validate" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q -r deploy/kubernetes/requirements.txt; }
"$VENV/bin/kubernetes-validate" --strict --quiet deploy/kubernetes/tessera.yaml
# The start script, as the ConfigMap holds it.
"$VENV/bin/python" - <<'PY' | sh -n
import yaml
docs = list(yaml.safe_load_all(open("deploy/kubernetes/tessera.yaml")))
print(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["start.sh"])
PY
echo "deploy-check: ok"
