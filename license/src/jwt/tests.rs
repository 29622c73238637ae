//! Tokens signed as a platform's backend signs them: HMAC, RSA and ECDSA keys, their key
//! set, and the ways a token is refused.

use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256};
use serde_json::json;

use super::*;

/// A 2048-bit RSA key (PKCS#8), made once for these tests.
const RSA_PKCS8: &str = concat!(
    "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCTwf+LGNj7H6gj5Q7Pf3YIgKsUbakHEi8RuwwYyMB78n3x",
    "AZBW5A0t/ZthWoNxDwerC25RJNe9zH3nbXnG1dLIBa0Uctt81Jclw9KEZ9OHYnvwdrQlRTtuU8+A/EEc3xBr3Jl/ZxILiV0A",
    "+KKVOVQpG3MHeBE/ZSNZK6IoeSx7dXrHOaTY6bzDD6vhHnun4Nx66XyXNVeJo2gMLrxmNxa08jGoMDmbaXpKvSy3emw8LF6G",
    "DXONtkYPJ88if19HEyynze4wd1yyCWK9YVkk1JHWm9yUhjrswKNx7X6LCXHH4HE30yerp7xfO3vp8Lyqgq7bPqEp4WTqoHYB",
    "1vgZr56JAgMBAAECggEAC6cB8HCY3qeuyoiMNCBDflop+RDI2AOUGLGH5lshQDptui2QZM8pRuuNbw5Z9/bieO0MLx6uW4vJ",
    "O2YDyNggqPY29w+JGv1nn2p5AJ4bgr1pNBvNtclm7XAd7iMhPhX3+o70FVBbOPOv6kgGslP0vM/VsMzEN3FSFKcp650wEoWg",
    "6Ea6LY32qShUM+IG0/tnbUa+D3rwmBfrrC0B1QndliASrdHQN+bsvIRTpmOGd1xDQThud8RVBqkb5rvbLYX9IHZmnyxhEtqq",
    "oIvBbAIJhYBSHPvis8hdgXSpfB1fZl/8h6khVUw8gsIfmTPvyaqs/p7JgyVXZ+Xk2oURy/DQLQKBgQDDxvLmQ3ARK8lUG2uw",
    "0jfN/rUG2NLA8nGLtrF4LGLS7io5/yN7WorTBoT3H0uepEHKIo12CTMeLCNtHCnKdboWfQ6WO2gD7kyWMLlssKFXsClAa0TA",
    "Qq2hs2ZA9drfy8liXaFCj3Hn0+QzGHrCo0Qb9RfGJF5EkpIRxNe3z4gvCwKBgQDBNZ/UrYqAKVirJC2p3LLxXARY56ELgH/8",
    "IQRwp3nSFWOwxK5VIG94lcehZB2W6lGTmvE4Zt5r2Hn+mr7TV4Xl0UhDdJbfJqZrZ+aEh7WrVo0tsFSp6w6zIPDc9MDlgkVP",
    "OpoP2hsXnIfCThdFa3Vj1B3EnqQBSrNdAKdl4l61OwKBgECpn2SqdYNWYQLko6cdZ80kCYqfZszPxu0MhIVas7FTdKL/QCrn",
    "9t5IUvaEYaeePRSUYQDRfQ7EKVdKbAsw4yu2VnEMYgiaVrVslnHtzPx3dMiQJX8TBuJXrLhb+9TbLELPBgpD8q1NcRvnQ/Sx",
    "lDdftmB9dp1Tg+dWiqFtbF+NAoGAajJFVarFc8hGGltaVgEewhcntI4sMJxCvJyRSjJjfRuQnfqdL+ESJB9/iK/0q5zDlfQW",
    "HkA8hN6Jv23i8VssF7O+moUc4C7oTiTfyXymWDTMiI5hGrw+airy+R/2XrAJ1JCLWacyOPoqjJxLojZ8YZCXhBkGYEdk6vuP",
    "Byszjz0CgYAfqTuiHC/O86rSNLXnsjzp8jYtIfuBe7IJUdFky/EDcSAaw8MHzbTjZryhWT9d5VbrVcgjGqTB6tVdF6RvHfq9",
    "XUaRdTadx+wS8avvg5DED+k91nlqjljdBKsx6N2DU9aVDq/mglfB0Bk9GtRzdYYCblXnWbYuZBbkvXn+u/+yAA==",
);

