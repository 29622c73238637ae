//! Stream limits across the cluster: each subject's streams are counted by one node (the
//! first of [`counting_nodes`](super::decision::counting_nodes)); a key request on any node
//! is counted there over the cluster transport ([`CountStream`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_cluster::{Access, ClusterService, Protocol};
use tessera_raft::NodeId;

use super::decision::{Sessions, StreamClaim};

/// Counts a viewer's stream against its subject's limit, at the subject's counting node:
/// `Err(limit)` if the subject is at it.
pub struct CountStream;

impl Protocol for CountStream {
    const NAME: &'static str = "license.count-stream";
    const ACCESS: Access = Access::Member;
    type Request = StreamClaim;
    type Response = Result<(), u32>;
}

/// Counts, for the other nodes, the streams of the subjects this node counts.
pub fn serve(cluster: &ClusterService, sessions: Arc<Mutex<Sessions>>) {
    cluster.transport.serve::<CountStream, _, _>(move |_, claim| {
        let counted = sessions.lock().expect("stream counts").admit(&claim).map_err(|_| claim.limit);
        async move { counted }
    });
}

/// Has node `node` count a viewer's stream; `None` if it is not a member or does not
/// answer within `within`.
pub async fn count_at(
    cluster: &ClusterService,
    node: NodeId,
    claim: StreamClaim,
    within: Duration,
) -> Option<Result<(), u32>> {
    let addr = cluster.addr_of(node)?;
    let call = cluster.transport.call::<CountStream>(Some(node), &addr, &claim);
    tokio::time::timeout(within, call).await.ok()?.ok()
}
