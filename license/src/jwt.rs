//! Playback tokens as JSON Web Tokens (RFC 7519), signed by a platform's own backend with
//! HS256, RS256 or ES256 under keys it publishes as a JSON Web Key Set (RFC 7517), sans-IO.
//!
//! # Contract
//! - A token names its key (`kid` in the header); the key set must hold a key of that id
//!   whose type suits the header's `alg` (`oct` for HS256, `RSA` for RS256, `EC` P-256 for
//!   ES256): an `alg` of `none`, or one that does not fit the key, is refused before any
//!   signature is checked, so a public key can never be used as an HMAC secret.
//! - Claims: `sub` (the viewer, required), `exp` (required) and `nbf` (optional), seconds;
//!   `content` (required): `live/NAME`, `vod/ASSET`, or a pattern ending in `*` that covers
//!   every content starting with what precedes it (`live/*`, `vod/season-2-*`); `regions`
//!   and `max_streams` as in Tessera's own tokens. What is checked is then the same.
//! - Keys rotate by id: a key set holds the old and new keys while tokens of both live.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::{hmac, signature};
use serde::Deserialize;

use crate::token::{Claims, TokenError};

/// Why a key set does not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("not a JSON Web Key Set: {0}")]
    Json(String),
    #[error("key {kid:?}: {why}")]
    Key { kid: String, why: &'static str },
}

/// One verification key.
enum Key {
    Hs256(hmac::Key),
    Rs256(signature::RsaPublicKeyComponents<Vec<u8>>),
    Es256(Vec<u8>),
}

impl Key {
    fn alg(&self) -> &'static str {
        match self {
            Key::Hs256(_) => "HS256",
            Key::Rs256(_) => "RS256",
            Key::Es256(_) => "ES256",
        }
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            Key::Hs256(k) => hmac::verify(k, message, sig).is_ok(),
            Key::Rs256(k) => k.verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig).is_ok(),
            Key::Es256(point) => signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, sig)
                .is_ok(),
        }
    }
}

/// A JSON Web Key, as far as these algorithms need.
#[derive(Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: String,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    crv: Option<String>,
    k: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Value>,
}

/// A JSON Web Key Set's verification keys, by id.
#[derive(Default)]
pub struct Jwks {
    keys: HashMap<String, Key>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<_> = self.keys.iter().map(|(kid, k)| format!("{kid}:{}", k.alg())).collect();
        ids.sort();
        f.debug_struct("Jwks").field("keys", &ids).finish()
    }
}

impl Jwks {
    /// Reads a key set. Keys for other uses (`use` other than `sig`), of other types or
    /// curves, or with an `alg` other than these three are skipped; a key of these kinds
    /// that is malformed, or without a `kid`, fails the whole set.
    pub fn parse(json: &[u8]) -> Result<Jwks, JwksError> {
        let set: JwkSet = serde_json::from_slice(json).map_err(|e| JwksError::Json(e.to_string()))?;
        let mut keys = HashMap::new();
        for value in set.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else { continue };
            if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
                continue;
            }
            let Some(key) = Self::key(&jwk)? else { continue };
            let kid = jwk.kid.ok_or(JwksError::Key { kid: String::new(), why: "no kid" })?;
            keys.insert(kid, key);
        }
        Ok(Jwks { keys })
    }

    fn key(jwk: &Jwk) -> Result<Option<Key>, JwksError> {
        let kid = jwk.kid.clone().unwrap_or_default();
        let err = |why| JwksError::Key { kid: kid.clone(), why };
        let b64 = |v: &Option<String>, why| v.as_deref().and_then(|v| B64.decode(v).ok()).ok_or_else(|| err(why));
        let alg = jwk.alg.as_deref();
        Ok(match (jwk.kty.as_str(), alg) {
            ("oct", None | Some("HS256")) => {
                let k = b64(&jwk.k, "an oct key needs k")?;
                if k.len() < 32 {
                    return Err(err("an HS256 key needs at least 32 bytes"));
                }
                Some(Key::Hs256(hmac::Key::new(hmac::HMAC_SHA256, &k)))
            }
            ("RSA", None | Some("RS256")) => {
                let n = b64(&jwk.n, "an RSA key needs n")?;
                let e = b64(&jwk.e, "an RSA key needs e")?;
                if n.len() < 256 {
                    return Err(err("an RSA key needs at least 2048 bits"));
                }
                Some(Key::Rs256(signature::RsaPublicKeyComponents { n, e }))
            }
            ("EC", None | Some("ES256")) if jwk.crv.as_deref() == Some("P-256") => {
                let x = b64(&jwk.x, "an EC key needs x")?;
                let y = b64(&jwk.y, "an EC key needs y")?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(err("a P-256 key's x and y are 32 bytes each"));
                }
                Some(Key::Es256([&[4u8][..], &x, &y].concat()))
            }
            _ => None,
        })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Where the signer's key set comes from: a file read again when it changes
