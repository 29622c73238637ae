//! Clocks disagree: of five nodes, two run fast (30 s and 5 s) and one runs 30 s slow. The
//! fast ones vote early but are a minority, so the release opens no earlier than its time;
//! the slow one is not waited for, so it opens on time, on every node.

use std::time::Duration;

use crate::release::{check, ReleaseWorld};
use crate::scenario::announce;
use crate::sim::now_ms;

#[test]
fn release_skewed_clocks_neither_open_early_nor_block() {
    let (seed, _window, replay) = announce("release_skewed_clocks_neither_open_early_nor_block", 23);
    crate::sim::run(seed, async move {
        let skews = [(1, 30_000), (2, 5_000), (5, -30_000)];
        let w = ReleaseWorld::start("release-skew", 5, seed, &skews).await;
        let at = now_ms() + 1_500;
        let r = w.schedule("live/premiere", at, None).await;
        w.until(at + 2_000).await;
        let (seen, releases, cluster) = w.finish(Duration::from_millis(500)).await;
        check::never_early(&seen, &releases, "live/premiere").expect(&replay);
        // Not blocked by the slow clock: it opened without the slow node's vote, on every node
        // (the slow one too), within two seconds of its time.
        let first = check::first_served(&seen, "live/premiere");
        eprintln!("first served: {first:?} (release at {at})");
        assert!(!releases[&r.id].open_votes.contains_key(&5), "the slow clock voted 30 s early? {replay}");
        for id in cluster.ids() {
            assert!(first.get(&id).is_some_and(|t| *t <= at + 2_000), "node {id} did not open in time ({replay})");
        }
        cluster.stop().await;
    })
}
