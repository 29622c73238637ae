//! The catalog's state and the commands that change it: a deterministic state machine.
//!
//! Every command is validated before anything changes, so a command that would break an
//! invariant is rejected the same way on every node and never half-applied. Commands carry
//! the time they were proposed (`at_ms`, stamped by the proposer), never read a clock, so
//! every replica computes the same state from the same log.

mod assets;
mod content;
mod export;
mod jobs;
mod placement;
mod protection;
mod release;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use assets::{AssetRecord, AssetState, SourceRecord, TITLE_MAX};
pub use content::{ContentSettings, StreamSettings};
pub use export::{CatalogExport, ImportRejection, EXPORT_FORMAT};
pub use jobs::{job_key, JobLease, JobRecord, JobState, RecordedRendition, MAX_ATTEMPTS, RECORDING_SPEC};
pub use placement::{LadderPlacement, PlacementRejection, PlacementRule};
pub use protection::{DrmRecord, KeyRecord, Protection, ProtectionRecord, KEYS_KEPT};
pub use release::{valid_content, Gate, Readiness, ReleaseId, ReleasePhase, ReleaseRecord, ReleaseState, Visibility};

/// Identifies a node of the cluster.
pub type NodeId = u64;

/// A live stream as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamRecord {
    pub name: String,
    /// The stream's ladder (`source,720p:2500,...`); absent, the node's default.
    pub ladder: Option<String>,
    /// SHA-256 of the publish token, hex; absent, publishing is open.
    pub token_sha256: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Which node is origin for the stream, under which epoch.
    pub origin: Option<OriginLease>,
    /// The highest epoch ever granted, so a released lease never comes back under an old one.
    pub last_epoch: u64,
    /// What the archive (the cold storage tier) holds of the stream.
    #[serde(default)]
    pub archive: Option<ArchiveExtent>,
    /// Each publish of the stream is recorded, from its first segment until the stream
    /// ends, into a VOD asset.
    #[serde(default)]
    pub record: bool,
    /// Which node makes the stream's ladder now, under which epoch.
    #[serde(default)]
    pub placement: Option<LadderPlacement>,
    /// The highest placement epoch ever granted.
    #[serde(default)]
    pub last_placement_epoch: u64,
    /// Which nodes may make the ladder.
    #[serde(default)]
    pub placement_rule: PlacementRule,
}

/// What the archive holds of a stream, as the node that archives it last counted: the
/// oldest and newest segment numbers, and how many files and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArchiveExtent {
    pub first_msn: u64,
    pub last_msn: u64,
    pub files: u64,
    pub bytes: u64,
}

/// A node's right to publish a stream's media. Epochs only grow: a node holding an older
/// one is fenced off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OriginLease {
    pub node: NodeId,
    pub epoch: u64,
    pub since_ms: i64,
    /// The node whose lease this one replaced without its release (a takeover): the new
    /// holder waits out that node's grace before publishing.
    #[serde(default)]
    pub replaced: Option<NodeId>,
}

/// A node's addresses, as it announced them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeRecord {
    pub id: NodeId,
    /// Node-to-node address (QUIC).
    pub cluster_addr: String,
    /// HTTP origin and admin API.
    pub http_addr: String,
    pub joined_ms: i64,
    /// The region the node serves (for regional releases), if it says.
    #[serde(default)]
    pub region: Option<String>,
}

/// Which kind of secret a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenKind {
    /// Admits a node into the cluster.
    Join,
    /// Authorises calls to the admin API.
    Admin,
}

/// The cluster's certificate authority (nodes sign joiners' certificates with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaRecord {
    pub cert_pem: String,
    pub key_pem: String,
}

/// SHA-256 (hex) of the accepted secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    pub join_sha256: std::collections::BTreeSet<String>,
    pub admin_sha256: std::collections::BTreeSet<String>,
}

impl AccessRecord {
    fn set(&mut self, kind: TokenKind) -> &mut std::collections::BTreeSet<String> {
        match kind {
            TokenKind::Join => &mut self.join_sha256,
            TokenKind::Admin => &mut self.admin_sha256,
        }
    }
}

