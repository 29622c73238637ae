//! What a ladder costs to make, in cores, before it runs: how nodes are chosen for it.
//!
//! The estimate is linear in pixels per second: encoding a rung costs
//! [`ENCODE_CORES_PER_MPX30`] cores per million pixels at 30 frames per second, and decoding
//! the source a [`DECODE_SHARE`] of that per pixel. The constants are fitted to what this
//! project measured with libx264 `veryfast` (docs/benchmarks.md): the default ladder of a
//! 720p30 source costs about a third of a core, of a 1080p30 source about 0.76 of one. The
//! running worker reports its real load; this is only the first guess.

use crate::wire::StartJob;

/// Cores to encode one million pixels per frame at 30 frames per second.
pub const ENCODE_CORES_PER_MPX30: f64 = 0.42;
/// What decoding a pixel costs, against encoding one.
pub const DECODE_SHARE: f64 = 0.15;
/// Frame rate assumed when the source does not say.
const DEFAULT_FPS: f64 = 30.0;

/// The cores `job` is expected to take.
pub fn ladder_cores(job: &StartJob) -> f64 {
    let fps = job.fps.filter(|f| f.1 > 0).map_or(DEFAULT_FPS, |(n, d)| n as f64 / d as f64).clamp(1.0, 120.0);
    let mpx = |w: u32, h: u32| w as f64 * h as f64 / 1e6;
    let encode: f64 = job.rungs.iter().map(|r| mpx(r.target.width, r.target.height)).sum();
    let decode = mpx(job.width, job.height) * DECODE_SHARE;
    ENCODE_CORES_PER_MPX30 * (encode + decode) * fps / 30.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{EncoderTuning, RungJob, SourceCodec};
    use crate::{plan, LadderSpec};

    fn job(width: u32, height: u32) -> StartJob {
        let rungs = plan(&LadderSpec::default(), width, height)
            .into_iter()
            .filter_map(|r| r.encode.map(|target| RungJob { name: r.name, target }))
            .collect();
        StartJob {
            stream: "s".into(),
            codec: SourceCodec::H264,
            extradata: vec![],
            width,
            height,
            fps: Some((30, 1)),
            rungs,
            tuning: EncoderTuning { preset: "veryfast".into(), tune: String::new(), threads: 0, params: String::new() },
            stats_interval_ms: 1000,
        }
    }

    #[test]
    fn the_default_ladder_costs_what_was_measured() {
        let hd = ladder_cores(&job(1920, 1080));
        assert!((0.65..0.9).contains(&hd), "1080p30 ladder: {hd} cores");
        let sd = ladder_cores(&job(1280, 720));
        assert!((0.25..0.4).contains(&sd), "720p30 ladder: {sd} cores");
        let mut fast = job(1280, 720);
        fast.fps = Some((60, 1));
        assert!((ladder_cores(&fast) / sd - 2.0).abs() < 1e-9, "twice the frames, twice the cost");
    }
}
