//! Who may publish: one interface ([`PublishAuth`]) checked at the SRT handshake and at RTMP
//! `publish`. A stream registered in the catalog with a token is checked against the
//! token's SHA-256 there ([`CatalogTokens`]); other streams fall back to the node's
//! configuration ([`StaticTokens`]).

use std::collections::HashMap;
use std::sync::Arc;

use tessera_ingest::streamid::StreamRequest;

/// The outcome of a publish check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthDecision {
    Allowed,
    /// No token was presented for a stream that requires one.
    MissingToken,
    /// A token was presented and it is wrong.
    WrongToken,
}

pub trait PublishAuth: Send + Sync + 'static {
    fn check(&self, request: &StreamRequest) -> AuthDecision;
}

/// Tokens from configuration: `NAME=TOKEN` per stream, and `*=TOKEN` for every stream not
/// listed. With no entries at all, publishing is open.
#[derive(Debug, Default, Clone)]
pub struct StaticTokens {
    per_stream: HashMap<String, String>,
    default: Option<String>,
}

impl StaticTokens {
    /// Parses `NAME=TOKEN` entries.
    pub fn from_entries(entries: &[String]) -> Result<Self, String> {
        let mut t = StaticTokens::default();
        for e in entries {
            let (name, token) = e.split_once('=').ok_or_else(|| format!("publish token {e:?} is not NAME=TOKEN"))?;
            if token.is_empty() {
                return Err(format!("publish token for {name:?} is empty"));
            }
            if name == "*" {
                t.default = Some(token.to_string());
            } else {
                t.per_stream.insert(name.to_string(), token.to_string());
            }
        }
        Ok(t)
    }
}

/// Compares without an early exit, so timing does not tell how much of a token was right.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

impl PublishAuth for StaticTokens {
    fn check(&self, request: &StreamRequest) -> AuthDecision {
        let Some(expected) = self.per_stream.get(&request.name).or(self.default.as_ref()) else {
            return AuthDecision::Allowed;
        };
        match &request.token {
            None => AuthDecision::MissingToken,
            Some(t) if same(t, expected) => AuthDecision::Allowed,
            Some(_) => AuthDecision::WrongToken,
        }
    }
}

/// Tokens from the catalog (streams registered through the admin API), read from this
/// node's own copy, with the configuration's tokens for the streams the catalog does not
/// protect.
pub struct CatalogTokens {
    pub catalog: tessera_raft::CatalogNode,
    /// Replaced whole when the configuration is reloaded.
    pub fallback: Arc<std::sync::RwLock<Arc<StaticTokens>>>,
}

impl PublishAuth for CatalogTokens {
    fn check(&self, request: &StreamRequest) -> AuthDecision {
        let hash = self.catalog.read_local(|c| c.streams.get(&request.name).and_then(|s| s.token_sha256.clone())).value;
        let Some(expected) = hash else {
            let fallback = self.fallback.read().unwrap_or_else(|p| p.into_inner()).clone();
            return fallback.check(request);
        };
        match &request.token {
            None => AuthDecision::MissingToken,
            Some(t) if same(&tessera_cluster::identity::secret_hash(t), &expected) => AuthDecision::Allowed,
            Some(_) => AuthDecision::WrongToken,
        }
    }
}

/// Checks a publisher and, when refused, logs it with the remote address and counts it.
pub fn check_logged(
    auth: &dyn PublishAuth,
    request: &StreamRequest,
    remote: std::net::SocketAddr,
    protocol: &'static str,
) -> AuthDecision {
    let decision = auth.check(request);
    if decision != AuthDecision::Allowed {
        tracing::warn!(%remote, stream = %request.name, ?decision, protocol, "publisher not authorized");
        metrics::counter!("tessera_ingest_unauthorized_total", "protocol" => protocol).increment(1);
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_ingest::streamid::Mode;

    fn req(name: &str, token: Option<&str>) -> StreamRequest {
        StreamRequest { name: name.into(), mode: Mode::Publish, user: None, token: token.map(str::to_string) }
    }

    #[test]
    fn per_stream_and_default_tokens() {
        let t = StaticTokens::from_entries(&["cam1=abc".into(), "*=zzz".into()]).unwrap();
        assert_eq!(t.check(&req("cam1", Some("abc"))), AuthDecision::Allowed);
        assert_eq!(t.check(&req("cam1", Some("zzz"))), AuthDecision::WrongToken);
        assert_eq!(t.check(&req("cam1", Some("ab"))), AuthDecision::WrongToken);
        assert_eq!(t.check(&req("cam1", None)), AuthDecision::MissingToken);
        assert_eq!(t.check(&req("other", Some("zzz"))), AuthDecision::Allowed);
        let open = StaticTokens::from_entries(&[]).unwrap();
        assert_eq!(open.check(&req("x", None)), AuthDecision::Allowed);
        assert!(StaticTokens::from_entries(&["nope".into()]).is_err());
        assert!(StaticTokens::from_entries(&["a=".into()]).is_err());
    }
}
