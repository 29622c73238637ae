//! A worker holding a transcode job is cut off from the quorum and keeps working, not
//! knowing: its lease lapses, another worker takes the job over from the checkpoint, and
//! the cut-off worker's late output is fenced off — written, never read — while the asset
//! completes with every segment read exactly once.

use std::time::Duration;

use crate::jobs::{check, JobsWorld};
use crate::scenario::announce;

#[test]
fn jobs_worker_partitioned_from_the_quorum() {
    let (seed, _window, replay) = announce("jobs_worker_partitioned_from_the_quorum", 32);
    crate::sim::run(seed, async move {
        let w = JobsWorld::start("jobs-worker-partitioned", 3, seed, &["720p"], 40).await;
        let mut rng = crate::cluster::Rng::new(seed);
        let holder = w.a_holder(Duration::from_secs(5)).await.expect("a worker takes the job");
        tokio::time::sleep(Duration::from_millis(100 + rng.below(150))).await;
        let rest: Vec<u64> = w.cluster.ids().into_iter().filter(|i| *i != holder).collect();
        w.cluster.net.partition(&[holder], &rest);
        tokio::time::sleep(Duration::from_millis(1_200 + rng.below(400))).await;
        let (jobs, writes, cluster) = w.finish(Duration::from_secs(20)).await;
        check::all_done(&jobs).expect(&replay);
        check::exactly_once(&jobs, &writes).expect(&replay);
        let fenced = check::fenced_writes(&jobs, &writes);
        assert!(jobs[0].epochs.len() > 1, "the job was taken over: {:?}\n{replay}", jobs[0]);
        assert!(
            fenced.iter().any(|f| f.node == holder),
            "node {holder} wrote on while cut off, and none of it is read\n{replay}"
        );
        eprintln!("node {holder} cut off; epochs {:?}; {} late segments fenced off", jobs[0].epochs, fenced.len());
        cluster.stop().await;
    })
}