/// A change to the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Sets up a new cluster: its CA, its first node, its first tokens. Once only.
    InitCluster {
        ca: CaRecord,
        first: NodeRecord,
        join_sha256: String,
        admin_sha256: String,
    },
    AddToken {
        kind: TokenKind,
        sha256: String,
    },
    RevokeToken {
        kind: TokenKind,
        sha256: String,
    },
    /// Gives a joining node the next free id.
    AdmitNode {
        cluster_addr: String,
        http_addr: String,
    },
    /// Creates a stream, or (with `create_only` false) updates its ladder and token.
    PutStream {
        name: String,
        ladder: Option<String>,
        token_sha256: Option<String>,
        create_only: bool,
    },
    DeleteStream {
        name: String,
    },
    /// `node` becomes origin for `stream` under a new epoch (taking it from any holder).
    AcquireOrigin {
        stream: String,
        node: NodeId,
    },
    /// `node` gives up the origin lease it holds under `epoch`.
    ReleaseOrigin {
        stream: String,
        node: NodeId,
        epoch: u64,
    },
    PutNode {
        node: NodeRecord,
    },
    RemoveNode {
        id: NodeId,
    },
    /// Records what the archive holds of a stream (`None`: nothing any more).
    SetArchive {
        stream: String,
        archive: Option<ArchiveExtent>,
    },
    /// Announces that `content` opens at `at_ms` (and is taken down at `end_ms`), in
    /// `regions` (empty: everywhere). It is gated from the moment this applies.
    ScheduleRelease {
        content: String,
        at_ms: i64,
        end_ms: Option<i64>,
        regions: Vec<String>,
    },
    /// Moves a release: its time (while scheduled), its end, its regions. `None` keeps one.
    MoveRelease {
        id: ReleaseId,
        at_ms: Option<i64>,
        end_ms: Option<Option<i64>>,
        regions: Option<Vec<String>>,
    },
    /// Cancels a release that has not opened; the content stays gated.
    CancelRelease {
        id: ReleaseId,
    },
    /// `node`'s clock read `clock_ms`, past the release's time (or end) under `revision`.
    /// A majority of such votes opens (or ends) it; see [`release`](self::release).
    ReleaseClock {
        id: ReleaseId,
        node: NodeId,
        revision: u64,
        phase: ReleasePhase,
        clock_ms: i64,
    },
    /// Whether `node` holds the release's content, ready to serve it.
    ReleaseReady {
        id: ReleaseId,
        node: NodeId,
        ready: bool,
        detail: String,
    },
    /// How `content` is encrypted from now on.
    SetProtection {
        content: String,
        mode: Protection,
    },
    /// A new content key (wrapped) for `content`, from its `from_msn` on.
    AddKey {
        content: String,
        key: KeyRecord,
    },
    /// Everything a `PUT` of a stream or asset says, applied whole or not at all.
    ConfigureContent {
        content: String,
        settings: ContentSettings,
    },
    /// The viewer regions `content`'s rights allow (empty: everywhere).
    SetRights {
        content: String,
        regions: Vec<String>,
    },
    /// Whether `content`'s playlists need a playback token and its media a signature.
    SetSignedUrls {
        content: String,
        required: bool,
    },
    /// The cluster's playback-token secret, wrapped; the first one proposed stays.
    SetTokenSecret {
        wrapped: String,
    },
    /// The address-to-region table, `ADDRESS/PREFIX=REGION` lines.
    SetRegionTable {
        lines: Vec<String>,
    },
    /// Refuses (or again allows) every key request of a viewer.
    RevokeSubject {
        subject: String,
        revoked: bool,
    },
    /// Registers a VOD asset whose source is stored (its state and time are the catalog's).
    AddAsset {
        asset: AssetRecord,
    },
    DeleteAsset {
        id: String,
    },
    /// Whether the stream's publishes are recorded as VOD assets.
    SetRecording {
        stream: String,
        record: bool,
    },
    /// A recording (an asset of container `live`) is complete: its renditions, each with
    /// its segments and which init segment (`epochs`, as a job's) each uses, made by the
    /// recording node.
    FinishRecording {
        asset: String,
        duration_ms: u64,
        renditions: Vec<RecordedRendition>,
    },
    /// The transcode jobs of an asset (rendition, what to make), each over its segments.
    AddJobs {
        asset: String,
        jobs: Vec<(String, String)>,
        segments_total: u32,
    },
    /// A worker on `node` takes a job for `lease_ms`.
    ClaimJob {
        asset: String,
        rendition: String,
        node: NodeId,
        lease_ms: i64,
    },
    /// A worker still holds its job, with its checkpoint.
    RenewJob {
        asset: String,
        rendition: String,
        node: NodeId,
        epoch: u64,
        lease_ms: i64,
        segments_done: u32,
    },
    FinishJob {
        asset: String,
        rendition: String,
        node: NodeId,
        epoch: u64,
    },
    FailJob {
        asset: String,
        rendition: String,
        node: NodeId,
        epoch: u64,
        error: String,
    },
    /// A dead job, tried again from the start of its attempts.
    RetryJob {
        asset: String,
        rendition: String,
    },
    /// The stream's origin (holding `origin_epoch`) has its ladder made on `node`, under a
    /// new placement epoch.
    PlaceLadder {
        stream: String,
        origin_epoch: u64,
        node: NodeId,
    },
    /// The ladder placed under `epoch` is no longer made (the session ended).
    ClearPlacement {
        stream: String,
        epoch: u64,
    },
    /// Which nodes may make the stream's ladder.
    SetPlacementRule {
        stream: String,
        rule: PlacementRule,
    },
    /// A draining node takes no new publishers, ladders or VOD jobs.
    SetDraining {
        node: NodeId,
        draining: bool,
    },
    /// The stream's origin moves its ladder to `node` without a gap: a new placement that
    /// takes over from the current one (`from_epoch`), which stays valid until the handover
    /// ends, so the old worker may finish the segments before the boundary where the new
    /// one starts.
    HandOverLadder {
        stream: String,
        origin_epoch: u64,
        node: NodeId,
        from_epoch: u64,
    },
    /// The worker of placement `epoch`, which handed over, is done: that epoch is fenced.
    EndHandover {
        stream: String,
        epoch: u64,
    },
    /// Brings an export of another cluster's catalog into this one, which holds no content
    /// yet ([`export`]).
    ImportCatalog {
        export: Box<CatalogExport>,
    },
}

