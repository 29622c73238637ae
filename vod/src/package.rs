//! A source's frames in decode order, its segment plan, and the writing of a rendition
//! ([`RenditionWriter`]): the `source` rendition is the source repackaged as VOD CMAF (no
//! re-encode, [`package_source`]); transcoded rungs are written the same way
//! ([`super::transcode`]).
//!
//! Blocking I/O: run it off the async threads. Every file is stored whole (the archive
//! never shows part of one), so a killed job leaves whole segments only; a job resumed at
//! segment `from` writes segments that continue the earlier ones' timeline (see
//! [`tessera_packager::vod::package_segment`]).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};
use tessera_ingest::mp4::{SourceIndex, TopLevel, TopStep};
use tessera_ingest::timestamp::TICKS_PER_SECOND;
use tessera_ingest::ts::TsDemuxer;
use tessera_ingest::{DemuxEvent, Frame, TrackInfo, TrackKind};
use tessera_packager::fmp4::CmafMuxer;
use tessera_packager::vod::{package_segment, SegmentAssembler, SegmentPlan, SegmentSamples};

use super::archive::{ArchiveError, VodArchive};
use super::source::SourceError;

/// Target segment duration of VOD renditions, 90 kHz ticks.
pub const SEGMENT_TARGET: i64 = 4 * TICKS_PER_SECOND;

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
    /// Segments whose timeline does not follow the one before (a recording across a
    /// reconnect of its publisher).
    #[serde(default)]
    pub discontinuities: Vec<u32>,
    /// A recording's `(first segment, init segment)` wherever its init segment changes (a
    /// job's come from the catalog).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub epochs: Vec<(u32, u64)>,
}

/// Why a job stopped short.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error("{0}")]
    Archive(#[from] ArchiveError),
    #[error("codec worker: {0}")]
    Codec(String),
    #[error("the rendition {0:?} is not one this source can have")]
    Rung(String),
    #[error("stopped: the job is no longer this worker's")]
    Stopped,
}

impl From<std::io::Error> for JobError {
    fn from(e: std::io::Error) -> Self {
        JobError::Source(SourceError::Io(e))
    }
}

/// Where a job's files go: [`ArchiveFiles`], or anything that keeps named files.
pub trait RenditionFiles {
    fn write(&mut self, file: &str, data: &[u8]) -> Result<(), JobError>;
    fn read(&mut self, file: &str) -> Result<Option<Vec<u8>>, JobError>;
}

/// A rendition's files in the archive, from a blocking thread.
pub struct ArchiveFiles {
    pub archive: VodArchive,
    pub asset: String,
    pub rendition: String,
    pub runtime: tokio::runtime::Handle,
}

impl RenditionFiles for ArchiveFiles {
    fn write(&mut self, file: &str, data: &[u8]) -> Result<(), JobError> {
        Ok(self.runtime.block_on(self.archive.put(&self.asset, &self.rendition, file, data))?)
    }

    fn read(&mut self, file: &str) -> Result<Option<Vec<u8>>, JobError> {
        Ok(self.runtime.block_on(self.archive.get(&self.asset, &self.rendition, file))?.map(|b| b.to_vec()))
    }
}

/// The names a claim (`epoch`) writes: a claim that lost its lease and keeps writing never
/// overwrites what the catalog points readers at.
pub mod names {
    pub fn init(epoch: u64) -> String {
        format!("init.e{epoch}.mp4")
    }

    pub fn segment(k: u32, epoch: u64) -> String {
        format!("seg-{k}.e{epoch}.m4s")
    }

    pub fn manifest(epoch: u64) -> String {
        format!("manifest.e{epoch}.json")
    }
}

/// Writes one rendition of a planned source: its init segment, its segments from `from`
/// on (segment `k` from `epochs(k)`'s claim, this claim's from `from`), and at the end
/// its manifest.
pub struct RenditionWriter<'a> {
    files: &'a mut dyn RenditionFiles,
    plan: &'a SourcePlan,
    from: u32,
    epoch: u64,
    /// Which claim wrote segment `k` (those before `from` are earlier claims').
    epoch_of: Box<dyn Fn(u32) -> u64 + 'a>,
    muxer: CmafMuxer,
    tracks: Vec<TrackInfo>,
    sizes: Vec<(u64, u64)>,
}

impl<'a> RenditionWriter<'a> {
    pub fn new(
        files: &'a mut dyn RenditionFiles,
        plan: &'a SourcePlan,
        from: u32,
        epoch: u64,
        epoch_of: impl Fn(u32) -> u64 + 'a,
    ) -> Self {
        RenditionWriter {
            files,
            plan,
            from,
            epoch,
            epoch_of: Box::new(epoch_of),
            muxer: CmafMuxer::default(),
            tracks: Vec::new(),
            sizes: vec![(0, 0); plan.segments.len()],
        }
    }

