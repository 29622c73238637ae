//! Where a stream's ladder is made.
//!
//! The origin of a stream runs its pipeline: ingest, the source segmenter and packager, and
//! the encoder with its rungs' segmenters and packagers, which write into the stream's
//! journal under the leader's numbers. The one expensive part, the codec worker, runs on
//! whichever node the placement policy ([`policy`]) picks by capacity and measured load:
//! this node (a process beside it) or another ([`protocols::CodecWorker`], a remote actor
//! over the cluster transport). Each choice is a catalog placement with an epoch; the host
//! checks it before starting and while running, and the origin takes rung packets only from
//! the link it made for the current one. Each node hosts ([`host::LadderHost`]) within its
//! `--transcode-capacity`, and stops every worker it runs when it drains.

pub mod cpu;
pub mod host;
pub mod launcher;
pub mod policy;
pub mod protocols;

pub use host::LadderHost;
pub use launcher::PlacedWorkers;
pub use policy::{HostedLadder, NodeLoad};

/// The link between an encoder and its worker on another node: a few seconds of video
/// queued at most; the node taken as gone after a second of silence.
pub(crate) fn link_config() -> tessera_cluster::remote::LinkConfig {
    tessera_cluster::remote::LinkConfig::default()
}

/// What every node says of its ladders now; a node that does not answer is missing.
pub async fn cluster_loads(host: &LadderHost, cluster: &tessera_cluster::ClusterService) -> Vec<NodeLoad> {
    let mut all = launcher::loads(host, cluster, &[]).await;
    all.sort_by_key(|l| l.node);
    all
}
