//! The catalog as this node's `/metrics` shows it.
//!
//! - Raft, as it changes ([`follow_raft`]): `tessera_raft_term`, `tessera_raft_is_leader`,
//!   `tessera_raft_has_leader`, `tessera_raft_last_log_index`, `tessera_raft_applied_index`,
//!   `tessera_raft_apply_lag_entries` (entries in this node's log not yet applied),
//!   `tessera_raft_replication_lag_entries` (on the leader: how far its furthest follower
//!   is behind its log; 0 elsewhere), `tessera_raft_quorum_ack_age_seconds` (on the leader),
//!   `tessera_raft_snapshot_index`, `tessera_raft_voters`, and the counters
//!   `tessera_raft_leader_changes_total` and `tessera_raft_snapshots_total`.
//! - What the catalog holds, read from this node's copy as `/metrics` is scraped
//!   ([`record_catalog`]): VOD jobs by state (`tessera_vod_jobs{state}`), the age of the
//!   oldest job waiting for a worker (`tessera_vod_oldest_pending_seconds`), live streams
//!   with an origin (`tessera_catalog_live_streams`), nodes and draining nodes. Every node
//!   reports the same figures for the cluster: take the `max` across nodes.

use tessera_cluster::ClusterService;
use tessera_raft::{Catalog, JobState, NodeId};
use tokio::sync::watch;

use crate::server::until_true;

/// What [`follow_raft`] remembers between changes, to count leader changes and snapshots.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Seen {
    leader: Option<NodeId>,
    snapshot: Option<u64>,
}

/// The counters a change from `before` to `now` adds to: (leader changes, snapshots).
fn counted(before: Seen, now: Seen) -> (u64, u64) {
    let leader = u64::from(now.leader.is_some() && now.leader != before.leader);
    let snapshot = u64::from(now.snapshot.is_some() && now.snapshot != before.snapshot && before.snapshot.is_some());
    (leader, snapshot)
}

/// Keeps the Raft gauges current until `stop`.
pub(crate) async fn follow_raft(cluster: ClusterService, mut stop: watch::Receiver<bool>) {
    let mut metrics = cluster.catalog.raft.metrics();
    let mut seen = Seen::default();
    loop {
        let m = metrics.borrow_and_update().clone();
        let now = Seen { leader: m.current_leader, snapshot: m.snapshot.map(|l| l.index) };
        let (leader_changes, snapshots) = counted(seen, now);
        if leader_changes > 0 {
            // `seen.leader` is None at start: the first leader known is a change too.
            metrics::counter!("tessera_raft_leader_changes_total").increment(leader_changes);
        }
        metrics::counter!("tessera_raft_snapshots_total").increment(snapshots);
        seen = Seen { leader: now.leader.or(seen.leader), snapshot: now.snapshot };

        let last_log = m.last_log_index.unwrap_or(0);
        let applied = m.last_applied.map_or(0, |l| l.index);
        let leads = m.current_leader == Some(cluster.identity.id);
        let replication_lag = m
            .replication
            .as_ref()
            .filter(|_| leads)
            .map(|r| {
                r.values().map(|matched| last_log.saturating_sub(matched.map_or(0, |l| l.index))).max().unwrap_or(0)
            })
            .unwrap_or(0);
        metrics::gauge!("tessera_raft_term").set(m.current_term as f64);
        metrics::gauge!("tessera_raft_is_leader").set(f64::from(u8::from(leads)));
        metrics::gauge!("tessera_raft_has_leader").set(f64::from(u8::from(m.current_leader.is_some())));
        metrics::gauge!("tessera_raft_last_log_index").set(last_log as f64);
        metrics::gauge!("tessera_raft_applied_index").set(applied as f64);
        metrics::gauge!("tessera_raft_apply_lag_entries").set(last_log.saturating_sub(applied) as f64);
        metrics::gauge!("tessera_raft_replication_lag_entries").set(replication_lag as f64);
        metrics::gauge!("tessera_raft_quorum_ack_age_seconds")
            .set(m.millis_since_quorum_ack.filter(|_| leads).unwrap_or(0) as f64 / 1000.0);
        metrics::gauge!("tessera_raft_snapshot_index").set(now.snapshot.unwrap_or(0) as f64);
        metrics::gauge!("tessera_raft_voters").set(m.membership_config.voter_ids().count() as f64);

        tokio::select! {
            _ = until_true(&mut stop) => return,
            changed = metrics.changed() => if changed.is_err() { return },
        }
    }
}

