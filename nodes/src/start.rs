//! A node's start, step by step: bind the listeners, open the live store on its storage
//! tiers, join the catalog, start the parts (live streams across the cluster, content
//! protection, VOD, releases), serve HTTP, then take publishers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tessera_actors::{TranscodeSettings, WorkerCommand};

use crate::health::Health;
use crate::ladder::{LadderHost, PlacedWorkers};
use tessera_cluster::ClusterService;
use tessera_ingest::timestamp::{TICKS_PER_MS, TICKS_PER_SECOND};
use tessera_license::admin::ProtectionAdmin;
use tessera_license::gate::{Clock, ReleaseGate};
use tessera_license::geoip::GeoIp;
use tessera_license::http::LicenseEndpoints;
use tessera_license::jwt::{FetchedKeySet, Jwks, KeySet};
use tessera_license::rights::RegionLookup;
use tessera_license::serving::MediaProtection;
use tessera_license::supervisor::{LicenseRef, SupervisorMsg};
use tessera_license::watched::WatchedFile;
use tessera_listen::rtmp::{BoundRtmpListener, RtmpListenerConfig};
use tessera_listen::srt::{BoundSrtListener, SrtListenerConfig};
use tessera_live::http::LiveState;
use tessera_live::relay::{FeedRegistry, Followers};
use tessera_live::store::{SegmentStore, StoreConfig};
use tessera_packager::{PlaylistConfig, SegmenterConfig};
use tessera_storage::cold::ColdStore;
use tessera_storage::Tiers;
use tessera_transcode::wire::EncoderTuning;
use tessera_transcode::GovernorConfig;
use tessera_vod::{UploadConfig, UploadLocks, VodState};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::{auth, config, http, license, release, rtmp_ingest, server, session, srt_ingest, tasks};
use crate::{metrics_handle, Node, NodeConfig, NodeError};

/// The sockets a node listens on, bound before anything else starts.
struct Listeners {
    http: TcpListener,
    http_addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    srt: BoundSrtListener,
    rtmp: BoundRtmpListener,
}

impl Listeners {
    async fn bind(config: &NodeConfig) -> Result<Self, NodeError> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(c), Some(k)) => Some(server::tls_acceptor(c, k)?),
            _ => None,
        };
        let bind = |what, addr| move |source| NodeError::Bind { what, addr, source };
        let http = TcpListener::bind(config.http_listen).await.map_err(bind("HTTP", config.http_listen))?;
        let http_addr = http.local_addr().map_err(bind("HTTP", config.http_listen))?;
        let srt = tessera_listen::srt::bind(SrtListenerConfig {
            bind: config.srt_listen,
            latency: Duration::from_millis(config.srt_latency_ms),
        })
        .await
        .map_err(bind("SRT", config.srt_listen))?;
        let rtmp = tessera_listen::rtmp::bind(RtmpListenerConfig {
            bind: config.rtmp_listen,
            max_connections: config.max_publishers * 2,
            idle_timeout: Duration::from_millis(config.ingest_idle_timeout_ms),
        })
        .await
        .map_err(bind("RTMP", config.rtmp_listen))?;
        Ok(Listeners { http, http_addr, tls, srt, rtmp })
    }
}

/// The live segment store, keeping what it finishes in the storage tiers.
fn open_store(config: &NodeConfig) -> Result<(Arc<SegmentStore>, Arc<Tiers>), NodeError> {
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
    let tiers = Tiers::start(config.tiers()?)?;
    store.attach_tiers(tiers.clone());
    Ok((store, tiers))
}

/// This node's catalog member, with the node's addresses recorded for the others.
async fn join_catalog(config: &NodeConfig, http_addr: SocketAddr) -> Result<ClusterService, NodeError> {
    let member = tessera_cluster::start_member(&config.member(http_addr)).await?;
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
    Ok(member)
}

/// Content protection on this node: the license actor (with a KEK), the gate, encryption
/// as media is served.
struct Rights {
    clock: Clock,
    license: Option<LicenseRef>,
    /// The license actor's supervisor, stopped with the node.
    supervisor: Option<ractor::ActorRef<SupervisorMsg>>,
    gate: ReleaseGate,
    protection: Arc<MediaProtection>,
    /// Where viewers are: the catalog's address table, then the GeoIP database.
    regions: Arc<RegionLookup>,
    /// The key set of the platform's token signer.
    jwks: Option<Signer>,
}

/// Where the platform's token signer publishes its key set.
#[derive(Clone)]
enum Signer {
    /// A file, read again when it changes.
    File(Arc<WatchedFile<Jwks>>),
    /// A URL, fetched by [`crate::license::fetch_jwks`].
    Fetched(Arc<FetchedKeySet>, String),
}

