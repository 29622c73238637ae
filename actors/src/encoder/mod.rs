//! The encoder actor: turns one publisher session's source into the transcoded rungs of
//! its ladder.
//!
//! It receives what the leader (the source segmenter) placed, frame by frame, with the
//! boundaries it opened; plans the ladder from the source's first video track; starts a
//! codec worker process ([`process`]) and one follower segmenter and packager per rung,
//! linked to itself. Video goes to the worker, which makes every boundary an IDR in every
//! rung; the encoded frames come back with their boundary numbers and go to the rungs'
//! segmenters, with the source's audio, so every rendition cuts at the same time under the
//! same number.
//!
//! Supervision: a worker that dies is restarted with backoff; the rungs list the segments
//! they miss as gaps ([`tessera_transcode::GapLedger`]) and the passthrough never notices.
//! The [`tessera_transcode::LoadGovernor`] stops feeding a worker that falls behind (so
//! latency stays bounded) and drops the most expensive rung when the node cannot keep up.
//! A rung whose actors fail is dropped alone.

mod handover;
pub mod launch;
pub mod process;
mod rungs;
mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tessera_ingest::timestamp::TICKS_PER_SECOND;
use tessera_ingest::{h264, hevc, CodecConfig, Frame, TrackInfo, TrackKind};
use tessera_packager::segmenter::{Boundary, SegmenterConfig};
use tessera_transcode::wire::{EncoderTuning, FromWorker, RungJob, SourceCodec, StartJob, ToWorker};
use tessera_transcode::{
    plan, GapLedger, GovernorConfig, LadderSpec, LoadGovernor, Rendition, Role, WorkerRoster, SOURCE,
};
use tracing::Instrument;

use crate::mailbox::Inflight;
use crate::segmenter::SegmenterMsg;
use launch::{LaunchError, QueueError, WorkerLink};
pub use launch::{WorkerEvent, WorkerLauncher};
pub use process::WorkerCommand;
use rungs::Rung;
use tessera_packager::sink::{MediaSink, PlannedRendition, TranscoderStatus};

/// Transcoding settings shared by every session of a node.
#[derive(Clone)]
pub struct TranscodeSettings {
    pub tuning: EncoderTuning,
    pub governor: GovernorConfig,
    /// Where codec workers run.
    pub launcher: Arc<dyn WorkerLauncher>,
}

impl std::fmt::Debug for TranscodeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranscodeSettings").field("tuning", &self.tuning).field("governor", &self.governor).finish()
    }
}

/// Frames of the open segment kept for a worker that starts in its middle, at most.
const OPEN_SEGMENT_FRAMES: usize = 1024;

/// How long a node that lost a worker is passed over when the ladder is placed again.
const AVOID_FOR: Duration = Duration::from_secs(30);

pub struct EncoderActorConfig {
    pub stream: String,
    pub session: u64,
    pub ladder: LadderSpec,
    pub settings: TranscodeSettings,
    /// The leader's settings; rungs follow its boundaries.
    pub segmenter: SegmenterConfig,
    pub frame_capacity: usize,
    pub part_capacity: usize,
    pub inflight: Inflight,
    pub sink: Arc<dyn MediaSink>,
}

#[derive(Debug)]
pub enum EncoderMsg {
    /// From the leader: the tracks of a (new) init segment.
    Init(Vec<TrackInfo>),
    /// From the leader: a placed frame, with the boundary it opened.
    Frame(Frame, Option<Boundary>),
    /// From the leader: segment `segment` is complete (90 kHz ticks).
    SegmentEnd { segment: u64, duration: i64 },
    /// From the leader: the session is over.
    End,
    /// From a worker's link.
    Worker { generation: u64, event: WorkerEvent },
    /// The launcher answered for worker `generation`.
    Launched { generation: u64, result: Result<Box<dyn WorkerLink>, LaunchError> },
    /// Time to start a new worker after one died.
    Restart { generation: u64 },
    /// The worker did not finish in time at the end.
    EndTimeout,
    /// The worker that handed over (generation `generation`) should have finished by now.
    RetireTimeout { generation: u64 },
}

