//! The codec worker, for the end-to-end tests: their nodes run inside the test binary, so
//! they start this as their worker instead of `tessera codec-worker`.

fn main() -> std::process::ExitCode {
    tessera_codec::worker::main()
}
