//! A transcoded rung of an asset: the source read from its file, decoded and encoded by a
//! codec worker process (the one live streams use, `tessera codec-worker`), and packaged
//! by the same [`RenditionWriter`] as the `source` rendition.
//!
//! Every planned segment start (a source keyframe, [`SourcePlan`]) is sent to the worker
//! as a boundary, so the rung has an IDR exactly there and nowhere else: every rendition
//! of the asset has the same segments, and a job resumed at segment `from` feeds the
//! worker from that segment's keyframe. The worker runs as fast as it can (no real-time
//! governor): the pipes pace it, the reader never runs ahead of the encoder by more than
//! the pipe's buffer. FFmpeg runs only in that process; if it dies on hostile input, the
//! job fails and is retried (then dead-lettered), and the node carries on.
//!
//! Threads: a feeder owns the worker's stdin and the source (video to the worker, audio
//! straight to the packaging), a reader owns its stdout, a third logs its stderr; the
//! calling thread packages and writes segments.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use bytes::Bytes;
use tessera_actors::{source_format, WorkerCommand};
use tessera_ingest::{h264, CodecConfig, Frame, TrackInfo, TrackKind};
use tessera_packager::vod::SegmentAssembler;
use tessera_transcode::wire::{self, EncoderTuning, FrameReader, FromWorker, RungJob, StartJob, ToWorker};
use tessera_transcode::EncodeTarget;

use super::package::{open, JobError, Opened, RenditionManifest, RenditionWriter, SourcePlan};
use super::source::SourceError;

/// How a node encodes VOD rungs.
#[derive(Debug, Clone)]
pub struct VodEncoding {
    pub worker: WorkerCommand,
    pub tuning: EncoderTuning,
}

/// What the feeder and the reader hand the packaging thread, in order.
enum Event {
    Audio(Frame),
    Packet {
        pts: i64,
        dts: i64,
        keyframe: bool,
        body: Bytes,
    },
    SourceFailed(SourceError),
    WorkerFailed(String),
    /// The worker's output ended.
    End,
}

/// Events in flight at most: the feeder and reader wait beyond it.
const EVENTS: usize = 512;

/// Encodes rung `name` (`target`) of the source at `path` from segment `from` (the
/// writer's) on; `segment_done` hears of every segment written and may stop the work by
/// answering `false`.
pub fn transcode_rung(
    path: &Path,
    name: &str,
    target: &EncodeTarget,
    encoding: &VodEncoding,
    mut out: RenditionWriter<'_>,
    from: u32,
    mut segment_done: impl FnMut(u32) -> bool,
) -> Result<RenditionManifest, JobError> {
    let plan: SourcePlan = out.plan().clone();
    let Opened { tracks, frames, .. } = open(path)?;
    let video = tracks.iter().find(|t| t.kind() == TrackKind::Video).cloned().ok_or(SourceError::NoVideo)?;
    let audio = tracks.iter().find(|t| t.kind() == TrackKind::Audio).cloned();
    let format = source_format(&video).ok_or(SourceError::NoVideo)?;
    let start = StartJob {
        stream: format!("vod/{name}"),
        codec: format.codec,
        extradata: format.extradata,
        width: format.width,
        height: format.height,
        fps: format.fps,
        rungs: vec![RungJob { name: name.to_string(), target: target.clone() }],
        tuning: encoding.tuning.clone(),
        stats_interval_ms: 5000,
    };
    let Some(first) = plan.segments.get(from as usize).map(|s| s.start) else {
        return out.finish(); // every segment was made by earlier claims
    };
    let mut child = std::process::Command::new(&encoding.worker.program)
        .args(&encoding.worker.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| JobError::Codec(format!("{}: {e}", encoding.worker.program.display())))?;
    let pid = child.id();
    tracing::info!(pid, rendition = name, width = target.width, height = target.height, "codec worker started");
    let (tx, rx) = sync_channel::<Event>(EVENTS);
    let stdin = child.stdin.take().expect("piped");
    let starts: Vec<i64> = plan.segments.iter().map(|s| s.start).collect();
    let feeder = {
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("vod-feeder".into())
            .spawn(move || feed(stdin, start, frames, &starts, first, tx))?
    };
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::Builder::new().name("vod-reader".into()).spawn(move || read(stdout, tx))?;
    let stderr = child.stderr.take().expect("piped");
    let rendition = name.to_string();
    std::thread::Builder::new().name("vod-stderr".into()).spawn(move || {
        let mut text = String::new();
        let _ = std::io::BufReader::new(stderr).read_to_string(&mut text);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            tracing::warn!(pid, %rendition, "codec worker: {line}");
        }
    })?;
    let result = package(&rx, &mut out, &plan, &video, audio, &mut segment_done);
    if result.is_err() {
        let _ = child.kill();
    }
    drop(rx); // a feeder or reader still sending gives up
    let _ = feeder.join();
    let _ = reader.join();
    let status = wait(&mut child);
    result?;
    if let Err(e) = status {
        return Err(JobError::Codec(e));
    }
    out.finish()
}

