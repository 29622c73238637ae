//! The license actor's view of this node (catalog, origin edge, clock, counting at other
//! nodes), and its start.

use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use tessera_cluster::ClusterService;
use tessera_license::actor::{LicenseConfig, LicenseNode, Proposal, RemoteCount};
use tessera_license::decision::StreamClaim;
use tessera_license::jwt::{FetchedKeySet, Jwks, KeySet};
use tessera_license::keys::Kek;
use tessera_license::provider::KeyServerAnswer;
use tessera_license::supervisor::{self, LicenseRef, SupervisorMsg};
use tessera_live::store::SegmentStore;
use tessera_raft::{Catalog, Command, NodeId};

use crate::outbound::{body_of, https_client, HttpsClient};

/// The license actor's view of this node.
struct NodeView {
    cluster: ClusterService,
    store: Arc<SegmentStore>,
    clock: tessera_license::gate::Clock,
    /// For DRM key servers (none if the system's roots could not be read).
    outbound: Option<HttpsClient>,
}

impl LicenseNode for NodeView {
    fn peek(&self, f: &mut dyn FnMut(&Catalog)) {
        self.cluster.catalog.peek(|c| f(c))
    }

    fn propose(&self, command: Command) -> Proposal {
        let cluster = self.cluster.clone();
        Box::pin(async move { cluster.propose(command).await.map(|_| ()) })
    }

    fn origin_edge(&self, name: &str) -> Option<u64> {
        if !self.store.publishing_here(name) {
            return None;
        }
        Some(self.store.held(name).map_or(0, |h| h.last_msn))
    }

    fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    fn node_id(&self) -> NodeId {
        self.cluster.identity.id
    }

    fn count_at(&self, node: NodeId, claim: StreamClaim) -> RemoteCount {
        let cluster = self.cluster.clone();
        Box::pin(async move { tessera_license::counting::count_at(&cluster, node, claim, COUNTING_PATIENCE).await })
    }

    fn ask_key_server(&self, url: &str, document: String) -> KeyServerAnswer {
        let (client, url) = (self.outbound.clone(), url.to_string());
        Box::pin(async move { ask_key_server(client, &url, document).await })
    }
}

/// How long a key server has to answer.
const KEY_SERVER_PATIENCE: Duration = Duration::from_secs(10);

/// Posts a CPIX document to a SPEKE v2 key server; its answer's body.
async fn ask_key_server(client: Option<HttpsClient>, url: &str, document: String) -> Result<String, String> {
    let client = client.ok_or("no TLS roots on this machine to reach a key server")?;
    let request = hyper::Request::post(url)
        .header(hyper::header::CONTENT_TYPE, "application/xml")
        .header("X-Speke-Version", tessera_license::cpix::SPEKE_VERSION)
        .body(http_body_util::Full::new(bytes::Bytes::from(document)))
        .map_err(|e| format!("{url}: {e}"))?;
    let body = body_of(&client, request, KEY_SERVER_PATIENCE).await?;
    String::from_utf8(body.to_vec()).map_err(|_| "the answer is not UTF-8".to_string())
}

/// How long another node has to count a viewer's stream before the next is asked.
const COUNTING_PATIENCE: Duration = Duration::from_millis(750);

/// Counts the viewers' streams this node counts for the cluster, and starts the license
/// actor (under its supervisor) when the node has a key-encryption key.
pub async fn start(
    kek: Option<Kek>,
    rotation: Duration,
    jwks: Option<Arc<dyn KeySet>>,
    cluster: ClusterService,
    store: Arc<SegmentStore>,
    clock: tessera_license::gate::Clock,
) -> Result<Option<(LicenseRef, ActorRef<SupervisorMsg>)>, ractor::SpawnErr> {
    let streams = Arc::default();
    tessera_license::counting::serve(&cluster, Arc::clone(&streams));
    let Some(kek) = kek else {
        tracing::info!(
            "no key-encryption key (--kek-file, TESSERA_KEK): this node makes and hands out no content keys"
        );
        return Ok(None);
    };
    let config = LicenseConfig {
        streams,
        node: Arc::new(NodeView { cluster, store, clock, outbound: https_client().ok() }),
        kek: Arc::new(kek),
        rotation,
        rotation_lead_segments: 3,
        jwks,
    };
    Ok(Some(supervisor::start(config, Duration::from_secs(1)).await?))
}

/// How often the signer's key set is fetched, and how soon again at most when a token names
/// a key it does not hold.
const JWKS_EVERY: Duration = Duration::from_secs(300);
const JWKS_AT_MOST_EVERY: Duration = Duration::from_secs(30);

/// Keeps `set` fetched from the signer's `url` until `stop`: now, every five minutes, and
/// when a token names an unknown key (not more often than every 30 s). A failed fetch keeps
/// the set in force, logged and counted (`tessera_jwks_fetches_total{outcome}`).
pub async fn fetch_jwks(set: Arc<FetchedKeySet>, url: String, mut stop: tokio::sync::watch::Receiver<bool>) {
    let client = match https_client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(%url, error = %e, "no TLS roots: the token signer's key set cannot be fetched");
            return;
        }
    };
    loop {
        let outcome = match fetch(&client, &url).await {
            Ok(jwks) => {
                tracing::info!(%url, keys = jwks.len(), "token signer's key set fetched");
                set.set(jwks);
                "fetched"
            }
            Err(e) => {
                tracing::warn!(%url, error = %e, "token signer's key set not fetched; keeping the one in force");
                "failed"
            }
        };
        metrics::counter!("tessera_jwks_fetches_total", "outcome" => outcome).increment(1);
        let fetched_at = tokio::time::Instant::now();
        tokio::select! {
            _ = crate::server::until_true(&mut stop) => return,
            _ = tokio::time::sleep(JWKS_EVERY) => {}
            _ = set.stale.notified() => {}
        }
        tokio::select! {
            _ = crate::server::until_true(&mut stop) => return,
            _ = tokio::time::sleep_until(fetched_at + JWKS_AT_MOST_EVERY) => {}
        }
    }
}

async fn fetch(client: &HttpsClient, url: &str) -> Result<Jwks, String> {
    let request =
        hyper::Request::get(url).body(http_body_util::Full::new(bytes::Bytes::new())).map_err(|e| e.to_string())?;
    let body = body_of(client, request, KEY_SERVER_PATIENCE).await?;
    Jwks::parse(&body).map_err(|e| e.to_string())
}
