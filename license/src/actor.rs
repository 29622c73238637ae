//! The license actor, one per node: answers key requests ([`LicenseMsg::Key`]) by the
//! [`decision`](super::decision), issues playback tokens ([`LicenseMsg::Issue`]), and on
//! the node that is origin of an encrypted live stream makes its content keys and rotates
//! them ([`LicenseMsg::Tick`]).
//!
//! Keys are unwrapped once and kept in memory for the actor's life; neither they nor
//! tokens are ever logged. The catalog is read as this node has applied it, so a
//! revocation or a change of rights applies here as soon as this node applies it.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ring::rand::SystemRandom;
use tessera_cluster::ClusterError;
use tessera_raft::{Catalog, Command, KeyRecord, NodeId, Protection};

use super::decision::{counting_nodes, decide, Denial, LicenseRequest, Sessions, StreamClaim};
use super::jwt::KeySet;
use super::keys::{self, hex, parse_kid, ContentKey, Kek};
use super::provider::{key_record, Exchanges, KeyServerAnswer};
use super::token::{Claims, TokenKey, Verifier};

/// A catalog write's future.
pub type Proposal = Pin<Box<dyn Future<Output = Result<(), ClusterError>> + Send>>;

/// Why a key (or the cluster's token secret) could not be made and recorded.
#[derive(Debug, thiserror::Error)]
pub enum KeyingError {
    #[error("{0}")]
    Key(#[from] keys::KeyError),
    #[error("catalog: {0}")]
    Catalog(#[from] ClusterError),
    #[error("the token secret is not in the catalog yet")]
    NoTokenSecret,
}

/// Another node's count of a stream: `Some(Err(limit))` if the subject is at its limit,
/// `None` if the node did not answer.
pub type RemoteCount = Pin<Box<dyn Future<Output = Option<Result<(), u32>>> + Send>>;

/// Counting nodes asked for one stream before this node counts it itself.
const COUNTING_TRIES: usize = 3;

/// What the license actor needs of its node.
pub trait LicenseNode: Send + Sync + 'static {
    /// Reads the catalog as this node has applied it.
    fn peek(&self, f: &mut dyn FnMut(&Catalog));
    /// Proposes a catalog write (reaching the leader from any node).
    fn propose(&self, command: Command) -> Proposal;
    /// The newest segment number of live stream `name`, if this node is its origin.
    fn origin_edge(&self, name: &str) -> Option<u64>;
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// This node's id in the catalog.
    fn node_id(&self) -> NodeId;
    /// Counts a viewer's stream at another node (the subject's counting node).
    fn count_at(&self, node: NodeId, claim: StreamClaim) -> RemoteCount;
    /// Posts a CPIX document to a DRM provider's SPEKE v2 key server ([`super::provider`]).
    fn ask_key_server(&self, url: &str, document: String) -> KeyServerAnswer;
}

pub struct LicenseActor;

#[derive(Clone)]
pub struct LicenseConfig {
    pub node: Arc<dyn LicenseNode>,
    pub kek: Arc<Kek>,
    /// A live stream's key is replaced this often (zero: never).
    pub rotation: Duration,
    /// How many segments ahead of the live edge a new key starts, so every node has
    /// applied it before it is used.
    pub rotation_lead_segments: u64,
    /// The streams of the subjects this node counts, shared with the node's cluster
    /// endpoint (where other nodes have streams counted).
    pub streams: Arc<Mutex<Sessions>>,
    /// The key set of the platform's token signer (`--jwks`), if its JWTs are taken.
    pub jwks: Option<Arc<dyn KeySet>>,
}

/// A key request, owned.
#[derive(Debug, Clone)]
pub struct KeyQuery {
    pub content: String,
    pub kid: String,
    pub token: Option<String>,
    pub client: IpAddr,
    /// The client's region, as looked up.
    pub region: Option<String>,
    pub released: bool,
}

pub enum LicenseMsg {
    /// The content key a viewer asks for, or why not.
    Key(KeyQuery, RpcReplyPort<Result<[u8; 16], Denial>>),
    /// A playback token for these claims.
    Issue(Claims, RpcReplyPort<Result<String, KeyingError>>),
    /// For content with signed URLs: checks a viewer's token (genuine, unexpired, for this
    /// content, not revoked) and answers the media URL signature of the current window.
    /// The viewer's region is checked against the token's regions.
    Viewer {
        content: String,
        token: Option<String>,
        region: Option<String>,
        reply: RpcReplyPort<Result<String, Denial>>,
    },
    /// Whether a media URL's signature is valid for `content` now.
    CheckUrl { content: String, sig: String, reply: RpcReplyPort<bool> },
    /// A content key for this node's own use (encrypting media it serves): no viewer checks.
    MediaKey { content: String, kid: String, reply: RpcReplyPort<Option<[u8; 16]>> },
    /// Makes and rotates keys of the encrypted live streams this node is origin of.
    Tick,
}

pub struct LicenseState {
    cfg: LicenseConfig,
    rng: SystemRandom,
    /// The token secret in force (its wrapped form, to notice a change) and its key.
    tokens: Option<(String, TokenKey)>,
    keys: HashMap<(String, String), [u8; 16]>,
    /// Keys being asked of key servers.
    exchanges: Exchanges,
}

/// Where a key request stands after the rules: answered, or admitted once its stream is
/// counted.
enum KeyStep {
    Done(Result<[u8; 16], Denial>),
    Count { key: [u8; 16], claim: StreamClaim, order: Vec<NodeId> },
}

/// The content id under which the token secret is wrapped.
const TOKEN_SECRET: &str = "token-secret";

impl Actor for LicenseActor {
    type Msg = LicenseMsg;
    type State = LicenseState;
    type Arguments = LicenseConfig;

