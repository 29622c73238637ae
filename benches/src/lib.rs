//! Load tools for the benchmarks; see `src/bin/`.
