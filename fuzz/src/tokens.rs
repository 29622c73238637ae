//! Playback tokens as viewers present them: the cluster's own (`claims.mac`) and JWTs from
//! a platform's signer, and the key sets such a signer publishes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::hmac;
use tessera_license::jwt::Jwks;
use tessera_license::token::{TokenKey, Verifier};

const SECRET: &[u8] = b"a fuzzing secret of thirty-two bytes!";
const CONTENT: &str = "live/match";
const NOW_S: i64 = 1_800_000_000;

/// The input three ways: as a token string as it stands, as the claims of a token the
/// cluster signed, and as the claims of a JWT the platform signed (so the claims are read
/// past the signature check). A token that checks is unexpired and for the content asked.
pub(crate) fn playback_token(data: &[u8]) {
    let key = TokenKey::new(SECRET);
    let jwks = Jwks::parse(
        format!(r#"{{"keys":[{{"kty":"oct","kid":"k1","alg":"HS256","k":"{}"}}]}}"#, B64.encode(SECRET)).as_bytes(),
    )
    .expect("the fuzzing key set parses");
    let verifier = Verifier { own: &key, jwks: Some(&jwks) };
    let check = |token: &str| {
        if let Ok(claims) = verifier.check(token, CONTENT, NOW_S) {
            assert!(claims.exp > NOW_S, "an expired token was taken");
            assert_eq!(claims.content, CONTENT);
        }
    };
    check(&String::from_utf8_lossy(data));
    let body = B64.encode(data);
    let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, SECRET), body.as_bytes());
    check(&format!("{body}.{}", B64.encode(mac.as_ref())));
    let signed = format!("{}.{body}", B64.encode(br#"{"alg":"HS256","kid":"k1","typ":"JWT"}"#));
    let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, SECRET), signed.as_bytes());
    check(&format!("{signed}.{}", B64.encode(mac.as_ref())));
    let _ = Jwks::parse(data);
}