    async fn pre_start(
        &self,
        _me: ActorRef<LicenseMsg>,
        cfg: LicenseConfig,
    ) -> Result<LicenseState, ActorProcessingErr> {
        Ok(LicenseState {
            cfg,
            rng: SystemRandom::new(),
            tokens: None,
            keys: HashMap::new(),
            exchanges: Exchanges::default(),
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<LicenseMsg>,
        msg: LicenseMsg,
        st: &mut LicenseState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            LicenseMsg::Key(q, reply) => match st.key(&q).await {
                KeyStep::Done(answer) => {
                    record(&q, &answer);
                    let _ = reply.send(answer);
                }
                // Counting may wait on another node: the actor goes on with other requests.
                KeyStep::Count { key, claim, order } => {
                    let (node, streams) = (st.cfg.node.clone(), st.cfg.streams.clone());
                    tokio::spawn(async move {
                        let answer = count(node, &streams, claim, order).await.map(|()| key);
                        record(&q, &answer);
                        let _ = reply.send(answer);
                    });
                }
            },
            LicenseMsg::Issue(claims, reply) => {
                let token = st.token_key().await.map(|k| k.sign(&claims));
                let _ = reply.send(token);
            }
            LicenseMsg::Viewer { content, token, region, reply } => {
                let answer = st.viewer(&content, token.as_deref(), region.as_deref()).await;
                if let Err(d) = &answer {
                    metrics::counter!("tessera_signed_url_refusals_total", "reason" => d.code()).increment(1);
                }
                let _ = reply.send(answer);
            }
            LicenseMsg::CheckUrl { content, sig, reply } => {
                let now_s = st.cfg.node.now_ms().div_euclid(1000);
                let valid = st.token_key().await.is_ok_and(|k| k.url_signature_valid(&content, &sig, now_s));
                if !valid {
                    metrics::counter!("tessera_signed_url_refusals_total", "reason" => "url_signature").increment(1);
                }
                let _ = reply.send(valid);
            }
            LicenseMsg::MediaKey { content, kid, reply } => {
                let _ = reply.send(st.media_key(&content, &kid));
            }
            LicenseMsg::Tick => st.rotate().await,
        }
        Ok(())
    }
}

impl LicenseState {
    fn catalog<T>(&self, f: impl FnOnce(&Catalog) -> T) -> T {
        let mut f = Some(f);
        let mut out = None;
        self.cfg.node.peek(&mut |c| out = f.take().map(|f| f(c)));
        out.expect("peek calls back once")
    }