impl EncoderMsg {
    /// Whether the message came through the leader's bounded sender.
    fn counted(&self) -> bool {
        matches!(self, EncoderMsg::Init(_) | EncoderMsg::Frame(..) | EncoderMsg::SegmentEnd { .. } | EncoderMsg::End)
    }
}

pub struct EncoderState {
    cfg: EncoderActorConfig,
    /// The span every message is handled in: the stream and session (a rung's log lines add their rendition).
    span: tracing::Span,
    myself: ActorRef<EncoderMsg>,
    rungs: Vec<Rung>,
    planned: bool,
    video: Option<TrackInfo>,
    job: Option<StartJob>,
    worker: Option<Box<dyn WorkerLink>>,
    /// A worker is being started.
    launching: bool,
    /// Nodes that lost this ladder's worker, and when.
    avoid: Vec<(u64, Instant)>,
    /// The current worker's generation (events of others are not its).
    generation: u64,
    /// The newest generation handed out.
    last_generation: u64,
    /// Whose output the rungs take.
    roster: WorkerRoster<(FromWorker, Bytes)>,
    /// A worker started to take over from the current one, once it has started.
    successor: Option<Box<dyn WorkerLink>>,
    /// The worker that handed over, finishing the segments before the boundary.
    retiring: Option<handover::Retiring>,
    restarts: u64,
    crashes: Vec<Instant>,
    feeding: bool,
    governor: LoadGovernor,
    ledger: GapLedger,
    boundaries: BTreeMap<u64, Boundary>,
    /// The leader's open segment so far, from its boundary frame: what a worker that starts
    /// in the middle of it is given first.
    open_segment: Vec<(Frame, Option<Boundary>)>,
    ending: bool,
    status: TranscoderStatus,
}

pub struct EncoderActor;

impl Actor for EncoderActor {
    type Msg = EncoderMsg;
    type State = EncoderState;
    type Arguments = EncoderActorConfig;

    async fn pre_start(
        &self,
        myself: ActorRef<EncoderMsg>,
        cfg: EncoderActorConfig,
    ) -> Result<EncoderState, ActorProcessingErr> {
        let governor = LoadGovernor::new(cfg.settings.governor.clone(), 0);
        let span = crate::stream_span(&cfg.stream, cfg.session, None);
        Ok(EncoderState {
            span,
            cfg,
            myself,
            rungs: Vec::new(),
            planned: false,
            video: None,
            job: None,
            worker: None,
            launching: false,
            avoid: Vec::new(),
            generation: 0,
            last_generation: 0,
            roster: WorkerRoster::new(handover::HELD_PACKETS),
            successor: None,
            retiring: None,
            restarts: 0,
            crashes: Vec::new(),
            feeding: false,
            governor,
            ledger: GapLedger::new(0),
            boundaries: BTreeMap::new(),
            open_segment: Vec::new(),
            ending: false,
            status: TranscoderStatus::default(),
        })
    }

