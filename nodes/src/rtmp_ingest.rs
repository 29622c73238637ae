//! Wires the RTMP listener to the actors, like `srt_ingest`: admission at `publish` claims
//! the stream name; each admitted publisher gets its own pipeline fed with FLV tags.

use std::sync::Arc;
use std::time::Duration;

use tessera_actors::ingest_session::IngestMsg;
use tessera_actors::mailbox::SendError;
use tessera_actors::{start_pipeline, PipelineConfig};
use tessera_ingest::rtmp::{BoundRtmpListener, RtmpMedia, RtmpPublisher, RtmpRefusal};
use tracing::Instrument;

use crate::auth::{AuthDecision, PublishAuth};
use crate::srt_ingest::{IngestSettings, RateMeter};
use crate::store::{PublishClaim, SegmentStore};

pub async fn run(
    listener: BoundRtmpListener,
    store: Arc<SegmentStore>,
    auth: Arc<dyn PublishAuth>,
    settings: IngestSettings,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let admit_store = store.clone();
    let takeover = settings.takeover;
    let admit = move |req: &tessera_ingest::streamid::StreamRequest, remote| {
        if let refused @ (AuthDecision::MissingToken | AuthDecision::WrongToken) = auth.check(req) {
            tracing::warn!(%remote, stream = %req.name, ?refused, "publisher not authorized");
            metrics::counter!("tessera_ingest_unauthorized_total", "protocol" => "rtmp").increment(1);
            return Err(RtmpRefusal::Unauthorized);
        }
        admit_store.claim(&req.name, takeover).map_err(|e| {
            tracing::warn!(stream = %req.name, error = %e, "RTMP publish refused");
            RtmpRefusal::BadName
        })
    };
    let on_publisher = move |p: RtmpPublisher<PublishClaim>| {
        let span =
            tracing::info_span!("publisher", stream = %p.request.name, session = p.ticket.session, remote = %p.remote);
        tokio::spawn(publisher(p, store.clone(), settings.clone()).instrument(span));
    };
    listener.serve(admit, on_publisher, shutdown).await;
}

async fn publisher(p: RtmpPublisher<PublishClaim>, store: Arc<SegmentStore>, settings: IngestSettings) {
    let RtmpPublisher { mut media, ticket, .. } = p;
    metrics::counter!("tessera_ingest_sessions_total", "protocol" => "rtmp").increment(1);
    let pipeline = match start_pipeline(PipelineConfig {
        stream: ticket.stream.clone(),
        session: ticket.session,
        segmenter: settings.segmenter.clone(),
        ingest_capacity: 1024,
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
            r = tokio::time::timeout(settings.idle_timeout, media.recv()) => r,
        };
        match next {
            Ok(Some(m)) => {
                let arrived = std::time::Instant::now();
                let size = match &m {
                    RtmpMedia::Video { data, .. } | RtmpMedia::Audio { data, .. } => data.len(),
                };
                if let Some(kbps) = rate.add(size, arrived).filter(|k| *k > settings.max_ingest_kbps) {
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
                let msg = match m {
                    RtmpMedia::Video { timestamp_ms, data } => {
                        IngestMsg::Flv { video: true, timestamp_ms, data, arrived }
                    }
                    RtmpMedia::Audio { timestamp_ms, data } => {
                        IngestMsg::Flv { video: false, timestamp_ms, data, arrived }
                    }
                };
                match pipeline.ingest.try_send(msg) {
                    Ok(()) => {}
                    Err(SendError::Full) => metrics::counter!("tessera_ingest_dropped_tags_total").increment(1),
                    Err(SendError::Closed) => break "pipeline ended".to_string(),
                }
            }
            Ok(None) => break "publisher finished".to_string(),
            Err(_) => break format!("no media for {} ms", settings.idle_timeout.as_millis()),
        }
    };
    drop(media);
    let _ = pipeline.ingest.send(IngestMsg::Closed(reason.clone()));
    if tokio::time::timeout(Duration::from_secs(5), pipeline.join).await.is_err() {
        tracing::warn!("pipeline did not stop within 5 s");
        pipeline.supervisor.kill();
    }
    tracing::info!(%reason, "publisher session over");
    drop(ticket);
}