impl Signer {
    fn key_set(&self) -> Arc<dyn KeySet> {
        match self {
            Signer::File(f) => f.clone(),
            Signer::Fetched(f, _) => f.clone(),
        }
    }
}

impl Rights {
    /// What is read from files and read again when they change.
    fn watched_files(&self) -> Vec<Reload> {
        let mut files: Vec<Reload> = Vec::new();
        if let Some(geoip) = self.regions.geoip().cloned() {
            files.push(Arc::new(move || geoip.reload_if_changed()));
        }
        if let Some(Signer::File(jwks)) = self.jwks.clone() {
            files.push(Arc::new(move || jwks.reload_if_changed()));
        }
        files
    }
}

/// Reads a file again if it changed.
type Reload = Arc<dyn Fn() -> bool + Send + Sync>;

impl Rights {
    async fn start(config: &NodeConfig, member: &ClusterService, store: &Arc<SegmentStore>) -> Result<Self, NodeError> {
        let clock = tessera_license::gate::clock_with_skew(config.clock_skew_ms);
        let rotation = Duration::from_secs(config.key_rotation_s);
        let jwks = match config.jwks.as_deref() {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                Some(Signer::Fetched(Arc::new(FetchedKeySet::default()), url.to_string()))
            }
            Some(path) => Some(Signer::File(Arc::new(
                WatchedFile::open("jwks", std::path::Path::new(path), |bytes| {
                    Jwks::parse(&bytes).map_err(|e| e.to_string())
                })
                .map_err(|e| NodeError::Config(e.to_string()))?,
            ))),
            None => None,
        };
        let key_set = jwks.as_ref().map(Signer::key_set);
        let (license, supervisor) =
            license::start(config.kek()?, rotation, key_set, member.clone(), store.clone(), clock.clone())
                .await?
                .unzip();
        let gate = ReleaseGate::new(member.catalog.clone(), config.region.clone(), clock.clone());
        let geoip = match &config.geoip_db {
            Some(path) => Some(Arc::new(GeoIp::open(path).map_err(|e| NodeError::Config(e.to_string()))?)),
            None => None,
        };
        let regions = Arc::new(RegionLookup::new(member.catalog.clone(), geoip));
        let protection = Arc::new(MediaProtection::new(member.catalog.clone(), license.clone(), regions.clone()));
        Ok(Rights { clock, license, supervisor, gate, protection, regions, jwks })
    }
}

/// How this node starts codec worker processes.
fn worker_command(config: &NodeConfig) -> Result<WorkerCommand, NodeError> {
    let program = match &config.codec_worker {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| NodeError::Config(format!("cannot find this binary to run codec workers: {e}")))?,
    };
    Ok(WorkerCommand { program, args: vec!["codec-worker".into()] })
}

/// How this node's streams have their ladders made: wherever they are placed.
fn transcode_settings(config: &NodeConfig, host: &Arc<LadderHost>, member: &ClusterService) -> TranscodeSettings {
    TranscodeSettings {
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
        launcher: Arc::new(PlacedWorkers::new(host.clone(), member.clone())),
    }
}

/// VOD on this node: its uploads and archive, the sweep, the recorder of live streams, and
/// the worker that takes jobs.
fn start_vod(
    config: &NodeConfig,
    (member, store, tiers): (&ClusterService, &Arc<SegmentStore>, &Tiers),
    rights: &Rights,
    worker: WorkerCommand,
    (tasks, stop): (&mut JoinSet<()>, &watch::Receiver<bool>),
) -> Result<Arc<VodState>, NodeError> {
    let archive = match tiers.cold() {
        Some(cold) => cold,
        None => ColdStore::open(&config.data_dir.join("archive").display().to_string())?,
    };
    let uploads = UploadConfig {
        uploads: config.data_dir.join("uploads"),
        sources: config.data_dir.join("sources"),
        archive: tessera_vod::archive::open(archive, &config.data_dir.join("vod-cache"), config.vod_cache_bytes)?,
        scratch: config.data_dir.join("vod-scratch"),
        fetches: Arc::default(),
        max_bytes: config.upload_max_bytes,
        ladder: config.vod_ladder.clone(),
    };
    let (cluster, files) = (member.clone(), uploads.clone());
    tasks::spawn_restarting(tasks, "vod-sweep", stop, move |stop| {
        tessera_vod::sweep(cluster.clone(), files.clone(), stop)
    });
    store.attach_recorder(tessera_vod::recording::start(member.clone(), uploads.archive.clone(), stop.clone()));
    let worker = tessera_vod::worker::VodWorker {
        cluster: member.clone(),
        uploads: uploads.clone(),
        slots: config.vod_workers,
        encoding: tessera_vod::transcode::VodEncoding {
            worker,
            tuning: EncoderTuning {
                preset: config.vod_encoder_preset.clone(),
                tune: String::new(),
                threads: 0,
                params: String::new(),
            },
        },
    };
    tasks::spawn_restarting(tasks, "vod-worker", stop, move |stop| worker.clone().run(stop));
    Ok(Arc::new(VodState {
        cluster: member.clone(),
        uploads,
        upload_locks: UploadLocks::default(),
        gate: rights.gate.clone(),
        protection: rights.protection.clone(),
    }))
}