/// A command and when it was proposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub at_ms: i64,
    pub command: Command,
}

/// Why a command was rejected, by the concern it touches. The same on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error(transparent)]
    Stream(#[from] StreamRejection),
    #[error(transparent)]
    Node(#[from] NodeRejection),
    #[error(transparent)]
    Release(#[from] ReleaseRejection),
    #[error(transparent)]
    Protection(#[from] ProtectionRejection),
    #[error(transparent)]
    Asset(#[from] AssetRejection),
    #[error(transparent)]
    Job(#[from] JobRejection),
    #[error(transparent)]
    Placement(#[from] PlacementRejection),
    #[error(transparent)]
    Import(#[from] ImportRejection),
}

/// A stream and its origin lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum StreamRejection {
    #[error("no such stream {0:?}")]
    NoSuchStream(String),
    #[error("stream {0:?} already exists")]
    StreamExists(String),
    #[error("invalid stream name {0:?}: 1 to 64 of a-z, A-Z, 0-9, '-', '_', '.'")]
    InvalidName(String),
    #[error("invalid token hash: 64 hex digits expected")]
    InvalidTokenHash,
    #[error("invalid ladder {0:?}")]
    InvalidLadder(String),
    #[error("stream {stream:?}: node {node} does not hold epoch {epoch}")]
    StaleEpoch { stream: String, node: NodeId, epoch: u64 },
    #[error("stream {0:?} has a live origin; release it first")]
    StreamLive(String),
}

/// The cluster and its nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum NodeRejection {
    #[error("no such node {0}")]
    NoSuchNode(NodeId),
    #[error("the cluster is already initialized")]
    AlreadyInitialized,
    #[error("the cluster is not initialized")]
    NotInitialized,
}

/// A scheduled release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ReleaseRejection {
    #[error("invalid content {0:?}: live/NAME or vod/ASSET")]
    InvalidContent(String),
    #[error("invalid release: {0}")]
    InvalidRelease(String),
    #[error("no such release {0}")]
    NoSuchRelease(ReleaseId),
    #[error("{content} already has release {id} pending; move or cancel it")]
    ReleasePending { content: String, id: ReleaseId },
    #[error("release {0} is open: only its end and regions can change, and it cannot be cancelled (take it down)")]
    ReleaseOpen(ReleaseId),
    #[error("release {0} is over")]
    ReleaseOver(ReleaseId),
    #[error("release {id} has moved (now revision {revision})")]
    StaleRelease { id: ReleaseId, revision: u64 },
}

/// Content protection: encryption, rights, keys, tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ProtectionRejection {
    #[error("invalid content {0:?}: live/NAME or vod/ASSET")]
    InvalidContent(String),
    #[error("invalid protection: {0}")]
    InvalidProtection(String),
}

/// A VOD asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AssetRejection {
    #[error("invalid asset id {0:?}: 1 to 64 of a-z, A-Z, 0-9, '-', '_', '.'")]
    InvalidId(String),
    #[error("invalid asset: {0}")]
    InvalidAsset(String),
    #[error("asset {0:?} already exists")]
    AssetExists(String),
    #[error("no such asset {0:?}")]
    NoSuchAsset(String),
}

/// A VOD job and its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum JobRejection {
    #[error("no such job {0:?}")]
    NoSuchJob(String),
    #[error("job {job:?} is {state:?}: not to be claimed now")]
    JobNotClaimable { job: String, state: JobState },
    #[error("job {job:?}: node {node} does not hold epoch {epoch} (fenced off)")]
    StaleJobLease { job: String, node: NodeId, epoch: u64 },
}

/// What an applied command answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Done,
    Stream(StreamRecord),
    Origin(OriginLease),
    Admitted(NodeRecord),
    Release(ReleaseRecord),
    JobLease(JobLease),
    Placement(LadderPlacement),
    Rejected(Rejection),
}

