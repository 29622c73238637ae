//! The node making a stream's ladder is drained, again and again, with the catalog's
//! leader killed on the way: each move is a hand-over at a boundary, so no rung ever lists
//! a gap, and at most one encoder publishes each rung of each segment.

use std::time::Duration;

use crate::ladders::{check, LadderWorld, ORIGIN};
use crate::scenario::announce;
use tessera_raft::Command;

#[test]
fn ladder_drained_again_and_again_without_a_gap() {
    let (seed, window, replay) = announce("ladder_drained_again_and_again_without_a_gap", 43);
    crate::sim::run(seed, async move {
        let w = LadderWorld::start("ladder-drained", 5, seed).await;
        let mut rng = crate::cluster::Rng::new(seed);
        tokio::time::sleep(Duration::from_millis(600)).await;
        let end = tokio::time::Instant::now() + window;
        let mut drained = Vec::new();
        while tokio::time::Instant::now() < end {
            let Some(victim) = w.placed().filter(|n| *n != ORIGIN) else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            drained.push(victim);
            w.admin(Command::SetDraining { node: victim, draining: true }).await;
            if rng.below(3) == 0 {
                // The leader dies on the way (if it is not the origin, whose links are the test's).
                if let Some(l) = w.cluster.leader().filter(|l| *l != ORIGIN && *l != victim) {
                    w.cluster.kill(l).await;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    w.cluster.restart(l).await;
                }
            }
            // Until the ladder has moved off it.
            for _ in 0..100 {
                if w.placed().is_some_and(|n| n != victim) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(300 + rng.below(300))).await;
            w.admin(Command::SetDraining { node: victim, draining: false }).await;
        }
        let (log, healed, cluster) = w.finish(Duration::from_secs(1)).await;
        eprintln!(
            "drained {drained:?}; {} placements ({} hand-overs); {} parts, gaps {:?}",
            log.placements.len(),
            log.placements.iter().filter(|p| p.2).count(),
            log.published.len(),
            log.gaps
        );
        check::one_encoder_per_segment(&log).expect(&replay);
        check::parts_in_order(&log).expect(&replay);
        check::epochs_only_grow(&log).expect(&replay);
        check::every_rung_converges(&log, healed).expect(&replay);
        let first = log.published.iter().map(|p| p.segment).min().unwrap_or(0);
        let gaps: Vec<_> = log.gaps.iter().filter(|g| g.1 > first).collect();
        assert!(gaps.is_empty(), "a move off a draining node lists no gap: {gaps:?}\n{replay}");
        assert!(log.placements.iter().filter(|p| p.2).count() >= 2, "the ladder was handed over\n{replay}");
        cluster.stop().await;
    })
}
