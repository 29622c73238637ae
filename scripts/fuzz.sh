#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers of outside bytes (fuzz/: one target each).
#
#   scripts/fuzz.sh TARGET [SECONDS]     run one target (default 60 s); what it finds that
#                                        covers new code is added to fuzz/corpus/TARGET
#   scripts/fuzz.sh all [SECONDS]        every target in turn, SECONDS each
#   scripts/fuzz.sh TARGET --input FILE  replay one input on stable Rust (a crash's artifact)
#   scripts/fuzz.sh TARGET --minimize    shrink the corpus to the inputs that add coverage
#   scripts/fuzz.sh --seeds              write the seed inputs made from samples/
#
# Runs need a nightly toolchain and cargo-fuzz (installed here if missing); replay needs
# neither. A crash leaves its input in fuzz/libfuzzer/artifacts/TARGET/ and stops the run.
# FUZZ_SANITIZER=address builds with AddressSanitizer (slower; default none: the targets
# are safe Rust over the crates' own unsafe-free parsers).
set -euo pipefail
cd "$(dirname "$0")/.."

targets() { sed -n 's/^name = "\([a-z0-9_]*\)"$/\1/p' fuzz/libfuzzer/Cargo.toml | grep -v '^tessera'; }

if [ "${1:-}" = --seeds ]; then
    exec cargo run -q -p tessera-fuzz --example seeds
fi
target=${1:?usage: scripts/fuzz.sh TARGET|all [SECONDS] | TARGET --input FILE | TARGET --minimize}
case "${2:-}" in
    --input) exec cargo run -q -p tessera-fuzz --example replay "$target" "${3:?a file}" ;;
esac

cargo +nightly --version >/dev/null 2>&1 || { echo "fuzz: a nightly toolchain is needed (rustup toolchain install nightly)" >&2; exit 1; }
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
run() {
    local t=$1 seconds=$2
    mkdir -p "fuzz/corpus/$t"
    cargo +nightly fuzz run --fuzz-dir fuzz/libfuzzer -s "${FUZZ_SANITIZER:-none}" --release "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -malloc_limit_mb=40 -rss_limit_mb=2048 -max_len=262144 -timeout=10 -print_final_stats=1
}
if [ "${2:-}" = --minimize ]; then
    exec cargo +nightly fuzz cmin --fuzz-dir fuzz/libfuzzer -s "${FUZZ_SANITIZER:-none}" --release "$target" "fuzz/corpus/$target"
fi
seconds=${2:-60}
if [ "$target" = all ]; then
    for t in $(targets); do run "$t" "$seconds"; done
else
    run "$target" "$seconds"
fi