/// The VOD queue as the catalog holds it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct JobQueue {
    pending: u64,
    leased: u64,
    done: u64,
    dead: u64,
    /// Milliseconds the oldest pending job has waited (since it was queued or last failed).
    oldest_pending_ms: i64,
}

fn job_queue(c: &Catalog, now_ms: i64) -> JobQueue {
    let mut q = JobQueue::default();
    for job in c.jobs.values() {
        match job.state {
            JobState::Pending => {
                q.pending += 1;
                q.oldest_pending_ms = q.oldest_pending_ms.max(now_ms - job.updated_ms);
            }
            JobState::Leased => q.leased += 1,
            JobState::Done => q.done += 1,
            JobState::Dead => q.dead += 1,
        }
    }
    q
}

/// Sets the catalog's gauges from this node's copy; called as `/metrics` is scraped.
pub(crate) fn record_catalog(cluster: &ClusterService) {
    let now_ms = cluster.catalog.now_ms();
    let (queue, live, nodes, draining) = cluster.catalog.peek(|c| {
        let live = c.streams.values().filter(|s| s.origin.is_some()).count();
        (job_queue(c, now_ms), live, c.nodes.len(), c.draining.len())
    });
    for (state, n) in [("pending", queue.pending), ("leased", queue.leased), ("done", queue.done), ("dead", queue.dead)]
    {
        metrics::gauge!("tessera_vod_jobs", "state" => state).set(n as f64);
    }
    metrics::gauge!("tessera_vod_oldest_pending_seconds").set(queue.oldest_pending_ms.max(0) as f64 / 1000.0);
    metrics::gauge!("tessera_catalog_live_streams").set(live as f64);
    metrics::gauge!("tessera_catalog_nodes").set(nodes as f64);
    metrics::gauge!("tessera_catalog_draining_nodes").set(draining as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_leader_counts_once_and_losing_one_does_not() {
        let s = |leader, snapshot| Seen { leader, snapshot };
        assert_eq!(counted(s(None, None), s(Some(1), None)), (1, 0), "the first leader known");
        assert_eq!(counted(s(Some(1), None), s(Some(1), None)), (0, 0));
        assert_eq!(counted(s(Some(1), None), s(None, None)), (0, 0), "an election under way");
        assert_eq!(counted(s(Some(1), None), s(Some(2), None)), (1, 0));
        assert_eq!(counted(s(Some(2), Some(10)), s(Some(2), Some(20))), (0, 1), "a new snapshot");
        assert_eq!(counted(s(Some(2), None), s(Some(2), Some(20))), (0, 0), "the one found at start");
    }

    #[test]
    fn the_queue_counts_jobs_by_state_and_ages_the_oldest_waiting() {
        let mut c = Catalog::default();
        let job = |state, updated_ms| tessera_raft::JobRecord {
            asset: "a".into(),
            rendition: "r".into(),
            spec: "720p:2800".into(),
            state,
            lease: None,
            last_epoch: 0,
            attempts: 0,
            not_before_ms: 0,
            last_error: None,
            segments_done: 0,
            segments_total: 0,
            output_node: None,
            updated_ms,
            epochs: Vec::new(),
        };
        c.jobs.insert("a/1".into(), job(JobState::Pending, 10_000));
        c.jobs.insert("a/2".into(), job(JobState::Pending, 40_000));
        c.jobs.insert("a/3".into(), job(JobState::Leased, 0));
        c.jobs.insert("a/4".into(), job(JobState::Dead, 0));
        let q = job_queue(&c, 70_000);
        assert_eq!((q.pending, q.leased, q.done, q.dead), (2, 1, 0, 1));
        assert_eq!(q.oldest_pending_ms, 60_000);
        assert_eq!(job_queue(&Catalog::default(), 70_000), JobQueue::default());
    }
}
