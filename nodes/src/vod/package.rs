//! A source's frames in decode order, its segment plan, and the `source` rendition: the
//! source repackaged as VOD CMAF (no re-encode), written to `DATA_DIR/vod/ASSET/src/`.
//!
//! Blocking file I/O: run it off the async threads. Every file is written under a
//! temporary name and renamed, so a killed job leaves whole segments only; a job resumed
//! at segment `from` writes the same bytes the first run would have (see
//! [`tessera_packager::vod::package_segment`]).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};
use tessera_ingest::mp4::{SourceIndex, TopLevel, TopStep};
use tessera_ingest::ts::TsDemuxer;
use tessera_ingest::{DemuxEvent, Frame, TrackInfo, TrackKind};
use tessera_packager::fmp4::CmafMuxer;
use tessera_packager::vod::{package_segment, SegmentAssembler, SegmentPlan};

use super::source::SourceError;

/// Target segment duration of VOD renditions, 90 kHz ticks.
pub const SEGMENT_TARGET: i64 = 4 * 90_000;

/// A source's frames, in decode order; damaged MPEG-TS packets come as
/// [`SourceError::Ts`] items, for the reader to count or skip.
pub type Frames = Box<dyn Iterator<Item = Result<Frame, SourceError>> + Send>;

/// An opened source.
pub struct Opened {
    /// `mp4` or `mpegts`.
    pub container: &'static str,
    /// Video first.
    pub tracks: Vec<TrackInfo>,
    pub frames: Frames,
}

/// Opens a source (MPEG-TS by its sync bytes, else MP4 or QuickTime).
pub fn open(path: &Path) -> Result<Opened, SourceError> {
    let mut file = File::open(path)?;
    let mut head = [0u8; 189];
    let n = read_at(&mut file, 0, &mut head)?;
    if n > 188 && head[0] == 0x47 && head[188] == 0x47 {
        let (tracks, frames) = open_ts(file)?;
        return Ok(Opened { container: "mpegts", tracks, frames });
    }
    let len = file.metadata()?.len();
    let mut top = TopLevel::new(len);
    let mut step = top.start();
    let moov = loop {
        match step {
            TopStep::ReadHeader(at) => {
                let mut h = [0u8; 16];
                let n = read_at(&mut file, at, &mut h)?;
                step = top.header(&h[..n])?;
            }
            TopStep::Done(m) => break m,
        }
    };
    let mut bytes = vec![0u8; moov.size as usize];
    read_at(&mut file, moov.offset, &mut bytes)?;
    let index = SourceIndex::parse(&bytes, len)?;
    let tracks = index.tracks.clone();
    let mut buf = Vec::new();
    let frames = (0..index.samples.len()).map(move |i| {
        let s = index.samples[i];
        buf.resize(s.size as usize, 0);
        if read_at(&mut file, s.offset, &mut buf)? < buf.len() {
            return Err(SourceError::Mp4(tessera_ingest::mp4::Mp4Error::SampleOutside {
                track: s.track as u32,
                sample: i,
                offset: s.offset,
                size: s.size,
                file_len: len,
            }));
        }
        Ok(index.frame(i, &buf)?)
    });
    Ok(Opened { container: "mp4", tracks, frames: Box::new(frames) })
}

/// Frames with damaged MPEG-TS packets left out, as the live ingest leaves them out.
fn undamaged(frames: Frames) -> impl Iterator<Item = Result<Frame, SourceError>> {
    frames.filter(|f| !matches!(f, Err(SourceError::Ts(_))))
}

pub(super) fn read_at(file: &mut File, at: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    file.seek(SeekFrom::Start(at))?;
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// MPEG-TS read through once for its tracks (they come before the frames that need them),
/// then again for its frames.
fn open_ts(mut file: File) -> Result<(Vec<TrackInfo>, Frames), SourceError> {
    let mut tracks: Vec<TrackInfo> = Vec::new();
    for e in TsFrames::new(file.try_clone()?).events() {
        match e {
            Ok(DemuxEvent::Track(t)) => {
                tracks.retain(|x| x.id != t.id);
                tracks.push(t);
            }
            Err(SourceError::Io(e)) => return Err(e.into()),
            _ => {}
        }
    }
    tracks.sort_by_key(|t| t.kind() != TrackKind::Video);
    file.seek(SeekFrom::Start(0))?;
    let frames = TsFrames::new(file).events().filter_map(|e| match e {
        Ok(DemuxEvent::Frame(f)) => Some(Ok(f)),
        Ok(DemuxEvent::Track(_)) => None,
        Err(e) => Some(Err(e)),
    });
    Ok((tracks, Box::new(frames)))
}

struct TsFrames {
    file: File,
    demux: TsDemuxer,
    pending: VecDeque<Result<DemuxEvent, SourceError>>,
    done: bool,
}

impl TsFrames {
    fn new(file: File) -> Self {
        TsFrames { file, demux: TsDemuxer::new(), pending: VecDeque::new(), done: false }
    }

    /// Demux events, and errors for damaged packets.
    fn events(mut self) -> impl Iterator<Item = Result<DemuxEvent, SourceError>> {
        let mut buf = vec![0u8; 1 << 20];
        std::iter::from_fn(move || loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            if self.done {
                return None;
            }
            let n = match self.file.read(&mut buf) {
                Ok(n) => n,
                Err(e) => return Some(Err(e.into())),
            };
            let events = if n == 0 {
                self.done = true;
                self.demux.flush()
            } else {
                self.demux.push(&buf[..n])
            };
            self.pending.extend(events.into_iter().map(|e| e.map_err(|e| SourceError::Ts(e.to_string()))));
        })
    }
}