/// Every part's routes, composed.
fn routes(
    config: &NodeConfig,
    (member, store, followers): (&ClusterService, &Arc<SegmentStore>, &Arc<Followers>),
    rights: &Rights,
    vod: Arc<VodState>,
    (http_addr, ladders, reloader): (SocketAddr, &Arc<LadderHost>, &Arc<crate::reload::Reloader>),
) -> axum::Router {
    let live = tessera_live::http::router(Arc::new(LiveState {
        store: store.clone(),
        followers: followers.clone(),
        gate: rights.gate.clone(),
        protection: rights.protection.clone(),
    }));
    let license_endpoints = LicenseEndpoints {
        license: rights.license.clone(),
        gate: rights.gate.clone(),
        regions: rights.regions.clone(),
    };
    let protection_admin =
        ProtectionAdmin { cluster: member.clone(), license: rights.license.clone(), clock: rights.clock.clone() };
    let vod = tessera_vod::routes(vod);
    let node = Arc::new(http::HttpState {
        store: store.clone(),
        metrics: metrics_handle(),
        node_id: http_addr.to_string(),
        cluster: member.clone(),
        followers: followers.clone(),
        admin: Arc::new(tessera_cluster::api::AdminAuth {
            catalog: member.catalog.clone(),
            configured: config.admin_tokens.iter().map(|t| tessera_cluster::identity::secret_hash(t)).collect(),
        }),
        gate: rights.gate.clone(),
        ladders: ladders.clone(),
        data_dir: config.data_dir.clone(),
        reloader: reloader.clone(),
        prometheus_url: config.prometheus_url.clone(),
    });
    let public = live.merge(vod.playback).merge(tessera_license::http::router(Arc::new(license_endpoints)));
    let admin = vod.admin.merge(tessera_license::admin::router(Arc::new(protection_admin)));
    http::router(node, public, admin, vod.preflight)
}

/// Every few seconds: files read into memory (the GeoIP database, the JWKS) are read again
/// if they changed.
async fn reload_files(files: Vec<Reload>, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = server::until_true(&mut stop) => break,
            _ = every.tick() => {
                let files = files.clone();
                // Reading a database of some tens of megabytes is blocking work.
                let _ = tokio::task::spawn_blocking(move || files.iter().for_each(|reload| { reload(); })).await;
            }
        }
    }
}

/// What every publisher session is started with.
fn ingest_settings(
    config: &NodeConfig,
    member: &ClusterService,
    feeds: &Arc<FeedRegistry>,
    transcode: TranscodeSettings,
) -> Result<session::IngestSettings, NodeError> {
    Ok(session::IngestSettings {
        segmenter: SegmenterConfig {
            segment_target: config.segment_target_ms as i64 * TICKS_PER_MS,
            part_target: config.part_target_ms as i64 * TICKS_PER_MS,
            start_wait: TICKS_PER_SECOND,
            max_jump: TICKS_PER_SECOND,
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
    })
}

/// Every quarter second: the store ages its streams (grace, retention) and the journals of
/// streams it forgot go.
async fn tick(store: Arc<SegmentStore>, feeds: Arc<FeedRegistry>, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = server::until_true(&mut stop) => break,
            _ = every.tick() => {
                store.tick(std::time::Instant::now());
                feeds.prune();
            }
        }
    }
}

impl Node {
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        config.validate()?;
        // Before anything counts: what is recorded with no recorder installed is lost.
        metrics_handle();
        crate::telemetry::register_event_series();
        tessera_actors::stream_metrics::label_streams(config.metrics_per_stream);
        let Listeners { http, http_addr, tls, srt, rtmp } = Listeners::bind(&config).await?;
        let (srt_addr, rtmp_addr) = (srt.local_addr, rtmp.local_addr);
        let (store, tiers) = open_store(&config)?;
        let (shutdown, stop) = watch::channel(false);
        let mut tasks = JoinSet::new();

        let member = join_catalog(&config, http_addr).await?;
        tiers.on_archive(crate::archive_report::to_catalog(member.clone()));
        let feeds = FeedRegistry::new(config.relay_window_segments.max(1));
        feeds.attach(store.clone());
        tessera_live::relay::serve(&member, feeds.clone());
        let followers = Followers::new(store.clone(), member.clone(), feeds.clone(), config.relay_fanout);
        let rights = Rights::start(&config, &member, &store).await?;
        let worker = worker_command(&config)?;
        let ladders = LadderHost::new(member.clone(), config.transcode_cores(), worker.clone());
        ladders.serve();
        let duty = ladders.clone();
        tasks::spawn_restarting(&mut tasks, "ladder-host", &stop, move |stop| duty.clone().duty(stop));
        let transcode = transcode_settings(&config, &ladders, &member);
        let vod = start_vod(&config, (&member, &store, &tiers), &rights, worker, (&mut tasks, &stop))?;

