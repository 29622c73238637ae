//! While one voter is cut off, two nodes join and the voters change to exclude the cut-off
//! one (joint consensus); then the partition heals and it is added back.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::scenario::run;

#[test]
fn membership_change_during_partition() {
    run("membership_change_during_partition", 3, 15, async |c, mut rng, window| {
        tokio::time::sleep(Duration::from_millis(200 + rng.below(300))).await;
        let l = c.wait_leader(Duration::from_secs(5)).await.expect("a leader");
        let cut = c.ids().into_iter().find(|i| *i != l).expect("another node");
        let rest: Vec<u64> = c.ids().into_iter().filter(|i| *i != cut).collect();
        c.net.partition(&[cut], &rest);
        for id in [4, 5] {
            // A join may meet an election; it is retried, as an admin would.
            for _ in 0..20 {
                if c.add(id).await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let voters: BTreeSet<u64> = [rest.as_slice(), &[4, 5]].concat().into_iter().collect();
        for _ in 0..20 {
            let leader = c.wait_leader(Duration::from_secs(5)).await.and_then(|l| c.node(l));
            if let Some(n) = leader {
                if n.change_voters(voters.clone(), true).await.is_ok() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(window / 2).await;
        c.net.heal();
        tokio::time::sleep(window / 4).await;
        let all: BTreeSet<u64> = voters.into_iter().chain([cut]).collect();
        for _ in 0..20 {
            let leader = c.wait_leader(Duration::from_secs(5)).await.and_then(|l| c.node(l));
            if let Some(n) = leader {
                if n.change_voters(all.clone(), false).await.is_ok() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}
