//! One leaf's link is slow (delay varying up to 40 ticks) for the whole window: that node
//! lags, but no other node falls behind the origin, and all converge once it heals.

use crate::media::check::{run, Setup};
use crate::media::ORIGIN;

#[test]
fn media_slow_link_touches_only_its_node() {
    let setup = Setup { followers: 5, fanout: 2, keep: 4 };
    let mut slow = None;
    let mut worst_other = 0u64;
    run("media_slow_link_touches_only_its_node", 41, setup, |sim, tick| {
        // A leaf of the tree (no node follows through it), once the tree has formed.
        if slow.is_none() && tick == 50 {
            let feeding: Vec<u64> = sim.followers.keys().filter_map(|id| sim.upstream_of(*id)).collect();
            let leaf = sim.followers.keys().copied().find(|id| !feeding.contains(id)).expect("a leaf");
            slow = Some((sim.upstream_of(leaf).unwrap_or(ORIGIN), leaf));
        }
        if let Some(link) = slow {
            let d = sim.rng.below(40);
            sim.delay.insert(link, d);
            let head = sim.origin.last_seq();
            for (id, f) in &sim.followers {
                if *id != link.1 && tick > 100 {
                    let behind = f.mirror.position().map_or(head, |(_, seq)| head - seq.min(head));
                    worst_other = worst_other.max(behind);
                }
            }
        }
    });
    assert!(slow.is_some());
    // A part is 2 items and a segment end 2 more: three hops of one tick each.
    assert!(worst_other <= 12, "a node away from the slow link fell {worst_other} items behind");
}
