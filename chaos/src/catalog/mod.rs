//! The whole catalog under faults: clients issue every family of command (streams and
//! their origin leases and ladders, tokens, releases, rights and keys, assets and jobs)
//! through any node (a follower forwards to the leader it sees), read through any node
//! linearizably (the leader's read index, then the node's own copy once it has caught up)
//! and read nodes' own copies with the log index they claim to have applied.
//!
//! The checker ([`check`]) takes the real state machine as its model: for each key (one
//! stream, token, content, release or asset), it searches for an order of that key's
//! operations that respects real time in which `Catalog::apply` gives every write the
//! outcome its client saw and every read the value it saw. Operations on different keys
//! commute in the catalog, so checking per key is checking the whole. Times and release
//! ids, which the leader assigns, are left out of the comparison. Local reads must be
//! truthful: two nodes claiming the same applied index hold the same value for every key.

pub mod check;
pub mod model;
pub mod run;

pub use check::{check, Violation};
pub use model::{Answer, Call, CatalogEvent};
