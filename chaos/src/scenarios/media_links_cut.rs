//! Links between nodes are cut (one way) and healed at random while the stream runs:
//! every follower converges to the origin's segments byte for byte, whole, each part once.

use crate::media::check::{run, Setup};

#[test]
fn media_links_cut_and_healed() {
    let setup = Setup { followers: 5, fanout: 2, keep: 3 };
    let sim = run("media_links_cut_and_healed", 21, setup, |sim, _| {
        let members = sim.members();
        if sim.rng.below(40) == 0 {
            let from = members[sim.rng.below(members.len() as u64) as usize];
            let to = members[sim.rng.below(members.len() as u64) as usize];
            if from != to {
                sim.cut.insert((from, to), true);
            }
        }
        if sim.rng.below(60) == 0 {
            sim.cut.clear();
        }
    });
    assert!(sim.published.len() > 100, "the stream ran");
}
