//! The Tessera catalog: what exists and who may see it — streams, their publish tokens
//! (hashed) and ladders, nodes, and which node is origin for which live stream — replicated
//! with openraft.
//!
//! # Contract
//! - [`catalog`] is the state machine: typed [`catalog::Command`]s, validated before
//!   anything changes, applied deterministically (time comes in the proposal, never from a
//!   clock). A rejected command is rejected the same way on every node.
//! - Origin leases carry epochs that only grow: a node holding an older epoch is fenced off
//!   ([`catalog::Catalog::may_publish`]).

pub mod catalog;

pub use catalog::{Catalog, Command, NodeId, Outcome, Proposal, Rejection};