/// Where a source's segments begin, and where its decode times count from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcePlan {
    pub tracks: Vec<TrackInfo>,
    pub segments: Vec<SegmentPlan>,
    /// The first keyframe's presentation time.
    pub origin: i64,
}

/// Reads a source through ([`super::source::probe`]) and plans its segments.
pub fn plan(path: &Path) -> Result<SourcePlan, SourceError> {
    let summary = super::source::probe(path)?;
    let segments = summary.segment_plan();
    let origin = segments.first().map(|s| s.start).ok_or(SourceError::NoVideo)?;
    Ok(SourcePlan { tracks: summary.tracks, segments, origin })
}

/// What the serving side needs of a finished rendition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenditionManifest {
    /// Each segment's seconds and the byte length of its keyframe's fragment.
    pub segments: Vec<(f64, u64)>,
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub codecs: String,
    pub resolution: Option<(u32, u32)>,
}

/// Writes `bytes` to `path` whole: a temporary name, then a rename.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

/// Repackages the source into `out` from segment `from` on, segment `k` in the file
/// `file_of(k)`; `segment_done` hears of every segment written and may stop the work by
/// answering `false`. The manifest is written last, once every segment is there.
pub fn package_source(
    path: &Path,
    plan: &SourcePlan,
    out: &Path,
    from: u32,
    file_of: impl Fn(u32) -> String,
    mut segment_done: impl FnMut(u32) -> bool,
) -> Result<RenditionManifest, SourceError> {
    std::fs::create_dir_all(out)?;
    let Opened { tracks, frames, .. } = open(path)?;
    let video = tracks.iter().find(|t| t.kind() == TrackKind::Video).ok_or(SourceError::NoVideo)?;
    let audio = tracks.iter().find(|t| t.kind() == TrackKind::Audio).map_or(0, |t| t.id);
    let mut muxer = CmafMuxer::default();
    write_whole(&out.join("init.mp4"), &muxer.init(tracks.clone()))?;
    let mut assembler = SegmentAssembler::new(&plan.segments);
    let mut sizes = vec![(0u64, 0u64); plan.segments.len()];
    let mut handle = |seg: tessera_packager::vod::SegmentSamples, muxer: &mut CmafMuxer| -> Result<bool, SourceError> {
        if seg.index < from {
            return Ok(true);
        }
        let packaged = package_segment(muxer, &seg, plan.origin, video.id, audio);
        write_whole(&out.join(file_of(seg.index)), &packaged.data)?;
        sizes[seg.index as usize] = (packaged.data.len() as u64, packaged.iframe_len);
        Ok(segment_done(seg.index))
    };
    for f in undamaged(frames) {
        if let Some(seg) = assembler.push(f?) {
            if !handle(seg, &mut muxer)? {
                return Err(SourceError::Stopped);
            }
        }
    }
    if let Some(seg) = assembler.finish() {
        if !handle(seg, &mut muxer)? {
            return Err(SourceError::Stopped);
        }
    }
    // Sizes of segments an earlier run wrote.
    for (i, s) in sizes.iter_mut().enumerate().take(from as usize) {
        let data = std::fs::read(out.join(file_of(i as u32)))?;
        *s = (data.len() as u64, first_fragment_len(&data));
    }
    let seconds: Vec<f64> = plan.segments.iter().map(|s| s.seconds()).collect();
    let peak = sizes.iter().zip(&seconds).map(|((b, _), s)| (*b as f64 * 8.0 / s.max(0.001)) as u64).max().unwrap_or(0);
    let total: u64 = sizes.iter().map(|(b, _)| b).sum();
    let film: f64 = seconds.iter().sum();
    let codecs = tracks.iter().map(|t| t.codec.rfc6381()).collect::<Vec<_>>().join(",");
    let manifest = RenditionManifest {
        segments: seconds.into_iter().zip(sizes.iter().map(|(_, i)| *i)).collect(),
        bandwidth: peak,
        average_bandwidth: (total as f64 * 8.0 / film.max(0.001)) as u64,
        codecs,
        resolution: video.codec.dimensions(),
    };
    write_whole(&out.join("manifest.json"), &serde_json::to_vec(&manifest).expect("a manifest serialises"))?;
    Ok(manifest)
}

/// The length of a segment's first `moof` + `mdat`.
fn first_fragment_len(data: &[u8]) -> u64 {
    let size =
        |at: usize| data.get(at..at + 4).map_or(0, |b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize);
    let moof = size(0);
    (moof + size(moof)) as u64
}
