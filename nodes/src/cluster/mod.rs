//! The node's membership of the catalog cluster: its identity (certificates and tokens),
//! the QUIC transport between members, and the service that starts, initialises or joins a
//! cluster and submits writes from any member.

pub mod identity;
pub mod quic;
pub mod service;

pub use service::{ClusterAddrs, ClusterError, ClusterService};

#[cfg(test)]
mod tests;
