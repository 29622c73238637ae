//! The Tessera catalog: streams, assets, rights and release schedules replicated with Raft.
//!
//! Not built yet: a node today keeps its stream state in its own segment store. This crate
//! holds the place the catalog will take in the layout.
