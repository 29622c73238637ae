//! The release clock: proposes this node's clock votes — "my clock has passed release R's
//! time" — the moment they fall due, wakes exactly at the next release moment, and retries
//! a vote that did not land until it lands or is no longer wanted (the release moved,
//! opened without it, or was cancelled).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_raft::{CatalogError, Command, ReleasePhase};
use tokio::sync::watch;

use tessera_cluster::{ClusterError, ClusterService};
use tessera_license::gate::Clock;

/// How often the catalog is looked at for new or moved releases between moments.
const POLL: Duration = Duration::from_millis(100);

/// How long a refused vote waits before it may be proposed again.
const REFUSED_RETRY: Duration = Duration::from_secs(1);

/// One vote: the release, its revision and the moment voted for.
type VoteKey = (u64, u64, ReleasePhase);

/// Runs until `shutdown` turns true.
pub async fn run(cluster: ClusterService, clock: Clock, mut shutdown: watch::Receiver<bool>) {
    let me = cluster.identity.id;
    // Votes in flight or landed; a landed vote is excluded by the catalog too, once applied.
    let sent: Arc<Mutex<HashSet<VoteKey>>> = Arc::default();
    loop {
        let now = clock();
        let (due, next, pending) = cluster.catalog.peek(|c| {
            let pending: HashSet<u64> = c.pending_releases().map(|r| r.id).collect();
            (c.due_clock_votes(me, now), c.next_release_moment(now), pending)
        });
        sent.lock().expect("votes").retain(|k| pending.contains(&k.0));
        for vote in due {
            let Command::ReleaseClock { id, revision, phase, .. } = &vote else { continue };
            let key = (*id, *revision, *phase);
            if !sent.lock().expect("votes").insert(key) {
                continue;
            }
            let (cluster, sent) = (cluster.clone(), sent.clone());
            tokio::spawn(async move {
                let phase = if key.2 == ReleasePhase::Open { "open" } else { "end" };
                match cluster.propose(vote).await {
                    Ok(_) => {
                        metrics::counter!("tessera_release_votes_total", "phase" => phase, "result" => "recorded")
                            .increment(1);
                        tracing::info!(release = key.0, revision = key.1, phase, node = me, "clock vote recorded");
                    }
                    Err(ClusterError::Catalog(CatalogError::Rejected(why))) => {
                        // Moved or over meanwhile (the catalog will not ask for it again), or
                        // this node is not in the catalog yet: asked again, slowly.
                        metrics::counter!("tessera_release_votes_total", "phase" => phase, "result" => "refused")
                            .increment(1);
                        tracing::info!(release = key.0, phase, %why, "clock vote refused");
                        tokio::time::sleep(REFUSED_RETRY).await;
                        sent.lock().expect("votes").remove(&key);
                    }
                    Err(e) => {
                        metrics::counter!("tessera_release_votes_total", "phase" => phase, "result" => "failed")
                            .increment(1);
                        tracing::warn!(release = key.0, phase, error = %e, "clock vote did not land; trying again");
                        tokio::time::sleep(POLL).await;
                        sent.lock().expect("votes").remove(&key);
                    }
                }
            });
        }
        let wait = next.map_or(POLL, |t| Duration::from_millis((t - now).max(0) as u64).min(POLL));
        tokio::select! {
            _ = crate::server::until_true(&mut shutdown) => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