/// The whole catalog. Serialised as is for snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub streams: BTreeMap<String, StreamRecord>,
    pub nodes: BTreeMap<NodeId, NodeRecord>,
    pub ca: Option<CaRecord>,
    pub access: AccessRecord,
    #[serde(default)]
    pub releases: BTreeMap<ReleaseId, ReleaseRecord>,
    /// The newest release of each content.
    #[serde(default)]
    pub release_by_content: BTreeMap<String, ReleaseId>,
    /// How each content is encrypted, its keys and rights.
    #[serde(default)]
    pub protection: BTreeMap<String, ProtectionRecord>,
    /// The playback-token secret, wrapped under the key-encryption key.
    #[serde(default)]
    pub token_secret: Option<String>,
    /// `ADDRESS/PREFIX=REGION` lines: where viewers are.
    #[serde(default)]
    pub region_table: Vec<String>,
    /// Grows with every change of the table (readers re-parse it only then).
    #[serde(default)]
    pub region_table_version: u64,
    /// Viewers whose key requests are refused.
    #[serde(default)]
    pub revoked_subjects: std::collections::BTreeSet<String>,
    /// VOD assets by id.
    #[serde(default)]
    pub assets: BTreeMap<String, AssetRecord>,
    /// Transcode jobs by `ASSET/RENDITION` ([`job_key`]).
    #[serde(default)]
    pub jobs: BTreeMap<String, JobRecord>,
    /// Nodes that take no new work.
    #[serde(default)]
    pub draining: std::collections::BTreeSet<NodeId>,
}

