//! The leader is killed while clients write; it comes back from disk later. Repeated over
//! the fault window.

use std::time::Duration;

use crate::scenario::run;

#[test]
fn leader_killed_during_writes() {
    let r = run("leader_killed_during_writes", 3, 11, async |c, mut rng, window| {
        let end = tokio::time::Instant::now() + window;
        while tokio::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(300 + rng.below(500))).await;
            let Some(l) = c.wait_leader(Duration::from_secs(5)).await else { continue };
            c.kill(l).await;
            tokio::time::sleep(Duration::from_millis(400 + rng.below(800))).await;
            c.restart(l).await;
        }
    });
    assert!(r.operations > 50, "clients got work done: {r:?}");
}
