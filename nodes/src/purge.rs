//! Purge hooks: when a content's rights change or its release ends, every configured hook
//! (`--purge-hook URL`, one per CDN) is told to forget it.
//!
//! Every node watches its applied catalog ([`PurgeWatch`]); the node that leads the catalog
//! calls the hooks, so each change is sent once (a change in the moment the lead moves may
//! be sent twice, which a purge bears). Each call is a `POST` of
//! `{"content", "reason", "prefix"}` (JSON), tried up to five times with a doubling pause
//! (1 s to 16 s) until it is answered 2xx; each outcome is logged and counted
//! (`tessera_purge_requests_total{outcome}`). Calls never hold up the watch.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tessera_cluster::ClusterService;
use tessera_license::purge::{Purge, PurgeWatch};
use tokio::sync::watch;

use crate::outbound::{https_client, HttpsClient};
use crate::server::until_true;

/// Tries of one call before it is given up.
const TRIES: u32 = 5;
/// How long one try may take.
const PATIENCE: Duration = Duration::from_secs(10);

/// The hooks and the client that calls them.
pub(crate) struct PurgeHooks {
    hooks: Vec<String>,
    client: HttpsClient,
    first_pause: Duration,
}

impl PurgeHooks {
    /// A client for `hooks` (http or https, system roots for https).
    pub(crate) fn new(hooks: Vec<String>) -> std::io::Result<Arc<Self>> {
        Ok(Arc::new(PurgeHooks { hooks, client: https_client()?, first_pause: Duration::from_secs(1) }))
    }

    /// Watches the catalog every second until `stop`, calling the hooks while this node leads.
    pub(crate) async fn run(self: Arc<Self>, cluster: ClusterService, mut stop: watch::Receiver<bool>) {
        let mut seen = PurgeWatch::default();
        let me = cluster.identity.id;
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = until_true(&mut stop) => return,
                _ = every.tick() => {}
            }
            let now = tessera_ingest::timestamp::unix_ms();
            let read = cluster.catalog.read_local(|c| seen.observe(c, now));
            if read.leader != Some(me) {
                continue;
            }
            for purge in read.value {
                tracing::info!(content = %purge.content, reason = purge.reason, hooks = self.hooks.len(), "purging from caches");
                for hook in &self.hooks {
                    tokio::spawn(self.clone().call(hook.clone(), purge.clone()));
                }
            }
        }
    }

    /// Calls `hook` for `purge`, again after a pause while it fails.
    async fn call(self: Arc<Self>, hook: String, purge: Purge) {
        let body = Bytes::from(serde_json::to_vec(&purge).expect("a purge serializes"));
        let mut pause = self.first_pause;
        for attempt in 1..=TRIES {
            let request = hyper::Request::post(&hook)
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(body.clone()));
            let answer = match request {
                Ok(r) => tokio::time::timeout(PATIENCE, self.client.request(r)).await,
                Err(e) => {
                    tracing::error!(%hook, error = %e, "purge hook is not a valid URL");
                    metrics::counter!("tessera_purge_requests_total", "outcome" => "invalid").increment(1);
                    return;
                }
            };
            let why = match answer {
                Ok(Ok(r)) if r.status().is_success() => {
                    metrics::counter!("tessera_purge_requests_total", "outcome" => "done").increment(1);
                    tracing::info!(%hook, content = %purge.content, attempt, "purge accepted");
                    return;
                }
                Ok(Ok(r)) => format!("answered {}", r.status()),
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer in {PATIENCE:?}"),
            };
            if attempt == TRIES {
                metrics::counter!("tessera_purge_requests_total", "outcome" => "failed").increment(1);
                tracing::error!(%hook, content = %purge.content, reason = %why, "purge failed; giving up");
                return;
            }
            metrics::counter!("tessera_purge_requests_total", "outcome" => "retried").increment(1);
            tracing::warn!(%hook, content = %purge.content, reason = %why, attempt, "purge failed; trying again");
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }
}
