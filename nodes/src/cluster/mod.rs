//! The node's membership of the catalog cluster: its identity (certificates and tokens).

pub mod identity;
