//! What an operator's tools see of a node: health that means something (`/livez`,
//! `/readyz` with reasons), a 404 for what does not exist, and request latency, Raft and
//! VOD queue series on `/metrics`.

use std::time::Duration;

use serde_json::Value;

use crate::cluster::{eventually, form};
use crate::common::*;

const ADMIN: &str = "operations-admin-token";

fn json(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

/// The check named `name` of a health report: (ok, detail).
fn check(report: &Value, name: &str) -> (bool, String) {
    let c = report["checks"].as_array().into_iter().flatten().find(|c| c["name"] == name);
    let c = c.unwrap_or_else(|| panic!("no check {name} in {report}"));
    (c["ok"].as_bool().unwrap(), c["detail"].as_str().unwrap().to_string())
}

/// The value of the series whose line starts with `series` in a scrape.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_says_why_it_is_ready_and_answers_404_for_what_does_not_exist() {
    let node = node(|c| c.admin_tokens = vec![ADMIN.into()]).await;
    let http = node.http_addr();

    let live = get(http, "/livez").await;
    assert_eq!(live.status, 200, "{}", live.text());
    assert_eq!(json(&live)["ok"], true);
    assert_eq!(get(http, "/healthz").await.status, 200, "the older probe path still answers");

    let ready = eventually(Duration::from_secs(10), "the node to be ready", || async {
        let r = get(http, "/readyz").await;
        (r.status == 200).then(|| json(&r))
    })
    .await;
    for name in ["listeners", "leader", "draining", "catalog"] {
        let (ok, detail) = check(&ready, name);
        assert!(ok, "{name}: {detail}");
    }
    assert!(check(&ready, "listeners").1.contains("srt, rtmp"), "{ready}");
    assert_eq!(ready["node"], 1);

    // Unknown paths are not found, with or without a token; known admin routes still want one.
    for path in ["/nothing-here", "/live", "/api/v1/nothing", "/api/v2/streams"] {
        let r = get(http, path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert_eq!(json(&r)["error"], "not_found", "{path}");
    }
    let bearer = format!("Bearer {ADMIN}");
    let r = get_with(http, "/api/v1/nothing", &[("authorization", &bearer)]).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(get(http, "/api/v1/streams").await.status, 401, "the admin API still needs its token");

    // A drained node turns unready, and ready again when undrained.
    let drain =
        request(hyper::Method::POST, http, "/api/v1/nodes/1/drain", &[("authorization", &bearer)], "".into()).await;
    assert!(drain.status < 300, "{}", drain.text());
    let r = get(http, "/readyz").await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(check(&json(&r), "draining"), (false, "this node is draining".into()));
    let undrain =
        request(hyper::Method::DELETE, http, "/api/v1/nodes/1/drain", &[("authorization", &bearer)], "".into()).await;
    assert!(undrain.status < 300, "{}", undrain.text());
    assert_eq!(get(http, "/readyz").await.status, 200);

    // What was asked shows up in the latency histogram by class, beside Raft's and VOD's series.
    let metrics = get(http, "/metrics").await.text();
    let count = |class: &str, code: &str| {
        sample(&metrics, &format!("tessera_http_request_duration_seconds_count{{class=\"{class}\",code=\"{code}\"}}"))
            .unwrap_or(0.0)
    };
    assert!(count("other", "4xx") >= 2.0, "the 404s of unknown paths:\n{metrics}");
    assert!(count("api", "4xx") >= 3.0, "the API's 404s and 401:\n{metrics}");
    assert!(count("other", "2xx") >= 4.0, "the health probes:\n{metrics}");
    assert_eq!(sample(&metrics, "tessera_raft_is_leader"), Some(1.0), "{metrics}");
    assert!(sample(&metrics, "tessera_raft_term").is_some_and(|t| t >= 1.0));
    assert!(sample(&metrics, "tessera_raft_leader_changes_total").is_some_and(|n| n >= 1.0), "{metrics}");
    assert!(sample(&metrics, "tessera_raft_applied_index").is_some_and(|n| n >= 1.0));
    assert_eq!(sample(&metrics, "tessera_vod_jobs{state=\"pending\"}"), Some(0.0), "{metrics}");
    assert_eq!(sample(&metrics, "tessera_vod_oldest_pending_seconds"), Some(0.0));
    assert_eq!(sample(&metrics, "tessera_catalog_nodes"), Some(1.0));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_quorum_turns_unready_and_says_why() {
    let (mut nodes, _join, _admin) = form(3).await;
    for p in &nodes {
        eventually(Duration::from_secs(15), "every node ready", || async {
            (get(p.http, "/readyz").await.status == 200).then_some(())
        })
        .await;
    }
    nodes[1].kill();
    nodes[2].kill();
    let survivor = &nodes[0];
    let report = eventually(Duration::from_secs(20), "the survivor to turn unready", || async {
        let r = get(survivor.http, "/readyz").await;
        (r.status == 503).then(|| json(&r))
    })
    .await;
    let (ok, detail) = check(&report, "catalog");
    assert!(!ok, "{report}");
    assert!(detail.contains("linearizable read"), "{detail}");
    // It still serves, and says so: a supervisor must not restart it for being alone.
    let live = get(survivor.http, "/livez").await;
    assert_eq!(live.status, 200, "{}", live.text());
}
