//! What SRT and RTMP publishers share once admitted: the session's pipeline, its ingest
//! rate limit, the idle timeout, takeover, and a clean end.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_actors::ingest_session::IngestMsg;
use tessera_actors::mailbox::SendError;
use tessera_actors::{start_pipeline, PipelineConfig, PipelineHandle, TranscodeSettings};
use tessera_packager::SegmenterConfig;
use tessera_transcode::LadderSpec;
use tokio::sync::watch;

use tessera_live::relay::{OriginTerm, RelaySink, TermState};
use tessera_live::store::{PublishClaim, SegmentStore};

/// What every publisher session is started with.
#[derive(Clone)]
pub struct IngestSettings {
    pub segmenter: SegmenterConfig,
    pub idle_timeout: Duration,
    pub takeover: bool,
    /// Streams whose SRT publishers must encrypt, with their passphrases.
    pub srt_passphrases: std::collections::HashMap<String, String>,
    pub max_ingest_kbps: u64,
    pub max_frame_bytes: usize,
    /// The ladder of streams without one of their own, and those with.
    pub ladder: LadderSpec,
    pub stream_ladders: std::collections::HashMap<String, LadderSpec>,
    pub transcode: TranscodeSettings,
    /// The catalog member: a publisher's node becomes the stream's origin through it.
    pub cluster: tessera_cluster::ClusterService,
    /// The journals other nodes follow this node's streams from.
    pub feeds: Arc<tessera_live::relay::FeedRegistry>,
}

/// Why a publisher session ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EndReason {
    #[error("taken over by a new publisher")]
    TakenOver,
    #[error("session ended")]
    Ended,
    #[error("publisher disconnected")]
    Disconnected,
    #[error("no data for {} ms", .0.as_millis())]
    Idle(Duration),
    #[error("ingest rate {kbps} kbit/s exceeds the limit of {limit} kbit/s")]
    OverRate { kbps: u64, limit: u64 },
    #[error("pipeline ended")]
    PipelineEnded,
    #[error("{0}")]
    LeaseLost(String),
    #[error("socket error: {0}")]
    Socket(std::io::Error),
}

/// Measures a publisher's ingest rate over fixed windows.
struct RateMeter {
    window_start: Instant,
    bytes: u64,
}

impl RateMeter {
    const WINDOW: Duration = Duration::from_secs(2);

    /// Adds bytes; at the end of each window, returns the window's rate in kbit/s.
    fn add(&mut self, n: usize, now: Instant) -> Option<u64> {
        self.bytes += n as u64;
        let elapsed = now.duration_since(self.window_start);
        if elapsed < Self::WINDOW {
            return None;
        }
        let kbps = self.bytes * 8 / elapsed.as_millis().max(1) as u64;
        self.window_start = now;
        self.bytes = 0;
        Some(kbps)
    }
}

/// A running publisher session.
pub(crate) struct PublisherSession {
    pipeline: PipelineHandle,
    /// The origin lease this node holds for the stream: (stream, node, epoch).
    lease: Option<(String, u64, u64)>,
    rate: RateMeter,
    taken_over: watch::Receiver<bool>,
    fence: LeaseFence,
    settings: IngestSettings,
}

impl PublisherSession {
    /// Starts the pipeline of an admitted publisher.
    pub(crate) async fn start(
        protocol: &'static str,
        ticket: &PublishClaim,
        store: &Arc<SegmentStore>,
        settings: &IngestSettings,
    ) -> Option<Self> {
        metrics::counter!("tessera_ingest_sessions_total", "protocol" => protocol).increment(1);
        let me = settings.cluster.identity.id;
        if settings.cluster.catalog.peek(|c| c.is_draining(me)) {
            metrics::counter!("tessera_ingest_refused_total", "reason" => "draining").increment(1);
            tracing::warn!(node = me, "this node is draining: refusing the publisher (publish to another node)");
            return None;
        }
        let lease = match acquire_origin(&settings.cluster, &ticket.stream).await {
            Ok(l) => l,
            Err(e) => {
                metrics::counter!("tessera_origin_lease_failures_total").increment(1);
                tracing::error!(error = %e, "cannot become the stream's origin (no catalog quorum?); refusing the publisher");
                return None;
            }
        };
        // Numbering carries on from wherever the cluster got to (another origin before this
        // one, followed by other nodes).
        if let Some(next) = tessera_live::relay::numbering(&settings.cluster, &ticket.stream, POSITION_PATIENCE).await {
            store.carry_on_from(&ticket.stream, ticket.session, next);
        }
        let fence = LeaseFence::watch(settings.cluster.clone(), &lease);
        let ladder = stream_ladder(settings, &ticket.stream);
        if ladder.transcodes() {
            ticket.expect_ladder();
        }
        let pipeline = start_pipeline(PipelineConfig {
            stream: ticket.stream.clone(),
            session: ticket.session,
            segmenter: settings.segmenter.clone(),
            ingest_capacity: 1024,
            frame_capacity: 1024,
            part_capacity: 64,
            max_frame_bytes: settings.max_frame_bytes,
            ladder,
            transcode: Some(settings.transcode.clone()),
            sink: Arc::new(RelaySink::new(store.clone(), settings.feeds.clone(), lease.term.clone())),
        })
        .await
        .map_err(|e| tracing::error!(error = %e, "could not start the pipeline"))
        .ok()?;
        Some(PublisherSession {
            pipeline,
            lease: Some((lease.stream, lease.node, lease.epoch)),
            fence,
            rate: RateMeter { window_start: Instant::now(), bytes: 0 },
            taken_over: ticket.taken_over.clone(),
            settings: settings.clone(),
        })
    }

