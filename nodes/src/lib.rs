//! A Tessera node: configuration, the HTTP origin, the segment store, publisher admission
//! (`auth`), scheduled releases (`release`), content protection (`license`: the license
//! endpoint and encryption as media is served), and the wiring of the SRT and RTMP
//! listeners to per-session actor pipelines.
//!
//! # Contract
//! - [`Node::start`] binds every listener before it returns (port 0 picks free ports, see
//!   [`Node::http_addr`] and [`Node::srt_addr`]); [`Node::shutdown`] stops accepting, lets
//!   in-flight HTTP requests finish (up to 5 s) and returns.
//! - The segment store is the only state shared between streams; a stream's pipeline
//!   failing ends that stream's session only.

pub mod admin;
pub mod auth;
pub mod check_hls;

pub mod archive_report;
pub mod config;
pub mod http;
pub mod license;
pub mod publish;
pub mod relay;
pub mod release;
pub mod rtmp_ingest;
pub mod server;
pub mod session;
pub mod srt_ingest;
pub mod store;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tessera_actors::{TranscodeSettings, WorkerCommand};
use tessera_license::admin::ProtectionAdmin;
use tessera_license::gate::ReleaseGate;
use tessera_license::http::LicenseEndpoints;
use tessera_license::serving::MediaProtection;
use tessera_listen::srt::SrtListenerConfig;
use tessera_packager::{PlaylistConfig, SegmenterConfig};
use tessera_transcode::wire::EncoderTuning;
use tessera_transcode::GovernorConfig;
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use config::NodeConfig;
use store::{SegmentStore, StoreConfig};

#[derive(Debug, Error)]
pub enum NodeError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind { what: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cluster: {0}")]
    Cluster(#[from] tessera_cluster::ClusterError),
    #[error("license actor: {0}")]
    License(#[from] ractor::SpawnErr),
    #[error("storage: {0}")]
    Tiers(#[from] tessera_storage::TierError),
}

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
            handle
        })
        .clone()
}

/// How this node runs its codec workers.
fn transcode_settings(config: &NodeConfig) -> Result<TranscodeSettings, NodeError> {
    let program = match &config.codec_worker {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| NodeError::Config(format!("cannot find this binary to run codec workers: {e}")))?,
    };
    Ok(TranscodeSettings {
        tuning: EncoderTuning {
            preset: config.encoder_preset.clone(),
            tune: config.encoder_tune.clone(),
            threads: config.encoder_threads,
            params: String::new(),
        },
        governor: GovernorConfig {
            max_delay: Duration::from_millis(config.transcode_max_delay_ms),
            ..GovernorConfig::default()
        },
        worker: WorkerCommand { program, args: vec!["codec-worker".into()] },
    })
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
    license: Option<ractor::ActorRef<tessera_license::actor::LicenseMsg>>,
}

