//! Fault injection for Tessera's catalog: a cluster of real Raft nodes on real disk stores
//! over an in-memory network that partitions (both ways or one way), delays and loses;
//! nodes killed and restarted from disk; scenarios whose faults all follow one seed; and a
//! linearizability checker over every client operation.
//!
//! And for live media between nodes ([`media`]): the relay core driven through a seeded
//! simulation of cut, slowed and healed links and killed relays, checked for convergence
//! byte for byte, whole segments, and the relay tree's fan-out.
//!
//! And for scheduled releases ([`release`]): nodes with skewed clocks voting release times
//! while leaders die and minorities are cut off, watched by viewers polling every node's
//! gate throughout; no node may serve a release before its time or before it committed.
//!
//! And for live ladders made across the cluster ([`ladders`]): the origin places its ladder
//! through the catalog while encoder nodes are killed, cut off and drained; at most one
//! encoder publishes each rung of each segment and every rung converges.
//!
//! And for the whole catalog ([`catalog`]): every family of command through every node,
//! linearizable reads through followers and local reads with the index they claim, checked
//! per key against the real state machine.
//!
//! Every catalog scenario runs under the deterministic simulator ([`sim`]): one thread,
//! virtual time, seeded randomness down to openraft's election timeouts and tokio's
//! `select!`, so a seed replays the whole interleaving, not only the fault schedule. Its datagram
//! network ([`udp`]) carries the cluster's real QUIC transport, TLS and all, so code that talks
//! between nodes over QUIC runs there unchanged: whole members ([`members`]: init, join,
//! forwarded writes, linearizable reads) and the live relay driver between them.
//!
//! # Contract
//! - A scenario ([`scenario::run`]) fails if the history of client operations is not
//!   linearizable (which covers a lost acknowledged write) or if the nodes end with
//!   different catalogs. It prints the command that replays it.
//! - A media scenario ([`media::check::run`]) fails if a follower does not converge to the
//!   origin's journal, holds a segment that is not the origin's byte for byte (or half of
//!   one), applies a part twice or out of order, or if the origin feeds more nodes than the
//!   fan-out once the faults are over.
//! - A seed replays: two runs of one seed observe the same history, operation for
//!   operation and microsecond for microsecond of virtual time (tested).
//! - `cargo test -p tessera-chaos` runs every scenario with a short fault window (CI);
//!   `TESSERA_CHAOS_SECONDS=60` runs them longer, `TESSERA_CHAOS_SEED=N` picks the seed,
//!   `TESSERA_CHAOS_TRACE=1` prints each fresh start a media follower receives.
//! - Each run also tries new seeds, printing each with its replay command: 20 of the whole
//!   catalog (`TESSERA_CHAOS_NEW_SEEDS`), 5 of the relay driver over QUIC
//!   (`TESSERA_CHAOS_RELAY_SEEDS`).

pub mod catalog;
pub mod cluster;
pub mod history;
pub mod jobs;
pub mod ladders;
pub mod linearizability;
pub mod media;
pub mod members;
pub mod release;
pub mod scenario;
pub mod sim;
pub mod udp;
pub mod workload;

#[cfg(test)]
mod scenarios;
