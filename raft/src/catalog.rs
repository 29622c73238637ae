//! The catalog's state and the commands that change it: a deterministic state machine.
//!
//! Every command is validated before anything changes, so a command that would break an
//! invariant is rejected the same way on every node and never half-applied. Commands carry
//! the time they were proposed (`at_ms`, stamped by the proposer), never read a clock, so
//! every replica computes the same state from the same log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Identifies a node of the cluster.
pub type NodeId = u64;

/// A live stream as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    pub name: String,
    /// The stream's ladder (`transcode::LadderSpec` syntax); `None` uses the node default.
    pub ladder: Option<String>,
    /// SHA-256 of the publish token, hex; `None` leaves publishing open.
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
}

/// What the archive holds of a stream, as the node that archives it last counted: the
/// oldest and newest segment numbers, and how many files and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveExtent {
    pub first_msn: u64,
    pub last_msn: u64,
    pub files: u64,
    pub bytes: u64,
}

/// A node's right to publish a stream's media. Epochs only grow: a node holding an older
/// one is fenced off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginLease {
    pub node: NodeId,
    pub epoch: u64,
    pub since_ms: i64,
}

/// A node's addresses, as it announced them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: NodeId,
    /// Node-to-node address (QUIC).
    pub cluster_addr: String,
    /// HTTP origin and admin API.
    pub http_addr: String,
    pub joined_ms: i64,
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
}

/// A command and when it was proposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub at_ms: i64,
    pub command: Command,
}

/// Why a command was rejected. The same on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
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
    #[error("no such node {0}")]
    NoSuchNode(NodeId),
    #[error("stream {0:?} has a live origin; release it first")]
    StreamLive(String),
    #[error("the cluster is already initialized")]
    AlreadyInitialized,
    #[error("the cluster is not initialized")]
    NotInitialized,
}

/// What an applied command answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Done,
    Stream(StreamRecord),
    Origin(OriginLease),
    Admitted(NodeRecord),
    Rejected(Rejection),
}