fn b64(v: &[u8]) -> String {
    B64.encode(v)
}

/// A signed JWT: header `{"alg", "kid"}`, the claims, and `sign` over both.
fn jwt(alg: &str, kid: &str, claims: serde_json::Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let head = b64(json!({ "alg": alg, "typ": "JWT", "kid": kid }).to_string().as_bytes());
    let body = b64(claims.to_string().as_bytes());
    let signed = format!("{head}.{body}");
    let sig = sign(signed.as_bytes());
    format!("{signed}.{}", b64(&sig))
}

struct Signers {
    hmac: hmac::Key,
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    set: serde_json::Value,
}

fn signers() -> Signers {
    let rng = SystemRandom::new();
    let secret = [7u8; 32];
    let rsa = RsaKeyPair::from_pkcs8(&STANDARD.decode(RSA_PKCS8).unwrap()).unwrap();
    let rsa_public = signature::RsaPublicKeyComponents::<Vec<u8>>::from(rsa.public());
    let ec_pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, ec_pkcs8.as_ref(), &rng).unwrap();
    let point = ec.public_key().as_ref().to_vec();
    let set = json!({ "keys": [
        { "kty": "oct", "kid": "h1", "alg": "HS256", "k": b64(&secret) },
        { "kty": "RSA", "kid": "r1", "alg": "RS256", "use": "sig", "n": b64(&rsa_public.n), "e": b64(&rsa_public.e) },
        { "kty": "EC", "kid": "e1", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..]) },
        { "kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB" },
        { "kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "AAAA" },
    ]});
    Signers { hmac: hmac::Key::new(hmac::HMAC_SHA256, &secret), rsa, ec, set }
}

impl Signers {
    fn sign(&self, alg: &str, kid: &str, claims: serde_json::Value) -> String {
        let rng = SystemRandom::new();
        jwt(alg, kid, claims, |m| match alg {
            "HS256" => hmac::sign(&self.hmac, m).as_ref().to_vec(),
            "RS256" => {
                let mut sig = vec![0; self.rsa.public().modulus_len()];
                self.rsa.sign(&RSA_PKCS1_SHA256, &rng, m, &mut sig).unwrap();
                sig
            }
            _ => self.ec.sign(&rng, m).unwrap().as_ref().to_vec(),
        })
    }
}

fn claims(content: &str) -> serde_json::Value {
    json!({ "sub": "viewer-9", "content": content, "exp": 2_000, "iat": 1_000, "regions": ["eu"], "max_streams": 2 })
}

#[test]
fn each_algorithm_verifies_under_its_key_and_claims_come_through() {
    let s = signers();
    let jwks = Jwks::parse(s.set.to_string().as_bytes()).unwrap();
    assert_eq!(jwks.len(), 3, "the encryption key and the unknown curve are skipped: {jwks:?}");
    for (alg, kid) in [("HS256", "h1"), ("RS256", "r1"), ("ES256", "e1")] {
        let token = s.sign(alg, kid, claims("live/match"));
        let c = check(&jwks, &token, "live/match", 1_500).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!((c.sub.as_str(), c.exp, c.max_streams), ("viewer-9", 2_000, Some(2)), "{alg}");
        assert_eq!(c.regions, Some(vec!["eu".to_string()]));
    }
}

