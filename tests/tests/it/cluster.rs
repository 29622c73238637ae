//! The catalog cluster as separate `tessera` processes on loopback: real QUIC, real disk,
//! kill -9. Nodes are formed with the documented commands (`cluster init`, then `node`, or
//! `node --join`), and observed through the admin API and `cluster status`.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{json, Value};
use tessera_cli::admin::{AdminClient, AdminClientError};

use crate::common::scratch_dir;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_tessera-cli");

/// A port free now for both TCP and UDP, below the kernel's ephemeral range (32768 and up
/// by default): a node binds it later, and in between an ephemeral socket of another test
/// (a publisher, a client, a joiner) could take a port from that range, never from this one.
pub(crate) fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919);
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = 20_000 + (start.wrapping_add(n) % 12_000) as u16;
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Where Debian's libfaketime is (package `faketime`, installed by scripts/setup.sh).
fn libfaketime() -> &'static str {
    const PLACES: [&str; 3] = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ];
    PLACES
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("libfaketime is missing: apt-get install faketime (scripts/setup.sh)")
}

/// One node's folder and addresses; the process comes and goes.
pub(crate) struct Proc {
    dir: PathBuf,
    pub(crate) cluster: SocketAddr,
    pub(crate) http: SocketAddr,
    pub(crate) srt: SocketAddr,
    rtmp: Option<SocketAddr>,
    /// The network namespace it runs in (`ip netns exec`), if not this one.
    netns: Option<String>,
    /// How far its wall clock is moved (libfaketime's offset, such as `+40s`), if at all.
    clock: Option<String>,
    child: Option<Child>,
}

impl Proc {
    pub(crate) fn new(name: &str) -> Self {
        Proc {
            dir: scratch_dir(name),
            cluster: SocketAddr::from(([127, 0, 0, 1], free_port())),
            http: SocketAddr::from(([127, 0, 0, 1], free_port())),
            srt: SocketAddr::from(([127, 0, 0, 1], free_port())),
            rtmp: None,
            netns: None,
            clock: None,
            child: None,
        }
    }

    /// A node of its own host: it runs in network namespace `netns` and listens on `ip`.
    pub(crate) fn in_namespace(name: &str, netns: &str, ip: std::net::Ipv4Addr) -> Self {
        Proc {
            dir: scratch_dir(name),
            cluster: SocketAddr::from((ip, 7000)),
            http: SocketAddr::from((ip, 8080)),
            srt: SocketAddr::from((ip, 9000)),
            rtmp: Some(SocketAddr::from((ip, 1935))),
            netns: Some(netns.to_string()),
            clock: None,
            child: None,
        }
    }

    /// `tessera node --data-dir DIR ...` with `extra` flags; output goes to DIR.log.
    pub(crate) fn start(&mut self, extra: &[&str]) {
        std::fs::create_dir_all(&self.dir).unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let mut command = self.command();
        let rtmp = self.rtmp.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], free_port())));
        let child = command
            .args(["node", "--data-dir"])
            .arg(&self.dir)
            .args(["--cluster", &self.cluster.to_string(), "--http", &self.http.to_string()])
            .args(["--srt", &self.srt.to_string(), "--rtmp", &rtmp.to_string()])
            .args(["--catalog-snapshot-every", "100", "--log", "info,openraft=warn"])
            .args(extra)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("tessera starts");
        self.child = Some(child);
    }

    /// `tessera`, run where the node runs (in its namespace, if it has one).
    /// Runs the process with its wall clock moved by `offset` (`+40s`, `-40s`): everything
    /// it reads from the clock (what it stamps, votes and checks), through libfaketime. Its
    /// monotonic clock stays true, as NTP steps leave it.
    pub(crate) fn skew_clock(&mut self, offset: &str) {
        self.clock = Some(offset.to_string());
    }

    fn command(&self) -> Command {
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, BIN]);
                c
            }
            None => Command::new(BIN),
        };
        // Preloaded rather than through the `faketime` wrapper, which forks: the node stays
        // the process the test kills.
        if let Some(offset) = &self.clock {
            c.env("LD_PRELOAD", libfaketime()).env("FAKETIME", offset).env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        c
    }

    pub(crate) fn join(&mut self, member: &Proc, token: &str, extra: &[&str]) {
        let member = member.cluster.to_string();
        let mut args = vec!["--join", member.as_str(), "--token", token];
        args.extend_from_slice(extra);
        self.start(&args);
    }

    fn log_path(&self) -> PathBuf {
        self.dir.with_extension("log")
    }

    /// SIGKILL: no goodbye to the cluster.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The process's exit status, if it has exited.
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// The running process's id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The node's data folder.
    pub(crate) fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub(crate) fn api(&self, token: &str) -> AdminClient {
        AdminClient::new(&self.http.to_string(), token)
    }

    /// The node's log, for a failing assertion.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `tessera cluster init` in `dir`: the join token and the admin token it prints.
