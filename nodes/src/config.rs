//! Node configuration: one struct that is both the command line (clap) and the TOML file
//! (serde). Flags given on the command line override the file; the file overrides the
//! built-in defaults. See `deploy/tessera.example.toml` for a commented example.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches};
use serde::{Deserialize, Serialize};
use tessera_transcode::LadderSpec;

use crate::NodeError;

/// Policy for a second publisher of a live stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DuplicatePublisher {
    Refuse,
    Takeover,
}

#[derive(Debug, Clone, Args, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// HTTP origin (LL-HLS, /metrics, admin API) listen address.
    #[arg(long, visible_alias = "http", default_value = "0.0.0.0:8080")]
    #[serde(alias = "http")]
    pub http_listen: SocketAddr,

    /// SRT ingest listen address.
    #[arg(long, visible_alias = "srt", default_value = "0.0.0.0:9000")]
    #[serde(alias = "srt")]
    pub srt_listen: SocketAddr,

    /// RTMP ingest listen address (rtmp://host/live/NAME).
    #[arg(long, visible_alias = "rtmp", default_value = "0.0.0.0:1935")]
    #[serde(alias = "rtmp")]
    pub rtmp_listen: SocketAddr,

    /// Folder for the node's durable state: the catalog and the cluster identity. A node
    /// started on an empty folder without --join makes a one-node cluster of its own.
    #[arg(long, default_value = "tessera-data")]
    pub data_dir: PathBuf,

    /// Node-to-node (QUIC) listen address.
    #[arg(long, default_value = "0.0.0.0:7000")]
    pub cluster: SocketAddr,

    /// How other nodes reach this one, `HOST:PORT` (default: the cluster listen address,
    /// with 127.0.0.1 for an unspecified IP).
    #[arg(long)]
    pub cluster_advertise: Option<String>,

    /// Join the cluster that the node at `HOST:PORT` (its cluster address) belongs to; needs
    /// --token. Only on a folder that belongs to no cluster yet.
    #[arg(long, requires = "token", value_name = "HOST:PORT")]
    pub join: Option<String>,

    /// The join token that `tessera cluster init` printed.
    #[arg(long)]
    pub token: Option<String>,

    /// With --join: replicate the catalog without voting (edge nodes).
    #[arg(long)]
    pub learner: bool,

    /// A folder written by `tessera cluster bootstrap` (CA, join and admin tokens): a node
    /// started on an empty data folder without --join makes its new cluster with them, so
    /// that the join token is known before the cluster exists. Ignored once the folder
    /// belongs to a cluster.
    #[arg(long, value_name = "DIR", conflicts_with = "join")]
    pub init_from: Option<PathBuf>,

    /// How long a joining node keeps trying a member it cannot reach yet (seconds), as when
    /// an orchestrator starts every node at once. A refused token fails at once.
    #[arg(long, default_value_t = 60)]
    pub join_wait_secs: u64,

    /// Admin API bearer tokens accepted besides the catalog's (repeatable).
    #[arg(long = "admin-token", value_name = "TOKEN")]
    pub admin_tokens: Vec<String>,

    /// Catalog entries applied between snapshots; each snapshot compacts the log behind it.
    #[arg(long, default_value_t = 5000)]
    pub catalog_snapshot_every: u64,

    /// Catalog leader heartbeat interval, milliseconds.
    #[arg(long, default_value_t = 50)]
    pub raft_heartbeat_ms: u64,

    /// Catalog election timeout, milliseconds: a follower that hears no leader stands for
    /// election after between this and twice this (plus the same again while the last
    /// leader's lease may hold). Leader loss costs about three times this value.
    #[arg(long, default_value_t = 200)]
    pub raft_election_ms: u64,

    /// SRT latency offered to publishers, milliseconds.
    #[arg(long, default_value_t = 120)]
    pub srt_latency_ms: u64,

    /// Target segment duration, milliseconds (segments are cut at the first keyframe after it).
    #[arg(long, default_value_t = 2000)]
    pub segment_target_ms: u64,

    /// Target part duration, milliseconds (100 to 1000).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(100..=1000))]
    pub part_target_ms: u64,

    /// Segments listed in each live playlist.
    #[arg(long, default_value_t = 10)]
    pub window_segments: usize,

    /// Segments of each live stream its origin keeps for the nodes following it: one that
    /// falls further behind starts again at the live edge (older ones are pulled through).
    #[arg(long, default_value_t = 8)]
    pub relay_window_segments: usize,

    /// Bytes of finished media this node keeps on its disk (the warm tier), least popular
    /// evicted first.
    #[arg(long, default_value_t = 2 << 30)]
    pub warm_bytes: u64,

    /// How long finished media stays on the node's disk (its DVR window), seconds. 0: not
    /// kept past the live window.
    #[arg(long, default_value_t = 3600)]
    pub dvr_window_s: u64,

    /// How long the archive keeps a stream's media, seconds. 0: no archive.
    #[arg(long, default_value_t = 0)]
    pub archive_s: u64,

    /// The archive: a folder, `file:///PATH`, or `s3://BUCKET/PREFIX` (a build with the
    /// `s3` feature). Empty: DATA_DIR/archive.
    #[arg(long, default_value = "")]
    pub cold_url: String,

    /// How often retention is enforced, seconds.
    #[arg(long, default_value_t = 60, hide = true)]
    pub retention_check_s: u64,

    /// One stream's retention, `NAME=DVR_S:ARCHIVE_S` (repeatable), overriding
    /// --dvr-window-s and --archive-s.
    #[arg(long = "stream-retention", value_name = "NAME=DVR_S:ARCHIVE_S")]
    pub stream_retentions: Vec<String>,

    /// Nodes each node feeds a live stream to: beyond this many followers, the others
    /// follow a follower (a relay tree), so the origin's upload stays flat. 0: every node
    /// follows the origin.
    #[arg(long, default_value_t = 3)]
    pub relay_fanout: usize,

    /// The region this node serves (a release limited to regions opens only on their
    /// nodes), e.g. `eu-west`.
    #[arg(long)]
    pub region: Option<String>,

    /// The cluster's key-encryption key, a file of 64 hex digits (the same on every node;
    /// `TESSERA_KEK` may carry it instead). Without one, this node neither makes nor hands
    /// out content keys.
    #[arg(long, value_name = "PATH")]
    pub kek_file: Option<PathBuf>,

    /// A proxy (CDN edge, load balancer) whose word on the viewer's address is taken:
    /// `X-Forwarded-For`, `Forwarded` and PROXY protocol headers are honoured from these
    /// ranges only (repeatable; `10.0.0.0/8`, `2001:db8::/32`, or one address).
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxies: Vec<String>,

    /// A MaxMind-format database (GeoIP2/GeoLite2 Country or City) giving viewers their
    /// country for content limited to regions; read again when the file changes. The
    /// catalog's address table (`PUT /api/v1/regions`) overrides it.
    #[arg(long, value_name = "FILE")]
    pub geoip_db: Option<PathBuf>,

    /// The JSON Web Key Set of the platform's token signer, a file or an http(s) URL:
    /// playback tokens may then be JWTs (HS256, RS256, ES256) signed by any of its keys, by
    /// `kid`. A file is read again when it changes; a URL is fetched every five minutes, and
    /// sooner (at most every 30 s) when a token names a key the set does not hold.
    #[arg(long, value_name = "FILE|URL")]
    pub jwks: Option<String>,

    /// A CDN's purge endpoint (repeatable): when a content's rights change or its release
    /// ends, the node leading the catalog `POST`s `{"content", "reason", "prefix"}` to each.
    #[arg(long = "purge-hook", value_name = "URL")]
    pub purge_hooks: Vec<String>,

    /// The Prometheus server that scrapes the cluster and evaluates its alert rules: the
    /// console's alerts page shows what fires there (its `/api/v1/alerts`).
    #[arg(long, value_name = "URL")]
    pub prometheus_url: Option<String>,

    /// An encrypted live stream's content key is replaced this often, seconds (0: never).
    #[arg(long, default_value_t = 600)]
    pub key_rotation_s: u64,

    /// Shifts this node's clock for release decisions, milliseconds (tests of skewed clocks).
    #[arg(long, default_value_t = 0, hide = true, allow_negative_numbers = true)]
    pub clock_skew_ms: i64,

    /// How long before a scheduled release this node starts holding its content (following
    /// a live event's rehearsal), seconds; a release scheduled sooner is pre-positioned at once.
    #[arg(long, default_value_t = 120)]
    pub release_prewarm_s: u64,

    /// A publisher that sends nothing for this long is disconnected, milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub ingest_idle_timeout_ms: u64,

    /// After a publisher leaves, how long its stream waits for it to come back before the
    /// playlist ends (EXT-X-ENDLIST), milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub reconnect_grace_ms: u64,

    /// How long an ended stream stays readable before it is forgotten, milliseconds.
    #[arg(long, default_value_t = 60_000)]
    pub ended_retention_ms: u64,

    /// Maximum concurrent HTTP connections.
    #[arg(long, default_value_t = 20_000)]
    pub max_http_connections: usize,

    /// Label the series about one stream (ingest bitrate, input errors, timestamp breaks,
    /// dropped rungs) with its name. Off by default: each stream adds series to every
    /// scrape.
    #[arg(long)]
    pub metrics_per_stream: bool,

    /// `/readyz` calls the node unready when a linearizable catalog read takes longer than
    /// this, milliseconds (it is cut off from the quorum, or far behind).
    #[arg(long, default_value_t = 2_000)]
    pub ready_catalog_ms: u64,

    /// Largest VOD upload this node takes, bytes.
    #[arg(long, default_value_t = 64 << 30)]
    pub upload_max_bytes: u64,

    /// VOD transcode jobs this node runs at once (0: none). Each job is one rendition; a
    /// transcoding job keeps about two cores busy.
    #[arg(long, default_value_t = 1)]
    pub vod_workers: usize,

    /// The renditions an uploaded film gets, in the syntax of --ladder. The default gives a
    /// 1080p film four H.264 rungs; add `source` to also keep the film as uploaded (not
    /// re-encoded) as a rendition.
    #[arg(long, default_value = "1080p:5000,720p:2800,480p:1400,360p:800")]
    pub vod_ladder: LadderSpec,

    /// Bytes of VOD files read from a remote archive (S3) kept on this node's disk, the
    /// least popular evicted first. Not used when the archive is a folder on this machine.
    #[arg(long, default_value_t = 4 << 30)]
    pub vod_cache_bytes: u64,

    /// libx264 preset of VOD rungs. VOD is not real time: a slower preset gives better
    /// pictures for the bits, at the cost of transcode time.
    #[arg(long, default_value = "veryfast")]
    pub vod_encoder_preset: String,

    /// Publish tokens, `NAME=TOKEN` (repeatable; `*=TOKEN` for every other stream). SRT callers
    /// give it as `t=` (or `s=`) in the streamid, RTMP publishers as `NAME?token=TOKEN`.
    /// Without any, publishing is open.
    #[arg(long = "publish-token", value_name = "NAME=TOKEN")]
    pub publish_tokens: Vec<String>,

    /// A publisher sending more than this (kbit/s, averaged over 2 s) is cut.
    #[arg(long, default_value_t = 60_000)]
    pub max_ingest_kbps: u64,

    /// A publisher sending a frame larger than this (bytes) is cut.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub max_frame_bytes: usize,

    /// What a second publisher of a stream being published gets: refused, or the stream
    /// (the first publisher is disconnected).
    #[arg(long, value_enum, default_value_t = DuplicatePublisher::Refuse)]
    pub on_duplicate_publisher: DuplicatePublisher,

    /// SRT passphrases, `NAME=PASSPHRASE` (10 to 79 characters, repeatable): that stream's
    /// publishers must encrypt with it (AES-128/192/256, as the caller chooses).
    #[arg(long = "srt-passphrase", value_name = "NAME=PASSPHRASE")]
    pub srt_passphrases: Vec<String>,

    /// Maximum concurrent publishers.
    #[arg(long, default_value_t = 500)]
    pub max_publishers: usize,

    /// The ABR ladder of every stream, comma-separated: `source` (the feed as it came) and
    /// H.264 rungs `HEIGHTp:KBPS[:max=KBPS][:profile=baseline|main|high]`. Rungs at or above
    /// the source's size are left out. `source` alone turns transcoding off.
    #[arg(long, default_value_t = LadderSpec::default())]
    pub ladder: LadderSpec,

    /// The ladder of one stream, `NAME=LADDER` (repeatable), overriding --ladder.
    #[arg(long = "stream-ladder", value_name = "NAME=LADDER")]
    pub stream_ladders: Vec<String>,

    /// libx264 preset of the transcoded rungs (ultrafast ... veryslow).
    #[arg(long, default_value = "veryfast")]
    pub encoder_preset: String,

    /// libx264 tune of the transcoded rungs; `zerolatency` keeps the encoder from holding
    /// frames back (no B-frames, no lookahead). Empty for none.
    #[arg(long, default_value = "zerolatency")]
    pub encoder_tune: String,

    /// Threads per rung encoder (0: libx264 decides).
    #[arg(long, default_value_t = 0)]
    pub encoder_threads: u32,

    /// A codec worker further behind real time than this skips to the next segment, so
    /// latency stays bounded (milliseconds).
    #[arg(long, default_value_t = 1500)]
    pub transcode_max_delay_ms: u64,

    /// Cores this node gives to making live ladders, its own streams' and other nodes'
    /// (default: its core count; 0: it makes none, and its streams' ladders are made
    /// elsewhere). A ladder's cost is estimated from its rungs (a 1080p30 default ladder
    /// about 0.76).
    #[arg(long)]
    pub transcode_capacity: Option<f64>,

    /// Program started as the codec worker, with the argument `codec-worker` (default:
    /// this `tessera` binary).
    #[arg(long)]
    pub codec_worker: Option<PathBuf>,

    /// PEM certificate chain; with --tls-key, serves HTTPS (HTTP/2 and HTTP/1.1 by ALPN).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        let cmd = clap::Command::new("defaults");
        let matches = NodeConfig::augment_args(cmd).get_matches_from(["defaults"]);
        NodeConfig::from_arg_matches(&matches).expect("defaults parse")
    }
}

