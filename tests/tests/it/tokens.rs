//! Playback tokens a platform's backend signs itself: JWTs (ES256 here) under its key set
//! (`--jwks`), with the key id naming the key. They open a signed, encrypted, region-limited
//! stream's playlists and keys; an expired one, one signed by a key the set does not hold,
//! and one from the wrong region are refused with their reasons; a key added to the file
//! is taken without a restart; Tessera's own tokens keep working beside them.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hyper::Method;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

use crate::cluster::eventually;
use crate::common::*;
use crate::protection::{protected_node, token};

/// A signing key of the platform, and its entry in the key set.
struct Signer {
    kid: &'static str,
    key: EcdsaKeyPair,
}

impl Signer {
    fn new(kid: &'static str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Signer { kid, key: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap() }
    }

    fn jwk(&self) -> Value {
        let point = self.key.public_key().as_ref();
        json!({ "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
                "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..]) })
    }

    fn sign(&self, claims: Value) -> String {
        let head = B64.encode(json!({ "alg": "ES256", "typ": "JWT", "kid": self.kid }).to_string());
        let signed = format!("{head}.{}", B64.encode(claims.to_string()));
        let sig = self.key.sign(&SystemRandom::new(), signed.as_bytes()).unwrap();
        format!("{signed}.{}", B64.encode(sig.as_ref()))
    }
}

fn claims(content: &str, exp_ms: i64) -> Value {
    json!({ "sub": "member-31", "content": content, "exp": exp_ms / 1000, "iat": now_ms() / 1000 })
}

async fn answer(http: std::net::SocketAddr, path: &str) -> (u16, String) {
    let r = get(http, path).await;
    let v: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    (r.status, v["error"].as_str().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_of_the_platforms_signer_open_playlists_and_keys_and_its_key_set_rotates() {
    let dir = scratch_dir("jwks");
    std::fs::create_dir_all(&dir).unwrap();
    let jwks = dir.join("jwks.json");
    let (first, second) = (Signer::new("2026-a"), Signer::new("2026-b"));
    std::fs::write(&jwks, json!({ "keys": [first.jwk()] }).to_string()).unwrap();
    let path = jwks.clone();
    let (node, api) = protected_node(move |c| c.jwks = Some(path.display().to_string())).await;
    let http = node.http_addr();
    api.call(Method::PUT, "/api/v1/regions", Some(&json!({ "ranges": ["127.0.0.0/8=eu"] }))).await.expect("table");
    let body = json!({ "encryption": "aes-128", "signed_urls": true, "regions": ["eu"] });
    api.call(Method::PUT, "/api/v1/streams/club", Some(&body)).await.expect("protected");
    let publisher = publish_sample(&node, "club", 3);

    // A token for every live stream: the playlist, its signed media and the key.
    let jwt = first.sign(claims("live/*", now_ms() + 600_000));
    let playlist = eventually(Duration::from_secs(20), "a segment", || async {
        let r = get(http, &format!("/live/club/src/index.m3u8?token={jwt}")).await;
        (r.status == 200 && r.text().contains("#EXTINF")).then(|| r.text())
    })
    .await;
    let key_uri = playlist.lines().find(|l| l.starts_with("#EXT-X-KEY:")).unwrap().split('"').nth(1).unwrap();
    assert!(key_uri.ends_with(&format!("?token={jwt}")), "the key URI carries the JWT: {key_uri}");
    let key = get(http, key_uri).await;
    assert_eq!((key.status, key.body.len()), (200, 16), "{}", key.text());
    let seg = playlist.lines().find(|l| l.starts_with("seg-")).expect("a signed segment");
    assert_eq!(get(http, &format!("/live/club/src/{seg}")).await.status, 200);

    // Refusals, each with its reason.
    let key_path = key_uri.split('?').next().unwrap();
    let expired = first.sign(claims("live/club", now_ms() - 5_000));
    assert_eq!(answer(http, &format!("{key_path}?token={expired}")).await, (401, "token_expired".into()));
    let playlist_with = |t: &str| format!("/live/club/src/index.m3u8?token={t}");
    assert_eq!(answer(http, &playlist_with(&expired)).await, (401, "token_expired".into()));
    let unknown = second.sign(claims("live/club", now_ms() + 600_000));
    assert_eq!(answer(http, &format!("{key_path}?token={unknown}")).await, (401, "token_unknown_key".into()));
    assert_eq!(answer(http, &playlist_with(&unknown)).await, (401, "token_unknown_key".into()));
    let other = first.sign(claims("vod/*", now_ms() + 600_000));
    assert_eq!(answer(http, &playlist_with(&other)).await, (401, "token_wrong_content".into()));
    let abroad =
        first.sign(json!({ "sub": "m", "content": "live/club", "exp": now_ms() / 1000 + 600, "regions": ["us"] }));
    assert_eq!(answer(http, &format!("{key_path}?token={abroad}")).await, (403, "region_not_allowed".into()));

    // The platform adds its next key to the set: tokens of both keys are taken, no restart.
    std::fs::write(&jwks, json!({ "keys": [first.jwk(), second.jwk()] }).to_string()).unwrap();
    eventually(Duration::from_secs(20), "the new key taken", || async {
        (get(http, &format!("{key_path}?token={unknown}")).await.status == 200).then_some(())
    })
    .await;
    assert_eq!(get(http, key_uri).await.status, 200, "the first key still signs");
    // Tessera's own tokens work beside them.
    let own = token(&api, "live/club", now_ms() + 600_000, json!({})).await;
    assert_eq!(get(http, &format!("{key_path}?token={own}")).await.status, 200);
    publisher.abort();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_set_fetched_from_the_signers_url_takes_a_new_key_when_a_token_names_it() {
    let (first, second) = (Signer::new("url-a"), Signer::new("url-b"));
    let served = std::sync::Arc::new(std::sync::Mutex::new(json!({ "keys": [first.jwk()] })));
    let s = served.clone();
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let s = s.clone();
            async move { axum::Json(s.lock().unwrap().clone()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (node, api) = protected_node(move |c| c.jwks = Some(url)).await;
    let http = node.http_addr();
    api.call(Method::PUT, "/api/v1/streams/fetched", Some(&json!({ "signed_urls": true }))).await.expect("signed");
    let publisher = publish_sample(&node, "fetched", 4);
    let path = |t: &str| format!("/live/fetched/src/index.m3u8?token={t}");
    let by_first = first.sign(claims("live/fetched", now_ms() + 600_000));
    eventually(Duration::from_secs(20), "the fetched key set in force", || async {
        (get(http, &path(&by_first)).await.status == 200).then_some(())
    })
    .await;
    // The signer adds a key and signs with it: the first token naming it has the set
    // fetched again (at most every 30 s), and from then on it is taken.
    served.lock().unwrap()["keys"].as_array_mut().unwrap().push(second.jwk());
    let by_second = second.sign(claims("live/fetched", now_ms() + 600_000));
    assert_eq!(answer(http, &path(&by_second)).await, (401, "token_unknown_key".into()));
    eventually(Duration::from_secs(45), "the new key fetched", || async {
        (get(http, &path(&by_second)).await.status == 200).then_some(())
    })
    .await;
    let metrics = get(http, "/metrics").await.text();
    assert!(metrics.contains("tessera_jwks_fetches_total{outcome=\"fetched\"}"), "fetches are counted");
    publisher.abort();
    node.shutdown().await;
}