impl StreamRecord {
    /// A stream just made: no ladder or token of its own, no origin.
    pub fn new(name: &str, now: i64) -> Self {
        StreamRecord {
            name: name.to_string(),
            ladder: None,
            token_sha256: None,
            created_ms: now,
            updated_ms: now,
            origin: None,
            last_epoch: 0,
            archive: None,
            record: false,
            placement: None,
            last_placement_epoch: 0,
            placement_rule: PlacementRule::default(),
        }
    }
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn valid_hash(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A ladder is checked by the node that proposes it; here only its shape, so that the
/// state machine does not depend on the transcoder's vocabulary.
fn valid_ladder(l: &str) -> bool {
    !l.is_empty() && l.len() <= 512 && l.bytes().all(|b| b.is_ascii_graphic())
}

impl Catalog {
    /// Applies one proposal. A rejected command changes nothing.
    pub fn apply(&mut self, p: &Proposal) -> Outcome {
        match self.try_apply(p) {
            Ok(o) => o,
            Err(r) => Outcome::Rejected(r),
        }
    }

    fn try_apply(&mut self, p: &Proposal) -> Result<Outcome, Rejection> {
        let now = p.at_ms;
        match &p.command {
            Command::InitCluster { ca, first, join_sha256, admin_sha256 } => {
                if self.ca.is_some() {
                    return Err(Rejection::Node(NodeRejection::AlreadyInitialized));
                }
                if !valid_hash(join_sha256) || !valid_hash(admin_sha256) {
                    return Err(Rejection::Stream(StreamRejection::InvalidTokenHash));
                }
                self.ca = Some(ca.clone());
                self.nodes.insert(first.id, NodeRecord { joined_ms: now, ..first.clone() });
                self.access.join_sha256.insert(join_sha256.to_ascii_lowercase());
                self.access.admin_sha256.insert(admin_sha256.to_ascii_lowercase());
                Ok(Outcome::Done)
            }
            Command::AddToken { kind, sha256 } => {
                if !valid_hash(sha256) {
                    return Err(Rejection::Stream(StreamRejection::InvalidTokenHash));
                }
                self.access.set(*kind).insert(sha256.to_ascii_lowercase());
                Ok(Outcome::Done)
            }
            Command::RevokeToken { kind, sha256 } => {
                self.access.set(*kind).remove(&sha256.to_ascii_lowercase());
                Ok(Outcome::Done)
            }
            Command::AdmitNode { cluster_addr, http_addr } => {
                if self.ca.is_none() {
                    return Err(Rejection::Node(NodeRejection::NotInitialized));
                }
                let id = self.nodes.keys().next_back().map_or(1, |m| m + 1);
                let node = NodeRecord {
                    id,
                    cluster_addr: cluster_addr.clone(),
                    http_addr: http_addr.clone(),
                    joined_ms: now,
                    region: None,
                };
                self.nodes.insert(id, node.clone());
                Ok(Outcome::Admitted(node))
            }
            Command::PutStream { name, ladder, token_sha256, create_only } => {
                if !valid_name(name) {
                    return Err(Rejection::Stream(StreamRejection::InvalidName(name.clone())));
                }
                if token_sha256.as_deref().is_some_and(|h| !valid_hash(h)) {
                    return Err(Rejection::Stream(StreamRejection::InvalidTokenHash));
                }
                if let Some(l) = ladder.as_deref().filter(|l| !valid_ladder(l)) {
                    return Err(Rejection::Stream(StreamRejection::InvalidLadder(l.to_string())));
                }
                let token_sha256 = token_sha256.as_ref().map(|h| h.to_ascii_lowercase());
                match self.streams.get_mut(name) {
                    Some(_) if *create_only => Err(Rejection::Stream(StreamRejection::StreamExists(name.clone()))),
                    Some(s) => {
                        s.ladder = ladder.clone();
                        s.token_sha256 = token_sha256;
                        s.updated_ms = now;
                        Ok(Outcome::Stream(s.clone()))
                    }
                    None => {
                        let s = StreamRecord { ladder: ladder.clone(), token_sha256, ..StreamRecord::new(name, now) };
                        self.streams.insert(name.clone(), s.clone());
                        Ok(Outcome::Stream(s))
                    }
                }
            }
            Command::DeleteStream { name } => {
                let s = self
                    .streams
                    .get(name)
                    .ok_or_else(|| Rejection::Stream(StreamRejection::NoSuchStream(name.clone())))?;
                if s.origin.is_some() {
                    return Err(Rejection::Stream(StreamRejection::StreamLive(name.clone())));
                }
                self.streams.remove(name);
                Ok(Outcome::Done)
            }
            Command::AcquireOrigin { stream, node } => {
                if !self.nodes.contains_key(node) {
                    return Err(Rejection::Node(NodeRejection::NoSuchNode(*node)));
                }
                let s = self
                    .streams
                    .get_mut(stream)
                    .ok_or_else(|| Rejection::Stream(StreamRejection::NoSuchStream(stream.clone())))?;
                s.last_epoch += 1;
                let replaced = s.origin.map(|old| old.node).filter(|old| old != node);
                let lease = OriginLease { node: *node, epoch: s.last_epoch, since_ms: now, replaced };
                s.origin = Some(lease);
                // The old origin's ladder placement lapses with its lease.
                s.placement = None;
                s.updated_ms = now;
                Ok(Outcome::Origin(lease))
            }
            Command::ReleaseOrigin { stream, node, epoch } => {
                let s = self
                    .streams
                    .get_mut(stream)
                    .ok_or_else(|| Rejection::Stream(StreamRejection::NoSuchStream(stream.clone())))?;
                match s.origin {
                    Some(l) if l.node == *node && l.epoch == *epoch => {
                        s.origin = None;
                        s.placement = None;
                        s.updated_ms = now;
                        Ok(Outcome::Done)
                    }
                    _ => Err(Rejection::Stream(StreamRejection::StaleEpoch {
                        stream: stream.clone(),
                        node: *node,
                        epoch: *epoch,
                    })),
                }
            }
            Command::SetArchive { stream, archive } => {
                let s = self
                    .streams
                    .get_mut(stream)
                    .ok_or_else(|| Rejection::Stream(StreamRejection::NoSuchStream(stream.clone())))?;
                s.archive = *archive;
                Ok(Outcome::Done)
            }
            Command::PutNode { node } => {
                let joined_ms = self.nodes.get(&node.id).map_or(now, |n| n.joined_ms);
                self.nodes.insert(node.id, NodeRecord { joined_ms, ..node.clone() });
                Ok(Outcome::Done)
            }
            Command::ScheduleRelease { .. }
            | Command::MoveRelease { .. }
            | Command::CancelRelease { .. }
            | Command::ReleaseClock { .. }
            | Command::ReleaseReady { .. } => self.apply_release(now, &p.command),
            Command::SetProtection { .. }
            | Command::AddKey { .. }
            | Command::SetRights { .. }
            | Command::SetSignedUrls { .. }
            | Command::SetTokenSecret { .. }
            | Command::SetRegionTable { .. }
            | Command::RevokeSubject { .. } => self.apply_protection(now, &p.command),
            Command::AddAsset { .. } | Command::DeleteAsset { .. } => self.apply_asset(now, &p.command),
            Command::ConfigureContent { content, settings } => self.configure_content(now, content, settings),
            Command::SetRecording { stream, record } => {
                let s = self
                    .streams
                    .get_mut(stream)
                    .ok_or_else(|| Rejection::Stream(StreamRejection::NoSuchStream(stream.clone())))?;
                s.record = *record;
                s.updated_ms = now;
                Ok(Outcome::Stream(s.clone()))
            }
            Command::AddJobs { .. }
            | Command::FinishRecording { .. }
            | Command::ClaimJob { .. }
            | Command::RenewJob { .. }
            | Command::FinishJob { .. }
            | Command::FailJob { .. }
            | Command::RetryJob { .. } => self.apply_job(now, &p.command),
            Command::PlaceLadder { .. }
            | Command::ClearPlacement { .. }
            | Command::SetPlacementRule { .. }
            | Command::SetDraining { .. }
            | Command::HandOverLadder { .. }
            | Command::EndHandover { .. } => self.apply_placement(now, &p.command),
            Command::ImportCatalog { export } => self.import(now, export),
            Command::RemoveNode { id } => {
                self.nodes.remove(id).ok_or(Rejection::Node(NodeRejection::NoSuchNode(*id)))?;
                // Its origin leases and ladder placements lapse with it.
                for s in self.streams.values_mut() {
                    if s.origin.is_some_and(|l| l.node == *id) {
                        s.origin = None;
                        s.updated_ms = now;
                    }
                    if let Some(p) = s.placement.as_mut().filter(|p| p.from.is_some_and(|(n, _)| n == *id)) {
                        p.from = None;
                    }
                    if s.placement.is_some_and(|p| p.node == *id) {
                        s.placement = None;
                    }
                }
                self.draining.remove(id);
                Ok(Outcome::Done)
            }
        }
    }

    /// Whether `secret_sha256` is an accepted token of `kind`.
    pub fn accepts(&self, kind: TokenKind, secret_sha256: &str) -> bool {
        let set = match kind {
            TokenKind::Join => &self.access.join_sha256,
            TokenKind::Admin => &self.access.admin_sha256,
        };
        set.contains(&secret_sha256.to_ascii_lowercase())
    }

    /// Whether `node` may publish `stream`'s media under `epoch`: it holds the current lease.
    pub fn may_publish(&self, stream: &str, node: NodeId, epoch: u64) -> bool {
        self.streams.get(stream).and_then(|s| s.origin).is_some_and(|l| l.node == node && l.epoch == epoch)
    }
}

#[cfg(test)]
mod tests;
