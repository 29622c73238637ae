//! The console's browser libraries (hls.js, tus-js-client) come from the npm registry
//! through `console/package.json` and its lock file, and are built into the binary. When
//! `console/node_modules` lacks them, `npm ci` fetches them (scripts/setup.sh installs npm).

use std::path::Path;
use std::process::Command;

const VENDOR: [&str; 2] = ["hls.js/dist/hls.min.js", "tus-js-client/dist/tus.min.js"];

fn main() {
    let console = Path::new(env!("CARGO_MANIFEST_DIR")).join("../console");
    println!("cargo:rerun-if-changed={}", console.join("package-lock.json").display());
    println!("cargo:rerun-if-changed={}", console.join("src").display());
    let modules = console.join("node_modules");
    let missing = || VENDOR.iter().any(|f| !modules.join(f).is_file());
    if missing() {
        let status =
            Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--silent"]).current_dir(&console).status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("`npm ci` in {} failed ({s}): the console's libraries are missing", console.display()),
            Err(e) => panic!(
                "npm could not be run ({e}): the console's libraries (console/package.json) need Node.js \
                 and npm; scripts/setup.sh installs them"
            ),
        }
        assert!(!missing(), "`npm ci` left {} without {VENDOR:?}", modules.display());
    }
    for f in VENDOR {
        println!("cargo:rerun-if-changed={}", modules.join(f).display());
    }
}