    /// The rendition's tracks (video first): writes this claim's init segment.
    pub fn init(&mut self, tracks: Vec<TrackInfo>) -> Result<(), JobError> {
        let init = self.muxer.init(tracks.clone());
        self.tracks = tracks;
        self.files.write(&names::init(self.epoch), &init)
    }

    pub fn plan(&self) -> &SourcePlan {
        self.plan
    }

    /// Packages and writes a segment (one before `from` is an earlier claim's: skipped).
    pub fn segment(&mut self, seg: &SegmentSamples) -> Result<(), JobError> {
        if seg.index < self.from || seg.index as usize >= self.sizes.len() {
            return Ok(());
        }
        let id = |kind| self.tracks.iter().find(|t| t.kind() == kind).map_or(0, |t| t.id);
        let (video, audio) = (id(TrackKind::Video), id(TrackKind::Audio));
        let packaged = package_segment(&mut self.muxer, seg, self.plan.origin, video, audio);
        self.files.write(&names::segment(seg.index, self.epoch), &packaged.data)?;
        self.sizes[seg.index as usize] = (packaged.data.len() as u64, packaged.iframe_len);
        Ok(())
    }

    /// Writes the manifest, once every segment is there.
    pub fn finish(self) -> Result<RenditionManifest, JobError> {
        let mut sizes = self.sizes;
        for (i, s) in sizes.iter_mut().enumerate() {
            if i < self.from as usize {
                let file = names::segment(i as u32, (self.epoch_of)(i as u32));
                let data = self.files.read(&file)?.ok_or_else(|| {
                    JobError::Source(SourceError::Io(std::io::Error::other(format!("{file} is missing"))))
                })?;
                *s = (data.len() as u64, first_fragment_len(&data));
            } else if s.0 == 0 {
                let missing = format!("segment {i} was never made (the source ended early)");
                return Err(JobError::Source(SourceError::Io(std::io::Error::other(missing))));
            }
        }
        let seconds: Vec<f64> = self.plan.segments.iter().map(|s| s.seconds()).collect();
        let peak =
            sizes.iter().zip(&seconds).map(|((b, _), s)| (*b as f64 * 8.0 / s.max(0.001)) as u64).max().unwrap_or(0);
        let total: u64 = sizes.iter().map(|(b, _)| b).sum();
        let film: f64 = seconds.iter().sum();
        let video = self.tracks.iter().find(|t| t.kind() == TrackKind::Video);
        let manifest = RenditionManifest {
            segments: seconds.into_iter().zip(sizes.iter().map(|(_, i)| *i)).collect(),
            bandwidth: peak,
            average_bandwidth: (total as f64 * 8.0 / film.max(0.001)) as u64,
            codecs: self.tracks.iter().map(|t| t.codec.rfc6381()).collect::<Vec<_>>().join(","),
            resolution: video.and_then(|v| v.codec.dimensions()),
            discontinuities: Vec::new(),
            epochs: Vec::new(),
        };
        self.files
            .write(&names::manifest(self.epoch), &serde_json::to_vec(&manifest).expect("a manifest serialises"))?;
        Ok(manifest)
    }
}

/// Repackages the source (no re-encode) from segment `from` on; `segment_done` hears of
/// every segment written and may stop the work by answering `false`.
pub fn package_source(
    path: &Path,
    mut out: RenditionWriter<'_>,
    mut segment_done: impl FnMut(u32) -> bool,
) -> Result<RenditionManifest, JobError> {
    let Opened { tracks, frames, .. } = open(path)?;
    if !tracks.iter().any(|t| t.kind() == TrackKind::Video) {
        return Err(SourceError::NoVideo.into());
    }
    let audio = tracks.iter().find(|t| t.kind() == TrackKind::Audio).cloned();
    let video = tracks.iter().find(|t| t.kind() == TrackKind::Video).cloned();
    out.init(video.into_iter().chain(audio).collect())?;
    let mut assembler = SegmentAssembler::new(&out.plan.segments);
    for f in undamaged(frames) {
        if let Some(seg) = assembler.push(f?) {
            out.segment(&seg)?;
            if !segment_done(seg.index) {
                return Err(JobError::Stopped);
            }
        }
    }
    if let Some(seg) = assembler.finish() {
        out.segment(&seg)?;
        if !segment_done(seg.index) {
            return Err(JobError::Stopped);
        }
    }
    out.finish()
}

/// The length of a segment's first `moof` + `mdat`.
fn first_fragment_len(data: &[u8]) -> u64 {
    let size =
        |at: usize| data.get(at..at + 4).map_or(0, |b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize);
    let moof = size(0);
    (moof + size(moof)) as u64
}
