//! What an uploaded source holds, checked before it may become an asset: MP4 or QuickTime
//! (`moov` first or last) or MPEG-TS, H.264 or HEVC video, AAC audio. The whole file is
//! read: every sample must lie inside it and every video sample must be well-formed NAL
//! units, so a truncated file or one that lies in its headers is refused here, with where.
//!
//! Blocking file I/O: run it off the async threads.

use std::path::Path;

use tessera_ingest::mp4::Mp4Error;
use tessera_ingest::timestamp::TICKS_PER_MS;
use tessera_ingest::{CodecConfig, TrackInfo, TrackKind};

use super::package::Opened;

/// A source file, as checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSummary {
    /// `mp4` or `mpegts`.
    pub container: &'static str,
    pub duration_ms: u64,
    pub tracks: Vec<TrackInfo>,
    /// Video samples (frames) read.
    pub video_frames: u64,
    /// Presentation times of the video keyframes, and where the last picture ends.
    pub keyframes: Vec<i64>,
    pub end: i64,
}

impl SourceSummary {
    /// Where its VOD segments begin ([`super::package::SEGMENT_TARGET`] apart at least).
    pub fn segment_plan(&self) -> Vec<tessera_packager::vod::SegmentPlan> {
        tessera_packager::vod::plan_segments(&self.keyframes, self.end, super::package::SEGMENT_TARGET)
    }

    /// The video track, e.g. `h264 1920x1080`.
    pub fn video(&self) -> Option<String> {
        self.tracks.iter().find(|t| t.kind() == TrackKind::Video).map(|t| describe(&t.codec))
    }

    /// The audio track, e.g. `aac 48000 Hz 2 ch`.
    pub fn audio(&self) -> Option<String> {
        self.tracks.iter().find(|t| t.kind() == TrackKind::Audio).map(|t| describe(&t.codec))
    }
}

fn describe(c: &CodecConfig) -> String {
    match c {
        CodecConfig::H264(v) => format!("h264 {}x{}", v.width, v.height),
        CodecConfig::Hevc(v) => format!("hevc {}x{}", v.width, v.height),
        CodecConfig::Aac(a) => format!("aac {} Hz {} ch", a.sample_rate, a.channels),
    }
}

/// Why a source is refused.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("reading the source: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a media file this takes: {0}")]
    NotMedia(String),
    #[error("{0}")]
    Mp4(#[from] Mp4Error),
    #[error("MPEG-TS: {0}")]
    Ts(String),
    #[error("no video track (an asset needs pictures to make a ladder of)")]
    NoVideo,
}

impl SourceError {
    /// A short code for the API and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            SourceError::Io(_) => "io",
            SourceError::NotMedia(_) => "not_media",
            SourceError::Mp4(Mp4Error::PastEnd { .. } | Mp4Error::NoMoov | Mp4Error::SampleOutside { .. }) => {
                "truncated"
            }
            SourceError::Mp4(Mp4Error::NotMp4(_)) => "not_media",
            SourceError::Mp4(_) | SourceError::Ts(_) => "malformed",
            SourceError::NoVideo => "no_video",
        }
    }
}

/// Errors past which an MPEG-TS file is taken as damaged rather than merely imperfect.
const TS_ERRORS_TOLERATED: usize = 16;

/// Checks the file at `path`: every frame is read.
pub fn probe(path: &Path) -> Result<SourceSummary, SourceError> {
    let Opened { container, tracks, frames } = super::package::open(path)?;
    let (mut first, mut end, mut last_duration, mut last_dts) = (None::<i64>, i64::MIN, 0i64, None::<i64>);
    let (mut video_frames, mut damaged, mut keyframes) = (0u64, Vec::new(), Vec::new());
    for f in frames {
        let f = match f {
            Ok(f) => f,
            Err(SourceError::Ts(e)) => {
                damaged.push(e);
                if damaged.len() > TS_ERRORS_TOLERATED {
                    return Err(SourceError::Ts(format!(
                        "{} damaged packets, the first: {}",
                        damaged.len(),
                        damaged[0]
                    )));
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        if f.kind != TrackKind::Video {
            continue;
        }
        video_frames += 1;
        if let Some(d) = last_dts {
            last_duration = (f.dts - d).max(0);
        }
        last_dts = Some(f.dts);
        first = Some(first.map_or(f.pts, |p| p.min(f.pts)));
        end = end.max(f.pts);
        if f.keyframe {
            keyframes.push(f.pts);
        }
    }
    if tracks.is_empty() {
        return Err(SourceError::NotMedia("MPEG-TS packets but no program with H.264, HEVC or AAC".into()));
    }
    let duration_ms = first.map_or(0, |f| ((end + last_duration - f).max(0) / TICKS_PER_MS) as u64);
    // The last picture lasts as long as the one before it (a lone picture, 1/30 s).
    let end = end.saturating_add(if last_duration > 0 { last_duration } else { 3000 });
    let summary = SourceSummary { container, duration_ms, tracks, video_frames, keyframes, end };
    if summary.video().is_none() || video_frames == 0 {
        return Err(SourceError::NoVideo);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples").join(name)
    }

    fn scratch(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tessera-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn the_sample_as_mp4_and_as_mpeg_ts_is_the_same_film() {
        let mp4 = probe(&sample("sample.mp4")).unwrap();
        let ts = probe(&sample("sample.ts")).unwrap();
        assert_eq!((mp4.container, ts.container), ("mp4", "mpegts"));
        assert_eq!(mp4.video(), Some("h264 640x360".into()));
        assert_eq!(mp4.video(), ts.video());
        assert_eq!(mp4.audio(), ts.audio());
        assert_eq!(mp4.video_frames, ts.video_frames);
        assert!(mp4.duration_ms.abs_diff(ts.duration_ms) < 100, "{} vs {}", mp4.duration_ms, ts.duration_ms);
    }

    #[test]
    fn text_a_truncated_file_and_a_lying_one_are_refused_with_a_code() {
        let text = scratch("notes.mp4", b"these are the director's notes, not a film");
        assert_eq!(probe(&text).unwrap_err().code(), "not_media");
        let mp4 = std::fs::read(sample("sample.mp4")).unwrap();
        let cut = scratch("cut.mp4", &mp4[..mp4.len() * 2 / 3]);
        assert_eq!(probe(&cut).unwrap_err().code(), "truncated");
        // A NAL length in a video sample that claims more than the sample holds.
        let (moov_at, moov_len) = (mp4.len() - 5680, 5680); // the sample ends with its moov
        assert_eq!(&mp4[moov_at + 4..moov_at + 8], b"moov");
        let index =
            tessera_ingest::mp4::SourceIndex::parse(&mp4[moov_at..moov_at + moov_len], mp4.len() as u64).unwrap();
        let video = index.samples.iter().find(|s| s.track == tessera_ingest::mp4::VIDEO_TRACK).unwrap();
        let mut lying = mp4.clone();
        let at = video.offset as usize;
        lying[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = probe(&scratch("lying.mp4", &lying)).unwrap_err();
        assert_eq!(err.code(), "malformed", "{err}");
        assert!(err.to_string().contains("a NAL unit claims"), "{err}");
        let ts = std::fs::read(sample("sample.ts")).unwrap();
        let garbage: Vec<u8> = ts.iter().enumerate().map(|(i, b)| if i % 188 == 0 { 0x47 } else { b ^ 0x5a }).collect();
        assert!(probe(&scratch("garbage.ts", &garbage)).is_err(), "sync bytes alone are not MPEG-TS");
    }
}
