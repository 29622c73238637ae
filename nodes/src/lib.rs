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
pub mod api_doc;
pub mod archive_report;
pub mod auth;
mod catalog_metrics;
pub mod config;
mod console;
pub mod health;
pub mod http;
pub mod ladder;
pub mod license;
mod outbound;
mod purge;
pub mod release;
pub mod reload;
pub mod request_metrics;
pub mod rtmp_ingest;
pub mod server;
pub mod session;
pub mod srt_ingest;
mod start;
mod tasks;
mod telemetry;

pub use telemetry::metrics_handle;

use std::net::SocketAddr;
use std::sync::Arc;

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
    reloader: Arc<reload::Reloader>,
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

    /// What a changed configuration may change while the node runs.
    pub fn reloader(&self) -> &Arc<reload::Reloader> {
        &self.reloader
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