    /// The token key, made (and recorded in the catalog) if the cluster has none yet.
    async fn token_key(&mut self) -> Result<&TokenKey, KeyingError> {
        // Every key request comes here: the cached key stands while the catalog's secret is
        // the one it was made from (compared in place, nothing cloned).
        let cached = self.tokens.as_ref().map(|(w, _)| w.as_str());
        if cached.is_some() && self.catalog(|c| c.token_secret.as_deref() == cached) {
            return Ok(&self.tokens.as_ref().expect("checked").1);
        }
        let mut wrapped = self.catalog(|c| c.token_secret.clone());
        if wrapped.is_none() {
            // 128 random bits, wrapped like a content key under a key id of zeros.
            let secret = ContentKey { kid: [0; 16], ..keys::generate(&self.rng)? };
            let w = self.cfg.kek.wrap(TOKEN_SECRET, &secret)?;
            self.cfg.node.propose(Command::SetTokenSecret { wrapped: w }).await?;
            // The first proposed stays: read back the one in force.
            wrapped = self.catalog(|c| c.token_secret.clone());
        }
        let wrapped = wrapped.ok_or(KeyingError::NoTokenSecret)?;
        if self.tokens.as_ref().is_none_or(|(w, _)| *w != wrapped) {
            let secret = self.cfg.kek.unwrap(TOKEN_SECRET, [0; 16], &wrapped)?;
            self.tokens = Some((wrapped, TokenKey::new(&secret.key)));
        }
        Ok(&self.tokens.as_ref().expect("just set").1)
    }

    async fn viewer(&mut self, content: &str, token: Option<&str>, region: Option<&str>) -> Result<String, Denial> {
        let now_s = self.cfg.node.now_ms().div_euclid(1000);
        let token = token.filter(|t| !t.is_empty()).ok_or(Denial::NoToken)?;
        let jwks = self.cfg.jwks.as_ref().map(|j| j.current());
        let keys = self.token_key().await.map_err(|_| Denial::Token(super::token::TokenError::BadSignature))?;
        let checked = Verifier { own: keys, jwks: jwks.as_deref() }.check(token, content, now_s);
        let sig = keys.url_signature(content, super::token::url_window(now_s));
        let claims = checked.inspect_err(|e| self.missed(e))?;
        if self.catalog(|c| c.revoked_subjects.contains(&claims.sub)) {
            return Err(Denial::Revoked);
        }
        if !super::regions::allows(claims.regions.as_deref().unwrap_or_default(), region) {
            return Err(Denial::Region(region.unwrap_or("unknown").to_string()));
        }
        Ok(sig)
    }

    /// A token named a key the signer's set does not hold: the set may be fetched again.
    fn missed(&self, e: &super::token::TokenError) {
        if let (super::token::TokenError::UnknownKey(kid), Some(jwks)) = (e, &self.cfg.jwks) {
            jwks.missed(kid);
        }
    }

    /// The clear key `kid` of `content`, unwrapped once.
    fn media_key(&mut self, content: &str, kid: &str) -> Option<[u8; 16]> {
        let cache_key = (content.to_string(), kid.to_ascii_lowercase());
        if let Some(k) = self.keys.get(&cache_key) {
            return Some(*k);
        }
        let record = self.catalog(|c| c.key_by_id(content, kid).cloned())?;
        let key = self.cfg.kek.unwrap(content, parse_kid(&record.kid)?, &record.wrapped).ok()?;
        self.keys.insert(cache_key, key.key);
        Some(key.key)
    }

