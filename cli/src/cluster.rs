//! `tessera cluster ...`: create a cluster, and look at or shrink a running one through a
//! node's admin API.

// A command prints its results for the person who ran it.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::admin::AdminClient;
use anyhow::Context;
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::Value;
use tessera_cluster::{ClusterAddrs, ClusterService};

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Create a one-node cluster in a data folder; prints its join and admin tokens.
    Init(InitArgs),
    /// Make a new cluster's CA, join token and admin token as files of a folder, before
    /// any node runs: the first node starts with `--init-from DIR`, the others join with
    /// DIR/join-token (a Kubernetes Secret, say).
    Bootstrap {
        /// The folder to write (`ca.pem`, `ca-key.pem`, `join-token`, `admin-token`).
        #[arg(long)]
        out: PathBuf,
    },
    /// Members, roles, leader, term, log indexes and each member's lag.
    Status {
        #[command(flatten)]
        api: ApiArgs,
        /// The status as JSON (the admin API's `GET /api/v1/cluster`).
        #[arg(long)]
        json: bool,
    },
    /// The node at --node leaves the cluster (stop it afterwards).
    Leave {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// A node takes no new publishers, ladders or VOD jobs, and the ladders it makes move
    /// to other nodes; with --wait, until it holds nothing (then `leave` it).
    Drain {
        /// A node id, or `self`: the node at --node (a node draining itself as it stops).
        #[arg(value_name = "NODE")]
        id: NodeRef,
        #[command(flatten)]
        api: ApiArgs,
        /// Wait until the node holds no origin, ladder, worker or job (at most this many
        /// seconds).
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u64>,
    },
    /// A drained node takes work again.
    Undrain {
        /// A node id, or `self`: the node at --node.
        #[arg(value_name = "NODE")]
        id: NodeRef,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Write the catalog's content (streams, tokens, releases, keys, rights, assets, jobs) to
    /// a file: a backup that survives the loss of every member.
    Export {
        /// The file to write (`-`: standard output).
        #[arg(long, default_value = "-")]
        out: PathBuf,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Bring an export into a new cluster (one that holds no content yet). Content keys stay
    /// wrapped: its nodes need the exporting cluster's key-encryption key.
    Import {
        /// A file written by `export`.
        file: PathBuf,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Remove a node (one that is gone for good) from the cluster.
    Remove {
        /// The node's id, as `cluster status` shows it.
        #[arg(value_name = "NODE")]
        id: u64,
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The new node's data folder (must not belong to a cluster yet).
    #[arg(long, default_value = "tessera-data")]
    data_dir: PathBuf,
    /// The node's QUIC address for node-to-node traffic.
    #[arg(long, default_value = "0.0.0.0:7000")]
    cluster: SocketAddr,
    /// How other nodes reach it, when not the bound address.
    #[arg(long)]
    cluster_advertise: Option<String>,
    /// The HTTP address it will serve (recorded in the catalog; `tessera node` updates it).
    #[arg(long, default_value = "0.0.0.0:8080")]
    http: SocketAddr,
}

/// Where the admin API is, and the token for it.
#[derive(Args, Debug)]
pub struct ApiArgs {
    /// A node's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    node: String,
    /// An admin token (from `cluster init`, or DATA_DIR/cluster/init-tokens).
    #[arg(long, env = "TESSERA_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
}

/// A node named on the command line: by its id, or as the node the command speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRef {
    Id(u64),
    /// The node at `--node`.
    This,
}

impl std::str::FromStr for NodeRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "self" => Ok(NodeRef::This),
            _ => s.parse().map(NodeRef::Id).map_err(|_| format!("{s:?}: a node id, or `self`")),
        }
    }
}

impl NodeRef {
    /// The node's id (asking the node at `--node` for its own).
    async fn resolve(self, client: &AdminClient) -> anyhow::Result<u64> {
        match self {
            NodeRef::Id(id) => Ok(id),
            NodeRef::This => {
                let status = client.get("/api/v1/cluster").await?;
                status["id"].as_u64().context("the node did not say its id")
            }
        }
    }
}

impl ApiArgs {
    pub fn client(&self) -> AdminClient {
        AdminClient::new(&self.node, &self.admin_token)
    }

