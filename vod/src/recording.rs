//! Live to VOD: a stream set to `record` becomes an asset. From the first segment its
//! origin finishes, every rendition's init segments and segments are copied as they finish
//! into the asset's place in the archive (the bytes the live viewers got: no re-encode),
//! and when the stream ends (its publisher gone past the reconnect grace) the manifests
//! are written and the catalog told (`FinishRecording`): the asset is ready, with a VOD
//! playlist of the whole broadcast. A reconnect within the grace continues the same
//! recording, after an `EXT-X-DISCONTINUITY`.
//!
//! A rendition's manifest is rewritten in the archive after every segment, so a recording
//! whose node stops in the middle is finished, with what it recorded, when that node
//! starts again, or by another node once the stopped one is removed from the cluster.
//!
//! The store tells the recorder of files without waiting ([`Recorder`]); a
//! task of its own writes them. Its queue is bounded: if the archive cannot keep up, files
//! are dropped and counted (`tessera_recording_dropped_total`), and a recording that lost
//! a segment skips it (the playlist has a discontinuity there) rather than stopping.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use tessera_ingest::{TrackInfo, TrackKind};
use tessera_raft::{AssetRecord, AssetState, Command, RecordedRendition, SourceRecord};
use tokio::sync::mpsc;

use super::archive::VodArchive;
use super::package::{names, RenditionManifest};
use tessera_cluster::ClusterService;
use tessera_storage::finished::{FinishedFile, FinishedKind, Recorder};

/// Files waiting to be written, at most.
const QUEUE: usize = 4096;
/// A restarted node finishes the recordings it was making this long after it starts, and
/// looks for orphaned recordings this often.
const RECOVER_AFTER: std::time::Duration = std::time::Duration::from_secs(5);
const RECOVER_EVERY: std::time::Duration = std::time::Duration::from_secs(15);
/// Init segments kept per rendition for a recording that starts later.
const INITS_KEPT: usize = 4;

enum Event {
    File { stream: String, rendition: String, file: FinishedFile },
    Ended { stream: String },
}

/// The store's side: queues what the store hands over.
pub struct LiveRecorder {
    queue: mpsc::Sender<Event>,
}

impl Recorder for LiveRecorder {
    fn finished(&self, stream: &str, rendition: &str, file: &FinishedFile) {
        let event = Event::File { stream: stream.into(), rendition: rendition.into(), file: file.clone() };
        match self.queue.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("tessera_recording_dropped_total").increment(1);
                tracing::warn!(stream, rendition, file = %file.file, "recording queue full: file not recorded");
            }
            // The node is stopping: the pipelines' last files come after the recorder's end.
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!(stream, rendition, file = %file.file, "recorder stopped: file not recorded")
            }
        }
    }

    fn ended(&self, stream: &str) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.queue.try_send(Event::Ended { stream: stream.into() }) {
            tracing::warn!(stream, "recording queue full: the stream's end was not heard");
        }
    }
}

/// Starts the recording task, which ends with `stop`.
pub fn start(
    cluster: ClusterService,
    archive: VodArchive,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::sync::Arc<LiveRecorder> {
    let (queue, events) = mpsc::channel(QUEUE);
    let task = RecordingTask { cluster, archive, inits: HashMap::new(), open: HashMap::new() };
    tokio::spawn(task.run(events, stop));
    std::sync::Arc::new(LiveRecorder { queue })
}

/// One rendition of a recording.
#[derive(Default)]
struct Track {
    /// Seconds of each segment recorded.
    segments: Vec<f64>,
    bytes: u64,
    peak_bps: u64,
    epochs: Vec<(u32, u64)>,
    discontinuities: Vec<u32>,
    tracks: Vec<TrackInfo>,
}

impl Track {
    /// What a player needs of the rendition so far (`None` before its first segment).
    fn manifest(&self) -> Option<RenditionManifest> {
        self.epochs.last()?;
        let film: f64 = self.segments.iter().sum();
        let video = self.tracks.iter().find(|t| t.kind() == TrackKind::Video);
        Some(RenditionManifest {
            // No I-frame byte ranges: a live segment's first fragment holds more than its
            // keyframe.
            segments: self.segments.iter().map(|s| (*s, 0)).collect(),
            bandwidth: self.peak_bps,
            average_bandwidth: (self.bytes as f64 * 8.0 / film.max(0.001)) as u64,
            codecs: self.tracks.iter().map(|t| t.codec.rfc6381()).collect::<Vec<_>>().join(","),
            resolution: video.and_then(|v| v.codec.dimensions()),
            discontinuities: self.discontinuities.clone(),
            epochs: self.epochs.clone(),
        })
    }
}

/// Writes a rendition's manifest as it stands (under its last init segment's name, the one
/// the finished asset is read with): after every segment, so a recording whose node
/// stops can be finished from the archive.
async fn write_manifest(archive: &VodArchive, asset: &str, rendition: &str, m: &RenditionManifest) -> bool {
    let Some((_, last)) = m.epochs.last() else { return false };
    let json = serde_json::to_vec(m).expect("a manifest serialises");
    match archive.put(asset, rendition, &names::manifest(*last), &json).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(%asset, %rendition, error = %e, "a recording's manifest could not be written");
            false
        }
    }
}

