//! Wires the SRT listener to the actors: admission claims the stream name in the segment
//! store; each accepted publisher gets its own pipeline and a reader task that feeds it.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tessera_actors::ingest_session::IngestMsg;
use tessera_actors::mailbox::SendError;
use tessera_actors::{start_pipeline, PipelineConfig};
use tessera_ingest::srt::{Admission, BoundSrtListener, Caller, ServerRejectReason, SrtPublisher};
use tessera_packager::SegmenterConfig;
use tracing::Instrument;

use crate::auth::{AuthDecision, PublishAuth};
use crate::store::{ClaimError, PublishClaim, SegmentStore};

/// What every publisher session is started with.
#[derive(Clone)]
pub struct IngestSettings {
    pub takeover: bool,
    /// Streams whose SRT publishers must encrypt, with their passphrases.
    pub srt_passphrases: std::collections::HashMap<String, String>,
    pub segmenter: SegmenterConfig,
    pub idle_timeout: Duration,
    pub max_ingest_kbps: u64,
    pub max_frame_bytes: usize,
}

/// Measures a publisher's ingest rate over fixed windows.
pub(crate) struct RateMeter {
    window_start: std::time::Instant,
    bytes: u64,
}

impl RateMeter {
    const WINDOW: Duration = Duration::from_secs(2);

    pub(crate) fn new(now: std::time::Instant) -> Self {
        RateMeter { window_start: now, bytes: 0 }
    }

    /// Adds bytes; at the end of each window, returns the window's rate in kbit/s.
    pub(crate) fn add(&mut self, n: usize, now: std::time::Instant) -> Option<u64> {
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

pub async fn run(
    listener: BoundSrtListener,
    store: Arc<SegmentStore>,
    auth: Arc<dyn PublishAuth>,
    settings: IngestSettings,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let admit_store = store.clone();
    let takeover = settings.takeover;
    let passphrases = settings.srt_passphrases.clone();
    let admit = move |req: &tessera_ingest::streamid::StreamRequest, caller: Caller| {
        let remote = caller.remote;
        let passphrase = passphrases.get(&req.name).cloned();
        if passphrase.is_some() && !caller.encrypted {
            tracing::warn!(%remote, stream = %req.name, "SRT publisher refused: the stream requires encryption (a passphrase)");
            metrics::counter!("tessera_ingest_unauthorized_total", "protocol" => "srt").increment(1);
            return Err(ServerRejectReason::Unauthorized);
        }
        if let refused @ (AuthDecision::MissingToken | AuthDecision::WrongToken) = auth.check(req) {
            tracing::warn!(%remote, stream = %req.name, ?refused, "publisher not authorized");
            metrics::counter!("tessera_ingest_unauthorized_total", "protocol" => "srt").increment(1);
            return Err(if refused == AuthDecision::MissingToken {
                ServerRejectReason::Unauthorized
            } else {
                ServerRejectReason::Forbidden
            });
        }
        admit_store
            .claim(&req.name, takeover)
            .map_err(|e| match e {
                ClaimError::AlreadyPublishing(_) => ServerRejectReason::Conflict,
                ClaimError::TooManyPublishers(_) => ServerRejectReason::Overload,
            })
            .map(|ticket| Admission { ticket, passphrase })
    };
    let on_publisher = move |p: SrtPublisher<PublishClaim>| {
        let span =
            tracing::info_span!("publisher", stream = %p.request.name, session = p.ticket.session, remote = %p.remote);
        tokio::spawn(publisher(p, store.clone(), settings.clone()).instrument(span));
    };
    listener.serve(admit, on_publisher, shutdown).await;
}

async fn publisher(p: SrtPublisher<PublishClaim>, store: Arc<SegmentStore>, settings: IngestSettings) {
    let SrtPublisher { request, remote, mut socket, ticket } = p;
    tracing::info!(%remote, user = request.user.as_deref().unwrap_or(""), "publisher connected over SRT");
    metrics::counter!("tessera_ingest_sessions_total", "protocol" => "srt").increment(1);
    let pipeline = match start_pipeline(PipelineConfig {
        stream: ticket.stream.clone(),
        session: ticket.session,
        segmenter: settings.segmenter.clone(),
        ingest_capacity: 512,
        frame_capacity: 1024,
        part_capacity: 64,
        max_frame_bytes: settings.max_frame_bytes,
        sink: store.clone(),
    })
    .await
    {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "could not start the pipeline");
            return;
        }
    };
    let mut rate = RateMeter::new(std::time::Instant::now());
    let mut taken_over = ticket.taken_over.clone();
    let reason = loop {
        let next = tokio::select! {
            r = taken_over.changed() => break if r.is_ok() { "taken over by a new publisher" } else { "session ended" }.to_string(),
            r = tokio::time::timeout(settings.idle_timeout, socket.next()) => r,
        };
        match next {
            Ok(Some(Ok((_, bytes)))) => {
                if let Some(kbps) =
                    rate.add(bytes.len(), std::time::Instant::now()).filter(|k| *k > settings.max_ingest_kbps)
                {
                    metrics::counter!("tessera_ingest_limit_cuts_total", "limit" => "bitrate").increment(1);
                    tracing::warn!(
                        kbps,
                        limit = settings.max_ingest_kbps,
                        "cutting publisher: ingest rate over the limit"
                    );
                    break format!(
                        "ingest rate {kbps} kbit/s exceeds the limit of {} kbit/s",
                        settings.max_ingest_kbps
                    );
                }
                match pipeline.ingest.try_send(IngestMsg::Data(bytes, std::time::Instant::now())) {
                    Ok(()) => {}
                    Err(SendError::Full) => {
                        metrics::counter!("tessera_ingest_dropped_bytes_total").increment(1);
                        tracing::warn!("ingest lagging: dropping input");
                    }
                    Err(SendError::Closed) => break "pipeline ended".to_string(),
                }
            }
            Ok(Some(Err(e))) => break format!("socket error: {e}"),
            Ok(None) => break "publisher disconnected".to_string(),
            Err(_) => {
                metrics::counter!("tessera_ingest_idle_timeouts_total").increment(1);
                break format!("no data for {} ms", settings.idle_timeout.as_millis());
            }
        }
    };
    let _ = pipeline.ingest.send(IngestMsg::Closed(reason.clone()));
    if tokio::time::timeout(Duration::from_secs(5), socket.close()).await.is_err() {
        tracing::debug!("SRT close timed out");
    }
    if tokio::time::timeout(Duration::from_secs(5), pipeline.join).await.is_err() {
        tracing::warn!("pipeline did not stop within 5 s");
        pipeline.supervisor.kill();
    }
    tracing::info!(%reason, "publisher session over");
    drop(ticket);
}
