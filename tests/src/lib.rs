//! End-to-end tests live in `tests/it/`: one test binary, one module per concern.