/// A finished recording's rendition, from its manifest.
fn recorded(rendition: &str, m: &RenditionManifest) -> RecordedRendition {
    RecordedRendition { rendition: rendition.to_string(), epochs: m.epochs.clone(), segments: m.segments.len() as u32 }
}

struct Recording {
    asset: String,
    renditions: BTreeMap<String, Track>,
}

/// A rendition's latest init segments by number, with their tracks.
type KeptInits = BTreeMap<u32, (Bytes, Vec<TrackInfo>)>;

struct RecordingTask {
    cluster: ClusterService,
    archive: VodArchive,
    /// The latest init segments of every rendition (stream, rendition) this node is origin of.
    inits: HashMap<(String, String), KeptInits>,
    open: HashMap<String, Recording>,
}

impl RecordingTask {
    async fn run(mut self, mut events: mpsc::Receiver<Event>, mut stop: tokio::sync::watch::Receiver<bool>) {
        // The first look once this node has caught up with the catalog.
        let mut orphans = tokio::time::interval_at(tokio::time::Instant::now() + RECOVER_AFTER, RECOVER_EVERY);
        loop {
            let e = tokio::select! {
                e = events.recv() => e,
                _ = orphans.tick() => {
                    self.recover().await;
                    continue;
                }
                _ = stop.changed() => None,
            };
            match e {
                Some(Event::File { stream, rendition, file }) => self.file(stream, rendition, file).await,
                Some(Event::Ended { stream }) => self.ended(&stream).await,
                // A recording still open when the node stops stays `recording`, its files
                // and manifests so far in the archive: the node finishes it when it starts
                // again ([`RecordingTask::recover`]).
                None => return,
            }
        }
    }

    fn wants_recording(&self, stream: &str) -> bool {
        self.cluster.catalog.read_local(|c| c.streams.get(stream).is_some_and(|s| s.record)).value
    }

    async fn file(&mut self, stream: String, rendition: String, file: FinishedFile) {
        let (seconds, init, discontinuity) = match file.kind {
            FinishedKind::Init { id, tracks } => {
                let kept = self.inits.entry((stream, rendition)).or_default();
                kept.insert(id, (file.data.to_bytes(), tracks));
                while kept.len() > INITS_KEPT {
                    kept.pop_first();
                }
                return;
            }
            FinishedKind::Segment { seconds, init, discontinuity, .. } => (seconds, init, discontinuity),
        };
        if !self.open.contains_key(&stream) {
            if !self.wants_recording(&stream) {
                return;
            }
            match self.begin(&stream).await {
                Some(r) => self.open.insert(stream.clone(), r),
                None => return, // tried again at the next segment
            };
        }
        let Some(rec) = self.open.get_mut(&stream) else { return };
        let asset = rec.asset.clone();
        let track = rec.renditions.entry(rendition.clone()).or_default();
        let k = track.segments.len() as u32;
        if track.epochs.last().map(|(_, e)| *e) != Some(init as u64) {
            let Some((bytes, tracks)) = self.inits.get(&(stream.clone(), rendition.clone())).and_then(|m| m.get(&init))
            else {
                tracing::warn!(%stream, %rendition, init, "a segment without its init segment: not recorded");
                return;
            };
            if let Err(e) = self.archive.put(&asset, &rendition, &names::init(init as u64), bytes).await {
                tracing::warn!(%stream, %rendition, error = %e, "an init segment could not be recorded");
                return;
            }
            track.tracks = tracks.clone();
            if k > 0 {
                track.discontinuities.push(k);
            }
            track.epochs.push((k, init as u64));
        } else if discontinuity && k > 0 {
            track.discontinuities.push(k);
        }
        match self.archive.put(&asset, &rendition, &names::segment(k, init as u64), &file.data.to_bytes()).await {
            Ok(()) => {
                track.segments.push(seconds);
                track.bytes += file.data.len() as u64;
                track.peak_bps = track.peak_bps.max((file.data.len() as f64 * 8.0 / seconds.max(0.001)) as u64);
                metrics::counter!("tessera_recorded_segments_total").increment(1);
                if let Some(m) = track.manifest() {
                    write_manifest(&self.archive, &asset, &rendition, &m).await;
                }
            }
            Err(e) => {
                metrics::counter!("tessera_recording_dropped_total").increment(1);
                tracing::warn!(%stream, %rendition, error = %e, "a segment could not be recorded");
                // What follows does not continue what was recorded before.
                track.discontinuities.push(k);
            }
        }
    }

