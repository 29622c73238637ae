//! One node (sometimes the leader) is cut off from the others across the release time: it
//! cannot learn that the release committed, so it must not open until it is healed, and it
//! opens once it is.

use std::time::Duration;

use crate::release::{check, ReleaseWorld};
use crate::scenario::announce;
use crate::sim::now_ms;

#[test]
fn release_minority_partitioned_across_release_time() {
    let (seed, _window, replay) = announce("release_minority_partitioned_across_release_time", 22);
    crate::sim::run(seed, async move {
        let w = ReleaseWorld::start("release-minority", 3, seed, &[]).await;
        let mut rng = crate::cluster::Rng::new(seed);
        let at = now_ms() + 1_500;
        w.schedule("live/premiere", at, None).await;
        let ids = w.cluster.ids();
        let lonely = if rng.below(2) == 0 { w.cluster.leader().unwrap_or(ids[0]) } else { ids[rng.below(3) as usize] };
        let rest: Vec<u64> = ids.iter().copied().filter(|i| *i != lonely).collect();
        w.until(at - 300).await;
        let cut = now_ms();
        w.cluster.net.partition(&[lonely], &rest);
        w.until(at + 1_500 + rng.below(1_000) as i64).await;
        let healed = now_ms();
        let (seen, releases, cluster) = w.finish(Duration::from_secs(2)).await;
        check::never_early(&seen, &releases, "live/premiere").expect(&replay);
        check::dark(&seen, lonely, "live/premiere", cut, healed).expect(&replay);
        check::served_everywhere(&seen, &rest, "live/premiere", at).expect(&replay);
        check::served_everywhere(&seen, &[lonely], "live/premiere", healed).expect(&replay);
        eprintln!("node {lonely} cut off; first served: {:?}", check::first_served(&seen, "live/premiere"));
        cluster.stop().await;
    })
}