impl NodeConfig {
    /// Cores given to live ladders.
    pub fn transcode_cores(&self) -> f64 {
        self.transcode_capacity.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()) as f64)
    }

    pub fn segment_target(&self) -> Duration {
        Duration::from_millis(self.segment_target_ms)
    }
    pub fn part_target(&self) -> Duration {
        Duration::from_millis(self.part_target_ms)
    }

    /// Checks values that clap and serde cannot.
    pub fn validate(&self) -> Result<(), NodeError> {
        if !(100..=1000).contains(&self.part_target_ms) {
            return Err(NodeError::Config(format!("part_target_ms {} is outside 100..=1000", self.part_target_ms)));
        }
        if self.segment_target_ms < self.part_target_ms * 2 || self.segment_target_ms > 30_000 {
            return Err(NodeError::Config(format!(
                "segment_target_ms {} must be between two parts and 30 s",
                self.segment_target_ms
            )));
        }
        if self.window_segments < 3 {
            return Err(NodeError::Config("window_segments must be at least 3".into()));
        }
        crate::auth::StaticTokens::from_entries(&self.publish_tokens).map_err(NodeError::Config)?;
        self.srt_passphrase_map()?;
        self.stream_ladder_map()?;
        self.tiers()?;
        if let Some(t) = &self.token {
            tessera_cluster::identity::JoinToken::parse(t).map_err(|e| NodeError::Config(e.to_string()))?;
        }
        if self.transcode_capacity.is_some_and(|c| !(0.0..=4096.0).contains(&c)) {
            return Err(NodeError::Config("transcode_capacity: 0 to 4096 cores".into()));
        }
        if self.transcode_max_delay_ms < 200 {
            return Err(NodeError::Config("transcode_max_delay_ms must be at least 200".into()));
        }
        if self.region.as_deref().is_some_and(|r| {
            !(1..=64).contains(&r.len()) || !r.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        }) {
            return Err(NodeError::Config("region: 1 to 64 of a-z, A-Z, 0-9, '-', '_', '.'".into()));
        }
        self.kek()?;
        self.trusted_proxies()?;
        if let Some(h) = self
            .purge_hooks
            .iter()
            .find(|h| !(h.starts_with("http://") || h.starts_with("https://")) || h.parse::<hyper::Uri>().is_err())
        {
            return Err(NodeError::Config(format!("purge_hook {h:?}: an http:// or https:// URL")));
        }
        if let Some(u) = self
            .prometheus_url
            .as_ref()
            .filter(|u| !(u.starts_with("http://") || u.starts_with("https://")) || u.parse::<hyper::Uri>().is_err())
        {
            return Err(NodeError::Config(format!("prometheus_url {u:?}: an http:// or https:// URL")));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(NodeError::Config("tls_cert and tls_key go together".into()));
        }
        Ok(())
    }

    /// The SRT passphrases by stream name.
    pub fn srt_passphrase_map(&self) -> Result<std::collections::HashMap<String, String>, NodeError> {
        by_stream(&self.srt_passphrases, "SRT passphrase", "NAME=PASSPHRASE", |name, pass| {
            if !(10..=79).contains(&pass.len()) {
                return Err(format!("SRT passphrase for {name:?} must have 10 to 79 characters"));
            }
            Ok(pass.to_string())
        })
    }

    /// The per-stream ladders by stream name.
    pub fn stream_ladder_map(&self) -> Result<std::collections::HashMap<String, LadderSpec>, NodeError> {
        by_stream(&self.stream_ladders, "stream ladder", "NAME=LADDER", |name, ladder| {
            ladder.parse().map_err(|err| format!("ladder of {name:?}: {err}"))
        })
    }

    /// The key-encryption key from `--kek-file` or `TESSERA_KEK`, if either is given.
    pub fn kek(&self) -> Result<Option<tessera_license::keys::Kek>, NodeError> {
        let text = match &self.kek_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| NodeError::Config(format!("kek_file {}: {e}", path.display())))?,
            None => match std::env::var("TESSERA_KEK") {
                Ok(t) => t,
                Err(_) => return Ok(None),
            },
        };
        tessera_license::keys::Kek::parse(&text).map(Some).map_err(|e| NodeError::Config(e.to_string()))
    }

    /// The ranges of `--trusted-proxy`.
    pub fn trusted_proxies(&self) -> Result<tessera_license::viewer::TrustedProxies, NodeError> {
        let ranges = self
            .trusted_proxies
            .iter()
            .map(|r| r.parse().map_err(|why| NodeError::Config(format!("trusted_proxy {r:?}: {why}"))))
            .collect::<Result<_, _>>()?;
        Ok(tessera_license::viewer::TrustedProxies::new(ranges))
    }

    /// How this node's catalog member starts, with the HTTP address others reach it at.
    pub fn member(&self, http: SocketAddr) -> tessera_cluster::MemberConfig {
        tessera_cluster::MemberConfig {
            data_dir: self.data_dir.clone(),
            addrs: tessera_cluster::ClusterAddrs {
                bind: self.cluster,
                advertise: self.cluster_advertise.clone(),
                http: http.to_string(),
                host: Default::default(),
            },
            join: self.join.clone(),
            token: self.token.clone(),
            learner: self.learner,
            init_from: self.init_from.clone(),
            join_wait: std::time::Duration::from_secs(self.join_wait_secs),
            heartbeat_ms: self.raft_heartbeat_ms,
            election_ms: self.raft_election_ms,
            snapshot_every: self.catalog_snapshot_every,
        }
    }

    /// The storage tiers' settings.
    pub fn tiers(&self) -> Result<tessera_storage::TierConfig, NodeError> {
        use std::time::Duration;
        let stream_retention =
            by_stream(&self.stream_retentions, "stream retention", "NAME=DVR_S:ARCHIVE_S", |_, v| {
                let (dvr, archive) = v.split_once(':').ok_or("retention is DVR_S:ARCHIVE_S")?;
                let secs = |x: &str| x.parse::<u64>().map(Duration::from_secs).map_err(|e| format!("{x:?}: {e}"));
                Ok(tessera_storage::Retention { dvr: secs(dvr)?, archive: secs(archive)? })
            })?;
        let cold = if self.cold_url.is_empty() {
            self.data_dir.join("archive").display().to_string()
        } else {
            self.cold_url.clone()
        };
        Ok(tessera_storage::TierConfig {
            warm_dir: self.data_dir.join("warm"),
            warm_bytes: self.warm_bytes,
            half_life: Duration::from_secs(600),
            cold_url: Some(cold),
            retention: tessera_storage::Retention {
                dvr: Duration::from_secs(self.dvr_window_s),
                archive: Duration::from_secs(self.archive_s),
            },
            stream_retention,
            enforce_every: Duration::from_secs(self.retention_check_s.max(1)),
        })
    }

    /// Reads a TOML file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, NodeError> {
        let text = std::fs::read_to_string(path).map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))
    }

    /// The file's values (or the defaults), overridden by the flags given on the command line.
    pub fn merge(file: Option<NodeConfig>, matches: &ArgMatches) -> Result<Self, NodeError> {
        let cli = NodeConfig::from_arg_matches(matches).map_err(|e| NodeError::Config(e.to_string()))?;
        let Some(file) = file else { return Ok(cli) };
        let mut base = serde_json::to_value(&file).map_err(|e| NodeError::Config(e.to_string()))?;
        let over = serde_json::to_value(&cli).map_err(|e| NodeError::Config(e.to_string()))?;
        for arg in NodeConfig::augment_args(clap::Command::new("x")).get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(matches.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable)) {
                base[id] = over[id].clone();
            }
        }
        serde_json::from_value(base).map_err(|e| NodeError::Config(e.to_string()))
    }
}

