//! Finds FFmpeg's development files with pkg-config and compiles the C shim against them.
//! Without them the build stops with one message that says what to install.

use std::process::exit;

const LIBS: [(&str, &str); 3] = [("libavcodec", "58"), ("libswscale", "5"), ("libavutil", "56")];

fn missing(detail: &str) -> ! {
    eprintln!(
        "\n\ntessera-codec: FFmpeg's development files are missing ({detail}).\n\
         Tessera decodes, scales and encodes live renditions with libavcodec, libswscale and libx264.\n\
         Install them, then build again:\n\
         \n    Debian/Ubuntu:  sudo apt-get install pkg-config gcc libavcodec-dev libavutil-dev libswscale-dev\n\
         \n(`scripts/setup.sh`, run by `scripts/demo.sh` and `scripts/test.sh`, does this.)\n\n"
    );
    exit(1);
}

fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    println!("cargo:rerun-if-changed=src/shim.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    if std::process::Command::new("pkg-config").arg("--version").output().is_err() {
        missing("pkg-config is not installed");
    }
    let mut includes = Vec::new();
    for (lib, min) in LIBS {
        match pkg_config::Config::new().atleast_version(min).probe(lib) {
            Ok(found) => includes.extend(found.include_paths),
            Err(e) => {
                let first =
                    e.to_string().lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default().to_string();
                missing(&format!("{lib} >= {min}: {first}"));
            }
        }
    }
    let mut build = cc::Build::new();
    build.file("src/shim.c").includes(&includes).warnings(true).flag_if_supported("-Wno-deprecated-declarations");
    if let Err(e) = build.try_compile("tessera_shim") {
        missing(&format!("compiling the C shim failed: {e}"));
    }
}