/// The worker's exit, as an error unless it was clean.
fn wait(child: &mut Child) -> Result<(), String> {
    match child.wait() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("the codec worker {s}")),
        Err(e) => Err(format!("the codec worker could not be waited for: {e}")),
    }
}

/// The feeder: the source's video to the worker from the keyframe at `first` on (each
/// planned start marked as a boundary), its audio from there on to the packaging.
fn feed(
    mut stdin: impl Write,
    start: StartJob,
    frames: super::package::Frames,
    starts: &[i64],
    first: i64,
    tx: SyncSender<Event>,
) {
    let mut send = |msg: &ToWorker, body: &[u8]| stdin.write_all(&wire::encode(msg, body)).is_ok();
    if !send(&ToWorker::Start(start), &[]) {
        return;
    }
    let mut started = false;
    for f in frames {
        let f = match f {
            Ok(f) => f,
            Err(SourceError::Ts(_)) => continue, // damaged packets are left out, as live
            Err(e) => {
                let _ = tx.send(Event::SourceFailed(e));
                return;
            }
        };
        match f.kind {
            TrackKind::Audio => {
                if f.pts >= first && tx.send(Event::Audio(f)).is_err() {
                    return;
                }
            }
            TrackKind::Video => {
                started |= f.keyframe && f.pts == first;
                if !started {
                    continue;
                }
                let boundary = starts.binary_search(&f.pts).ok().filter(|_| f.keyframe).map(|k| k as u64);
                let msg = ToWorker::Frame { pts: f.pts, dts: f.dts, keyframe: f.keyframe, boundary };
                if !send(&msg, &f.data) {
                    return;
                }
            }
        }
    }
    let _ = send(&ToWorker::Stop, &[]);
}

/// The reader: the worker's packets, in its order, then `End`.
fn read(mut stdout: impl Read, tx: SyncSender<Event>) {
    let mut reader = FrameReader::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match stdout.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        reader.push(&buf[..n]);
        loop {
            let event = match reader.next_message::<FromWorker>() {
                Ok(None) => break,
                Ok(Some((FromWorker::Packet { pts, dts, keyframe, .. }, body))) => {
                    Event::Packet { pts, dts, keyframe, body }
                }
                Ok(Some((FromWorker::Failed { error }, _))) => Event::WorkerFailed(error),
                Ok(Some((FromWorker::Skipped { dts, error }, _))) => {
                    metrics::counter!("tessera_transcode_decode_errors_total").increment(1);
                    tracing::warn!(dts, %error, "the codec worker skipped a source frame");
                    continue;
                }
                Ok(Some(_)) => continue,
                Err(e) => Event::WorkerFailed(format!("unreadable output: {e}")),
            };
            let stop = matches!(event, Event::WorkerFailed(_));
            if tx.send(event).is_err() || stop {
                return;
            }
        }
    }
    let _ = tx.send(Event::End);
}

/// The packaging: the rung's pictures and the source's audio gathered into the planned
/// segments and written.
fn package(
    rx: &Receiver<Event>,
    out: &mut RenditionWriter<'_>,
    plan: &SourcePlan,
    video: &TrackInfo,
    audio: Option<TrackInfo>,
    segment_done: &mut impl FnMut(u32) -> bool,
) -> Result<(), JobError> {
    let mut assembler = SegmentAssembler::new(&plan.segments);
    let mut config: Option<CodecConfig> = None;
    let mut written = |seg: tessera_packager::vod::SegmentSamples, out: &mut RenditionWriter<'_>| {
        out.segment(&seg)?;
        if segment_done(seg.index) {
            Ok(())
        } else {
            Err(JobError::Stopped)
        }
    };
    loop {
        let event = rx.recv().map_err(|_| JobError::Codec("the codec worker's output ended early".into()))?;
        match event {
            Event::Audio(f) => {
                assembler.push(f);
            }
            Event::Packet { pts, dts, keyframe, body } => {
                let au = h264::convert_access_unit(&body);
                if let Some(sps) = au.sps {
                    let c = h264::parse_sps(&sps, au.pps)
                        .map_err(|e| JobError::Codec(format!("the encoder wrote an unreadable SPS: {e}")))?;
                    if config.is_none() {
                        let rung = TrackInfo { id: video.id, codec: CodecConfig::H264(c.clone()) };
                        out.init(std::iter::once(rung).chain(audio.clone()).collect())?;
                    }
                    config = Some(CodecConfig::H264(c));
                }
                if config.is_none() {
                    return Err(JobError::Codec("the encoder's first picture has no SPS".into()));
                }
                let frame = Frame {
                    track: video.id,
                    kind: TrackKind::Video,
                    pts,
                    dts,
                    keyframe: keyframe || au.keyframe,
                    data: au.sample,
                };
                if let Some(seg) = assembler.push(frame) {
                    written(seg, out)?;
                }
            }
            Event::SourceFailed(e) => return Err(e.into()),
            Event::WorkerFailed(e) => return Err(JobError::Codec(e)),
            Event::End => break,
        }
    }
    if let Some(seg) = assembler.finish() {
        written(seg, out)?;
    }
    Ok(())
}