/// The whole catalog. Serialised as is for snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub streams: BTreeMap<String, StreamRecord>,
    pub nodes: BTreeMap<NodeId, NodeRecord>,
    pub ca: Option<CaRecord>,
    pub access: AccessRecord,
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
                    return Err(Rejection::AlreadyInitialized);
                }
                if !valid_hash(join_sha256) || !valid_hash(admin_sha256) {
                    return Err(Rejection::InvalidTokenHash);
                }
                self.ca = Some(ca.clone());
                self.nodes.insert(first.id, NodeRecord { joined_ms: now, ..first.clone() });
                self.access.join_sha256.insert(join_sha256.to_ascii_lowercase());
                self.access.admin_sha256.insert(admin_sha256.to_ascii_lowercase());
                Ok(Outcome::Done)
            }
            Command::AddToken { kind, sha256 } => {
                if !valid_hash(sha256) {
                    return Err(Rejection::InvalidTokenHash);
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
                    return Err(Rejection::NotInitialized);
                }
                let id = self.nodes.keys().next_back().map_or(1, |m| m + 1);
                let node =
                    NodeRecord { id, cluster_addr: cluster_addr.clone(), http_addr: http_addr.clone(), joined_ms: now };
                self.nodes.insert(id, node.clone());
                Ok(Outcome::Admitted(node))
            }
            Command::PutStream { name, ladder, token_sha256, create_only } => {
                if !valid_name(name) {
                    return Err(Rejection::InvalidName(name.clone()));
                }
                if token_sha256.as_deref().is_some_and(|h| !valid_hash(h)) {
                    return Err(Rejection::InvalidTokenHash);
                }
                if let Some(l) = ladder.as_deref().filter(|l| !valid_ladder(l)) {
                    return Err(Rejection::InvalidLadder(l.to_string()));
                }
                let token_sha256 = token_sha256.as_ref().map(|h| h.to_ascii_lowercase());
                match self.streams.get_mut(name) {
                    Some(_) if *create_only => Err(Rejection::StreamExists(name.clone())),
                    Some(s) => {
                        s.ladder = ladder.clone();
                        s.token_sha256 = token_sha256;
                        s.updated_ms = now;
                        Ok(Outcome::Stream(s.clone()))
                    }
                    None => {
                        let s = StreamRecord {
                            name: name.clone(),
                            ladder: ladder.clone(),
                            token_sha256,
                            created_ms: now,
                            updated_ms: now,
                            origin: None,
                            last_epoch: 0,
                            archive: None,
                        };
                        self.streams.insert(name.clone(), s.clone());
                        Ok(Outcome::Stream(s))
                    }
                }
            }
            Command::DeleteStream { name } => {
                let s = self.streams.get(name).ok_or_else(|| Rejection::NoSuchStream(name.clone()))?;
                if s.origin.is_some() {
                    return Err(Rejection::StreamLive(name.clone()));
                }
                self.streams.remove(name);
                Ok(Outcome::Done)
            }
            Command::AcquireOrigin { stream, node } => {
                if !self.nodes.contains_key(node) {
                    return Err(Rejection::NoSuchNode(*node));
                }
                let s = self.streams.get_mut(stream).ok_or_else(|| Rejection::NoSuchStream(stream.clone()))?;
                s.last_epoch += 1;
                let lease = OriginLease { node: *node, epoch: s.last_epoch, since_ms: now };
                s.origin = Some(lease);
                s.updated_ms = now;
                Ok(Outcome::Origin(lease))
            }
            Command::ReleaseOrigin { stream, node, epoch } => {
                let s = self.streams.get_mut(stream).ok_or_else(|| Rejection::NoSuchStream(stream.clone()))?;
                match s.origin {
                    Some(l) if l.node == *node && l.epoch == *epoch => {
                        s.origin = None;
                        s.updated_ms = now;
                        Ok(Outcome::Done)
                    }
                    _ => Err(Rejection::StaleEpoch { stream: stream.clone(), node: *node, epoch: *epoch }),
                }
            }
            Command::SetArchive { stream, archive } => {
                let s = self.streams.get_mut(stream).ok_or_else(|| Rejection::NoSuchStream(stream.clone()))?;
                s.archive = *archive;
                Ok(Outcome::Done)
            }
            Command::PutNode { node } => {
                let joined_ms = self.nodes.get(&node.id).map_or(now, |n| n.joined_ms);
                self.nodes.insert(node.id, NodeRecord { joined_ms, ..node.clone() });
                Ok(Outcome::Done)
            }
            Command::RemoveNode { id } => {
                self.nodes.remove(id).ok_or(Rejection::NoSuchNode(*id))?;
                // Its origin leases lapse with it.
                for s in self.streams.values_mut() {
                    if s.origin.is_some_and(|l| l.node == *id) {
                        s.origin = None;
                        s.updated_ms = now;
                    }
                }
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
mod tests {
    use super::*;

    fn p(at_ms: i64, command: Command) -> Proposal {
        Proposal { at_ms, command }
    }

    fn put(name: &str) -> Command {
        Command::PutStream { name: name.into(), ladder: None, token_sha256: None, create_only: true }
    }

    fn node(id: NodeId) -> Command {
        Command::PutNode {
            node: NodeRecord {
                id,
                cluster_addr: format!("10.0.0.{id}:7000"),
                http_addr: format!("10.0.0.{id}:8080"),
                joined_ms: 0,
            },
        }
    }

    #[test]
    fn streams_are_created_updated_and_deleted_with_validation() {
        let mut c = Catalog::default();
        assert!(matches!(c.apply(&p(1, put("cam-1"))), Outcome::Stream(s) if s.created_ms == 1));
        assert_eq!(c.apply(&p(2, put("cam-1"))), Outcome::Rejected(Rejection::StreamExists("cam-1".into())));
        let update = Command::PutStream {
            name: "cam-1".into(),
            ladder: Some("source,360p:600".into()),
            token_sha256: Some("AB".repeat(32)),
            create_only: false,
        };
        let Outcome::Stream(s) = c.apply(&p(3, update)) else { panic!() };
        assert_eq!((s.created_ms, s.updated_ms), (1, 3));
        assert_eq!(s.token_sha256.as_deref(), Some("ab".repeat(32).as_str()), "hashes are stored lowercase");
        for bad in ["", "has space", "slash/name", &"x".repeat(65)] {
            assert_eq!(c.apply(&p(4, put(bad))), Outcome::Rejected(Rejection::InvalidName(bad.into())));
        }
        let bad_hash =
            Command::PutStream { name: "x".into(), ladder: None, token_sha256: Some("zz".into()), create_only: true };
        assert_eq!(c.apply(&p(4, bad_hash)), Outcome::Rejected(Rejection::InvalidTokenHash));
        assert_eq!(c.streams.len(), 1, "rejections change nothing");
        assert_eq!(c.apply(&p(5, Command::DeleteStream { name: "cam-1".into() })), Outcome::Done);
        assert_eq!(
            c.apply(&p(6, Command::DeleteStream { name: "cam-1".into() })),
            Outcome::Rejected(Rejection::NoSuchStream("cam-1".into()))
        );
    }

    #[test]
    fn the_archive_extent_is_recorded_and_a_record_without_one_still_reads() {
        let mut c = Catalog::default();
        c.apply(&p(1, put("cam-1")));
        let extent = ArchiveExtent { first_msn: 3, last_msn: 40, files: 76, bytes: 9_000_000 };
        let set = |archive| Command::SetArchive { stream: "cam-1".into(), archive };
        assert_eq!(c.apply(&p(2, set(Some(extent)))), Outcome::Done);
        assert_eq!(c.streams["cam-1"].archive, Some(extent));
        assert_eq!(c.apply(&p(3, set(None))), Outcome::Done);
        assert_eq!(c.streams["cam-1"].archive, None);
        let unknown = Command::SetArchive { stream: "nope".into(), archive: None };
        assert_eq!(c.apply(&p(4, unknown)), Outcome::Rejected(Rejection::NoSuchStream("nope".into())));
        // A record written before archives were recorded reads as having none.
        let old = r#"{"name":"x","ladder":null,"token_sha256":null,"created_ms":1,"updated_ms":1,"origin":null,"last_epoch":0}"#;
        assert_eq!(serde_json::from_str::<StreamRecord>(old).unwrap().archive, None);
    }

    #[test]
    fn origin_epochs_only_grow_and_fence_the_old_holder() {
        let mut c = Catalog::default();
        c.apply(&p(0, node(1)));
        c.apply(&p(0, node(2)));
        c.apply(&p(0, put("s")));
        let acquire = |n| Command::AcquireOrigin { stream: "s".into(), node: n };
        assert_eq!(c.apply(&p(1, acquire(1))), Outcome::Origin(OriginLease { node: 1, epoch: 1, since_ms: 1 }));
        assert!(c.may_publish("s", 1, 1));
        // Node 2 takes over (node 1 died): node 1's epoch is now stale.
        assert_eq!(c.apply(&p(2, acquire(2))), Outcome::Origin(OriginLease { node: 2, epoch: 2, since_ms: 2 }));
        assert!(!c.may_publish("s", 1, 1));
        assert!(c.may_publish("s", 2, 2));
        let release_old = Command::ReleaseOrigin { stream: "s".into(), node: 1, epoch: 1 };
        assert!(matches!(c.apply(&p(3, release_old)), Outcome::Rejected(Rejection::StaleEpoch { .. })));
        assert_eq!(
            c.apply(&p(3, Command::DeleteStream { name: "s".into() })),
            Outcome::Rejected(Rejection::StreamLive("s".into()))
        );
        assert_eq!(c.apply(&p(4, Command::ReleaseOrigin { stream: "s".into(), node: 2, epoch: 2 })), Outcome::Done);
        // A new lease never reuses an epoch.
        assert_eq!(c.apply(&p(5, acquire(1))), Outcome::Origin(OriginLease { node: 1, epoch: 3, since_ms: 5 }));
        assert_eq!(c.apply(&p(6, acquire(9))), Outcome::Rejected(Rejection::NoSuchNode(9)));
    }

    #[test]
    fn a_cluster_is_initialized_once_and_admits_nodes_with_fresh_ids() {
        let mut c = Catalog::default();
        let admit = Command::AdmitNode { cluster_addr: "a:7000".into(), http_addr: "a:8080".into() };
        assert_eq!(c.apply(&p(0, admit.clone())), Outcome::Rejected(Rejection::NotInitialized));
        let first = NodeRecord { id: 1, cluster_addr: "n1:7000".into(), http_addr: "n1:8080".into(), joined_ms: 0 };
        let init = Command::InitCluster {
            ca: CaRecord { cert_pem: "cert".into(), key_pem: "key".into() },
            first,
            join_sha256: "aa".repeat(32),
            admin_sha256: "BB".repeat(32),
        };
        assert_eq!(c.apply(&p(1, init.clone())), Outcome::Done);
        assert_eq!(c.apply(&p(2, init)), Outcome::Rejected(Rejection::AlreadyInitialized));
        assert!(c.accepts(TokenKind::Join, &"aa".repeat(32)));
        assert!(c.accepts(TokenKind::Admin, &"bb".repeat(32)), "hashes compare lowercase");
        assert!(!c.accepts(TokenKind::Admin, &"aa".repeat(32)));
        let Outcome::Admitted(n2) = c.apply(&p(3, admit.clone())) else { panic!() };
        let Outcome::Admitted(n3) = c.apply(&p(4, admit)) else { panic!() };
        assert_eq!((n2.id, n3.id, n3.joined_ms), (2, 3, 4));
        c.apply(&p(5, Command::RevokeToken { kind: TokenKind::Join, sha256: "aa".repeat(32) }));
        assert!(!c.accepts(TokenKind::Join, &"aa".repeat(32)));
    }

    #[test]
    fn removing_a_node_lapses_its_leases() {
        let mut c = Catalog::default();
        c.apply(&p(0, node(1)));
        c.apply(&p(0, put("s")));
        c.apply(&p(1, Command::AcquireOrigin { stream: "s".into(), node: 1 }));
        assert_eq!(c.apply(&p(2, Command::RemoveNode { id: 1 })), Outcome::Done);
        assert_eq!(c.streams["s"].origin, None);
        assert_eq!(c.streams["s"].last_epoch, 1);
        assert_eq!(c.apply(&p(3, Command::RemoveNode { id: 1 })), Outcome::Rejected(Rejection::NoSuchNode(1)));
    }

    #[test]
    fn the_same_log_gives_the_same_catalog_and_it_survives_a_snapshot() {
        let log: Vec<Proposal> = (0..200)
            .map(|i| {
                let name = format!("s{}", i % 7);
                p(
                    i,
                    match i % 5 {
                        0 => put(&name),
                        1 => node(i as u64 % 3),
                        2 => Command::AcquireOrigin { stream: name, node: i as u64 % 3 },
                        3 => Command::ReleaseOrigin { stream: name, node: i as u64 % 3, epoch: (i as u64 / 5) % 4 },
                        _ => Command::DeleteStream { name },
                    },
                )
            })
            .collect();
        let (mut a, mut b) = (Catalog::default(), Catalog::default());
        let outa: Vec<Outcome> = log.iter().map(|x| a.apply(x)).collect();
        let outb: Vec<Outcome> = log.iter().map(|x| b.apply(x)).collect();
        assert_eq!(outa, outb);
        assert_eq!(a, b);
        let snap = serde_json::to_vec(&a).unwrap();
        assert_eq!(serde_json::from_slice::<Catalog>(&snap).unwrap(), a);
    }
}
