#!/usr/bin/env bash
# Installs what Tessera needs on a Debian/Ubuntu machine: a Rust toolchain is assumed
# (cargo on PATH); system packages come from apt. Idempotent and quiet when all is there.
set -euo pipefail

need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
# The namespace suite: its own namespaces, links and addresses (iproute2), faults (nftables),
# hosts whose clocks disagree (libfaketime).
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v faketime >/dev/null 2>&1 || need+=(faketime)
# Prometheus and promtool: the alert rules' unit tests, and a real server scraping a cluster.
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# The deploy files' checks: the systemd unit (systemd-analyze), the Kubernetes manifests
# (a pinned validator from PyPI in a virtual environment).
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
# FFmpeg's libraries for the codec worker (libavcodec with libx264, libswscale).
for lib in libavcodec:libavcodec-dev libavutil:libavutil-dev libswscale:libswscale-dev; do
    pkg-config --exists "${lib%%:*}" 2>/dev/null || need+=("${lib##*:}")
done
# The console's browser libraries (console/package.json) are fetched by npm at build time.
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ "${TESSERA_INTEROP:-}" = 1 ]; then
    command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi

if ((${#need[@]})); then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing ${need[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends pkg-config "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo not found; install Rust (rustup) first" >&2; exit 1; }
