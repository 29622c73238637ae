//! Fault injection for Tessera's catalog: a cluster of real Raft nodes on real disk stores
//! over an in-memory network that partitions (both ways or one way), delays and loses;
//! nodes killed and restarted from disk; scenarios whose faults all follow one seed; and a
//! linearizability checker over every client operation.
//!
//! # Contract
//! - A scenario ([`scenario::run`]) fails if the history of client operations is not
//!   linearizable (which covers a lost acknowledged write) or if the nodes end with
//!   different catalogs. It prints the command that replays it.
//! - `cargo test -p tessera-chaos` runs every scenario with a short fault window (CI);
//!   `TESSERA_CHAOS_SECONDS=60` runs them longer, `TESSERA_CHAOS_SEED=N` picks the seed.

pub mod cluster;
pub mod history;
pub mod linearizability;
pub mod scenario;
pub mod workload;

#[cfg(test)]
mod scenarios;
