//! Who a node follows a stream from: a relay tree rooted at the stream's origin.
//!
//! The members other than the origin are put in a list, sorted by id and rotated by a
//! hash of the stream's name (so each stream leans on different relays). The origin feeds
//! the first `fanout` nodes of the list; node `i` (from `fanout` on) follows node
//! `(i - fanout) / fanout`. Every node computes the same tree from the same catalog, the
//! origin uploads each part at most `fanout` times whatever the size of the cluster, and a
//! node is at most `log_fanout(n)` hops from the origin.

/// The nodes `me` may follow `stream` from, nearest first and ending with the origin: its
/// parent in the tree, the parent's parent, and so on. A node that is not in `members`
/// follows the origin directly. `fanout` 0 means no tree (everyone follows the origin).
pub fn upstreams(stream: &str, origin: u64, members: &[u64], me: u64, fanout: usize) -> Vec<u64> {
    let mut others: Vec<u64> = members.iter().copied().filter(|m| *m != origin).collect();
    others.sort_unstable();
    others.dedup();
    let Some(mut at) = others.iter().position(|m| *m == me) else { return vec![origin] };
    if fanout == 0 || others.len() <= fanout {
        return vec![origin];
    }
    let turn = (stable_hash(stream) % others.len() as u64) as usize;
    others.rotate_left(turn);
    at = (at + others.len() - turn) % others.len();
    let mut chain = Vec::new();
    while at >= fanout {
        at = (at - fanout) / fanout;
        chain.push(others[at]);
    }
    chain.push(origin);
    chain
}

/// FNV-1a: the same on every node and in every build, unlike the standard library's hasher.
fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn a_small_cluster_is_a_star() {
        for me in [2, 3, 4] {
            assert_eq!(upstreams("s", 1, &[1, 2, 3, 4], me, 3), [1]);
        }
        assert_eq!(upstreams("s", 1, &[1, 2, 3, 4, 5, 6], 6, 0), [1], "fanout 0: no tree");
        assert_eq!(upstreams("s", 1, &[1, 2, 3], 9, 2), [1], "a node the catalog does not list");
    }

    #[test]
    fn no_node_feeds_more_than_the_fanout_and_every_chain_ends_at_the_origin() {
        let members: Vec<u64> = (1..=40).collect();
        for fanout in [1, 2, 3, 5] {
            for stream in ["a", "news", "sport-1"] {
                let origin = 7;
                let mut fed: HashMap<u64, usize> = HashMap::new();
                for &me in members.iter().filter(|m| **m != origin) {
                    let chain = upstreams(stream, origin, &members, me, fanout);
                    assert_eq!(chain.last(), Some(&origin));
                    assert!(!chain.contains(&me), "{me} follows itself: {chain:?}");
                    // The parent's own chain is the rest of this one: the tree has no cycle.
                    if chain.len() > 1 {
                        assert_eq!(upstreams(stream, origin, &members, chain[0], fanout), chain[1..]);
                    }
                    *fed.entry(chain[0]).or_default() += 1;
                }
                assert!(fed.values().all(|n| *n <= fanout), "fanout {fanout}: {fed:?}");
                assert_eq!(fed[&origin], fanout.min(members.len() - 1));
                let depth = upstreams(stream, origin, &members, 40, fanout).len();
                assert!(depth <= 39 / fanout + 1);
            }
        }
    }

    #[test]
    fn streams_lean_on_different_relays() {
        let members: Vec<u64> = (1..=10).collect();
        let relays = |stream: &str| -> Vec<u64> {
            let mut r: Vec<u64> =
                (2..=10).filter_map(|me| upstreams(stream, 1, &members, me, 2).first().copied()).collect();
            r.sort_unstable();
            r.dedup();
            r
        };
        let distinct: std::collections::BTreeSet<Vec<u64>> = ["a", "b", "c", "d", "e"].map(relays).into();
        assert!(distinct.len() > 1, "{distinct:?}");
    }
}
