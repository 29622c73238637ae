//! Runs one target on the files named (`cargo run -p tessera-fuzz --example replay TARGET
//! FILE...`), or on its whole corpus when none is named: the way to reproduce what a
//! fuzzing run found, on stable Rust, with the allocation bound enforced.

use tessera_fuzz::replay::{self, LargestAllocation};

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation::new();

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(target) = args.next().and_then(|name| tessera_fuzz::target(&name)) else {
        let names: Vec<&str> = tessera_fuzz::TARGETS.iter().map(|t| t.name).collect();
        eprintln!("usage: replay TARGET [FILE...]; targets: {}", names.join(", "));
        return std::process::ExitCode::from(2);
    };
    let mut files: Vec<std::path::PathBuf> = args.map(Into::into).collect();
    if files.is_empty() {
        files = replay::corpus(target.name).unwrap_or_default();
    }
    let mut failed = 0;
    for file in &files {
        let data = match std::fs::read(file) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                failed += 1;
                continue;
            }
        };
        if let Err(what) = replay::check(target, &data, &ALLOCATOR) {
            eprintln!("{}: {what}", file.display());
            failed += 1;
        }
    }
    eprintln!("{}: {} inputs, {failed} failed", target.name, files.len());
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