    /// The node's base URL (`http://HOST:PORT`) and the token.
    pub fn parts(&self) -> (String, String) {
        let base = self.node.trim_end_matches('/');
        let base = if base.contains("://") { base.to_string() } else { format!("http://{base}") };
        (base, self.admin_token.clone())
    }
}

pub async fn run(command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Init(a) => {
            let addrs = ClusterAddrs {
                bind: a.cluster,
                advertise: a.cluster_advertise,
                http: a.http.to_string(),
                host: Default::default(),
            };
            let (service, join, admin) = ClusterService::init(&a.data_dir, &addrs, &Default::default())
                .await
                .with_context(|| format!("cluster init in {}", a.data_dir.display()))?;
            service.shutdown().await;
            println!("join-token: {join}");
            println!("admin-token: {admin}");
            eprintln!(
                "A one-node cluster is in {}: run it with `tessera node --data-dir {}`; other nodes join with \
                 `--join {} --token JOIN_TOKEN`.",
                a.data_dir.display(),
                a.data_dir.display(),
                service.advertise
            );
        }
        ClusterCommand::Bootstrap { out } => {
            if out.join("ca.pem").exists() {
                anyhow::bail!("{} already holds a bootstrap: a second would make another cluster", out.display());
            }
            let made = tessera_cluster::membership::Bootstrap::create().context("cluster bootstrap")?;
            made.write(&out).with_context(|| format!("cluster bootstrap in {}", out.display()))?;
            println!("join-token: {}", made.join);
            println!("admin-token: {}", made.admin);
            eprintln!(
                "Written to {0}: start the first node with `tessera node --init-from {0}`, the others with \
                 `--join FIRST:7000 --token $(cat {0}/join-token)`. Keep the folder secret.",
                out.display()
            );
        }
        ClusterCommand::Status { api, json } => {
            let client = api.client();
            let mut status = client.get("/api/v1/cluster").await?;
            // Only the leader knows how far each member has got.
            if status["state"] != "leader" {
                if let Some(leader) = leader_http(&status) {
                    if let Ok(l) = AdminClient::new(&leader, &api.admin_token).get("/api/v1/cluster").await {
                        status["leader_view"] = l;
                    }
                }
            }
            let nodes = client.get("/api/v1/nodes").await.unwrap_or(Value::Null);
            if json {
                status["nodes"] = nodes;
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", render_status(&status));
                print!("{}", render_nodes(&nodes["data"]));
            }
        }
        ClusterCommand::Leave { api } => {
            let r = api.client().call(Method::POST, "/api/v1/cluster/leave", None).await?;
            println!("node {} left the cluster; stop it now", r["left"]);
        }
        ClusterCommand::Drain { id, api, wait } => {
            let client = api.client();
            let id = id.resolve(&client).await?;
            let node = client.call(Method::POST, &format!("/api/v1/nodes/{id}/drain"), None).await?;
            println!("node {id} is draining; it holds {}", describe_holds(&node["holds"]));
            if let Some(secs) = wait {
                let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
                loop {
                    let node = client.get(&format!("/api/v1/nodes/{id}")).await?;
                    if node["holds"]["nothing"] == true {
                        println!(
                            "node {id} holds nothing: `tessera cluster leave --node {}` removes it",
                            node["http_addr"].as_str().unwrap_or("ITS_HTTP_ADDRESS")
                        );
                        break;
                    }
                    if std::time::Instant::now() > until {
                        anyhow::bail!("node {id} still holds {} after {secs} s", describe_holds(&node["holds"]));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
        }
        ClusterCommand::Undrain { id, api } => {
            let client = api.client();
            let id = id.resolve(&client).await?;
            client.call(Method::DELETE, &format!("/api/v1/nodes/{id}/drain"), None).await?;
            println!("node {id} takes work again");
        }
        ClusterCommand::Export { out, api } => {
            let export = api.client().get("/api/v1/catalog/export").await?;
            let text = serde_json::to_string_pretty(&export)?;
            if out.as_os_str() == "-" {
                println!("{text}");
            } else {
                std::fs::write(&out, text + "\n").with_context(|| format!("writing {}", out.display()))?;
                let count = |k: &str| export[k].as_object().map_or(0, |o| o.len());
                eprintln!(
                    "catalog written to {}: {} streams, {} releases, {} assets",
                    out.display(),
                    count("streams"),
                    count("releases"),
                    count("assets")
                );
            }
        }
        ClusterCommand::Import { file, api } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let export: Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", file.display()))?;
            let answer = api.client().call(Method::POST, "/api/v1/catalog/import", Some(&export)).await?;
            println!("imported: {}", answer["imported"]);
        }
        ClusterCommand::Remove { id, api } => {
            api.client().call(Method::DELETE, &format!("/api/v1/nodes/{id}"), None).await?;
            println!("node {id} removed from the cluster");
        }
    }
    Ok(())
}

fn leader_http(status: &Value) -> Option<String> {
    let leader = status["leader"].as_u64()?;
    let member = status["members"].as_array()?.iter().find(|m| m["id"].as_u64() == Some(leader))?;
    let http = member["http_addr"].as_str()?;
    Some(http.replace("0.0.0.0", "127.0.0.1"))
}

fn opt(v: &Value) -> String {
    v.as_u64().map_or_else(|| "-".into(), |n| n.to_string())
}

/// The status as a table, with each member's lag behind the leader's log.
fn render_status(status: &Value) -> String {
    let leader_view = if status["state"] == "leader" { status } else { &status["leader_view"] };
    let last = leader_view["last_log"].as_u64();
    let mut out = format!(
        "node {} ({}), leader {}, term {}, last log {}, commit {}, applied {}, snapshot {}\n",
        status["id"],
        status["state"].as_str().unwrap_or("?"),
        opt(&status["leader"]),
        status["term"],
        opt(&status["last_log"]),
        opt(&status["commit"]),
        opt(&status["applied"]),
        opt(&status["snapshot"]),
    );
    out.push_str(&format!(
        "{:>4}  {:<9} {:<22} {:<22} {:>8} {:>6}\n",
        "ID", "ROLE", "CLUSTER", "HTTP", "MATCHED", "LAG"
    ));
    let members = leader_view["members"].as_array().or_else(|| status["members"].as_array());
    for m in members.into_iter().flatten() {
        let matched = m["matched"].as_u64();
        let lag = match (last, matched) {
            (Some(l), Some(m)) => l.saturating_sub(m).to_string(),
            _ => "-".into(),
        };
        out.push_str(&format!(
            "{:>4}  {:<9} {:<22} {:<22} {:>8} {:>6}\n",
            opt(&m["id"]),
            m["role"].as_str().unwrap_or("?"),
            m["addr"].as_str().unwrap_or("-"),
            m["http_addr"].as_str().unwrap_or("-"),
            opt(&m["matched"]),
            lag
        ));
    }
    out
}

fn describe_holds(holds: &Value) -> String {
    if holds["nothing"] == true {
        return "nothing".into();
    }
    let count = |k: &str| holds[k].as_array().map_or(0, |a| a.len());
    format!(
        "{} origin(s), {} placed ladder(s), {} running worker(s), {} VOD job(s)",
        count("origins"),
        count("ladders"),
        holds["workers"].as_u64().unwrap_or(0),
        count("jobs")
    )
}

/// Each node's transcoding: capacity, promised and measured cores, the ladders it makes,
/// and whether it drains.
fn render_nodes(nodes: &Value) -> String {
    let Some(nodes) = nodes.as_array() else { return String::new() };
    let mut out = format!(
        "\n{:>4}  {:<8} {:>8} {:>8} {:>8}  {:<10} {}\n",
        "ID", "STATE", "CAPACITY", "RESERVED", "BUSY", "REGION", "LADDERS"
    );
    for n in nodes {
        let t = &n["transcode"];
        let cores = |v: &Value| v.as_f64().map_or_else(|| "-".into(), |c| format!("{c:.2}"));
        let state = match (n["reachable"] == true, n["draining"] == true) {
            (false, _) => "down",
            (true, true) => "draining",
            (true, false) => "up",
        };
        let ladders: Vec<String> = t["ladders"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| format!("{}@{}", l["stream"].as_str().unwrap_or("?"), l["epoch"]))
            .collect();
        out.push_str(&format!(
            "{:>4}  {:<8} {:>8} {:>8} {:>8}  {:<10} {}\n",
            opt(&n["id"]),
            state,
            cores(&t["capacity"]),
            cores(&t["reserved"]),
            cores(&t["busy"]),
            n["region"].as_str().unwrap_or("-"),
            if ladders.is_empty() { "-".into() } else { ladders.join(" ") }
        ));
    }
    out
}