    /// Records the asset of a new recording.
    async fn begin(&self, stream: &str) -> Option<Recording> {
        let now: chrono::DateTime<chrono::Utc> = std::time::SystemTime::now().into();
        let stamp = now.format("%Y%m%d-%H%M%S").to_string();
        let id = format!("{}-{stamp}", &stream[..stream.len().min(48)]);
        let asset = AssetRecord {
            id: id.clone(),
            title: format!("{stream} (recorded {stamp} UTC)"),
            source: SourceRecord {
                node: self.cluster.identity.id,
                size: 0,
                sha256: "0".repeat(64),
                container: "live".into(),
                duration_ms: 0,
                video: None,
                audio: None,
            },
            state: AssetState::Recording,
            keep_source: false,
            created_ms: 0,
        };
        match self.cluster.propose(Command::AddAsset { asset }).await {
            Ok(tessera_raft::Outcome::Rejected(r)) => {
                tracing::warn!(stream, asset = %id, "the recording's asset was refused: {r}");
                None
            }
            Ok(_) => {
                tracing::info!(stream, asset = %id, "recording started");
                Some(Recording { asset: id, renditions: BTreeMap::new() })
            }
            Err(e) => {
                tracing::warn!(stream, asset = %id, error = %e, "the recording's asset could not be recorded yet");
                None
            }
        }
    }

    /// Writes the manifests and tells the catalog the recording is complete.
    async fn ended(&mut self, stream: &str) {
        self.inits.retain(|(s, _), _| s != stream);
        let Some(rec) = self.open.remove(stream) else { return };
        let mut renditions = Vec::new();
        let mut duration = 0.0f64;
        for (name, t) in &rec.renditions {
            let Some(m) = t.manifest() else { continue };
            if write_manifest(&self.archive, &rec.asset, name, &m).await {
                duration = duration.max(m.segments.iter().map(|s| s.0).sum());
                renditions.push(recorded(name, &m));
            }
        }
        self.finish(&rec.asset, duration, renditions).await;
    }

    async fn finish(&self, asset: &str, duration: f64, renditions: Vec<RecordedRendition>) {
        let finish =
            Command::FinishRecording { asset: asset.to_string(), duration_ms: (duration * 1000.0) as u64, renditions };
        for attempt in 0..10u32 {
            match self.cluster.propose(finish.clone()).await {
                Ok(_) => {
                    tracing::info!(%asset, seconds = duration, "recording finished");
                    return;
                }
                Err(e) => {
                    tracing::warn!(%asset, attempt, error = %e, "the recording's end not recorded yet");
                    tokio::time::sleep(std::time::Duration::from_secs(1 << attempt.min(5))).await;
                }
            }
        }
    }

    /// Recordings nobody is making: this node's from before it stopped, and those of a
    /// node removed from the cluster (finished by the lowest-numbered node). Each is
    /// finished with what the archive holds of it (every segment recorded, with its
    /// manifest; nothing, and so failed, if that node's archive was its own).
    async fn recover(&self) {
        let me = self.cluster.identity.id;
        let orphans: Vec<String> = self
            .cluster
            .catalog
            .read_local(|c| {
                let first = c.nodes.keys().next().copied();
                c.assets
                    .values()
                    .filter(|a| a.state == AssetState::Recording)
                    .filter(|a| a.source.node == me || (!c.nodes.contains_key(&a.source.node) && first == Some(me)))
                    .map(|a| a.id.clone())
                    .collect()
            })
            .value;
        for asset in orphans.into_iter().filter(|a| !self.open.values().any(|r| r.asset == *a)) {
            let mut renditions = Vec::new();
            let mut duration = 0.0f64;
            for rendition in self.archive.list(&asset, None).await.unwrap_or_default() {
                let files = self.archive.list(&asset, Some(&rendition)).await.unwrap_or_default();
                let last = files
                    .iter()
                    .filter_map(|f| f.strip_prefix("manifest.e")?.strip_suffix(".json")?.parse::<u64>().ok())
                    .max();
                let Some(last) = last else { continue };
                let Ok(Some(json)) = self.archive.get(&asset, &rendition, &names::manifest(last)).await else {
                    continue;
                };
                let Ok(m) = serde_json::from_slice::<RenditionManifest>(&json) else { continue };
                if m.epochs.is_empty() {
                    continue;
                }
                duration = duration.max(m.segments.iter().map(|s| s.0).sum());
                renditions.push(recorded(&rendition, &m));
            }
            tracing::warn!(%asset, renditions = renditions.len(), "a recording this node stopped in the middle of is finished with what it recorded");
            self.finish(&asset, duration, renditions).await;
        }
    }
}
