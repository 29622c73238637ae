//! The W3C ClearKey license exchange (Encrypted Media Extensions, 9.1): a browser's CDM
//! sends `{"kids": [KID, ...], "type": "temporary"}` (key ids in unpadded base64url) and
//! takes back a JSON Web Key set `{"keys": [{"kty": "oct", "kid": KID, "k": KEY}], ...}`.
//! Key ids are hex (32 digits) everywhere else in Tessera; this converts at the edge.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::Deserialize;

use super::keys::hex;

/// Most key ids one request may name (a player asks for one or two).
pub const MAX_KIDS: usize = 16;

/// Why a license request cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClearKeyError {
    #[error("the license request is not ClearKey JSON: {0}")]
    NotJson(String),
    #[error("the license request names no key id")]
    NoKids,
    #[error("the license request names more than {MAX_KIDS} key ids")]
    TooManyKids,
    #[error("key id {0:?} is not 16 bytes of base64url")]
    BadKid(String),
}

#[derive(Deserialize)]
struct Request {
    kids: Vec<String>,
}

/// The key ids (hex) a license request names.
pub fn requested_kids(body: &[u8]) -> Result<Vec<String>, ClearKeyError> {
    let req: Request = serde_json::from_slice(body).map_err(|e| ClearKeyError::NotJson(e.to_string()))?;
    if req.kids.is_empty() {
        return Err(ClearKeyError::NoKids);
    }
    if req.kids.len() > MAX_KIDS {
        return Err(ClearKeyError::TooManyKids);
    }
    req.kids
        .iter()
        .map(|k| {
            // Some CDMs pad; padding is not part of base64url here.
            let bytes = B64.decode(k.trim_end_matches('=')).map_err(|_| ClearKeyError::BadKid(k.clone()))?;
            let kid: [u8; 16] = bytes.try_into().map_err(|_| ClearKeyError::BadKid(k.clone()))?;
            Ok(hex(&kid))
        })
        .collect()
}

/// The JSON Web Key set answering with `keys` (key id, key).
pub fn response(keys: &[([u8; 16], [u8; 16])]) -> String {
    let keys: Vec<_> = keys
        .iter()
        .map(|(kid, key)| serde_json::json!({ "kty": "oct", "kid": B64.encode(kid), "k": B64.encode(key) }))
        .collect();
    serde_json::json!({ "keys": keys, "type": "temporary" }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cdm_request_names_hex_key_ids_and_the_answer_is_a_jwk_set() {
        // As Chromium's ClearKey CDM writes it.
        let body = br#"{"kids":["ERERERERERERERERERERBA","IiIiIiIiIiIiIiIiIiIiIg=="],"type":"temporary"}"#;
        let kids = requested_kids(body).unwrap();
        assert_eq!(kids, vec![format!("{}04", "11".repeat(15)), "22".repeat(16)]);
        let answer: serde_json::Value = serde_json::from_str(&response(&[([0x11; 16], [0xab; 16])])).unwrap();
        assert_eq!(answer["keys"][0]["kty"], "oct");
        assert_eq!(answer["keys"][0]["kid"], "EREREREREREREREREREREQ");
        assert_eq!(B64.decode(answer["keys"][0]["k"].as_str().unwrap()).unwrap(), vec![0xab; 16]);
    }

    #[test]
    fn malformed_requests_are_refused() {
        assert!(matches!(requested_kids(b"kids"), Err(ClearKeyError::NotJson(_))));
        assert_eq!(requested_kids(br#"{"kids":[]}"#), Err(ClearKeyError::NoKids));
        assert_eq!(requested_kids(br#"{"kids":["AAAA"]}"#), Err(ClearKeyError::BadKid("AAAA".into())));
        let many = format!(r#"{{"kids":[{}]}}"#, vec!["\"ERERERERERERERERERERBA\""; 17].join(","));
        assert_eq!(requested_kids(many.as_bytes()), Err(ClearKeyError::TooManyKids));
    }
}