#[test]
fn expired_foreign_unknown_and_confused_tokens_are_refused() {
    let s = signers();
    let jwks = Jwks::parse(s.set.to_string().as_bytes()).unwrap();
    let token = s.sign("ES256", "e1", claims("live/match"));
    assert_eq!(check(&jwks, &token, "live/match", 2_000), Err(TokenError::Expired(0)));
    assert!(matches!(check(&jwks, &token, "live/other", 1_500), Err(TokenError::WrongContent { .. })));
    let unknown = s.sign("ES256", "e9", claims("live/match"));
    assert_eq!(check(&jwks, &unknown, "live/match", 1_500), Err(TokenError::UnknownKey("e9".into())));
    assert_eq!(check(&jwks, &unknown, "live/match", 1_500).unwrap_err().code(), "token_unknown_key");
    // The RSA key's public bytes used as an HMAC secret: refused for its algorithm.
    let confused = s.sign("HS256", "r1", claims("live/match"));
    assert_eq!(check(&jwks, &confused, "live/match", 1_500), Err(TokenError::Algorithm("HS256".into())));
    let none =
        format!("{}.{}.", b64(br#"{"alg":"none","kid":"h1"}"#), b64(claims("live/match").to_string().as_bytes()));
    assert_eq!(check(&jwks, &none, "live/match", 1_500), Err(TokenError::Algorithm("none".into())));
    // A signature from another key of the same kind.
    let other = Signers { hmac: hmac::Key::new(hmac::HMAC_SHA256, &[8; 32]), ..signers() };
    let forged = other.sign("HS256", "h1", claims("live/match"));
    assert_eq!(check(&jwks, &forged, "live/match", 1_500), Err(TokenError::BadSignature));
    // Claims changed after signing.
    let (head, rest) = token.split_once('.').unwrap();
    let sig = rest.split_once('.').unwrap().1;
    let mut longer = claims("live/match");
    longer["exp"] = json!(9_999_999);
    let tampered = format!("{head}.{}.{sig}", b64(longer.to_string().as_bytes()));
    assert_eq!(check(&jwks, &tampered, "live/match", 1_500), Err(TokenError::BadSignature));
    let early = s.sign("HS256", "h1", json!({ "sub": "v", "content": "live/match", "exp": 2_000, "nbf": 1_800 }));
    assert_eq!(check(&jwks, &early, "live/match", 1_500), Err(TokenError::NotYetValid));
    for bad in ["", "a.b", "a.b.c.d", "!!.??.**"] {
        assert!(check(&jwks, bad, "live/match", 1_500).is_err(), "{bad:?}");
    }
}

#[test]
fn a_pattern_covers_the_content_it_prefixes_and_bad_key_sets_say_why() {
    assert!(content_matches("live/*", "live/match"));
    assert!(content_matches("vod/season-2-*", "vod/season-2-ep3"));
    assert!(!content_matches("vod/season-2-*", "vod/season-3-ep1"));
    assert!(!content_matches("live/match", "live/match2"));
    let s = signers();
    let jwks = Jwks::parse(s.set.to_string().as_bytes()).unwrap();
    let any_live = s.sign("RS256", "r1", claims("live/*"));
    assert_eq!(check(&jwks, &any_live, "live/final", 1_500).unwrap().content, "live/final");
    assert!(check(&jwks, &any_live, "vod/film", 1_500).is_err());

    assert!(matches!(Jwks::parse(b"{}"), Err(JwksError::Json(_))));
    let short = json!({ "keys": [{ "kty": "oct", "kid": "h", "k": b64(b"short") }] });
    assert!(matches!(Jwks::parse(short.to_string().as_bytes()), Err(JwksError::Key { .. })));
    let no_kid = json!({ "keys": [{ "kty": "oct", "k": b64(&[1; 32]) }] });
    assert!(matches!(Jwks::parse(no_kid.to_string().as_bytes()), Err(JwksError::Key { .. })));
}

/// Tokens and key sets bitten at random: refused or taken, never a panic.
#[test]
fn damaged_tokens_and_key_sets_never_panic() {
    let s = signers();
    let set = s.set.to_string().into_bytes();
    let jwks = Jwks::parse(&set).unwrap();
    let token = s.sign("RS256", "r1", claims("live/match")).into_bytes();
    let mut x = 0x1234_5678_9abc_def1u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let bite = |v: &[u8], next: &mut dyn FnMut() -> u64| {
        let mut v = v.to_vec();
        for _ in 0..1 + next() % 3 {
            let at = (next() as usize) % v.len();
            v[at] = b".-_AZaz09{}\":,"[(next() % 14) as usize];
        }
        v
    };
    for _ in 0..3_000 {
        let t = bite(&token, &mut next);
        let _ = check(&jwks, &String::from_utf8_lossy(&t), "live/match", 1_500);
        let _ = Jwks::parse(&bite(&set, &mut next));
    }
}