    async fn post_stop(&self, _myself: ActorRef<EncoderMsg>, st: &mut EncoderState) -> Result<(), ActorProcessingErr> {
        let span = st.span.clone();
        async move {
            if st.worker.take().is_some() {
                metrics::gauge!("tessera_codec_workers").decrement(1.0);
            }
            st.stop_movers();
            st.cfg.settings.launcher.finished(&st.cfg.stream, st.cfg.session);
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn handle(
        &self,
        myself: ActorRef<EncoderMsg>,
        msg: EncoderMsg,
        st: &mut EncoderState,
    ) -> Result<(), ActorProcessingErr> {
        let span = st.span.clone();
        async move {
            if msg.counted() {
                st.cfg.inflight.done();
            }
            match msg {
                EncoderMsg::Init(tracks) => st.init(tracks).await?,
                EncoderMsg::Frame(frame, boundary) => st.frame(frame, boundary),
                EncoderMsg::SegmentEnd { segment, duration } => {
                    let gaps = st.ledger.leader_completed(segment, duration as f64 / TICKS_PER_SECOND as f64);
                    st.send_gaps(gaps);
                    while st.boundaries.len() > 32 {
                        st.boundaries.pop_first();
                    }
                }
                EncoderMsg::End => {
                    st.ending = true;
                    match &st.worker {
                        Some(w) if w.send(&ToWorker::Stop, Bytes::new()).is_ok() => {
                            myself.send_after(Duration::from_secs(5), || EncoderMsg::EndTimeout);
                        }
                        _ => st.finish(&myself),
                    }
                }
                EncoderMsg::Worker { generation, event } => st.worker_event(generation, event),
                EncoderMsg::Launched { generation, result } if generation == st.generation => st.launched(result),
                EncoderMsg::Launched { generation, result } if st.roster.role(generation) == Role::Successor => {
                    st.successor_launched(result)
                }
                EncoderMsg::Launched { result, .. } => {
                    // A worker nobody waits for any more.
                    if let Ok(mut w) = result {
                        w.kill();
                    }
                }
                EncoderMsg::Restart { generation } if generation == st.generation && !st.ending => st.start_worker(),
                EncoderMsg::Restart { .. } => {}
                EncoderMsg::RetireTimeout { generation } => st.retire_timeout(generation),
                EncoderMsg::EndTimeout => {
                    if let Some(mut w) = st.worker.take() {
                        tracing::warn!("codec worker did not finish in 5 s; killing it");
                        w.kill();
                        metrics::gauge!("tessera_codec_workers").decrement(1.0);
                    }
                    st.finish(&myself);
                }
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<EncoderMsg>,
        evt: SupervisionEvent,
        st: &mut EncoderState,
    ) -> Result<(), ActorProcessingErr> {
        let span = st.span.clone();
        async move {
            match evt {
                SupervisionEvent::ActorFailed(cell, err) => {
                    let Some(i) = st.rungs.iter().position(|r| r.actors.iter().any(|a| a.get_id() == cell.get_id()))
                    else {
                        return Ok(());
                    };
                    tracing::error!(rendition = %st.rungs[i].name, error = %err, "rendition failed; dropping it");
                    for a in &st.rungs[i].actors {
                        a.stop(Some("sibling failed".into()));
                    }
                    st.rungs[i].dead = true;
                    st.drop_rung(i, "failed");
                }
                SupervisionEvent::ActorTerminated(..) if st.ending && myself.get_children().is_empty() => {
                    myself.stop(None);
                }
                _ => {}
            }
            Ok(())
        }
        .instrument(span)
        .await
    }
}

/// The worker's view of the source.
pub struct SourceFormat {
    pub codec: SourceCodec,
    /// `avcC` or `hvcC`.
    pub extradata: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub fps: Option<(u32, u32)>,
}

/// What a codec worker is told of a video track; `None` for audio.
pub fn source_format(video: &TrackInfo) -> Option<SourceFormat> {
    match &video.codec {
        CodecConfig::H264(c) => Some(SourceFormat {
            codec: SourceCodec::H264,
            extradata: h264::avcc_record(c),
            width: c.width,
            height: c.height,
            fps: c.frame_rate.filter(|f| f.1 > 0),
        }),
        CodecConfig::Hevc(c) => Some(SourceFormat {
            codec: SourceCodec::Hevc,
            extradata: hevc::hvcc_record(c),
            width: c.width,
            height: c.height,
            fps: None,
        }),
        CodecConfig::Aac(_) => None,
    }
}

impl EncoderState {
    async fn init(&mut self, tracks: Vec<TrackInfo>) -> Result<(), ActorProcessingErr> {
        let video = tracks.iter().find(|t| t.kind() == TrackKind::Video).cloned();
        let audio: Vec<TrackInfo> = tracks.iter().filter(|t| t.kind() == TrackKind::Audio).cloned().collect();
        if !self.planned {
            self.planned = true;
            let Some(v) = video.clone() else {
                tracing::info!("no video: nothing to transcode");
                self.publish_plan(&[], None);
                self.myself.stop(Some("nothing to transcode".into()));
                return Ok(());
            };
            let (w, h) = v.codec.dimensions().unwrap_or((0, 0));
            let renditions = plan(&self.cfg.ladder, w, h);
            self.publish_plan(&renditions, Some((w, h)));
            let rungs: Vec<Rendition> = renditions.into_iter().filter(|r| r.encode.is_some()).collect();
            if rungs.is_empty() {
                // The leader stops handing frames over once this actor is gone.
                tracing::info!(width = w, height = h, "source too small for any transcoded rung");
                self.myself.stop(Some("nothing to transcode".into()));
                return Ok(());
            }
            self.spawn_rungs(&rungs).await?;
            self.governor = LoadGovernor::new(self.cfg.settings.governor.clone(), rungs.len());
            self.ledger = GapLedger::new(rungs.len());
            self.job = source_format(&v).map(|f| StartJob {
                stream: self.cfg.stream.clone(),
                codec: f.codec,
                extradata: f.extradata,
                width: f.width,
                height: f.height,
                fps: f.fps,
                rungs: rungs
                    .iter()
                    .map(|r| RungJob { name: r.name.clone(), target: r.encode.clone().expect("filtered") })
                    .collect(),
                tuning: self.cfg.settings.tuning.clone(),
                stats_interval_ms: 1000,
            });
            self.video = Some(v);
            for r in &self.rungs {
                for a in &audio {
                    let _ = r.segmenter.send(SegmenterMsg::Track(a.clone()));
                }
            }
            self.start_worker();
            return Ok(());
        }
        if self.rungs.is_empty() {
            return Ok(());
        }
        // A discontinuity at the leader: the worker starts over at the next boundary.
        self.feeding = false;
        let changed = video.as_ref().is_some_and(|v| Some(&v.codec) != self.video.as_ref().map(|o| &o.codec));
        if changed {
            let v = video.expect("checked");
            if let (Some(job), Some(f)) = (self.job.as_mut(), source_format(&v)) {
                (job.codec, job.extradata, job.width, job.height, job.fps) =
                    (f.codec, f.extradata, f.width, f.height, f.fps);
            }
            self.video = Some(v);
            if let (Some(w), Some(job)) = (&self.worker, &self.job) {
                let _ = w.send(&ToWorker::Start(job.clone()), Bytes::new());
            }
        } else if let Some(w) = &self.worker {
            let _ = w.send(&ToWorker::Reset, Bytes::new());
        }
        for r in self.rungs.iter().filter(|r| !r.dead) {
            for a in &audio {
                let _ = r.segmenter.send(SegmenterMsg::Track(a.clone()));
            }
        }
        Ok(())
    }

    fn publish_plan(&self, renditions: &[Rendition], size: Option<(u32, u32)>) {
        let mut planned: Vec<PlannedRendition> = renditions
            .iter()
            .map(|r| match &r.encode {
                None => PlannedRendition { name: r.name.clone(), bitrate: None, resolution: size },
                Some(e) => PlannedRendition {
                    name: r.name.clone(),
                    bitrate: Some((e.bitrate, e.maxrate)),
                    resolution: Some((e.width, e.height)),
                },
            })
            .collect();
        if planned.is_empty() && self.cfg.ladder.has_source() {
            planned.push(PlannedRendition { name: SOURCE.into(), bitrate: None, resolution: size });
        }
        tracing::info!(renditions = %planned.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(","), "ladder planned");
        self.cfg.sink.plan(&self.cfg.stream, self.cfg.session, planned);
    }

    pub(super) fn frame(&mut self, frame: Frame, boundary: Option<Boundary>) {
        if let Some(b) = boundary {
            self.boundaries.insert(b.segment, b);
        }
        // Kept while the segment is open (bounded: a segment too long to keep is not replayed).
        if boundary.is_some() {
            self.open_segment.clear();
        }
        if self.open_segment.len() < OPEN_SEGMENT_FRAMES && (boundary.is_some() || !self.open_segment.is_empty()) {
            self.open_segment.push((frame.clone(), boundary));
        } else if !self.open_segment.is_empty() {
            self.open_segment.clear();
        }
        let Some(video) = &self.video else { return };
        if self.rungs.is_empty() {
            return;
        }
        let now = Instant::now();
        if frame.track == video.id {
            if let Some(b) = boundary {
                self.take_over_at(b.segment);
                if !self.feeding && self.worker.is_some() && !self.governor.behind(now) {
                    self.feeding = true;
                }
                let rungs = &self.rungs;
                self.ledger.leader_opened(b.segment, self.feeding, |i| !rungs[i].dropped);
            }
            if !self.feeding {
                return;
            }
            let sent = match (&self.worker, self.governor.behind(now)) {
                (Some(w), false) => w.send(
                    &ToWorker::Frame {
                        pts: frame.pts,
                        dts: frame.dts,
                        keyframe: frame.keyframe,
                        boundary: boundary.map(|b| b.segment),
                    },
                    frame.data.clone(),
                ),
                _ => Err(QueueError::Full),
            };
            match sent {
                Ok(()) => self.governor.sent(frame.dts, now),
                Err(_) => self.stop_feeding(now),
            }
        } else if self.feeding {
            for r in self.rungs.iter().filter(|r| !r.dropped) {
                let _ = r.segmenter.try_send(SegmenterMsg::Frame(frame.clone(), now, None));
            }
        }
    }

    /// The worker is behind: no more input until it catches up and a boundary comes.
    fn stop_feeding(&mut self, now: Instant) {
        self.feeding = false;
        self.governor.skipped_for_delay(now);
        metrics::counter!("tessera_transcode_skips_total").increment(1);
        tracing::warn!(
            delay_ms = self.governor.delay(now).as_millis() as u64,
            "codec worker behind: skipping to the next boundary"
        );
        let gaps = self.ledger.interrupt();
        self.send_gaps(gaps);
    }

    pub(super) fn worker_message(&mut self, msg: FromWorker, body: Bytes) {
        match msg {
            FromWorker::Ready { ffmpeg } => {
                tracing::info!(%ffmpeg, "codec worker ready")
            }
            FromWorker::Packet { rung, pts, dts, keyframe, boundary } => {
                self.rung_packet(rung as usize, pts, dts, keyframe, boundary, body)
            }
            FromWorker::Done { dts } => {
                if let Some(took) = self.governor.done(dts, Instant::now()) {
                    metrics::histogram!("tessera_transcode_delay_seconds").record(took.as_secs_f64());
                }
            }
            FromWorker::Stats(stats) => {
                metrics::histogram!("tessera_transcode_load_ratio").record(stats.load());
                self.status.load = stats.load();
                if let Some((rung, reason)) = self.governor.report(&stats, Instant::now()) {
                    tracing::warn!(rendition = %self.rungs[rung].name, load = stats.load(), reason = reason.as_str(), "node cannot transcode this ladder in real time; dropping its most expensive rung");
                    self.drop_rung(rung, reason.as_str());
                } else {
                    self.publish_status();
                }
            }
            FromWorker::Skipped { dts, error } => {
                metrics::counter!("tessera_transcode_decode_errors_total").increment(1);
                tracing::warn!(dts, %error, "codec worker could not decode a source frame");
            }
            FromWorker::Failed { error } => {
                tracing::error!(%error, "codec worker failed")
            }
        }
    }

    pub(super) fn publish_status(&self) {
        self.cfg.sink.transcoder(&self.cfg.stream, self.cfg.session, self.status.clone());
    }

    /// Ends the rungs; the actor stops when they have.
    pub(super) fn finish(&mut self, myself: &ActorRef<EncoderMsg>) {
        if let Some(mut w) = self.worker.take() {
            w.kill();
            metrics::gauge!("tessera_codec_workers").decrement(1.0);
        }
        self.stop_movers();
        for r in self.rungs.iter().filter(|r| !r.dead) {
            let _ = r.segmenter.send(SegmenterMsg::End);
        }
        if myself.get_children().is_empty() {
            myself.stop(None);
        }
    }
}
