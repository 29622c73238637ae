//! Links between nodes are cut (one way) and healed at random while the stream runs:
//! every follower converges to the origin's segments byte for byte, whole, each part once.

use crate::media::check::{run, Setup};

#[test]
fn media_links_cut_and_healed() {
    let setup = Setup { followers: 5, fanout: 2, keep: 3 };
    let sim = run("media_links_cut_and_healed", 21, setup, |sim, _| sim.cut_links_at_random());
    assert!(sim.published.len() > 100, "the stream ran");
}