/// Reads `NAME=VALUE` entries into a map by stream name, checking each value with `parse`.
fn by_stream<T>(
    entries: &[String],
    what: &str,
    form: &str,
    parse: impl Fn(&str, &str) -> Result<T, String>,
) -> Result<std::collections::HashMap<String, T>, NodeError> {
    let mut m = std::collections::HashMap::new();
    for e in entries {
        let (name, value) =
            e.split_once('=').ok_or_else(|| NodeError::Config(format!("{what} {e:?} is not {form}")))?;
        m.insert(name.to_string(), parse(name, value).map_err(NodeError::Config)?);
    }
    Ok(m)
}

/// For `--help` output of binaries embedding the config.
pub fn command() -> clap::Command {
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        node: NodeConfig,
    }
    Wrapper::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(args: &[&str]) -> ArgMatches {
        NodeConfig::augment_args(clap::Command::new("t")).get_matches_from(args)
    }

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let file: NodeConfig = toml::from_str("part_target_ms = 300\nwindow_segments = 6\n").unwrap();
        let cfg = NodeConfig::merge(Some(file), &matches(&["t", "--window-segments", "8"])).unwrap();
        assert_eq!(cfg.part_target_ms, 300, "from the file");
        assert_eq!(cfg.window_segments, 8, "flag wins");
        assert_eq!(cfg.segment_target_ms, 2000, "default");
        cfg.validate().unwrap();
    }

    #[test]
    fn the_example_file_parses_and_unknown_keys_are_refused() {
        let example = include_str!("../../deploy/tessera.example.toml");
        let cfg: NodeConfig = toml::from_str(example).unwrap();
        cfg.validate().unwrap();
        assert!(toml::from_str::<NodeConfig>("parts_target_ms = 3").is_err());
    }

    #[test]
    fn validation() {
        let c = NodeConfig { part_target_ms: 50, ..NodeConfig::default() };
        assert!(c.validate().is_err());
        let c = NodeConfig { segment_target_ms: 300, ..NodeConfig::default() };
        assert!(c.validate().is_err());
        let c = NodeConfig { stream_ladders: vec!["cam=720p".into()], ..NodeConfig::default() };
        assert!(c.validate().is_err(), "a rung without a bitrate");
    }

    #[test]
    fn ladders_from_flags_and_file() {
        let cfg = NodeConfig::merge(None, &matches(&["t", "--stream-ladder", "lobby=source,360p:500"])).unwrap();
        assert_eq!(cfg.ladder, LadderSpec::default());
        assert_eq!(cfg.stream_ladder_map().unwrap()["lobby"].to_string(), "source,360p:500");
        let file: NodeConfig = toml::from_str("ladder = \"source,540p:1800\"\n").unwrap();
        let cfg = NodeConfig::merge(Some(file), &matches(&["t"])).unwrap();
        assert_eq!(cfg.ladder.to_string(), "source,540p:1800");
        assert!(toml::from_str::<NodeConfig>("ladder = \"source,540p\"").is_err());
    }
}
