//! Tessera's node-to-node layer: who belongs to the cluster, and how nodes talk.
//!
//! - [`identity`]: the cluster's CA, each node's certificate (`node-ID.tessera`), join and
//!   admin tokens.
//! - [`transport`]: one QUIC endpoint per node, mutual TLS against the CA. Each concern
//!   that talks between nodes declares a [`Protocol`] (a name, who may call it, its request
//!   and response types) and registers its handler; the transport routes by name and
//!   imports none of them. [`wire`] is the one framing they all share.
//! - [`membership`]: the catalog's members (Raft over the transport, writes forwarded to
//!   the leader, linearizable reads from any member, init, join, leave).
//! - [`remote`]: actors on other nodes: a typed handle over the transport, bounded
//!   mailboxes both ways, and the loss of the actor or its node reported to its owner.
//! - [`host`]: where a member runs: this machine, or a simulation that provides its
//!   datagram network, clock and seed.
//! - [`api`]: what every part of the admin API shares: admin tokens, errors, reads.
//!
//! # Contract
//! - A call waits at most [`transport::CALL_TIMEOUT`] for its answer; it fails with a
//!   [`CallError`] that names the node, its address and the protocol. An unanswered call
//!   drops that connection, so a restarted peer is reached again at once.
//! - Handlers run on tasks of their own, one per exchange; a slow handler holds only its
//!   exchange. A streaming exchange's messages arrive in order; its sender is paced by
//!   QUIC flow control, so a slow reader slows only its own stream.
//! - Who may call is checked before a handler sees a request: [`Access::Node`] needs a
//!   certificate from the CA, [`Access::Member`] also a place in the catalog (a removed
//!   node keeps its certificate); refusals are counted
//!   (`tessera_cluster_refused_requests_total`) and logged with the caller.
//! - Media in a message's body crosses as it is, never re-encoded.

pub mod api;
pub mod host;
pub mod identity;
pub mod membership;
pub mod protocol;
pub mod remote;
mod tls;
pub mod transport;
pub mod wire;

pub use membership::{start_member, ClusterAddrs, ClusterError, ClusterService, MemberConfig};
pub use protocol::{Access, Opening, Peer, Protocol};
pub use transport::{CallError, Failure, QuicTransport};

/// A node's id in the catalog (the number its certificate names).
pub type NodeId = u64;
