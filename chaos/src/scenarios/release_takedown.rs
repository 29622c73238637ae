//! A takedown during playback, with the leader killed just before it and one node's clock
//! ten seconds slow: nodes with a true clock stop at the end by their own clock; the slow
//! one stops once the cluster commits the takedown. None serves after either.

use std::time::Duration;

use crate::release::{check, ReleaseWorld};
use crate::scenario::announce;
use crate::sim::now_ms;

/// How long after the takedown commits a node may take to apply it.
const APPLY_GRACE_MS: i64 = 1_000;

#[test]
fn release_takedown_during_playback() {
    let (seed, _window, replay) = announce("release_takedown_during_playback", 25);
    crate::sim::run(seed, async move {
        let w = ReleaseWorld::start("release-takedown", 3, seed, &[(3, -10_000)]).await;
        let mut rng = crate::cluster::Rng::new(seed);
        let at = now_ms() + 800;
        let end = at + 1_500;
        let r = w.schedule("live/show", at, Some(end)).await;
        w.until(end - 100 - rng.below(200) as i64).await;
        let leader = w.cluster.wait_leader(Duration::from_secs(2)).await.expect("a leader");
        w.cluster.kill(leader).await;
        tokio::time::sleep(Duration::from_millis(300 + rng.below(500))).await;
        w.cluster.restart(leader).await;
        w.until(end + 2_000).await;
        let (seen, releases, cluster) = w.finish(Duration::from_millis(500)).await;
        check::never_early(&seen, &releases, "live/show").expect(&replay);
        check::served_everywhere(&seen, &cluster.ids(), "live/show", at).expect(&replay);
        let taken = &releases[&r.id];
        let closed = taken.closed_ms.unwrap_or_else(|| panic!("the takedown was not committed: {taken:?} ({replay})"));
        for id in [1, 2] {
            check::dark(&seen, id, "live/show", end, i64::MAX).expect(&replay);
        }
        check::dark(&seen, 3, "live/show", closed + APPLY_GRACE_MS, i64::MAX).expect(&replay);
        eprintln!("takedown committed {} ms after its end", closed - end);
        cluster.stop().await;
    })
}
