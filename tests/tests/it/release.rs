//! A premiere scheduled through the admin API: gated on every node (answered exactly as an
//! unknown stream) while the broadcaster rehearses, pre-positioned with readiness shown
//! beforehand, opened on every node once the cluster commits it — not early, though one
//! node's clock runs a minute fast — then limited to a region and taken down.

use std::time::Duration;

use hyper::Method;
use serde_json::json;

use crate::cluster::{eventually, form_each, tessera_cli};
use crate::common::*;

/// Status and body, as a viewer sees them.
async fn seen(addr: std::net::SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let r = get(addr, path).await;
    (r.status, r.body.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_premiere_opens_everywhere_once_committed_never_early_and_is_taken_down() {
    // Node 1's clock runs a minute fast; node 3 serves another region.
    let (nodes, _join, admin) = form_each(3, |i| {
        let mut flags = vec!["--region".to_string(), if i == 2 { "us" } else { "eu" }.to_string()];
        if i == 0 {
            flags.extend(["--clock-skew-ms".to_string(), "60000".to_string()]);
        }
        flags
    })
    .await;
    let api = nodes[1].api(&admin);
    let at = now_ms() + 15_000;
    let body = json!({ "content": "live/premiere", "at": rfc3339(at) });
    let r = api.call(Method::POST, "/api/v1/releases", Some(&body)).await.expect("scheduled");
    assert_eq!((r["state"].as_str(), r["serving_nodes"].as_u64()), (Some("scheduled"), Some(3)), "{r}");
    let id = r["id"].as_u64().expect("an id");
    let dup = api.call(Method::POST, "/api/v1/releases", Some(&body)).await.unwrap_err();
    assert!(dup.to_string().contains("release_state"), "one pending release per content: {dup}");

    // The broadcaster rehearses on node 1.
    let publisher = publish_sample_to(nodes[0].srt, "premiere", 6);
    let release_path = format!("/api/v1/releases/{id}");
    let ready = eventually(Duration::from_secs(12), "every node ready before the premiere", || async {
        let r = api.get(&release_path).await.ok()?;
        (r["ready_nodes"] == 3).then_some(r)
    })
    .await;
    assert!(now_ms() < at, "readiness came only after the release time: {ready}");
    assert_eq!(ready["state"], "scheduled", "{ready}");
    // Node 1's fast clock has voted already; one vote of three opens nothing.
    assert!(ready["nodes"][0]["open_vote_clock"].is_string(), "{ready}");
    let shown = tessera_cli("release", &["show", &id.to_string()], &nodes[2], &admin);
    assert!(shown.starts_with(&format!("release {id} of live/premiere: scheduled at ")), "{shown}");
    assert_eq!(
        shown.lines().filter(|l| l.contains(" yes     yes ")).count(),
        3,
        "every node serves and is ready:\n{shown}"
    );

    // Gated: every URL answers as an unknown stream does, on every node, and no listing names it.
    let urls = [
        "index.m3u8",
        "src/index.m3u8",
        "src/index.m3u8?_HLS_msn=1&_HLS_part=0",
        "src/init-0.mp4",
        "src/seg-1.m4s",
        "src/part-1.m4s",
        "dvr.m3u8",
    ];
    for node in &nodes {
        for url in urls {
            let gated = seen(node.http, &format!("/live/premiere/{url}")).await;
            let unknown = seen(node.http, &format!("/live/no-such-stream/{url}")).await;
            assert_eq!(gated, unknown, "{url} on {} before the release", node.http);
        }
        let listing = get(node.http, "/streams").await.text();
        assert!(!listing.contains("premiere"), "/streams names a gated stream: {listing}");
    }

    // Every node, polled until it serves: none before the release time.
    let mut opened = Vec::new();
    for node in &nodes {
        let first = eventually(Duration::from_secs(30), "the premiere to open", || async {
            let before = now_ms();
            let r = get(node.http, "/live/premiere/index.m3u8").await;
            (r.status == 200).then_some(before)
        })
        .await;
        opened.push(first);
    }
    for (i, t) in opened.iter().enumerate() {
        assert!(*t >= at - 100, "node {} served {} ms before the release time", i + 1, at - t);
    }
    let r = api.get(&release_path).await.expect("release");
    assert_eq!(r["state"], "open", "{r}");
    assert!(r["commit_after_ms"].as_i64().is_some_and(|d| d >= 0), "committed at or after its time: {r}");
    let media = wait_ok(nodes[2].http, "/live/premiere/src/index.m3u8", Duration::from_secs(5)).await;
    assert_eq!(media.status, 200, "{}", nodes[2].log());
    assert!(get(nodes[2].http, "/streams").await.text().contains("premiere"));

    // Limited to the eu region: node 3 (us) closes, nodes 1 and 2 serve on.
    let eu = json!({ "regions": ["eu"] });
    api.call(Method::PUT, &release_path, Some(&eu)).await.expect("regions changed");
    eventually(Duration::from_secs(5), "the us node to close", || async {
        (get(nodes[2].http, "/live/premiere/index.m3u8").await.status == 404).then_some(())
    })
    .await;
    assert_eq!(get(nodes[0].http, "/live/premiere/index.m3u8").await.status, 200);

    // Taken down two seconds from now: gone everywhere, and the record says so.
    let end = json!({ "end": rfc3339(now_ms() + 2_000) });
    api.call(Method::PUT, &release_path, Some(&end)).await.expect("end set");
    for node in &nodes[..2] {
        eventually(Duration::from_secs(10), "the takedown", || async {
            (get(node.http, "/live/premiere/src/index.m3u8").await.status == 404).then_some(())
        })
        .await;
    }
    eventually(Duration::from_secs(10), "the release to end", || async {
        (api.get(&release_path).await.ok()?["state"] == "ended").then_some(())
    })
    .await;
    let cancel = api.call(Method::DELETE, &release_path, None).await.unwrap_err();
    assert!(cancel.to_string().contains("release_state"), "an ended release cannot be cancelled: {cancel}");
    publisher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_release_never_opens_and_bad_requests_are_refused() {
    let (nodes, _join, admin) = form_each(1, |_| vec![]).await;
    let api = nodes[0].api(&admin);
    let at = now_ms() + 1_500;
    let body = json!({ "content": "live/called-off", "at": rfc3339(at) });
    let r = api.call(Method::POST, "/api/v1/releases", Some(&body)).await.expect("scheduled");
    let path = format!("/api/v1/releases/{}", r["id"]);
    let moved = api.call(Method::PUT, &path, Some(&json!({ "at": rfc3339(at + 1_000) }))).await.expect("moved");
    assert_eq!(moved["revision"], 2, "{moved}");
    let c = tessera_cli("release", &["cancel", &r["id"].to_string()], &nodes[0], &admin);
    assert!(c.contains(": cancelled at "), "{c}");
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let r = api.get(&path).await.expect("release");
    assert_eq!((r["state"].as_str(), r["committed"].is_null()), (Some("cancelled"), true), "{r}");
    let publisher = publish_sample_to(nodes[0].srt, "called-off", 1);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(get(nodes[0].http, "/live/called-off/index.m3u8").await.status, 404, "a cancelled premiere stays gated");
    publisher.abort();

    for (bad, why) in [
        (json!({ "content": "live/x", "at": "tomorrow" }), "RFC 3339"),
        (json!({ "content": "films/x", "at": rfc3339(at) }), "live/NAME or vod/ASSET"),
        (json!({ "content": "live/x", "at": rfc3339(at), "end": rfc3339(at - 1) }), "end must come after"),
    ] {
        let e = api.call(Method::POST, "/api/v1/releases", Some(&bad)).await.unwrap_err();
        assert!(e.to_string().contains(why), "{bad}: {e}");
    }
    let e = api.get("/api/v1/releases/999").await.unwrap_err();
    assert!(e.to_string().contains("not_found"), "{e}");
}
