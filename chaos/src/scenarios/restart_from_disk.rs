//! Followers (and now and then every node at once) are killed and restarted from disk
//! while writes go on; nothing acknowledged may be lost.

use std::time::Duration;

use crate::scenario::run;

#[test]
fn node_restarted_from_disk() {
    run("node_restarted_from_disk", 3, 14, async |c, mut rng, window| {
        let end = tokio::time::Instant::now() + window;
        let mut round = 0;
        while tokio::time::Instant::now() < end {
            round += 1;
            let victims: Vec<u64> = if round % 3 == 0 {
                c.ids() // the whole cluster goes down and comes back
            } else {
                let l = c.leader();
                c.ids().into_iter().filter(|i| Some(*i) != l).take(1).collect()
            };
            for v in &victims {
                c.kill(*v).await;
            }
            tokio::time::sleep(Duration::from_millis(300 + rng.below(500))).await;
            for v in &victims {
                c.restart(*v).await;
            }
            tokio::time::sleep(Duration::from_millis(300 + rng.below(500))).await;
        }
    });
}