        let cluster = member.clone();
        tasks::spawn_restarting(&mut tasks, "raft-metrics", &stop, move |stop| {
            crate::catalog_metrics::follow_raft(cluster.clone(), stop)
        });
        let (cluster, clock) = (member.clone(), rights.clock.clone());
        tasks::spawn_restarting(&mut tasks, "release-clock", &stop, move |stop| {
            release::clock::run(cluster.clone(), clock.clone(), stop)
        });
        let preposition = release::preposition::Preposition {
            cluster: member.clone(),
            store: store.clone(),
            followers: followers.clone(),
            region: config.region.clone(),
            prewarm: Duration::from_secs(config.release_prewarm_s),
            clock: rights.clock.clone(),
        };
        tasks::spawn_restarting(&mut tasks, "preposition", &stop, move |stop| preposition.clone().run(stop));

        if !config.purge_hooks.is_empty() {
            let hooks = crate::purge::PurgeHooks::new(config.purge_hooks.clone())
                .map_err(|e| NodeError::Config(format!("purge hooks: no TLS roots: {e}")))?;
            let cluster = member.clone();
            tasks::spawn_restarting(&mut tasks, "purge-hooks", &stop, move |stop| {
                hooks.clone().run(cluster.clone(), stop)
            });
        }
        if let Some(Signer::Fetched(set, url)) = rights.jwks.clone() {
            tasks::spawn_restarting(&mut tasks, "jwks-fetch", &stop, move |stop| {
                license::fetch_jwks(set.clone(), url.clone(), stop)
            });
        }
        let files = rights.watched_files();
        if !files.is_empty() {
            tasks::spawn_restarting(&mut tasks, "file-reload", &stop, move |stop| reload_files(files.clone(), stop));
        }

        let settings = ingest_settings(&config, &member, &feeds, transcode.clone())?;
        let (settings_tx, settings) = watch::channel(settings);
        let fallback = Arc::new(std::sync::RwLock::new(Arc::new(
            auth::StaticTokens::from_entries(&config.publish_tokens).map_err(NodeError::Config)?,
        )));
        let rebuild = {
            let (member, feeds) = (member.clone(), feeds.clone());
            move |c: &NodeConfig| ingest_settings(c, &member, &feeds, transcode.clone())
        };
        let reloader =
            Arc::new(crate::reload::Reloader::new(config.clone(), settings_tx, Box::new(rebuild), fallback.clone()));

        let trusted = Arc::new(config.trusted_proxies()?);
        let mut health = Health::new(member.clone(), Duration::from_millis(config.ready_catalog_ms));
        let (srt_up, rtmp_up) = (health.listener("srt"), health.listener("rtmp"));
        let app = routes(&config, (&member, &store, &followers), &rights, vod, (http_addr, &ladders, &reloader))
            .merge(crate::health::router(Arc::new(health)));
        let limits = server::Limits { max_connections: config.max_http_connections, trusted };
        let serve = server::serve(http, app, tls.clone(), limits, stop.clone());
        tasks.spawn(tasks::once("http", stop.clone(), serve));

        let auth: Arc<dyn auth::PublishAuth> =
            Arc::new(auth::CatalogTokens { catalog: member.catalog.clone(), fallback });
        let mut srt_stop = stop.clone();
        let srt = srt_ingest::run(srt, store.clone(), auth.clone(), settings.clone(), async move {
            server::until_true(&mut srt_stop).await;
        });
        tasks.spawn(tasks::once("srt-listener", stop.clone(), async move {
            let _up = srt_up();
            srt.await
        }));
        let mut rtmp_stop = stop.clone();
        let rtmp = rtmp_ingest::run(rtmp, store.clone(), auth, settings.clone(), async move {
            server::until_true(&mut rtmp_stop).await;
        });
        tasks.spawn(tasks::once("rtmp-listener", stop.clone(), async move {
            let _up = rtmp_up();
            rtmp.await
        }));
        let ticked = store.clone();
        tasks::spawn_restarting(&mut tasks, "store-tick", &stop, move |stop| tick(ticked.clone(), feeds.clone(), stop));

        tracing::info!(http = %http_addr, srt = %srt_addr, rtmp = %rtmp_addr, tls = tls.is_some(), "node started");
        Ok(Node {
            http_addr,
            srt_addr,
            rtmp_addr,
            store,
            shutdown,
            tasks,
            cluster: member,
            license: rights.supervisor,
            reloader,
        })
    }
}