    async fn key(&mut self, q: &KeyQuery) -> KeyStep {
        let now = self.cfg.node.now_ms();
        // No token secret means no token can be genuine.
        if self.token_key().await.is_err() {
            return KeyStep::Done(Err(Denial::Token(super::token::TokenError::BadSignature)));
        }
        let request = LicenseRequest {
            content: &q.content,
            kid: &q.kid,
            token: q.token.as_deref(),
            client: q.client,
            region: q.region.as_deref(),
            now_ms: now,
            released: q.released,
        };
        let jwks = self.cfg.jwks.as_ref().map(|j| j.current());
        let tokens = Verifier { own: &self.tokens.as_ref().expect("token key made above").1, jwks: jwks.as_deref() };
        let node = &self.cfg.node;
        let mut decided = None;
        node.peek(&mut |c| {
            decided = Some(decide(c, &tokens, &request).map(|g| {
                let order = g.stream.as_ref().map(|s| counting_nodes(&s.subject, c.nodes.keys().copied()));
                (g.key.kid.clone(), g.stream, order)
            }))
        });
        let (kid, stream, order) = match decided.expect("peek calls back once") {
            Ok(granted) => granted,
            Err(d) => {
                if let Denial::Token(e) = &d {
                    self.missed(e);
                }
                return KeyStep::Done(Err(d));
            }
        };
        let Some(key) = self.media_key(&q.content, &kid) else {
            tracing::error!(content = %q.content, %kid, "a content key does not unwrap with this node's KEK");
            return KeyStep::Done(Err(Denial::NoSuchKey(kid)));
        };
        match stream {
            None => KeyStep::Done(Ok(key)),
            Some(claim) => KeyStep::Count { key, claim, order: order.unwrap_or_default() },
        }
    }

    /// Gives every encrypted live stream this node is origin of a key, and a new one when
    /// the rotation period has passed.
    async fn rotate(&mut self) {
        let now = self.cfg.node.now_ms();
        self.cfg.streams.lock().expect("stream counts").prune(now);
        let encrypted: Vec<(String, Option<KeyRecord>)> = self.catalog(|c| {
            c.protection
                .iter()
                .filter(|(content, p)| p.mode != Protection::None && content.starts_with("live/"))
                .map(|(content, p)| (content.clone(), p.keys.last().cloned()))
                .collect()
        });
        for content in self.unkeyed_assets() {
            if self.ask_key_server_for(&content, 0) {
                continue;
            }
            let made = match keys::generate(&self.rng) {
                Ok(key) => self.add_key(&content, &key, 0).await.map(|_| key),
                Err(e) => Err(e.into()),
            };
            match made {
                Ok(key) => {
                    metrics::counter!("tessera_license_keys_made_total").increment(1);
                    tracing::info!(%content, kid = %hex(&key.kid), "asset key made");
                }
                Err(e) => tracing::warn!(%content, error = %e, "an asset key was not made; trying again"),
            }
        }
        for (content, newest) in encrypted {
            let Some(edge) = self.cfg.node.origin_edge(&content["live/".len()..]) else { continue };
            let period = self.cfg.rotation.as_millis() as i64;
            let from_msn = match &newest {
                None => 0,
                Some(k) if period > 0 && now - k.created_ms >= period => {
                    (edge + self.cfg.rotation_lead_segments).max(k.from_msn + 1)
                }
                Some(_) => continue,
            };
            if self.ask_key_server_for(&content, from_msn) {
                continue;
            }
            let key = match keys::generate(&self.rng) {
                Ok(k) => k,
                Err(e) => {
                    tracing::error!(%content, error = %e, "no content key made");
                    continue;
                }
            };
            if let Err(e) = self.add_key(&content, &key, from_msn).await {
                tracing::warn!(%content, error = %e, "a new content key was not recorded; trying again");
                continue;
            }
            metrics::counter!("tessera_license_keys_made_total").increment(1);
            tracing::info!(%content, kid = %hex(&key.kid), from_msn, "content key made");
        }
    }

