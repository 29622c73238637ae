//! The leader is killed at the release time and comes back later: the release still
//! commits (the new leader counts the votes), never early, and opens on every node.

use std::time::Duration;

use crate::release::{check, ReleaseWorld};
use crate::scenario::announce;
use crate::sim::now_ms;

#[test]
fn release_leader_killed_at_release_time() {
    let (seed, _window, replay) = announce("release_leader_killed_at_release_time", 21);
    crate::sim::run(seed, async move {
        let w = ReleaseWorld::start("release-leader-killed", 3, seed, &[]).await;
        let mut rng = crate::cluster::Rng::new(seed);
        let at = now_ms() + 1_500;
        w.schedule("live/premiere", at, None).await;
        w.until(at - rng.below(20) as i64).await;
        let leader = w.cluster.wait_leader(Duration::from_secs(2)).await.expect("a leader");
        w.cluster.kill(leader).await;
        tokio::time::sleep(Duration::from_millis(400 + rng.below(800))).await;
        w.cluster.restart(leader).await;
        let (seen, releases, cluster) = w.finish(Duration::from_secs(2)).await;
        let ids = cluster.ids();
        check::never_early(&seen, &releases, "live/premiere").expect(&replay);
        check::served_everywhere(&seen, &ids, "live/premiere", at).expect(&replay);
        eprintln!("first served: {:?} (release at {at})", check::first_served(&seen, "live/premiere"));
        cluster.stop().await;
    })
}
