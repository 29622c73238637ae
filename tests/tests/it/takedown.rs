//! Takedowns reach caches: a CDN's purge hook is called (again, after a failure) when a
//! stream's rights change and when its release ends; media of region-limited content is
//! never for shared caches, and media of content whose release ends is cached no longer
//! than that end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use axum::Json;
use hyper::Method;
use serde_json::{json, Value};

use crate::cluster::eventually;
use crate::common::*;
use crate::protection::protected_node;

/// What a purge endpoint was told, and when (ms since the Unix epoch).
type Told = Arc<Mutex<Vec<(i64, Value)>>>;

/// A CDN's purge endpoint: it records what it is told and fails its first call.
async fn purge_endpoint() -> (String, Told) {
    let told: Told = Arc::default();
    let calls = Arc::new(Mutex::new(0u32));
    let (t, c) = (told.clone(), calls.clone());
    let app = axum::Router::new().route(
        "/purge",
        post(move |Json(body): Json<Value>| {
            let (t, c) = (t.clone(), c.clone());
            async move {
                let mut n = c.lock().unwrap();
                *n += 1;
                if *n == 1 {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                t.lock().unwrap().push((now_ms(), body));
                StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/purge"), told)
}

fn cache_control(r: &Response) -> String {
    r.headers.get("cache-control").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_hooks_hear_of_changed_rights_and_ended_releases_and_lifetimes_never_outlive_rights() {
    let (hook, told) = purge_endpoint().await;
    let url = hook.clone();
    let (node, api) = protected_node(move |c| c.purge_hooks = vec![url]).await;
    let http = node.http_addr();
    api.call(Method::PUT, "/api/v1/regions", Some(&json!({ "ranges": ["127.0.0.0/8=eu"] }))).await.expect("table");
    let publishers = [publish_sample(&node, "open", 3), publish_sample(&node, "cup", 3)];
    let part_of = |name: &'static str| async move {
        let p = eventually(Duration::from_secs(20), "parts", || async {
            let r = get(http, &format!("/live/{name}/src/index.m3u8")).await;
            (r.status == 200 && r.text().contains("#EXT-X-PART")).then(|| parse_media(&r.text()))
        })
        .await;
        get(http, &format!("/live/{name}/src/{}", p.parts.last().unwrap().3)).await
    };
    assert_eq!(cache_control(&part_of("open").await), "public, max-age=31536000, immutable");

    // Rights set on a stream: a shared cache must not keep its media, and CDNs are told.
    api.call(Method::PUT, "/api/v1/streams/cup", Some(&json!({ "regions": ["eu"] }))).await.expect("rights");
    assert!(cache_control(&part_of("cup").await).starts_with("private,"), "region-limited media is private");
    let heard = |content: &'static str, reason: &'static str, since: i64| {
        let told = told.clone();
        async move {
            eventually(Duration::from_secs(20), "the purge hook told", || async {
                let told = told.lock().unwrap();
                told.iter().find(|(at, b)| *at >= since && b["content"] == content && b["reason"] == reason).cloned()
            })
            .await
            .1
        }
    };
    let told_cup = heard("live/cup", "rights_changed", 0).await;
    assert_eq!(told_cup["prefix"], "/live/cup/", "{told_cup}");

    // A release of the open stream, which opens in a moment and ends a few seconds later.
    // Scheduled, the stream is gated until it opens: what caches hold of it must go.
    let end = now_ms() + 12_000;
    let body = json!({ "content": "live/open", "at": rfc3339(now_ms() + 1_500), "end": rfc3339(end) });
    api.call(Method::POST, "/api/v1/releases", Some(&body)).await.expect("scheduled");
    heard("live/open", "taken_down", 0).await;
    // Open, its media is cached no longer than its end; ended, CDNs are told to forget it.
    let part = eventually(Duration::from_secs(10), "the release open", || async {
        let r = get(http, "/live/open/src/index.m3u8").await;
        (r.status == 200).then(|| parse_media(&r.text()).parts.last().unwrap().3.clone())
    })
    .await;
    let media = get(http, &format!("/live/open/src/{part}")).await;
    let max_age: i64 = cache_control(&media).rsplit("max-age=").next().unwrap().parse().expect("a max-age");
    assert!(max_age <= (end - now_ms()) / 1000 + 1, "cached past the takedown: {}", cache_control(&media));
    heard("live/open", "taken_down", end).await;
    assert_eq!(get(http, "/live/open/src/index.m3u8").await.status, 404, "taken down");
    let metrics = get(http, "/metrics").await.text();
    assert!(metrics.contains("tessera_purge_requests_total{outcome=\"retried\"}"), "the failed call was tried again");
    assert!(metrics.contains("tessera_purge_requests_total{outcome=\"done\"}"));
    for p in publishers {
        p.abort();
    }
    node.shutdown().await;
}