impl Node {
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        config.validate()?;
        let metrics = metrics_handle();
        let store = SegmentStore::new(StoreConfig {
            playlist: PlaylistConfig {
                segment_target: config.segment_target_ms as f64 / 1000.0,
                window_segments: config.window_segments,
                retained_segments: config.window_segments,
            },
            reconnect_grace: Duration::from_millis(config.reconnect_grace_ms),
            ended_retention: Duration::from_millis(config.ended_retention_ms),
            max_publishers: config.max_publishers,
        });
        let tiers = tessera_storage::Tiers::start(config.tiers()?)?;
        store.attach_tiers(tiers.clone());
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(c), Some(k)) => Some(server::tls_acceptor(c, k)?),
            _ => None,
        };
        let http = tokio::net::TcpListener::bind(config.http_listen).await.map_err(|source| NodeError::Bind {
            what: "HTTP",
            addr: config.http_listen,
            source,
        })?;
        let http_addr =
            http.local_addr().map_err(|source| NodeError::Bind { what: "HTTP", addr: config.http_listen, source })?;
        let srt = tessera_listen::srt::bind(SrtListenerConfig {
            bind: config.srt_listen,
            latency: Duration::from_millis(config.srt_latency_ms),
        })
        .await
        .map_err(|source| NodeError::Bind { what: "SRT", addr: config.srt_listen, source })?;
        let srt_addr = srt.local_addr;
        let rtmp = tessera_listen::rtmp::bind(tessera_listen::rtmp::RtmpListenerConfig {
            bind: config.rtmp_listen,
            max_connections: config.max_publishers * 2,
            idle_timeout: Duration::from_millis(config.ingest_idle_timeout_ms),
        })
        .await
        .map_err(|source| NodeError::Bind { what: "RTMP", addr: config.rtmp_listen, source })?;
        let rtmp_addr = rtmp.local_addr;
        let (shutdown, rx) = watch::channel(false);
        let mut tasks = JoinSet::new();

        let member = tessera_cluster::start_member(&config.member(http_addr)).await?;
        let feeds = relay::FeedRegistry::new(config.relay_window_segments.max(1));
        feeds.attach(store.clone());
        relay::serve(&member, feeds.clone());
        tiers.on_archive(archive_report::to_catalog(member.clone()));
        // The node's own record: its addresses, for the admin API and other nodes.
        let me = tessera_raft::NodeRecord {
            id: member.identity.id,
            cluster_addr: member.advertise.clone(),
            http_addr: http_addr.to_string(),
            joined_ms: 0,
            region: config.region.clone(),
        };
        if let Err(e) = member.propose(tessera_raft::Command::PutNode { node: me }).await {
            tracing::warn!(error = %e, "could not record this node's addresses in the catalog");
        }
        let clock = tessera_license::gate::clock_with_skew(config.clock_skew_ms);
        let license = license::start(
            config.kek()?,
            Duration::from_secs(config.key_rotation_s),
            member.clone(),
            store.clone(),
            clock.clone(),
        )
        .await
        .map_err(NodeError::License)?;
        let gate = ReleaseGate::new(member.catalog.clone(), config.region.clone(), clock.clone());
        let followers = relay::Followers::new(store.clone(), member.clone(), feeds.clone(), config.relay_fanout);
        let state = Arc::new(http::HttpState {
            store: store.clone(),
            metrics,
            node_id: http_addr.to_string(),
            cluster: member.clone(),
            followers: followers.clone(),
            admin: Arc::new(tessera_cluster::api::AdminAuth {
                catalog: member.catalog.clone(),
                configured: config.admin_tokens.iter().map(|t| tessera_cluster::identity::secret_hash(t)).collect(),
            }),
            gate: gate.clone(),
            protection: Arc::new(MediaProtection::new(member.catalog.clone(), license.clone())),
        });
        let uploads = tessera_vod::UploadConfig {
            uploads: config.data_dir.join("uploads"),
            sources: config.data_dir.join("sources"),
            archive: tessera_vod::archive::open(
                match tiers.cold() {
                    Some(cold) => cold,
                    None => {
                        tessera_storage::cold::ColdStore::open(&config.data_dir.join("archive").display().to_string())?
                    }
                },
                &config.data_dir.join("vod-cache"),
                config.vod_cache_bytes,
            )?,
            scratch: config.data_dir.join("vod-scratch"),
            fetches: Arc::default(),
            max_bytes: config.upload_max_bytes,
            ladder: config.vod_ladder.clone(),
        };
        let vod = Arc::new(tessera_vod::VodState {
            cluster: member.clone(),
            uploads,
            upload_locks: tessera_vod::UploadLocks::default(),
            gate: gate.clone(),
            protection: state.protection.clone(),
        });
        tasks.spawn(tessera_vod::sweep(member.clone(), vod.uploads.clone(), rx.clone()));
        store.attach_recorder(tessera_vod::recording::start(member.clone(), vod.uploads.archive.clone(), rx.clone()));
        let transcode = transcode_settings(&config)?;
        let worker = tessera_vod::worker::VodWorker {
            cluster: member.clone(),
            uploads: vod.uploads.clone(),
            slots: config.vod_workers,
            encoding: tessera_vod::transcode::VodEncoding {
                worker: transcode.worker.clone(),
                tuning: tessera_transcode::wire::EncoderTuning {
                    preset: config.vod_encoder_preset.clone(),
                    tune: String::new(),
                    threads: 0,
                    params: String::new(),
                },
            },
        };
        tasks.spawn(worker.run(rx.clone()));
        tasks.spawn(release::clock::run(member.clone(), clock.clone(), rx.clone()));
        let preposition = release::preposition::Preposition {
            cluster: member.clone(),
            store: store.clone(),
            followers,
            region: config.region.clone(),
            prewarm: Duration::from_secs(config.release_prewarm_s),
            clock: clock.clone(),
        };
        tasks.spawn(preposition.run(rx.clone()));
        let license_endpoints = Arc::new(LicenseEndpoints { license: license.clone(), gate });
        let protection_admin =
            Arc::new(ProtectionAdmin { cluster: member.clone(), license: license.clone(), clock: clock.clone() });
        let vod_routes = tessera_vod::routes(vod);
        let public = vod_routes.playback.merge(tessera_license::http::router(license_endpoints));
        let admin = vod_routes.admin.merge(tessera_license::admin::router(protection_admin));
        let app = http::router(state, public, admin, vod_routes.preflight);
        tasks.spawn(server::serve(http, app, tls.clone(), config.max_http_connections, rx.clone()));

        let settings = session::IngestSettings {
            segmenter: SegmenterConfig {
                segment_target: config.segment_target_ms as i64 * 90,
                part_target: config.part_target_ms as i64 * 90,
                start_wait: 90_000,
                max_jump: 90_000,
                ..SegmenterConfig::default()
            },
            idle_timeout: Duration::from_millis(config.ingest_idle_timeout_ms),
            takeover: config.on_duplicate_publisher == config::DuplicatePublisher::Takeover,
            srt_passphrases: config.srt_passphrase_map()?,
            max_ingest_kbps: config.max_ingest_kbps,
            max_frame_bytes: config.max_frame_bytes,
            ladder: config.ladder.clone(),
            stream_ladders: config.stream_ladder_map()?,
            transcode,
            cluster: member.clone(),
            feeds: feeds.clone(),
        };
        let auth: Arc<dyn auth::PublishAuth> = Arc::new(auth::CatalogTokens {
            catalog: member.catalog.clone(),
            fallback: auth::StaticTokens::from_entries(&config.publish_tokens).map_err(NodeError::Config)?,
        });
        let mut srt_rx = rx.clone();
        tasks.spawn(srt_ingest::run(srt, store.clone(), auth.clone(), settings.clone(), async move {
            server::until_true(&mut srt_rx).await;
        }));
        let mut rtmp_rx = rx.clone();
        tasks.spawn(rtmp_ingest::run(rtmp, store.clone(), auth, settings, async move {
            server::until_true(&mut rtmp_rx).await;
        }));

        let tick_store = store.clone();
        let mut tick_rx = rx.clone();
        tasks.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = server::until_true(&mut tick_rx) => break,
                    _ = every.tick() => {
                        tick_store.tick(std::time::Instant::now());
                        feeds.prune();
                    }
                }
            }
        });
        tracing::info!(http = %http_addr, srt = %srt_addr, rtmp = %rtmp_addr, tls = tls.is_some(), "node started");
        Ok(Node { http_addr, srt_addr, rtmp_addr, store, shutdown, tasks, cluster: member, license })
    }

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