    /// Waits for the publisher's next input. Err says why the session should end: taken over,
    /// idle for too long, or the publisher gone.
    pub(crate) async fn next<T>(&mut self, input: impl Future<Output = Option<T>>) -> Result<T, EndReason> {
        tokio::select! {
            why = self.fence.lost() => Err(EndReason::LeaseLost(why)),
            r = self.taken_over.changed() => Err(if r.is_ok() { EndReason::TakenOver } else { EndReason::Ended }),
            r = tokio::time::timeout(self.settings.idle_timeout, input) => match r {
                Ok(Some(v)) => Ok(v),
                Ok(None) => Err(EndReason::Disconnected),
                Err(_) => {
                    metrics::counter!("tessera_ingest_idle_timeouts_total").increment(1);
                    Err(EndReason::Idle(self.settings.idle_timeout))
                }
            },
        }
    }

    /// Hands `size` bytes of input to the pipeline, unless the publisher is over its rate.
    pub(crate) fn feed(&mut self, size: usize, msg: IngestMsg) -> Result<(), EndReason> {
        if let Some(kbps) = self.rate.add(size, Instant::now()).filter(|k| *k > self.settings.max_ingest_kbps) {
            let limit = self.settings.max_ingest_kbps;
            metrics::counter!("tessera_ingest_limit_cuts_total", "limit" => "bitrate").increment(1);
            tracing::warn!(kbps, limit, "cutting publisher: ingest rate over the limit");
            return Err(EndReason::OverRate { kbps, limit });
        }
        match self.pipeline.ingest.try_send(msg) {
            Ok(()) => Ok(()),
            Err(SendError::Full) => {
                metrics::counter!("tessera_ingest_dropped_input_total").increment(1);
                tracing::warn!("ingest lagging: dropping input");
                Ok(())
            }
            Err(SendError::Closed) => Err(EndReason::PipelineEnded),
        }
    }

    /// Ends the session: the pipeline flushes what it has and stops.
    pub(crate) async fn finish(self, reason: EndReason) {
        let _ = self.pipeline.ingest.send(IngestMsg::Closed(reason.to_string()));
        if tokio::time::timeout(Duration::from_secs(5), self.pipeline.join).await.is_err() {
            tracing::warn!("pipeline did not stop within 5 s");
            self.pipeline.supervisor.kill();
        }
        if let Some((stream, node, epoch)) = self.lease {
            // A newer holder (a takeover) makes this a no-op: the catalog refuses a stale epoch.
            let release = tessera_raft::Command::ReleaseOrigin { stream, node, epoch };
            if let Err(e) = self.settings.cluster.propose(release).await {
                tracing::debug!(error = %e, "origin lease not released");
            }
        }
        tracing::info!(%reason, "publisher session over");
    }
}

/// How long a new origin waits for other nodes to say how far the stream got.
const POSITION_PATIENCE: Duration = Duration::from_millis(500);
/// How often a publisher's node confirms it still holds the stream's origin lease.
const LEASE_CHECK: Duration = Duration::from_secs(1);
/// How soon a check that got no answer is tried again.
const LEASE_RETRY: Duration = Duration::from_millis(200);

/// A lease as acquired: which, and the term it starts.
pub(crate) struct AcquiredLease {
    stream: String,
    node: u64,
    epoch: u64,
    term: Arc<OriginTerm>,
}

/// Keeps a publisher's session honest about its origin lease ([`OriginTerm`]): each
/// linearizable read that confirms the lease extends the term to a grace past the read's
/// start; a read that finds the lease moved ends it. The sink publishes only within the
/// term, so a node cut off from the quorum stops before any other node may start; the
/// session ends once the term is over.
pub(crate) struct LeaseFence {
    term: Arc<OriginTerm>,
    why: watch::Receiver<Option<String>>,
    check: tokio::task::JoinHandle<()>,
}

