//! The scenarios, one per file. Each runs in `cargo test` with a short fault window;
//! `TESSERA_CHAOS_SECONDS=60 cargo test -p tessera-chaos` runs them longer, and
//! `TESSERA_CHAOS_SEED=N` replays one.

mod catalog_partitions_and_kills;
mod jobs_worker_killed;
mod jobs_worker_partitioned;
mod ladder_drained;
mod ladder_encoders_killed_and_cut;
mod leader_killed;
mod majority_partitioned;
mod media_links_cut;
mod media_relays_killed;
mod media_seed_replays;
mod media_slow_link;
mod members_over_quic;
mod membership_during_partition;
mod minority_partitioned;
mod quic_replays;
mod relay_over_quic;
mod release_leader_killed;
mod release_minority_partitioned;
mod release_moved_and_cancelled;
mod release_skewed_clocks;
mod release_takedown;
mod restart_from_disk;
mod uploads_interrupted;
