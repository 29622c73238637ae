//! Pre-positioning: before a release opens, every node that will serve it holds its
//! content, so the premiere is not a thundering herd on the origin; and each node records
//! in the catalog whether it is ready (`Command::ReleaseReady`), which the admin API shows.
//!
//! A live event's rehearsal is followed from `--release-prewarm-s` before its time (at
//! once for a release scheduled sooner) until shortly after it opens, when the viewers'
//! own requests keep the stream followed. A node is ready when it is the event's origin or
//! has caught up with the origin's live edge.

use std::sync::Arc;
use std::time::Duration;

use tessera_raft::{AssetState, Command, ReleaseRecord, ReleaseState};
use tokio::sync::watch;

use tessera_cluster::ClusterService;
use tessera_license::gate::Clock;
use tessera_live::relay::Followers;
use tessera_live::store::SegmentStore;

/// How often readiness is looked at.
const EVERY: Duration = Duration::from_millis(500);
/// How long after opening a release is still held for its own sake.
const HOLD_AFTER_OPEN_MS: i64 = 30_000;

/// What pre-positioning needs of the node.
#[derive(Clone)]
pub struct Preposition {
    pub cluster: ClusterService,
    pub store: Arc<SegmentStore>,
    pub followers: Arc<Followers>,
    pub region: Option<String>,
    pub prewarm: Duration,
    pub clock: Clock,
}

impl Preposition {
    /// Runs until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let now = (self.clock)();
            let me = self.cluster.identity.id;
            // Scheduled ones, and open ones shortly after their time; later, viewers' own
            // requests keep an event followed.
            let releases: Vec<ReleaseRecord> = self.cluster.catalog.peek(|c| {
                c.pending_releases()
                    .filter(|r| r.state == ReleaseState::Scheduled || now < r.at_ms + HOLD_AFTER_OPEN_MS)
                    .filter(|r| r.serves_region(self.region.as_deref()))
                    .cloned()
                    .collect()
            });
            for r in releases {
                let (ready, detail) = self.hold(&r, now);
                let recorded = r.ready.get(&me).map(|x| (x.ready, x.detail.as_str()));
                if recorded != Some((ready, detail.as_str())) {
                    let command = Command::ReleaseReady { id: r.id, node: me, ready, detail: detail.clone() };
                    match self.cluster.propose(command).await {
                        Ok(_) => {
                            tracing::info!(release = r.id, content = %r.content, ready, %detail, "readiness recorded")
                        }
                        Err(e) => tracing::debug!(release = r.id, error = %e, "readiness not recorded; trying again"),
                    }
                }
            }
            tokio::select! {
                _ = crate::server::until_true(&mut shutdown) => return,
                _ = tokio::time::sleep(EVERY) => {}
            }
        }
    }

    /// Holds the release's content if it is time to, and says whether this node is ready.
    fn hold(&self, r: &ReleaseRecord, now: i64) -> (bool, String) {
        if let Some(asset) = r.content.strip_prefix("vod/") {
            return self.asset_readiness(asset);
        }
        let Some(stream) = r.content.strip_prefix("live/") else {
            return (false, format!("{:?} names neither a stream nor an asset", r.content));
        };
        if self.store.publishing_here(stream) {
            return (true, "origin: the feed is published here".into());
        }
        let starts = r.at_ms - self.prewarm.as_millis() as i64;
        if now < starts {
            return (false, "waiting to pre-position (prewarm window not reached)".into());
        }
        match (self.followers.hold(stream), self.followers.caught_up(stream)) {
            (_, true) => (true, "following the origin at its live edge".into()),
            (true, false) => (false, "catching up with the origin".into()),
            (false, false) => (false, "no feed yet: nobody publishes the event".into()),
        }
    }

    /// A VOD asset is ready on every node once its renditions are made: a node serves them
    /// from its own disk, from the nodes that made them or from the archive.
    fn asset_readiness(&self, asset: &str) -> (bool, String) {
        self.cluster.catalog.peek(|c| match c.assets.get(asset).map(|a| a.state) {
            None => (false, "no such asset".to_string()),
            Some(AssetState::Ready) => (true, "the asset is ready: every node serves its renditions".to_string()),
            Some(AssetState::Failed) => (false, "the asset failed to transcode".to_string()),
            Some(state) => {
                let (done, total) = c.asset_progress(asset);
                let made = (done * 100).checked_div(total).unwrap_or(0);
                (false, format!("the asset is {} ({made}% made)", format!("{state:?}").to_lowercase()))
            }
        })
    }
}
