//! The Tessera catalog: what exists and who may see it — streams, their publish tokens
//! (hashed) and ladders, nodes, which node is origin for which live stream, and when
//! content is released — replicated with openraft.
//!
//! # Contract
//! - [`catalog`] is the state machine: typed [`catalog::Command`]s, validated before
//!   anything changes, applied deterministically (time comes in the proposal, never from a
//!   clock). A rejected command is rejected the same way on every node.
//! - A release opens by quorum time: the entry that brings a majority of the nodes' clock
//!   votes opens it, and a node serves the content only once it has applied that entry
//!   ([`catalog::Catalog::visibility`]; how time enters is in the `release` module).
//! - Origin leases carry epochs that only grow: a node holding an older epoch is fenced off
//!   ([`catalog::Catalog::may_publish`]).
//! - [`store`] keeps the log, vote, commit index and snapshots in redb, each write made
//!   durable before it is acknowledged (log writes by one thread, many per fsync); the catalog itself is in memory, rebuilt on start
//!   from the last snapshot and the committed log.
//! - [`network`] puts every node-to-node message behind a [`network::Transport`]: QUIC in a
//!   node, [`memory::MemoryNetwork`] (with partitions, delay and loss) in tests.
//! - [`node::CatalogNode`] is one member: propose (leader only; others answer `NotLeader`
//!   with the leader's address), linearizable reads (ReadIndex) or local reads that say how
//!   far they have got, membership changes through joint consensus.
//! - Nothing in a member reads the wall clock or the operating system's randomness behind
//!   its caller's back: the time a proposal is stamped with comes from the member's
//!   [`node::Clock`], openraft's random election timeouts from [`runtime::ElectionRng`], and
//!   log writes may run inline ([`store::LogWrites::Inline`]). Under a paused, seeded,
//!   single-threaded tokio runtime a cluster therefore replays exactly (the simulator in
//!   tessera-chaos).

pub mod catalog;
mod log_writer;
pub mod memory;
pub mod network;
pub mod node;
pub mod runtime;

pub use catalog::{
    job_key, valid_content, ArchiveExtent, AssetRecord, AssetRejection, AssetState, CaRecord, Catalog, CatalogExport,
    Command, ContentSettings, DrmRecord, Gate, ImportRejection, JobLease, JobRecord, JobRejection, JobState, KeyRecord,
    LadderPlacement, NodeId, NodeRecord, NodeRejection, Outcome, PlacementRejection, PlacementRule, Proposal,
    Protection, ProtectionRecord, ProtectionRejection, Readiness, RecordedRendition, Rejection, ReleaseId,
    ReleasePhase, ReleaseRecord, ReleaseRejection, ReleaseState, SourceRecord, StreamRecord, StreamRejection,
    StreamSettings, TokenKind, Visibility, RECORDING_SPEC,
};
pub use node::{CatalogError, CatalogNode, Clock, ClusterStatus, Environment, LocalRead, MemberStatus, RaftTimeouts};
pub mod store;

use std::io::Cursor;

openraft::declare_raft_types!(
    /// Raft types of the catalog: proposals in, outcomes out, nodes known by their address.
    pub TypeConfig:
        D = Proposal,
        R = Outcome,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = runtime::CatalogRuntime,
);

#[cfg(test)]
mod tests;
