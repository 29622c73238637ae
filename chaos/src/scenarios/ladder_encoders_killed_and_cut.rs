//! The node making a stream's ladder is killed, cut off from every other node, or drained,
//! again and again: each time the origin places the ladder elsewhere (a new epoch) or hands
//! it over. At most one encoder publishes each rung of each segment, a stale placement
//! never gets a part in, and once the faults are over every rung is whole again.

use std::time::Duration;

use crate::ladders::{check, LadderWorld, ORIGIN};
use crate::scenario::announce;
use tessera_raft::Command;

#[test]
fn ladder_encoders_killed_cut_off_and_drained() {
    let (seed, window, replay) = announce("ladder_encoders_killed_cut_off_and_drained", 41);
    crate::sim::run(seed, async move {
        let w = LadderWorld::start("ladder-faults", 5, seed).await;
        let mut rng = crate::cluster::Rng::new(seed);
        tokio::time::sleep(Duration::from_millis(600)).await;
        let end = tokio::time::Instant::now() + window;
        let mut faults = Vec::new();
        while tokio::time::Instant::now() < end {
            let Some(victim) = w.placed().filter(|n| *n != ORIGIN) else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let others: Vec<u64> = w.cluster.ids().into_iter().filter(|i| *i != victim).collect();
            let lasts = Duration::from_millis(300 + rng.below(500));
            match rng.below(3) {
                0 => {
                    faults.push(format!("kill {victim}"));
                    w.cluster.kill(victim).await;
                    tokio::time::sleep(lasts).await;
                    w.cluster.restart(victim).await;
                }
                1 => {
                    faults.push(format!("cut {victim}"));
                    w.cluster.net.partition(&[victim], &others);
                    tokio::time::sleep(lasts).await;
                    w.cluster.net.heal();
                }
                _ => {
                    faults.push(format!("drain {victim}"));
                    w.admin(Command::SetDraining { node: victim, draining: true }).await;
                    tokio::time::sleep(lasts * 2).await;
                    w.admin(Command::SetDraining { node: victim, draining: false }).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(200 + rng.below(400))).await;
        }
        let (log, healed, cluster) = w.finish(Duration::from_secs(2)).await;
        eprintln!(
            "faults {faults:?}; {} placements ({} hand-overs); {} parts, {} gaps, {} segments",
            log.placements.len(),
            log.placements.iter().filter(|p| p.2).count(),
            log.published.len(),
            log.gaps.len(),
            log.completed
        );
        check::one_encoder_per_segment(&log).expect(&replay);
        check::parts_in_order(&log).expect(&replay);
        check::epochs_only_grow(&log).expect(&replay);
        check::every_rung_converges(&log, healed).expect(&replay);
        assert!(log.placements.len() > 1, "the ladder moved\n{replay}");
        cluster.stop().await;
    })
}
