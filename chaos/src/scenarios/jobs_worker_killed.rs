//! A node is killed while its worker holds a transcode job, and comes back later: the job's
//! lease lapses, another worker takes it over from the checkpoint, and the asset completes
//! with every segment read exactly once.

use std::time::Duration;

use crate::jobs::{check, JobsWorld};
use crate::scenario::announce;

#[test]
fn jobs_worker_killed_mid_transcode() {
    let (seed, _window, replay) = announce("jobs_worker_killed_mid_transcode", 31);
    crate::sim::run(seed, async move {
        let w = JobsWorld::start("jobs-worker-killed", 3, seed, &["720p", "480p"], 24).await;
        let mut rng = crate::cluster::Rng::new(seed);
        let holder = w.a_holder(Duration::from_secs(5)).await.expect("a worker takes a job");
        tokio::time::sleep(Duration::from_millis(100 + rng.below(200))).await;
        w.cluster.kill(holder).await;
        tokio::time::sleep(Duration::from_millis(800 + rng.below(400))).await;
        w.cluster.restart(holder).await;
        let (jobs, writes, cluster) = w.finish(Duration::from_secs(20)).await;
        check::all_done(&jobs).expect(&replay);
        check::exactly_once(&jobs, &writes).expect(&replay);
        let taken_over: Vec<_> =
            jobs.iter().filter(|j| j.epochs.len() > 1).map(|j| (&j.rendition, &j.epochs)).collect();
        assert!(!taken_over.is_empty(), "the killed worker's job was taken over: {jobs:?}\n{replay}");
        eprintln!("node {holder} killed; taken over (first segment, epoch): {taken_over:?}");
        cluster.stop().await;
    })
}
