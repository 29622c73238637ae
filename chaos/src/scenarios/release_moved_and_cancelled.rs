//! Releases moved and cancelled while the leader is killed: a move or a cancellation that
//! races the release time and a failover either takes effect or does not, but no node ever
//! serves a release that ends up cancelled, nor one before the time it opened under.

use std::time::Duration;

use tessera_raft::Command;

use crate::release::{check, ReleaseWorld};
use crate::scenario::announce;
use crate::sim::now_ms;

const CONTENTS: [&str; 3] = ["live/moved-later", "live/moved-earlier", "live/cancelled"];

#[test]
fn release_moved_and_cancelled_during_failover() {
    let (seed, _window, replay) = announce("release_moved_and_cancelled_during_failover", 24);
    crate::sim::run(seed, async move {
        let w = ReleaseWorld::start("release-moves", 3, seed, &[]).await;
        let mut rng = crate::cluster::Rng::new(seed);
        let t0 = now_ms();
        let later = w.schedule(CONTENTS[0], t0 + 1_500, None).await;
        let earlier = w.schedule(CONTENTS[1], t0 + 3_000, None).await;
        let cancelled = w.schedule(CONTENTS[2], t0 + 1_600, None).await;

        // Just before the first release time: kill the leader, and meanwhile move and cancel.
        w.until(t0 + 1_400 + rng.below(150) as i64).await;
        let leader = w.cluster.wait_leader(Duration::from_secs(2)).await.expect("a leader");
        let kill = w.cluster.kill(leader);
        let writes = async {
            let moves = [
                Command::MoveRelease { id: later.id, at_ms: Some(t0 + 2_500), end_ms: None, regions: None },
                Command::MoveRelease { id: earlier.id, at_ms: Some(t0 + 1_800), end_ms: None, regions: None },
                Command::CancelRelease { id: cancelled.id },
            ];
            for m in moves {
                w.admin(m).await;
            }
        };
        tokio::join!(kill, writes);
        tokio::time::sleep(Duration::from_millis(300 + rng.below(600))).await;
        w.cluster.restart(leader).await;
        w.until(t0 + 4_000).await;
        let (seen, releases, cluster) = w.finish(Duration::from_secs(1)).await;
        for content in CONTENTS {
            check::never_early(&seen, &releases, content).expect(&replay);
            eprintln!(
                "{content}: {:?}",
                releases.values().find(|r| r.content == content).map(|r| (r.state, r.at_ms - t0))
            );
        }
        cluster.stop().await;
    })
}
