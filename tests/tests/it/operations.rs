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

/// A Prometheus server (Debian's package) scraping `targets` every second with the rules
/// of deploy/prometheus, killed when dropped.
struct Prometheus {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    dir: std::path::PathBuf,
}

impl Prometheus {
    fn start(targets: &[std::net::SocketAddr]) -> Prometheus {
        let dir = scratch_dir("prometheus");
        std::fs::create_dir_all(&dir).unwrap();
        let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/prometheus/tessera-rules.yml");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: tessera\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{}", crate::cluster::free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("Debian's prometheus is installed (scripts/setup.sh installs it)");
        Prometheus { child, addr, dir }
    }

    /// `GET /api/v1/PATH`'s `data`, once Prometheus answers.
    async fn api(&self, path: &str) -> Option<Value> {
        // Not listening yet: the helper below panics on a refused connection.
        tokio::net::TcpStream::connect(self.addr).await.ok()?;
        let r =
            tokio::time::timeout(Duration::from_secs(5), async { get(self.addr, &format!("/api/v1/{path}")).await })
                .await
                .ok()?;
        (r.status == 200).then(|| json(&r)["data"].clone())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scraping_three_nodes_fires_node_down_when_one_is_killed() {
    let (mut nodes, _join, _admin) = form(3).await;
    let prometheus = Prometheus::start(&nodes.iter().map(|p| p.http).collect::<Vec<_>>());

    // Every node scraped, every rule evaluated without error, and nothing firing.
    eventually(Duration::from_secs(30), "three healthy targets", || async {
        let targets = prometheus.api("targets").await?;
        let active = targets["activeTargets"].as_array()?;
        (active.len() == 3 && active.iter().all(|t| t["health"] == "up")).then_some(())
    })
    .await;
    let rules = eventually(Duration::from_secs(20), "every rule evaluated", || async {
        let groups = prometheus.api("rules").await?;
        let rules: Vec<Value> = groups["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        rules.iter().all(|r| r["lastEvaluation"].as_str().is_some_and(|t| !t.starts_with("0001"))).then_some(rules)
    })
    .await;
    assert!(rules.len() >= 20, "{rules:?}");
    for r in &rules {
        assert_eq!(r["health"], "ok", "rule {} fails to evaluate: {}", r["name"], r["lastError"]);
    }
    let leaders = prometheus.api("query?query=sum(tessera_raft_is_leader)").await.expect("query");
    assert_eq!(leaders["result"][0]["value"][1], "1", "one leader among three: {leaders}");
    // Pending is not firing: the first evaluations may precede the leader's first scrape,
    // and the rules' `for` is there to absorb that.
    let alerts = prometheus.api("alerts").await.expect("alerts");
    let firing: Vec<&Value> =
        alerts["alerts"].as_array().expect("alerts").iter().filter(|a| a["state"] == "firing").collect();
    assert!(firing.is_empty(), "nothing fires on a healthy cluster: {alerts}");

    // A follower is killed: after the rule's 30 s, its alert fires, naming it.
    let victim = 2;
    let victim_instance = nodes[victim].http.to_string();
    nodes[victim].kill();
    let alert = eventually(Duration::from_secs(60), "TesseraNodeDown to fire", || async {
        let alerts = prometheus.api("alerts").await?;
        alerts["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == "TesseraNodeDown" && a["state"] == "firing")
            .cloned()
    })
    .await;
    assert_eq!(alert["labels"]["instance"], victim_instance.as_str(), "{alert}\n{}", prometheus.log());
    assert_eq!(alert["labels"]["severity"], "critical");
    // The two left still have a leader: the catalog's alert does not fire.
    let alerts = prometheus.api("alerts").await.expect("alerts");
    assert!(
        alerts["alerts"].as_array().unwrap().iter().all(|a| a["labels"]["alertname"] != "TesseraNoLeader"),
        "{alerts}"
    );
}

/// The series a PromQL expression reads (`tessera_...`, `tessera:...`, `process_...`, `up`).
fn series_in(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut word = String::new();
    let mut in_string = false;
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c == '"' {
            in_string = !in_string;
        }
        if !in_string && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            word.push(c);
            continue;
        }
        if word.starts_with("tessera") || word.starts_with("process_") || word == "up" {
            names.push(std::mem::take(&mut word));
        }
        word.clear();
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_the_rules_read_only_series_a_node_exports() {
    let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{deploy}/grafana/tessera.json")).unwrap())
            .expect("the dashboard is JSON");
    let rules = std::fs::read_to_string(format!("{deploy}/prometheus/tessera-rules.yml")).unwrap();

    // What the dashboard and the rules read, and what the rules record.
    let mut exprs: Vec<String> = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(t["expr"].as_str().expect("every target has an expression").to_string());
        }
    }
    let panels = exprs.len();
    assert!(panels >= 25, "{panels} queries");
    let mut lines = rules.lines().peekable();
    let mut recorded = std::collections::BTreeSet::new();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("- record: ") {
            recorded.insert(name.to_string());
        } else if let Some(expr) = line.strip_prefix("expr: ") {
            let mut expr = expr.trim_start_matches('|').to_string();
            // A block scalar: the lines indented under it.
            while lines.peek().is_some_and(|l| l.starts_with("          ")) {
                expr.push(' ');
                expr.push_str(lines.next().unwrap().trim());
            }
            exprs.push(expr);
        }
    }
    assert!(exprs.len() > panels + 20, "the rules' expressions were read");

    // A node that has taken a feed and answered players, scraped.
    let (nodes, _join, _admin) = form(1).await;
    let node = &nodes[0];
    let publisher = publish_sample_to(node.srt, "scraped", 2);
    let media = "/live/scraped/src/index.m3u8";
    let playlist = eventually(Duration::from_secs(20), "two segments", || async {
        let r = get(node.http, media).await;
        let p = (r.status == 200).then(|| parse_media(&r.text()))?;
        (p.segments.len() >= 2).then_some(p)
    })
    .await;
    let (msn, part) = playlist.next_part();
    let held = get(node.http, &format!("{media}?_HLS_msn={msn}&_HLS_part={part}")).await;
    assert_eq!(held.status, 200, "{}", held.text());
    assert_eq!(get(node.http, &format!("/live/scraped/src/{}", playlist.segments[0].2)).await.status, 200);
    let scrape = get(node.http, "/metrics").await.text();
    let exported: std::collections::BTreeSet<&str> =
        scrape.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();

    let mut missing = Vec::new();
    for expr in &exprs {
        for name in series_in(expr) {
            let base = ["_bucket", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
            let known =
                name == "up" || recorded.contains(&name) || exported.contains(name.as_str()) || exported.contains(base);
            if !known {
                missing.push(format!("{name} (in {expr})"));
            }
        }
    }
    assert!(missing.is_empty(), "series no node exports:\n{}\n\nexported: {exported:?}", missing.join("\n"));
    publisher.abort();
}

/// `tessera cluster bootstrap`: the secrets exist before any node, so that nodes an
/// orchestrator starts together (joiners before the first, here) form one cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_started_together_form_one_cluster_from_a_bootstrap_folder() {
    use crate::cluster::{membership, Proc, BIN};
    let secrets = scratch_dir("bootstrap");
    let bootstrap =
        || std::process::Command::new(BIN).args(["cluster", "bootstrap", "--out"]).arg(&secrets).output().unwrap();
    let out = bootstrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| stdout.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().to_string();
    let (join, admin) = (field("join-token:"), field("admin-token:"));
    assert_eq!(std::fs::read_to_string(secrets.join("join-token")).unwrap().trim(), join);
    let again = bootstrap();
    assert!(!again.status.success(), "a second bootstrap over the first would make another cluster");

    let mut nodes: Vec<Proc> = (0..3).map(|i| Proc::new(&format!("bootstrap{i}"))).collect();
    let (first, rest) = nodes.split_at_mut(1);
    for joiner in rest.iter_mut() {
        joiner.join(&first[0], &join, &[]);
    }
    // The joiners knock for longer than one attempt lasts (3 s) before the first is there.
    tokio::time::sleep(Duration::from_secs(5)).await;
    first[0].start(&["--init-from", secrets.to_str().unwrap()]);
    let all: std::collections::BTreeSet<u64> = (1..=3).collect();
    eventually(Duration::from_secs(60), "three voters", || async {
        let (_, voters, _) = membership(&nodes[0], &admin).await?;
        (voters == all).then_some(())
    })
    .await;
    let written = std::fs::read_to_string(nodes[0].dir().join("cluster/init-tokens")).unwrap();
    assert!(
        written.contains(&join) && written.contains(&admin),
        "the first node made its cluster with the folder's tokens"
    );
    for p in &nodes {
        assert!(membership(p, &admin).await.is_some(), "the folder's admin token works on every node:\n{}", p.log());
    }
    assert!(nodes[1].log().contains("trying again"), "the joiner waited for the first node:\n{}", nodes[1].log());
}

/// `tessera cluster export`, then the whole cluster lost, then `tessera cluster import` into
/// a new one: the streams, their settings and the admin tokens come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_exported_comes_back_in_a_new_cluster() {
    use crate::cluster::{create_stream, BIN};
    use serde_json::json;
    let (mut old, _join, old_admin) = form(1).await;
    let api = old[0].api(&old_admin);
    create_stream(&old[0], &old_admin, "cam").await.unwrap();
    let put = json!({ "ladder": "source,360p:600", "token": "publish-secret-1234" });
    api.call(hyper::Method::PUT, "/api/v1/streams/cam", Some(&put)).await.unwrap();
    let before = api.get("/api/v1/streams/cam").await.unwrap();
    let file = scratch_dir("catalog-export").with_extension("json");
    let cli = |args: &[&str], node: std::net::SocketAddr, token: &str| {
        std::process::Command::new(BIN)
            .arg("cluster")
            .args(args)
            .args(["--node", &format!("http://{node}")])
            .env("TESSERA_ADMIN_TOKEN", token)
            .output()
            .unwrap()
    };
    let out = cli(&["export", "--out", file.to_str().unwrap()], old[0].http, &old_admin);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    old[0].kill();

