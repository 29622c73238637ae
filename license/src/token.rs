//! Playback tokens: signed claims a viewer presents for a piece of content.
//!
//! A token is `BASE64URL(claims JSON) "." BASE64URL(HMAC-SHA256(secret, first part))`,
//! without padding. The secret is the cluster's (the catalog keeps it wrapped under the
//! key-encryption key), so every node checks what any node issued. Checking compares the
//! MAC in constant time before it reads the claims.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// What a token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who watches (a user or account id of the platform).
    pub sub: String,
    /// `live/NAME` or `vod/ASSET`.
    pub content: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Regions the viewer may watch from; absent: wherever the content's rights allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<String>>,
    /// How many streams the subject may watch at once; absent: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_streams: Option<u32>,
}

/// Why a token is refused. `code()` is what the license endpoint answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not two base64url parts")]
    Malformed,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token's claims do not parse: {0}")]
    BadClaims(String),
    #[error("the token expired {0} s ago")]
    Expired(i64),
    #[error("the token is for {granted}, not {asked}")]
    WrongContent { granted: String, asked: String },
    #[error("no key {0:?} to check the token with")]
    UnknownKey(String),
    #[error("the token's algorithm {0:?} does not fit its key")]
    Algorithm(String),
    #[error("the token is not valid yet")]
    NotYetValid,
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed | TokenError::BadClaims(_) => "token_malformed",
            TokenError::BadSignature => "token_signature",
            TokenError::Expired(_) => "token_expired",
            TokenError::WrongContent { .. } => "token_wrong_content",
            TokenError::UnknownKey(_) => "token_unknown_key",
            TokenError::Algorithm(_) => "token_algorithm",
            TokenError::NotYetValid => "token_not_yet_valid",
        }
    }
}

/// How long a signed media URL stays the same, seconds; it is accepted for up to two of
/// these.
pub const URL_WINDOW_S: i64 = 600;

/// The URL-signing window of `now_s`.
pub fn url_window(now_s: i64) -> i64 {
    now_s.div_euclid(URL_WINDOW_S)
}

/// Signs and checks tokens with the cluster's secret.
pub struct TokenKey(hmac::Key);

impl TokenKey {
    pub fn new(secret: &[u8]) -> Self {
        TokenKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let body = B64.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let tag = hmac::sign(&self.0, body.as_bytes());
        format!("{body}.{}", B64.encode(tag.as_ref()))
    }

    /// The signature media URLs of `content` carry in the URL-signing window `window`
    /// ([`url_window`]): the same for every viewer, so a CDN caches one URL per file.
    pub fn url_signature(&self, content: &str, window: i64) -> String {
        let tag = hmac::sign(&self.0, format!("url\0{content}\0{window}").as_bytes());
        B64.encode(&tag.as_ref()[..16])
    }

    /// Whether `sig` signs `content` in the window of `now_s` or the one before.
    pub fn url_signature_valid(&self, content: &str, sig: &str, now_s: i64) -> bool {
        let w = url_window(now_s);
        [w, w - 1].iter().any(|w| {
            let expected = self.url_signature(content, *w);
            // Compared in constant time: a guess learns nothing from how long the check takes.
            expected.len() == sig.len() && expected.bytes().zip(sig.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
        })
    }

    /// The claims of a token that is genuine, unexpired at `now_s` and for `content`.
    pub fn check(&self, token: &str, content: &str, now_s: i64) -> Result<Claims, TokenError> {
        let (body, mac) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let mac = B64.decode(mac).map_err(|_| TokenError::Malformed)?;
        hmac::verify(&self.0, body.as_bytes(), &mac).map_err(|_| TokenError::BadSignature)?;
        let json = B64.decode(body).map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|e| TokenError::BadClaims(e.to_string()))?;
        if now_s >= claims.exp {
            return Err(TokenError::Expired(now_s - claims.exp));
        }
        if claims.content != content {
            return Err(TokenError::WrongContent { granted: claims.content, asked: content.to_string() });
        }
        Ok(claims)
    }
}

/// What checks a viewer's token: the cluster's own key, and the key set of the platform's
/// token signer if one is configured ([`crate::jwt`]). A token of three parts is a JWT.
pub struct Verifier<'a> {
    pub own: &'a TokenKey,
    pub jwks: Option<&'a crate::jwt::Jwks>,
}

impl Verifier<'_> {
    /// The claims of a genuine token, unexpired at `now_s` and for `content`.
    pub fn check(&self, token: &str, content: &str, now_s: i64) -> Result<Claims, TokenError> {
        if !crate::jwt::looks_like_jwt(token) {
            return self.own.check(token, content, now_s);
        }
        let jwks = self.jwks.ok_or_else(|| TokenError::UnknownKey("(no key set configured)".into()))?;
        crate::jwt::check(jwks, token, content, now_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            sub: "viewer-7".into(),
            content: "live/match".into(),
            exp: 2_000,
            iat: 1_000,
            regions: Some(vec!["eu".into()]),
            max_streams: Some(2),
        }
    }

    #[test]
    fn a_signed_token_checks_until_it_expires_and_only_for_its_content() {
        let key = TokenKey::new(b"cluster secret of thirty-two bytes");
        let token = key.sign(&claims());
        assert_eq!(key.check(&token, "live/match", 1_999), Ok(claims()));
        assert_eq!(key.check(&token, "live/match", 2_000), Err(TokenError::Expired(0)));
        assert!(matches!(key.check(&token, "live/other", 1_500), Err(TokenError::WrongContent { .. })));
        // Another cluster's secret, or a token signed by one, is refused.
        assert_eq!(TokenKey::new(b"another secret").check(&token, "live/match", 1_500), Err(TokenError::BadSignature));
    }

    #[test]
    fn url_signatures_are_shared_by_viewers_and_last_two_windows() {
        let key = TokenKey::new(b"secret");
        let now = 10 * URL_WINDOW_S + 5;
        let sig = key.url_signature("live/match", url_window(now));
        assert_eq!(sig, key.url_signature("live/match", url_window(now + 1)), "the same URL for everyone");
        assert!(key.url_signature_valid("live/match", &sig, now));
        assert!(key.url_signature_valid("live/match", &sig, now + URL_WINDOW_S), "the next window still takes it");
        assert!(!key.url_signature_valid("live/match", &sig, now + 2 * URL_WINDOW_S), "not the one after");
        assert!(!key.url_signature_valid("live/other", &sig, now), "bound to its content");
        assert!(!TokenKey::new(b"other").url_signature_valid("live/match", &sig, now));
        assert!(!key.url_signature_valid("live/match", "", now));
    }

    #[test]
    fn tampered_and_malformed_tokens_are_refused() {
        let key = TokenKey::new(b"secret");
        let token = key.sign(&claims());
        let (body, mac) = token.split_once('.').unwrap();
        // A longer expiry written into the claims: the signature no longer matches.
        let mut forged = claims();
        forged.exp = 9_999_999;
        let forged_body = B64.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(key.check(&format!("{forged_body}.{mac}"), "live/match", 1_500), Err(TokenError::BadSignature));
        let mut flipped = mac.as_bytes().to_vec();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = format!("{body}.{}", String::from_utf8(flipped).unwrap());
        assert_eq!(key.check(&flipped, "live/match", 1_500), Err(TokenError::BadSignature));
        for bad in ["", "nodot", "a.b.c", "!!!.???"] {
            assert!(key.check(bad, "live/match", 1_500).is_err(), "{bad:?}");
        }
        assert_eq!(key.check("nodot", "x", 0).unwrap_err().code(), "token_malformed");
    }
}
