//! The license actor's view of this node (catalog, origin edge, clock, counting at other
//! nodes), and its start.

use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use tessera_cluster::ClusterService;
use tessera_license::actor::{LicenseConfig, LicenseNode, Proposal, RemoteCount};
use tessera_license::decision::StreamClaim;
use tessera_license::jwt::Jwks;
use tessera_license::keys::Kek;
use tessera_license::supervisor::{self, LicenseRef, SupervisorMsg};
use tessera_license::watched::WatchedFile;
use tessera_raft::{Catalog, Command, NodeId};

use tessera_live::store::SegmentStore;

/// The license actor's view of this node.
struct NodeView {
    cluster: ClusterService,
    store: Arc<SegmentStore>,
    clock: tessera_license::gate::Clock,
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
}

/// How long another node has to count a viewer's stream before the next is asked.
const COUNTING_PATIENCE: Duration = Duration::from_millis(750);

/// Counts the viewers' streams this node counts for the cluster, and starts the license
/// actor (under its supervisor) when the node has a key-encryption key.
pub async fn start(
    kek: Option<Kek>,
    rotation: Duration,
    jwks: Option<Arc<WatchedFile<Jwks>>>,
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
        node: Arc::new(NodeView { cluster, store, clock }),
        kek: Arc::new(kek),
        rotation,
        rotation_lead_segments: 3,
        jwks,
    };
    Ok(Some(supervisor::start(config, Duration::from_secs(1)).await?))
}
