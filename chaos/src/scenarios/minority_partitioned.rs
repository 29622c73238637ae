//! One node of three (sometimes the leader) is cut off, then healed, repeatedly.

use std::time::Duration;

use crate::scenario::run;

#[test]
fn minority_partitioned() {
    run("minority_partitioned", 3, 12, async |c, mut rng, window| {
        let end = tokio::time::Instant::now() + window;
        while tokio::time::Instant::now() < end {
            let ids = c.ids();
            let lonely = if rng.below(2) == 0 { c.leader().unwrap_or(ids[0]) } else { ids[rng.below(3) as usize] };
            let rest: Vec<u64> = ids.iter().copied().filter(|i| *i != lonely).collect();
            c.net.partition(&[lonely], &rest);
            tokio::time::sleep(Duration::from_millis(500 + rng.below(700))).await;
            c.net.heal();
            tokio::time::sleep(Duration::from_millis(200 + rng.below(400))).await;
        }
    });
}
