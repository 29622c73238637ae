//! Following nodes (relays among them) are killed and come back empty while the stream
//! runs: the nodes below a dead relay go round it, and everyone converges.

use crate::media::check::{run, Setup};

#[test]
fn media_relays_killed_and_restarted() {
    let setup = Setup { followers: 6, fanout: 2, keep: 3 };
    run("media_relays_killed_and_restarted", 31, setup, |sim, _| {
        let ids: Vec<u64> = sim.followers.keys().copied().collect();
        if sim.rng.below(150) == 0 {
            let id = ids[sim.rng.below(ids.len() as u64) as usize];
            sim.kill(id);
        }
        if sim.rng.below(100) == 0 {
            let id = ids[sim.rng.below(ids.len() as u64) as usize];
            sim.restart(id);
        }
    });
}
