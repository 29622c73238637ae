//! Who gets a key: the license decision, sans-IO. A request names the content, the key
//! id, the token it presents, the client's address and the time; the catalog (as this
//! node has applied it) says what the content's rights, keys and release allow.
//!
//! The checks, in order: a token is present and genuine, unexpired and for this content
//! ([`super::token`]); its subject is not revoked; the content is released here (a gated
//! premiere gives no key); the key exists; the client's region (from the catalog's
//! address table) is allowed by both the content's rights and the token's own regions;
//! and the subject is under its stream limit ([`Sessions`]). A refusal names its reason.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use tessera_raft::{Catalog, KeyRecord};

use super::regions::{region_of, Range};
use super::token::{Claims, TokenError, TokenKey};

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
            Denial::Region(_) => "region",
            Denial::StreamLimit(_) => "stream_limit",
        }
    }
}

/// Streams each subject watches on this node: a stream is a (token, client address) pair
/// that asked for a key within [`SESSION_IDLE_MS`].
#[derive(Debug, Default)]
pub struct Sessions {
    by_subject: HashMap<String, BTreeMap<(String, IpAddr), i64>>,
}

impl Sessions {
    /// Counts this request's stream, unless the subject is at `limit` with others.
    fn admit(&mut self, claims: &Claims, token: &str, client: IpAddr, now_ms: i64) -> Result<(), Denial> {
        let streams = self.by_subject.entry(claims.sub.clone()).or_default();
        streams.retain(|_, seen| now_ms - *seen < SESSION_IDLE_MS);
        let this = (token.to_string(), client);
        if let Some(limit) = claims.max_streams {
            if !streams.contains_key(&this) && streams.len() >= limit as usize {
                return Err(Denial::StreamLimit(limit));
            }
        }
        streams.insert(this, now_ms);
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

/// Decides a key request; on success, the wrapped key to hand out and the claims.
pub fn decide<'c>(
    catalog: &'c Catalog,
    tokens: &TokenKey,
    table: &[Range],
    sessions: &mut Sessions,
    req: &LicenseRequest,
) -> Result<(&'c KeyRecord, Claims), Denial> {
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
    if limits.iter().any(|allowed| !allowed.is_empty()) {
        let region = region_of(table, req.client);
        for allowed in limits.iter().filter(|a| !a.is_empty()) {
            if !region.is_some_and(|r| allowed.iter().any(|a| a == r)) {
                return Err(Denial::Region(region.unwrap_or("unknown").to_string()));
            }
        }
    }
    sessions.admit(&claims, token, req.client, req.now_ms)?;
    Ok((key, claims))
}

#[cfg(test)]
mod tests;
