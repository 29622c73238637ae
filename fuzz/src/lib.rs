//! One fuzz target for every parser of bytes that come from outside a node: what
//! publishers send (MPEG-TS, RTMP and its FLV tags, parameter sets, AAC configs, the SRT
//! stream id), what uploaders send (MP4/MOV sources, tus headers), what viewers send (media
//! names, delivery directives, playback tokens), and what crosses between processes (the
//! codec worker's frames, the cluster's wire, catalog commands as JSON).
//!
//! # Contract
//! - A target takes any bytes and returns; it panics only when the code under test broke
//!   one of its promises. Each asserts what its parser promises beyond not panicking: an
//!   error that says where (byte offset, timestamp, track), a result that does not depend
//!   on how the input was split across reads, a name that parses back to itself, a
//!   rejected catalog command that changes nothing.
//! - No single allocation may exceed [`MAX_ALLOCATION`] whatever the input; the corpus
//!   replay ([`replay`]) and the coverage-guided runs (`scripts/fuzz.sh`, cargo-fuzz on a
//!   nightly toolchain, libFuzzer's `-malloc_limit_mb`) both enforce it.
//! - Corpora live in `fuzz/corpus/TARGET/`, one input per file; `cargo test -p
//!   tessera-fuzz` replays every file of every corpus on stable Rust.

mod catalog;
mod media;
mod names;
mod tokens;
mod wire;

pub mod replay;

/// Largest single allocation any target may make, whatever its input: the largest PES
/// packet (16 MiB) or codec-worker body (32 MiB) a parser buffers, with room to spare.
pub const MAX_ALLOCATION: usize = 40 * 1024 * 1024;

/// A fuzz target: its name (its corpus folder) and the function that checks one input.
#[derive(Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target { name: "mpeg_ts", run: media::mpeg_ts },
    Target { name: "rtmp", run: media::rtmp },
    Target { name: "flv", run: media::flv },
    Target { name: "mp4", run: media::mp4 },
    Target { name: "h264", run: media::h264 },
    Target { name: "hevc", run: media::hevc },
    Target { name: "aac", run: media::aac },
    Target { name: "srt_streamid", run: names::srt_streamid },
    Target { name: "media_request", run: names::media_request },
    Target { name: "tus_headers", run: names::tus_headers },
    Target { name: "playback_token", run: tokens::playback_token },
    Target { name: "codec_worker_wire", run: wire::codec_worker },
    Target { name: "cluster_wire", run: wire::cluster },
    Target { name: "catalog_json", run: catalog::commands },
];

/// The target named `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|t| t.name == name)
}

/// Splits an input into pieces whose lengths the input's first byte chooses, the way a
/// socket hands a parser its bytes: any split must give the same result as no split.
fn pieces(data: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return (Vec::new(), data) };
    let size = 1 + (first as usize % 64) * 11;
    (rest.chunks(size).collect(), rest)
}

#[cfg(test)]
mod tests {
    use super::replay::{self, LargestAllocation};
    use super::{Target, MAX_ALLOCATION, TARGETS};

    #[global_allocator]
    static ALLOCATOR: LargestAllocation = LargestAllocation::new();
    /// The allocator's measure is global: one test measures at a time.
    static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Every target has a corpus, and every input in it keeps the target's promises.
    #[test]
    fn every_corpus_replays_clean() {
        let _measuring = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
        let mut failures = Vec::new();
        let mut inputs = 0;
        for target in TARGETS {
            let files = replay::corpus(target.name).unwrap_or_default();
            assert!(
                !files.is_empty(),
                "target {} has no corpus in {}",
                target.name,
                replay::corpus_dir(target.name).display()
            );
            for input in files {
                let data = std::fs::read(&input).expect("a corpus file reads");
                inputs += 1;
                if let Err(what) = replay::check(*target, &data, &ALLOCATOR) {
                    failures.push(replay::Failure { target: target.name, input, what });
                }
            }
        }
        let report: Vec<String> = failures.iter().map(ToString::to_string).collect();
        assert!(failures.is_empty(), "{} of {inputs} inputs failed:\n{}", failures.len(), report.join("\n"));
    }

    /// The replay catches what it is there to catch: a panic, and an allocation past the
    /// bound even when the target survives it.
    #[test]
    fn the_replay_catches_panics_and_large_allocations() {
        let _measuring = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
        let greedy =
            Target { name: "greedy", run: |d| drop(std::hint::black_box(vec![0u8; MAX_ALLOCATION + d.len() + 1])) };
        let broken = Target { name: "broken", run: |d| assert!(d.is_empty(), "non-empty input") };
        assert!(replay::check(greedy, b"", &ALLOCATOR).unwrap_err().contains("allocated"));
        assert_eq!(replay::check(broken, b"x", &ALLOCATOR).unwrap_err(), "non-empty input");
        assert_eq!(replay::check(broken, b"", &ALLOCATOR), Ok(()));
    }
}
