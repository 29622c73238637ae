//! Wires the RTMP listener to the actors, like `srt_ingest`: admission at `publish` claims
//! the stream name; each admitted publisher gets its own pipeline fed with FLV tags.

use std::sync::Arc;

use tessera_actors::ingest_session::IngestMsg;
use tessera_listen::rtmp::{BoundRtmpListener, RtmpMedia, RtmpPublisher, RtmpRefusal};
use tracing::Instrument;

use crate::auth::{check_logged, AuthDecision, PublishAuth};
use crate::session::{IngestSettings, PublisherSession};
use tessera_live::store::{PublishClaim, SegmentStore};

pub async fn run(
    listener: BoundRtmpListener,
    store: Arc<SegmentStore>,
    auth: Arc<dyn PublishAuth>,
    settings: tokio::sync::watch::Receiver<IngestSettings>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let admit_store = store.clone();
    // Read at start: these two need a restart (the rest applies to each new publisher).
    let takeover = settings.borrow().takeover;
    let admit = move |req: &tessera_ingest::streamid::StreamRequest, remote| {
        if let AuthDecision::MissingToken | AuthDecision::WrongToken = check_logged(auth.as_ref(), req, remote, "rtmp")
        {
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
        let settings = settings.borrow().clone();
        tokio::spawn(publisher(p, store.clone(), settings).instrument(span));
    };
    listener.serve(admit, on_publisher, shutdown).await;
}

async fn publisher(p: RtmpPublisher<PublishClaim>, store: Arc<SegmentStore>, settings: IngestSettings) {
    let RtmpPublisher { mut media, ticket, .. } = p;
    let Some(mut session) = PublisherSession::start("rtmp", &ticket, &store, &settings).await else { return };
    let reason = loop {
        match session.next(media.recv()).await {
            Ok(m) => {
                let arrived = std::time::Instant::now();
                let (video, timestamp_ms, data) = match m {
                    RtmpMedia::Video { timestamp_ms, data } => (true, timestamp_ms, data),
                    RtmpMedia::Audio { timestamp_ms, data } => (false, timestamp_ms, data),
                };
                if let Err(reason) = session.feed(data.len(), IngestMsg::Flv { video, timestamp_ms, data, arrived }) {
                    break reason;
                }
            }
            Err(reason) => break reason,
        }
    };
    drop(media);
    session.finish(reason).await;
    drop(ticket);
}
