//! Hosts whose clocks disagree: each node process runs under libfaketime with its whole wall
//! clock moved (what it stamps proposals with, the release votes it casts, the times it
//! writes into playlists, the certificate checks of mutual TLS), one 40 s fast, one 40 s
//! slow. The cluster forms and takes writes; a premiere opens on no node before its time,
//! though the fast node votes for it 40 s early, and on every node on time, though the slow
//! node would vote 40 s late.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::Method;
use serde_json::json;

use super::Network;
use crate::cluster::{eventually, form_these, Proc};
use crate::common::{get, now_ms, publish_sample_to, rfc3339};

const PLAYLIST: &str = "/live/premiere/src/index.m3u8";

/// A node's wall clock as its HTTP `Date` header gives it, minus the test's, in seconds.
async fn clock_offset_s(http: SocketAddr) -> i64 {
    let r = get(http, "/healthz").await;
    let date = r.headers.get("date").and_then(|d| d.to_str().ok()).expect("a Date header").to_string();
    let theirs = chrono::DateTime::parse_from_rfc2822(&date).expect("an HTTP date").timestamp_millis();
    ((theirs - now_ms()) as f64 / 1000.0).round() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_premiere_opens_on_time_on_every_host_whatever_its_clock() {
    let net = Network::new(3);
    let offsets = ["+40s", "+0s", "-40s"];
    let procs = net
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut p = Proc::in_namespace(&format!("clock{i}"), &h.netns, h.ip);
            p.skew_clock(offsets[i]);
            p
        })
        .collect();
    // Formed over mutual TLS, with every write of the formation forwarded between them.
    let (nodes, _join, admin) = form_these(procs, |_| Vec::new()).await;
    for (node, expected) in nodes.iter().zip([40, 0, -40]) {
        let offset = clock_offset_s(node.http).await;
        assert!((offset - expected).abs() <= 2, "node at {} runs {offset} s off, not {expected}", node.http);
    }

    // The broadcaster rehearses on the true-clock node; the premiere is scheduled through the
    // slow one, 15 s ahead on the true clock (25 s behind on the fast node's).
    let _publisher = publish_sample_to(nodes[1].srt, "premiere", 1_000);
    let at = now_ms() + 15_000;
    let body = json!({ "content": "live/premiere", "at": rfc3339(at) });
    let r = nodes[2].api(&admin).call(Method::POST, "/api/v1/releases", Some(&body)).await.expect("scheduled");
    assert_eq!(r["state"], "scheduled", "{r}");
    let release_path = format!("/api/v1/releases/{}", r["id"].as_u64().expect("an id"));

    // Every node polled until it serves: never before the release time on the true clock.
    let mut opened = [None; 3];
    let deadline = at + 12_000;
    while opened.iter().any(Option::is_none) && now_ms() < deadline {
        for (i, node) in nodes.iter().enumerate() {
            if opened[i].is_none() {
                let asked = now_ms();
                if get(node.http, PLAYLIST).await.status == 200 {
                    assert!(asked >= at, "node {} served the premiere {} ms early", i + 1, at - asked);
                    opened[i] = Some(asked - at);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("opened, ms after the release time, on nodes +40 s, +0 s, -40 s: {opened:?}");
    for (i, late) in opened.iter().enumerate() {
        let late = late.unwrap_or_else(|| panic!("node {} never served the premiere ({})", i + 1, offsets[i]));
        assert!(late <= 5_000, "node {} ({}) opened {late} ms late", i + 1, offsets[i]);
    }

    // Read through the fast node: open, and it was the quorum's time that opened it.
    let release = eventually(Duration::from_secs(10), "the release to read open", || async {
        let r = nodes[0].api(&admin).get(&release_path).await.ok()?;
        (r["state"] == "open").then_some(r)
    })
    .await;
    eprintln!("{release}");
}