    let (new, _join, new_admin) = form(1).await;
    let out = cli(&["import", file.to_str().unwrap()], new[0].http, &new_admin);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), new[0].log());
    // The old admin token works on the new cluster, and the stream is as it was.
    let after = new[0].api(&old_admin).get("/api/v1/streams/cam").await.unwrap();
    for field in ["ladder", "token_sha256", "created_ms"] {
        assert_eq!(after[field], before[field], "{field}");
    }
    assert!(after["origin"].is_null());
    // Into a cluster that holds content: refused, nothing changed.
    let again = cli(&["import", file.to_str().unwrap()], new[0].http, &new_admin);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not_empty")
            || String::from_utf8_lossy(&again.stderr).contains("already holds content")
    );
}

/// SIGHUP: the configuration file is read again; publish tokens change for the next
/// publisher, a listen address is reported as needing a restart; the log filter changes
/// through the admin API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_what_can_change_live_and_says_what_cannot() {
    use crate::cluster::Proc;
    use tessera_cli::publish::connect;
    let mut p = Proc::new("reload");
    let file = scratch_dir("reload-config").with_extension("toml");
    let write = |token: &str, extra: &str| {
        std::fs::write(&file, format!("publish_tokens = [\"cam={token}\"]\nadmin_tokens = [\"{ADMIN}\"]\n{extra}"))
            .unwrap();
    };
    write("first-secret", "");
    p.start(&["--config", file.to_str().unwrap()]);
    let srt = p.srt;
    eventually(Duration::from_secs(20), "the node to serve", || async {
        p.api(ADMIN).get("/api/v1/cluster").await.ok().map(|_| ())
    })
    .await;
    let try_token = |t: &'static str| async move {
        let id = format!("#!::r=live/cam,m=publish,t={t}");
        tokio::time::timeout(Duration::from_secs(5), connect(srt, &id)).await.expect("answered promptly").is_ok()
    };
    assert!(try_token("first-secret").await, "{}", p.log());
    tokio::time::sleep(Duration::from_secs(1)).await; // the first session lets the name go

    write("second-secret", "window_segments = 6\n");
    let hup = std::process::Command::new("kill").args(["-HUP", &p.pid().unwrap().to_string()]).status().unwrap();
    assert!(hup.success());
    let line = eventually(Duration::from_secs(10), "the reload to be logged", || async {
        p.log().lines().find(|l| l.contains("configuration reloaded")).map(String::from)
    })
    .await;
    assert!(line.contains("publish_tokens") && line.contains("window_segments"), "{line}");
    assert!(!try_token("first-secret").await, "the old token is refused after the reload");
    // The new one is accepted (once the first session has let the name go, which a loaded
    // machine may take longer than a second to see).
    eventually(Duration::from_secs(5), "the new token to be accepted", || async {
        try_token("second-secret").await.then_some(())
    })
    .await;
    assert!(p.exited().is_none(), "SIGHUP does not stop the node");

    // The same through the API, with a report; and the log filter.
    let api = p.api(ADMIN);
    let report = api.call(hyper::Method::POST, "/api/v1/node/reload", None).await.unwrap();
    assert_eq!(report["needs_restart"], serde_json::json!(["window_segments"]), "{report}");
    assert_eq!(report["applied"], serde_json::json!([]), "nothing new to apply: {report}");
    let body = serde_json::json!({ "filter": "debug" });
    api.call(hyper::Method::PUT, "/api/v1/node/log", Some(&body)).await.unwrap();
    let bad = serde_json::json!({ "filter": "tessera=loud" });
    assert!(api.call(hyper::Method::PUT, "/api/v1/node/log", Some(&bad)).await.is_err());
}

