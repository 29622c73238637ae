//! A live origin cut off from the quorum stops publishing before another node may take its
//! stream, so that there is never a moment with two origins; a player on the majority side
//! plays on from the new origin.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Network;
use crate::cluster::{eventually, form_these, membership, Proc};
use crate::common::{get, parse_media, publish_sample_to, wait_ok};

const MEDIA: &str = "/live/fenced/src/index.m3u8";

/// When a node's playlist last showed a new part: polled every 50 ms from outside.
#[derive(Default)]
struct Progress {
    last_part: Option<String>,
    changes: Vec<Instant>,
}

fn watch(http: SocketAddr) -> (Arc<Mutex<Progress>>, tokio::task::JoinHandle<()>) {
    let progress = Arc::new(Mutex::new(Progress::default()));
    let p = progress.clone();
    let task = tokio::spawn(async move {
        loop {
            let r = get(http, MEDIA).await;
            if r.status == 200 {
                let newest = parse_media(&r.text()).parts.last().map(|part| part.3.clone());
                let mut p = p.lock().unwrap();
                if newest.is_some() && newest != p.last_part {
                    p.last_part = newest;
                    p.changes.push(Instant::now());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (progress, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_cut_off_from_the_quorum_stops_before_another_node_takes_its_stream() {
    let net = Network::new(3);
    let procs =
        net.hosts.iter().enumerate().map(|(i, h)| Proc::in_namespace(&format!("fence{i}"), &h.netns, h.ip)).collect();
    let (nodes, _join, admin) = form_these(procs, |_| Vec::new()).await;
    let (a, b) = (&nodes[0], &nodes[1]);

    // Node 1 is the origin; node 2 follows it and its player plays.
    let first = publish_sample_to(a.srt, "fenced", 1_000);
    assert_eq!(wait_ok(b.http, MEDIA, Duration::from_secs(30)).await.status, 200, "node 2 plays the stream");
    let (at_a, watching_a) = watch(a.http);
    let (at_b, watching_b) = watch(b.http);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(at_b.lock().unwrap().changes.len() > 3, "node 2 follows the origin's parts");

    // Node 1 is cut off from both others. Its publisher still reaches it; a second encoder
    // (the broadcaster's backup path) publishes to node 2 once the majority has a leader.
    let cut = Instant::now();
    net.hosts[0].cut(&[&net.hosts[1], &net.hosts[2]]);
    eventually(Duration::from_secs(20), "a leader on the majority side", || async {
        membership(b, &admin).await.filter(|(leader, ..)| *leader != 1).map(|_| ())
    })
    .await;
    let second = publish_sample_to(b.srt, "fenced", 1_000);
    let started = eventually(Duration::from_secs(30), "node 2 to publish as the new origin", || async {
        // Anything node 1 sent before the cut has landed within half a second.
        at_b.lock().unwrap().changes.iter().copied().find(|t| *t > cut + Duration::from_millis(500))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stopped = at_a.lock().unwrap().changes.last().copied().expect("node 1 published");
    let (stopped_ms, started_ms) = (stopped.duration_since(cut).as_millis(), started.duration_since(cut).as_millis());
    eprintln!(
        "cut at 0 ms; the old origin's last new part at {stopped_ms} ms; the new origin's first at {started_ms} ms"
    );
    assert!(
        stopped < started,
        "two origins at once: node 1 published until {stopped_ms} ms, node 2 from {started_ms} ms"
    );
    let log = a.log();
    assert!(log.contains("fenced: this node publishes nothing more"), "node 1 fenced itself:\n{log}");

    // The player on the majority side plays on from the new origin.
    let before = at_b.lock().unwrap().changes.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(at_b.lock().unwrap().changes.len() > before + 3, "node 2's player keeps getting parts");

    // Healed, node 1 follows the new origin.
    net.hosts[0].heal();
    let healed = Instant::now();
    eventually(Duration::from_secs(30), "node 1 to follow the new origin", || async {
        at_a.lock().unwrap().changes.last().copied().filter(|t| *t > healed)
    })
    .await;
    for task in [watching_a, watching_b, first, second] {
        task.abort();
    }
}