    /// Encrypted VOD assets without a key that this node is to make one for: the node that
    /// took the upload (or recorded it), or the lowest-numbered node when that one has left.
    /// An asset has one key for all its segments: a film is not a stream that goes on.
    fn unkeyed_assets(&self) -> Vec<String> {
        let me = self.cfg.node.node_id();
        self.catalog(|c| {
            let keeper = |asset: &str| {
                let holder = c.assets.get(asset).map(|a| a.source.node)?;
                Some(if c.nodes.contains_key(&holder) { holder } else { *c.nodes.keys().next()? })
            };
            c.protection
                .iter()
                .filter(|(_, p)| p.mode != Protection::None && p.keys.is_empty())
                .filter(|(content, _)| content.strip_prefix("vod/").and_then(keeper) == Some(me))
                .map(|(content, _)| content.clone())
                .collect()
        })
    }

    /// For content whose keys come from a key server: starts asking it for the key from
    /// `from_msn` on (unless already asking), and answers true.
    fn ask_key_server_for(&mut self, content: &str, from_msn: u64) -> bool {
        let Some(url) = self.catalog(|c| c.protection.get(content).and_then(|p| p.key_server.clone())) else {
            return false;
        };
        let kid = match keys::generate(&self.rng) {
            Ok(k) => k.kid,
            Err(e) => {
                tracing::error!(%content, error = %e, "no key id made");
                return true;
            }
        };
        let (node, kek) = (self.cfg.node.clone(), self.cfg.kek.clone());
        self.exchanges.start(node, kek, (url, content.to_string()), from_msn, kid);
        true
    }

    async fn add_key(&mut self, content: &str, key: &ContentKey, from_msn: u64) -> Result<(), KeyingError> {
        let record = key_record(&self.cfg.kek, content, key, from_msn, Vec::new())?;
        self.cfg.node.propose(Command::AddKey { content: content.to_string(), key: record }).await?;
        self.keys.insert((content.to_string(), hex(&key.kid)), key.key);
        Ok(())
    }
}

/// Logs and counts a key request's outcome (never the key or the token).
fn record(q: &KeyQuery, answer: &Result<[u8; 16], Denial>) {
    let outcome = match answer {
        Ok(_) => "granted",
        Err(d) => d.code(),
    };
    metrics::counter!("tessera_license_requests_total", "outcome" => outcome).increment(1);
    if let Err(d) = answer {
        tracing::info!(content = %q.content, client = %q.client, reason = d.code(), "key refused: {d}");
    }
}

/// Counts a viewer's stream at the first of `order` that answers, this node counting its
/// own subjects in place. If none of the first few answers, this node counts it: a
/// partition loosens the limit to one count per side rather than turning viewers away.
async fn count(
    node: Arc<dyn LicenseNode>,
    streams: &Mutex<Sessions>,
    claim: StreamClaim,
    order: Vec<NodeId>,
) -> Result<(), Denial> {
    let me = node.node_id();
    for n in order.into_iter().take(COUNTING_TRIES) {
        if n == me {
            return streams.lock().expect("stream counts").admit(&claim);
        }
        match node.count_at(n, claim.clone()).await {
            Some(Ok(())) => return Ok(()),
            Some(Err(limit)) => return Err(Denial::StreamLimit(limit)),
            None => {
                metrics::counter!("tessera_license_counting_unanswered_total").increment(1);
                tracing::warn!(node = n, subject = %claim.subject, "the subject's counting node did not answer");
            }
        }
    }
    tracing::warn!(subject = %claim.subject, "no counting node answered: the stream is counted here alone");
    streams.lock().expect("stream counts").admit(&claim)
}

#[cfg(test)]
mod tests;
