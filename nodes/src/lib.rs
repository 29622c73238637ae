//! A Tessera node: its configuration, its start ([`Node::start`], in the steps of
//! `start`), the HTTP server and the node's own routes, publisher admission (`auth`) and the
//! wiring of the SRT and RTMP listeners to per-session actor pipelines (`session`), the
//! release clock and pre-positioning (`release`), and the admin API. Everything else is a
//! part of its own that the node starts and composes: the catalog member
//! (`tessera-cluster`), live streams (`tessera-live`), VOD (`tessera-vod`), content
//! protection (`tessera-license`), the storage tiers (`tessera-storage`).
//!
//! # Contract
//! - [`Node::start`] binds every listener before it returns (port 0 picks free ports, see
//!   [`Node::http_addr`] and [`Node::srt_addr`]); [`Node::shutdown`] stops accepting, lets
//!   in-flight HTTP requests finish (up to 5 s) and returns.
//! - The segment store is the only state shared between streams; a stream's pipeline
//!   failing ends that stream's session only.

pub mod admin;
pub mod archive_report;
pub mod auth;
pub mod config;
pub mod http;
pub mod ladder;
pub mod license;
mod outbound;
mod purge;
pub mod release;
pub mod rtmp_ingest;
pub mod server;
pub mod session;
pub mod srt_ingest;
mod start;
mod tasks;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tessera_live::store::SegmentStore;
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use config::NodeConfig;

#[derive(Debug, Error)]
pub enum NodeError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind { what: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cluster: {0}")]
    Cluster(Box<tessera_cluster::ClusterError>),
    #[error("license actor: {0}")]
    License(#[from] ractor::SpawnErr),
    #[error("storage: {0}")]
    Tiers(Box<tessera_storage::TierError>),
}

impl From<tessera_cluster::ClusterError> for NodeError {
    fn from(e: tessera_cluster::ClusterError) -> Self {
        NodeError::Cluster(Box::new(e))
    }
}

impl From<tessera_storage::TierError> for NodeError {
    fn from(e: tessera_storage::TierError) -> Self {
        NodeError::Tiers(Box::new(e))
    }
}

/// How often histogram samples are folded into their buckets when nobody scrapes.
const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// The process-wide Prometheus recorder (installed once; shared by every node in a process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0])
                .expect("static buckets")
                // Parts cross a cluster in well under a millisecond on a LAN.
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full("tessera_relay_part_delay_seconds".into()),
                    &[0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0],
                )
                .expect("static buckets")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::debug!("a metrics recorder was already installed");
            }
            // A histogram's samples wait in the recorder until a scrape or an upkeep folds them
            // into its buckets: without upkeep, a node nobody scrapes would keep every sample
            // it ever took (about 90 MB an hour under a thousand players).
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || loop {
                std::thread::sleep(METRICS_UPKEEP);
                upkeep.run_upkeep();
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "no metrics upkeep thread: histograms grow until scraped");
            }
            handle
        })
        .clone()
}

/// A running node.
pub struct Node {
    http_addr: SocketAddr,
    srt_addr: SocketAddr,
    rtmp_addr: SocketAddr,
    store: Arc<SegmentStore>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    cluster: tessera_cluster::ClusterService,
    /// The license actor's supervisor.
    license: Option<ractor::ActorRef<tessera_license::supervisor::SupervisorMsg>>,
}

impl Node {
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn srt_addr(&self) -> SocketAddr {
        self.srt_addr
    }

    pub fn rtmp_addr(&self) -> SocketAddr {
        self.rtmp_addr
    }

    pub fn store(&self) -> &Arc<SegmentStore> {
        &self.store
    }

    /// This node's catalog member.
    pub fn cluster(&self) -> &tessera_cluster::ClusterService {
        &self.cluster
    }

    /// Resolves if this node's catalog member stops on a fatal storage error (see
    /// [`tessera_raft::CatalogNode::failed`]); the node should then stop, so that a
    /// restart reopens its store once the disk is sound.
    pub async fn catalog_failed(&self) -> String {
        self.cluster.catalog.failed().await
    }

    /// Stops listening and waits for the listeners to finish.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
        if let Some(license) = &self.license {
            license.stop(None);
        }
        self.cluster.shutdown().await;
        tracing::info!(http = %self.http_addr, "node stopped");
    }
}