/// ([`crate::watched::WatchedFile`]), or a URL fetched now and then ([`FetchedKeySet`]).
pub trait KeySet: Send + Sync {
    /// The set in force.
    fn current(&self) -> Arc<Jwks>;
    /// A token named a key the set does not hold (the signer may have added it since).
    fn missed(&self, _kid: &str) {}
}

impl KeySet for crate::watched::WatchedFile<Jwks> {
    fn current(&self) -> Arc<Jwks> {
        crate::watched::WatchedFile::current(self)
    }
}

/// A key set fetched from the signer's URL by the node: the last one fetched, and a nudge
/// to fetch again when a token names a key it does not hold.
#[derive(Default)]
pub struct FetchedKeySet {
    current: RwLock<Arc<Jwks>>,
    /// Notified when a token names an unknown key; the fetcher limits how often it obeys.
    pub stale: tokio::sync::Notify,
}

impl FetchedKeySet {
    /// Puts a newly fetched set in force.
    pub fn set(&self, jwks: Jwks) {
        *self.current.write().expect("key set") = Arc::new(jwks);
    }
}

impl KeySet for FetchedKeySet {
    fn current(&self) -> Arc<Jwks> {
        self.current.read().expect("key set").clone()
    }

    fn missed(&self, _kid: &str) {
        self.stale.notify_one();
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct JwtClaims {
    sub: String,
    exp: i64,
    nbf: Option<i64>,
    iat: Option<i64>,
    content: String,
    regions: Option<Vec<String>>,
    max_streams: Option<u32>,
}

/// Whether a token's `content` (a name, or a prefix ending in `*`) covers `asked`.
pub fn content_matches(granted: &str, asked: &str) -> bool {
    match granted.strip_suffix('*') {
        Some(prefix) => asked.starts_with(prefix),
        None => granted == asked,
    }
}

/// Whether `token` has the shape of a JWT (three base64url parts).
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// The claims of a JWT that `jwks` verifies, unexpired at `now_s`, and for `content`.
pub fn check(jwks: &Jwks, token: &str, content: &str, now_s: i64) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(head), Some(body), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let header: Header =
        B64.decode(head).ok().and_then(|h| serde_json::from_slice(&h).ok()).ok_or(TokenError::Malformed)?;
    let kid = header.kid.ok_or_else(|| TokenError::UnknownKey(String::new()))?;
    let key = jwks.keys.get(&kid).ok_or_else(|| TokenError::UnknownKey(kid.clone()))?;
    if header.alg != key.alg() {
        return Err(TokenError::Algorithm(header.alg));
    }
    let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
    let signed = &token[..head.len() + 1 + body.len()];
    if !key.verify(signed.as_bytes(), &sig) {
        return Err(TokenError::BadSignature);
    }
    let json = B64.decode(body).map_err(|_| TokenError::Malformed)?;
    let claims: JwtClaims = serde_json::from_slice(&json).map_err(|e| TokenError::BadClaims(e.to_string()))?;
    if now_s >= claims.exp {
        return Err(TokenError::Expired(now_s - claims.exp));
    }
    if claims.nbf.is_some_and(|nbf| now_s < nbf) {
        return Err(TokenError::NotYetValid);
    }
    if !content_matches(&claims.content, content) {
        return Err(TokenError::WrongContent { granted: claims.content, asked: content.to_string() });
    }
    Ok(Claims {
        sub: claims.sub,
        content: content.to_string(),
        exp: claims.exp,
        iat: claims.iat.unwrap_or(0),
        regions: claims.regions,
        max_streams: claims.max_streams,
    })
}

#[cfg(test)]
mod tests;
