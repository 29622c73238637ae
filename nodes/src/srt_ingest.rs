//! Wires the SRT listener to the actors: admission claims the stream name in the segment
//! store; each accepted publisher gets its own pipeline and a reader task that feeds it.

use std::sync::Arc;

use tessera_actors::ingest_session::IngestMsg;
use tessera_listen::srt::{Admission, BoundSrtListener, Caller, ServerRejectReason, SrtPublisher};
use tracing::Instrument;

use crate::auth::{check_logged, AuthDecision, PublishAuth};
use crate::session::{EndReason, IngestSettings, PublisherSession};
use tessera_live::store::{ClaimError, PublishClaim, SegmentStore};

pub async fn run(
    listener: BoundSrtListener,
    store: Arc<SegmentStore>,
    auth: Arc<dyn PublishAuth>,
    settings: tokio::sync::watch::Receiver<IngestSettings>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let admit_store = store.clone();
    // Read at start: these two need a restart (the rest applies to each new publisher).
    let takeover = settings.borrow().takeover;
    let passphrases = settings.borrow().srt_passphrases.clone();
    let admit = move |req: &tessera_ingest::streamid::StreamRequest, caller: Caller| {
        let remote = caller.remote;
        let passphrase = passphrases.get(&req.name).cloned();
        if passphrase.is_some() && !caller.encrypted {
            tracing::warn!(%remote, stream = %req.name, "SRT publisher refused: the stream requires encryption (a passphrase)");
            metrics::counter!("tessera_ingest_unauthorized_total", "protocol" => "srt").increment(1);
            return Err(ServerRejectReason::Unauthorized);
        }
        if let refused @ (AuthDecision::MissingToken | AuthDecision::WrongToken) =
            check_logged(auth.as_ref(), req, remote, "srt")
        {
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
        let settings = settings.borrow().clone();
        tokio::spawn(publisher(p, store.clone(), settings).instrument(span));
    };
    listener.serve(admit, on_publisher, shutdown).await;
}

async fn publisher(p: SrtPublisher<PublishClaim>, store: Arc<SegmentStore>, settings: IngestSettings) {
    let SrtPublisher { request, remote, mut input, ticket } = p;
    tracing::info!(%remote, user = request.user.as_deref().unwrap_or(""), "publisher connected over SRT");
    let Some(mut session) = PublisherSession::start("srt", &ticket, &store, &settings).await else { return };
    let reason = loop {
        match session.next(input.next()).await {
            Ok(Ok((_, bytes))) => {
                if let Err(reason) = session.feed(bytes.len(), IngestMsg::Data(bytes, std::time::Instant::now())) {
                    break reason;
                }
            }
            Ok(Err(e)) => break EndReason::Socket(e),
            Err(reason) => break reason,
        }
    };
    input.close().await;
    session.finish(reason).await;
    drop(ticket);
}