pub(crate) fn init(p: &Proc) -> (String, String) {
    init_with(p, &[])
}

/// `tessera cluster init` with `extra` flags.
pub(crate) fn init_with(p: &Proc, extra: &[&str]) -> (String, String) {
    let out = p
        .command()
        .args(["cluster", "init", "--data-dir"])
        .arg(&p.dir)
        .args(["--cluster", &p.cluster.to_string(), "--http", &p.http.to_string()])
        .args(extra)
        .output()
        .expect("tessera cluster init runs");
    assert!(out.status.success(), "cluster init failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name:?} line in {stdout:?}"))
            .trim()
            .to_string()
    };
    (field("join-token:"), field("admin-token:"))
}

/// `tessera cluster ...` against a node; its stdout.
fn cli(args: &[&str], node: &Proc, token: &str) -> String {
    tessera_cli("cluster", args, node, token)
}

/// `tessera GROUP ...` (`cluster`, `release`) against a node's admin API; its stdout.
pub(crate) fn tessera_cli(group: &str, args: &[&str], node: &Proc, token: &str) -> String {
    let out = Command::new(BIN)
        .arg(group)
        .args(args)
        .args(["--node", &format!("http://{}", node.http)])
        .env("TESSERA_ADMIN_TOKEN", token)
        .output()
        .expect("tessera runs");
    assert!(out.status.success(), "tessera {group} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Polls `f` until it gives a value, or fails with `what` after `within`.
pub(crate) async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    within: Duration,
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The voters and learners a node reports, once it has a leader.
pub(crate) async fn membership(p: &Proc, token: &str) -> Option<(u64, BTreeSet<u64>, BTreeSet<u64>)> {
    let s = p.api(token).get("/api/v1/cluster").await.ok()?;
    let leader = s["leader"].as_u64()?;
    let ids = |role: &str| -> BTreeSet<u64> {
        s["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["role"] == role || (role == "follower" && m["role"] == "leader"))
            .filter_map(|m| m["id"].as_u64())
            .collect()
    };
    Some((leader, ids("follower"), ids("learner")))
}

pub(crate) async fn create_stream(p: &Proc, token: &str, name: &str) -> Result<Value, AdminClientError> {
    p.api(token).call(Method::POST, "/api/v1/streams", Some(&json!({ "name": name }))).await
}

/// The stream names a node holds: linearizable, or its own copy.
pub(crate) async fn stream_names(p: &Proc, token: &str, local: bool) -> Option<BTreeSet<String>> {
    let path = if local { "/api/v1/streams?consistency=local" } else { "/api/v1/streams" };
    let v = p.api(token).get(path).await.ok()?;
    Some(v["data"].as_array()?.iter().filter_map(|s| s["name"].as_str().map(String::from)).collect())
}

/// Forms a cluster of `n` nodes with the documented commands.
pub(crate) async fn form(n: usize) -> (Vec<Proc>, String, String) {
    form_with(n, &[]).await
}

/// Forms a cluster of `n` nodes, each started with `extra` flags too. They join one by
/// one, so `nodes[i]` has id `i + 1` (see [`index_of`]).
pub(crate) async fn form_with(n: usize, extra: &[&str]) -> (Vec<Proc>, String, String) {
    form_each(n, |_| extra.iter().map(|s| s.to_string()).collect()).await
}

/// Forms a cluster of `n` nodes, node `i` started with `extra(i)` flags too.
pub(crate) async fn form_each(n: usize, extra: impl Fn(usize) -> Vec<String>) -> (Vec<Proc>, String, String) {
    form_these((0..n).map(|i| Proc::new(&format!("cluster{i}"))).collect(), extra).await
}

/// Forms a cluster of `nodes` (not started yet), node `i` started with `extra(i)` flags.
pub(crate) async fn form_these(
    mut nodes: Vec<Proc>,
    extra: impl Fn(usize) -> Vec<String>,
) -> (Vec<Proc>, String, String) {
    let n = nodes.len();
    let (join, admin) = init(&nodes[0]);
    nodes[0].start(&extra(0).iter().map(String::as_str).collect::<Vec<_>>());
    eventually(Duration::from_secs(30), "the first node to lead", || async {
        membership(&nodes[0], &admin).await.map(|_| ())
    })
    .await;
    for k in 1..n {
        let (first, rest) = nodes.split_at_mut(1);
        rest[k - 1].join(&first[0], &join, &extra(k).iter().map(String::as_str).collect::<Vec<_>>());
        let want: BTreeSet<u64> = (1..=k as u64 + 1).collect();
        eventually(Duration::from_secs(30), "the node to join as a voter", || async {
            let (_, voters, _) = membership(&nodes[k], &admin).await?;
            (voters == want).then_some(())
        })
        .await;
    }
    (nodes, join, admin)
}

/// Nodes get ids 1, 2, 3... in the order they joined: `form` joins them one by one.
pub(crate) fn index_of(id: u64) -> usize {
    id as usize - 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_elect_again_after_a_kill_and_a_node_restarts_from_disk() {
    let (mut nodes, _join, admin) = form(3).await;
    let status = cli(&["status"], &nodes[1], &admin);
    assert!(status.contains("leader") && status.matches("follower").count() >= 2, "{status}");

    // Writes through a follower reach the leader; reads anywhere see them.
    let (leader, _, _) = membership(&nodes[0], &admin).await.unwrap();
    let follower = (1..=3).find(|&i| i != leader).unwrap();
    for i in 0..20 {
        create_stream(&nodes[index_of(follower)], &admin, &format!("before-{i}")).await.unwrap();
    }
    let dup = create_stream(&nodes[0], &admin, "before-0").await.unwrap_err();
    assert!(matches!(&dup, AdminClientError::Api { code, .. } if code == "exists"), "{dup}");

    // kill -9 the leader: the other two elect a new one and take writes.
    nodes[index_of(leader)].kill();
    let survivor = (1..=3).find(|&i| i != leader).unwrap();
    let new_leader = eventually(Duration::from_secs(10), "a new leader", || async {
        let (l, _, _) = membership(&nodes[index_of(survivor)], &admin).await?;
        (l != leader).then_some(l)
    })
    .await;
    for i in 0..20 {
        create_stream(&nodes[index_of(survivor)], &admin, &format!("after-{i}"))
            .await
            .unwrap_or_else(|e| panic!("write after the leader died: {e}\n{}", nodes[index_of(new_leader)].log()));
    }

    // The killed node restarts from its folder alone and catches up.
    nodes[index_of(leader)].start(&[]);
    let back = &nodes[index_of(leader)];
    let names = eventually(Duration::from_secs(20), "the restarted node to catch up", || async {
        let names = stream_names(back, &admin, true).await?;
        (names.len() == 40).then_some(names)
    })
    .await;
    assert!(names.contains("before-0") && names.contains("after-19"));
    // And a linearizable read through it agrees.
    assert_eq!(stream_names(back, &admin, false).await.unwrap(), names);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_grows_to_five_and_back_to_three_while_taking_writes() {
    let (mut nodes, join, admin) = form(3).await;
    // Enough writes for snapshots (every 100 entries) and a compacted log: a new node must
    // be brought up to date by a snapshot.
    for i in 0..250 {
        create_stream(&nodes[i % 3], &admin, &format!("s{i}")).await.unwrap();
    }

    // A writer runs through the whole growth and shrink; every acknowledged write must stay.
    let writer_api = nodes[0].api(&admin);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let writer = tokio::spawn(async move {
        let mut acked = Vec::new();
        let mut failed = 0u32;
        for i in 0.. {
            if *stop_rx.borrow() {
                break;
            }
            let name = format!("w{i}");
            match writer_api.call(Method::POST, "/api/v1/streams", Some(&json!({ "name": name }))).await {
                Ok(_) => acked.push(name),
                Err(_) => failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (acked, failed)
    });

    let mut fourth = Proc::new("cluster3");
    fourth.join(&nodes[1], &join, &[]);
    let mut fifth = Proc::new("cluster4");
    fifth.join(&nodes[2], &join, &[]);
    nodes.push(fourth);
    nodes.push(fifth);
    eventually(Duration::from_secs(30), "five voters", || async {
        let (_, voters, _) = membership(&nodes[0], &admin).await?;
        (voters.len() == 5).then_some(())
    })
    .await;
    // The newcomers were brought up by a snapshot, and hold what was written before them.
    for p in &nodes[3..] {
        // Its own copy may trail; it must catch up.
        eventually(Duration::from_secs(10), "a new node to hold every earlier stream", || async {
            let names = stream_names(p, &admin, true).await?;
            (0..250).all(|i| names.contains(&format!("s{i}"))).then_some(())
        })
        .await;
        let s = p.api(&admin).get("/api/v1/cluster").await.unwrap();
        assert!(s["snapshot"].as_u64().is_some_and(|i| i >= 100), "no snapshot on a new node: {s}");
    }
    let status: Value = serde_json::from_str(&cli(&["status", "--json"], &nodes[3], &admin)).unwrap();
    let view = &status["leader_view"];
    let roles: Vec<&str> = view["members"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles.iter().filter(|r| **r == "follower").count(), 4, "{status}");
    let lagging = view["members"].as_array().unwrap().iter().filter(|m| m["matched"].as_u64().is_none()).count();
    assert_eq!(lagging, 0, "{status}");

    // Back to three: one node leaves, one is removed from elsewhere (as if it were lost).
    let ids: Vec<u64> = {
        let v = nodes[3].api(&admin).get("/api/v1/cluster").await.unwrap();
        let fifth = nodes[4].api(&admin).get("/api/v1/cluster").await.unwrap();
        vec![v["id"].as_u64().unwrap(), fifth["id"].as_u64().unwrap()]
    };
    cli(&["leave"], &nodes[3], &admin);
    nodes[3].kill();
    nodes[4].kill();
    cli(&["remove", &ids[1].to_string()], &nodes[1], &admin);
    let (_, voters, learners) = eventually(Duration::from_secs(20), "three voters", || async {
        let m = membership(&nodes[0], &admin).await?;
        (m.1.len() == 3).then_some(m)
    })
    .await;
    assert_eq!(voters, BTreeSet::from([1, 2, 3]));
    assert!(learners.is_empty(), "{learners:?}");
    let nodes_listed = nodes[2].api(&admin).get("/api/v1/nodes").await.unwrap();
    assert_eq!(nodes_listed["data"].as_array().unwrap().len(), 3, "{nodes_listed}");

    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_tx.send(true).unwrap();
    let (acked, failed) = writer.await.unwrap();
    assert!(acked.len() > 50, "the writer got {} writes through ({failed} failed)", acked.len());
    let names = stream_names(&nodes[1], &admin, false).await.unwrap();
    let lost: Vec<_> = acked.iter().filter(|n| !names.contains(*n)).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_replicates_without_voting_and_strangers_are_refused() {
    let (nodes, join, admin) = form(1).await;
    let mut edge = Proc::new("cluster-edge");
    edge.join(&nodes[0], &join, &["--learner"]);
    eventually(Duration::from_secs(20), "a learner", || async {
        let (_, _, learners) = membership(&nodes[0], &admin).await?;
        (learners.len() == 1).then_some(())
    })
    .await;
    create_stream(&edge, &admin, "from-the-edge").await.unwrap();
    let names = stream_names(&edge, &admin, false).await.unwrap();
    assert!(names.contains("from-the-edge"));

    // Removed, the edge keeps its certificate but no longer writes through the cluster.
    let edge_id = edge.api(&admin).get("/api/v1/cluster").await.unwrap()["id"].as_u64().unwrap();
    cli(&["remove", &edge_id.to_string()], &nodes[0], &admin);
    let e = create_stream(&edge, &admin, "after-removal").await.unwrap_err();
    assert!(e.to_string().contains("not a member"), "{e}");
    assert!(!stream_names(&nodes[0], &admin, false).await.unwrap().contains("after-removal"));

    // A wrong token, or one for another cluster, is refused; the node exits with a reason.
    let mut stranger = Proc::new("cluster-stranger");
    let bad = format!("{}.{}", "0".repeat(64), join.split('.').nth(1).unwrap());
    stranger.join(&nodes[0], &bad, &[]);
    let status = stranger.child.as_mut().unwrap().wait().unwrap();
    assert!(!status.success());
    assert!(stranger.log().contains("unknown join token"), "{}", stranger.log());
    let (_, voters, learners) = membership(&nodes[0], &admin).await.unwrap();
    assert_eq!((voters.len(), learners.len()), (1, 0));

    // The admin API wants a token it knows.
    let e = nodes[0].api("not-a-token").get("/api/v1/cluster").await.unwrap_err();
    assert!(matches!(&e, AdminClientError::Api { status, .. } if status.as_u16() == 403), "{e}");
}
