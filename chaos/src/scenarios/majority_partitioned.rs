//! Five nodes: the leader keeps one companion and loses the other three, a majority, which
//! elect a leader of their own; the old side must not commit. Then a one-way cut: the
//! leader hears the others but they do not hear it.

use std::time::Duration;

use crate::scenario::run;

#[test]
fn majority_partitioned() {
    run("majority_partitioned", 5, 13, async |c, mut rng, window| {
        let end = tokio::time::Instant::now() + window;
        let mut one_way = false;
        while tokio::time::Instant::now() < end {
            let Some(l) = c.wait_leader(Duration::from_secs(5)).await else { continue };
            let others: Vec<u64> = c.ids().into_iter().filter(|i| *i != l).collect();
            if one_way {
                for o in &others {
                    c.net.block(l, *o);
                }
            } else {
                let buddy = others[rng.below(others.len() as u64) as usize];
                let majority: Vec<u64> = others.iter().copied().filter(|i| *i != buddy).collect();
                c.net.partition(&[l, buddy], &majority);
            }
            one_way = !one_way;
            tokio::time::sleep(Duration::from_millis(600 + rng.below(600))).await;
            c.net.heal();
            tokio::time::sleep(Duration::from_millis(300 + rng.below(300))).await;
        }
    });
}