/// Viewers: clients that asked for a stream's playlist lately, once each however often,
/// in `/streams` and as `tessera_viewers`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_counts_its_viewers() {
    let node = node(|_| {}).await;
    let feed = publish_sample(&node, "cam", 3);
    let http = node.http_addr();
    wait_ok(http, "/live/cam/index.m3u8", Duration::from_secs(10)).await;
    for agent in ["hls.js", "AppleCoreMedia/1.0", "hls.js"] {
        for _ in 0..3 {
            assert_eq!(get_with(http, "/live/cam/src/index.m3u8", &[("user-agent", agent)]).await.status, 200);
        }
    }
    // A name nobody publishes is not a stream anyone watches.
    let _ = get(http, "/live/nothing/src/index.m3u8").await;
    let streams = json(&get(http, "/streams").await);
    let cam = streams["streams"].as_array().unwrap().iter().find(|s| s["name"] == "cam").unwrap();
    assert_eq!(cam["viewers"], 2, "two players: {streams}");
    assert!(!streams.to_string().contains("nothing"));
    let metrics = get(http, "/metrics").await.text();
    assert_eq!(sample(&metrics, "tessera_viewers"), Some(2.0));
    feed.abort();
    node.shutdown().await;
}

/// Reads the console's event feed over a raw connection until `seen` holds of what has
/// arrived (the feed never ends, so no whole-body client will do).
async fn read_feed_until(
    stream: &mut tokio::net::TcpStream,
    text: &mut String,
    what: &str,
    seen: impl Fn(&str) -> bool,
) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 16384];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !seen(text) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("the feed did not bring {what} in 15 s; it brought:\n{text}"))
            .expect("read the feed");
        assert!(n > 0, "the feed ended before {what}:\n{text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_is_the_front_door_and_its_feed_follows_the_catalog() {
    use tokio::io::AsyncWriteExt;
    let node = node(|c| c.admin_tokens = vec![ADMIN.into()]).await;
    let http = node.http_addr();

    let door = get(http, "/").await;
    assert_eq!(door.status, 303);
    assert_eq!(door.headers["location"], "/console/");
    let page = get(http, "/console/").await;
    assert_eq!(page.status, 200);
    assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.headers["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    let html = page.text();
    assert!(html.contains("id=\"login-form\""), "{html}");

    // Everything the page loads, and every module its script imports, is served.
    let mut files: Vec<String> = Vec::new();
    for attr in ["src=\"/console/", "href=\"/console/"] {
        files.extend(html.split(attr).skip(1).map(|rest| rest.split('"').next().unwrap().to_string()));
    }
    let mut i = 0;
    while i < files.len() {
        let file = files[i].clone();
        let r = get(http, &format!("/console/{file}")).await;
        assert_eq!(r.status, 200, "/console/{file}");
        if file.ends_with(".js") && !file.starts_with("vendor/") {
            let dir = file.rsplit_once('/').map_or(String::new(), |(d, _)| format!("{d}/"));
            for import in r.text().split("from \"./").skip(1) {
                let name = import.split('"').next().unwrap();
                let path =
                    if let Some(up) = name.strip_prefix("../") { up.to_string() } else { format!("{dir}{name}") };
                if !files.contains(&path) {
                    files.push(path);
                }
            }
        }
        i += 1;
    }
    assert!(files.iter().any(|f| f == "pages/vod.js") && files.len() >= 13, "{files:?}");
    assert!(get(http, "/console/vendor/hls.min.js").await.text().contains("Hls"), "hls.js itself");
    assert_eq!(get(http, "/console/nothing.js").await.status, 404);

    // The feed wants the admin token, then brings every section, then what changes.
    assert_eq!(get(http, "/api/v1/console/events").await.status, 401);
    let mut feed = tokio::net::TcpStream::connect(http).await.unwrap();
    let ask = format!("GET /api/v1/console/events HTTP/1.1\r\nhost: {http}\r\nauthorization: Bearer {ADMIN}\r\n\r\n");
    feed.write_all(ask.as_bytes()).await.unwrap();
    let mut text = String::new();
    let sections = ["cluster", "nodes", "streams", "releases", "assets", "revocations", "live", "alerts"];
    read_feed_until(&mut feed, &mut text, "every section", |t| {
        sections.iter().all(|s| t.contains(&format!("event: {s}\n")))
    })
    .await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("content-type: text/event-stream"), "{text}");
    assert!(text.contains("\"configured\":false"), "no Prometheus configured: {text}");
    let before = text.len();
    let bearer = format!("Bearer {ADMIN}");
    let headers = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let body = bytes::Bytes::from_static(br#"{"name":"from-the-console"}"#);
    let r = request(hyper::Method::POST, http, "/api/v1/streams", &headers, body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    read_feed_until(&mut feed, &mut text, "the new stream", |t| t[before..].contains("\"name\":\"from-the-console\""))
        .await;
    node.shutdown().await;
}
