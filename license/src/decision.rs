//! Who gets a key: the license decision, sans-IO. A request names the content, the key
//! id, the token it presents, the client's address and the time; the catalog (as this
//! node has applied it) says what the content's rights, keys and release allow.
//!
//! The checks, in order: a token is present and genuine, unexpired and for this content
//! (Tessera's own, [`super::token`], or a JWT of the platform's signer, [`super::jwt`]); its subject is not revoked; the content is released here (a gated
//! premiere gives no key); the key exists; the client's region (looked up by the caller:
//! [`crate::rights`]) is allowed by both the content's rights and the token's own regions;
//! and the subject is under its stream limit. A refusal names its reason.
//!
//! The stream limit holds across the cluster: a token with a limit yields a
//! [`StreamClaim`], counted ([`Sessions::admit`]) by one node for each subject, the first
//! of [`counting_nodes`] that answers, whichever node the viewer asks.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};
use tessera_raft::{Catalog, KeyRecord, NodeId};

use super::token::{Claims, TokenError, Verifier};

/// How long a viewer's stream counts against its subject's limit after its last key
/// request.
pub const SESSION_IDLE_MS: i64 = 120_000;

/// One key request.
#[derive(Debug, Clone)]
pub struct LicenseRequest<'a> {
    pub content: &'a str,
    pub kid: &'a str,
    pub token: Option<&'a str>,
    pub client: IpAddr,
    /// The client's region, as looked up ([`crate::rights::RegionLookup`]).
    pub region: Option<&'a str>,
    pub now_ms: i64,
    /// Whether the content is released on this node now (the release gate's answer).
    pub released: bool,
}

/// Why a key is refused; [`Denial::status`] and [`Denial::code`] are what the endpoint
/// answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("a playback token is required (?token=...)")]
    NoToken,
    #[error("{0}")]
    Token(#[from] TokenError),
    #[error("the viewer's rights have been revoked")]
    Revoked,
    #[error("the content is not released")]
    NotReleased,
    #[error("no key {0} for this content")]
    NoSuchKey(String),
    #[error("not available in the viewer's region ({0})")]
    Region(String),
    #[error("the viewer already watches {0} streams, its limit")]
    StreamLimit(u32),
}

impl Denial {
    pub fn status(&self) -> u16 {
        match self {
            Denial::NoToken | Denial::Token(_) => 401,
            Denial::NoSuchKey(_) => 404,
            _ => 403,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Denial::NoToken => "token_missing",
            Denial::Token(t) => t.code(),
            Denial::Revoked => "revoked",
            Denial::NotReleased => "not_released",
            Denial::NoSuchKey(_) => "no_such_key",
            Denial::Region(_) => "region_not_allowed",
            Denial::StreamLimit(_) => "stream_limit",
        }
    }
}

/// One viewer's stream, to count against its subject's limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamClaim {
    pub subject: String,
    /// Which stream: a digest of the token and the client's address (a device replaying
    /// its own token is the same stream; the token itself never leaves the node).
    pub stream: String,
    pub limit: u32,
    pub now_ms: i64,
}

impl StreamClaim {
    fn new(claims: &Claims, token: &str, client: IpAddr, limit: u32, now_ms: i64) -> Self {
        let d = digest(&SHA256, token.as_bytes());
        let stream = format!("{}@{client}", super::keys::hex(&d.as_ref()[..8]));
        StreamClaim { subject: claims.sub.clone(), stream, limit, now_ms }
    }
}

/// The nodes that count `subject`'s streams, in order (rendezvous hashing over `nodes`):
/// every node computes the same order, so every node asks the same one first.
pub fn counting_nodes(subject: &str, nodes: impl IntoIterator<Item = NodeId>) -> Vec<NodeId> {
    let score = |node: NodeId| {
        let d = digest(&SHA256, &[subject.as_bytes(), b"\0", &node.to_be_bytes()].concat());
        u64::from_be_bytes(d.as_ref()[..8].try_into().expect("8 bytes"))
    };
    let mut ranked: Vec<(u64, NodeId)> = nodes.into_iter().map(|n| (score(n), n)).collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    ranked.into_iter().map(|(_, n)| n).collect()
}

/// Streams of the subjects this node counts: a stream that asked for a key within
/// [`SESSION_IDLE_MS`] counts.
#[derive(Debug, Default)]
pub struct Sessions {
    by_subject: HashMap<String, BTreeMap<String, i64>>,
}

impl Sessions {
    /// Counts this stream, unless its subject is at its limit with others.
    pub fn admit(&mut self, claim: &StreamClaim) -> Result<(), Denial> {
        let streams = self.by_subject.entry(claim.subject.clone()).or_default();
        streams.retain(|_, seen| claim.now_ms - *seen < SESSION_IDLE_MS);
        if !streams.contains_key(&claim.stream) && streams.len() >= claim.limit as usize {
            return Err(Denial::StreamLimit(claim.limit));
        }
        streams.insert(claim.stream.clone(), claim.now_ms);
        Ok(())
    }

    /// Forgets subjects with no live stream (call now and then).
    pub fn prune(&mut self, now_ms: i64) {
        self.by_subject.retain(|_, s| {
            s.retain(|_, seen| now_ms - *seen < SESSION_IDLE_MS);
            !s.is_empty()
        });
    }
}

/// A key request the rules admit: the wrapped key to hand out, the token's claims, and the
/// stream to count when the token has a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant<'c> {
    pub key: &'c KeyRecord,
    pub claims: Claims,
    pub stream: Option<StreamClaim>,
}

/// Decides a key request, all but the counting of its stream.
pub fn decide<'c>(catalog: &'c Catalog, tokens: &Verifier, req: &LicenseRequest) -> Result<Grant<'c>, Denial> {
    let token = req.token.filter(|t| !t.is_empty()).ok_or(Denial::NoToken)?;
    let claims = tokens.check(token, req.content, req.now_ms.div_euclid(1000))?;
    if catalog.revoked_subjects.contains(&claims.sub) {
        return Err(Denial::Revoked);
    }
    if !req.released {
        return Err(Denial::NotReleased);
    }
    let key = catalog.key_by_id(req.content, req.kid).ok_or_else(|| Denial::NoSuchKey(req.kid.to_string()))?;
    let rights = catalog.protection.get(req.content).map(|p| p.regions.as_slice()).unwrap_or_default();
    let limits = [rights, claims.regions.as_deref().unwrap_or_default()];
    if !limits.iter().all(|allowed| super::regions::allows(allowed, req.region)) {
        return Err(Denial::Region(req.region.unwrap_or("unknown").to_string()));
    }
    let stream = claims.max_streams.map(|limit| StreamClaim::new(&claims, token, req.client, limit, req.now_ms));
    Ok(Grant { key, claims, stream })
}

#[cfg(test)]
mod tests;