impl LeaseFence {
    fn watch(cluster: tessera_cluster::ClusterService, lease: &AcquiredLease) -> LeaseFence {
        let (tell, why) = watch::channel(None);
        let (stream, node, epoch, term) = (lease.stream.clone(), lease.node, lease.epoch, lease.term.clone());
        let check = tokio::spawn(async move {
            let mut pause = LEASE_CHECK;
            loop {
                tokio::time::sleep(pause).await;
                // One attempt waits at most a check's length, so that a leader lost on the
                // way costs one attempt, not the whole grace; a failed one is tried again soon.
                pause = LEASE_RETRY;
                let started = Instant::now();
                let read = cluster.read(|c| c.may_publish(&stream, node, epoch));
                let lost = match tokio::time::timeout(LEASE_CHECK, read).await {
                    Ok(Ok(true)) => {
                        term.confirmed(started);
                        pause = LEASE_CHECK;
                        None
                    }
                    Ok(Ok(false)) => Some("the stream's origin lease moved to another node".to_string()),
                    _ if term.state(Instant::now()) == TermState::Over => {
                        Some("cannot confirm the stream's origin lease with the cluster".to_string())
                    }
                    _ => None,
                };
                if let Some(why) = lost {
                    term.end();
                    metrics::counter!("tessera_origin_leases_lost_total").increment(1);
                    tracing::warn!(epoch, reason = %why, "fenced: this node publishes nothing more for the stream");
                    let _ = tell.send(Some(why));
                    return;
                }
            }
        });
        LeaseFence { term: lease.term.clone(), why, check }
    }

    /// Resolves with the reason once the lease is lost.
    async fn lost(&mut self) -> String {
        let why = self.why.wait_for(Option::is_some).await.ok().and_then(|why| why.clone());
        match why {
            Some(why) => why,
            None => std::future::pending().await,
        }
    }
}

impl Drop for LeaseFence {
    fn drop(&mut self) {
        self.check.abort();
        self.term.end();
    }
}

/// The stream's ladder: the catalog's, else the node's per-stream setting, else its default.
/// The catalog's was checked when it was written; one that no longer parses (written by a
/// newer version) is logged and ignored.
fn stream_ladder(settings: &IngestSettings, stream: &str) -> LadderSpec {
    let cataloged = settings.cluster.catalog.read_local(|c| c.streams.get(stream).and_then(|s| s.ladder.clone())).value;
    if let Some(spec) = cataloged {
        match spec.parse::<LadderSpec>() {
            Ok(l) => return l,
            Err(e) => {
                tracing::warn!(ladder = %spec, error = %e, "the catalog's ladder for this stream is invalid; using the node's")
            }
        }
    }
    settings.stream_ladders.get(stream).unwrap_or(&settings.ladder).clone()
}

/// Why this node could not become a stream's origin.
#[derive(Debug, thiserror::Error)]
enum LeaseError {
    #[error("{0}")]
    Cluster(#[from] tessera_cluster::ClusterError),
    #[error("the catalog answered {0:?} instead of a lease")]
    NoLease(tessera_raft::Outcome),
}

/// Makes this node the origin of `stream` in the catalog (registering the stream if it is
/// not there yet); returns (stream, node, epoch).
async fn acquire_origin(cluster: &tessera_cluster::ClusterService, stream: &str) -> Result<AcquiredLease, LeaseError> {
    use tessera_raft::{Command, Outcome};
    let node = cluster.identity.id;
    let exists = cluster.catalog.read_local(|c| c.streams.contains_key(stream)).value;
    if !exists {
        let create = Command::PutStream { name: stream.into(), ladder: None, token_sha256: None, create_only: true };
        if let Err(e) = cluster.propose(create).await {
            tracing::debug!(error = %e, "stream registration raced; going on");
        }
    }
    let asked = Instant::now();
    match cluster.propose(Command::AcquireOrigin { stream: stream.into(), node }).await? {
        Outcome::Origin(l) => {
            let term = Arc::new(OriginTerm::new(asked, Instant::now(), l.replaced.is_some()));
            match l.replaced {
                Some(old) => tracing::warn!(
                    node,
                    epoch = l.epoch,
                    replaced = old,
                    wait_ms = tessera_live::relay::term::takeover_wait().as_millis() as u64,
                    "this node took the stream over from a lease never released; publishing once that node's grace is out"
                ),
                None => tracing::info!(node, epoch = l.epoch, "this node is the stream's origin"),
            }
            Ok(AcquiredLease { stream: stream.to_string(), node, epoch: l.epoch, term })
        }
        other => Err(LeaseError::NoLease(other)),
    }
}
