//! A stream whose keys come from a DRM provider: a key server that follows SPEKE v2 (CPIX
//! 2.3 documents, `X-Speke-Version: 2.0`) gives the key of each key period and the
//! signaling of Widevine, PlayReady and FairPlay. The stream's init segment carries the
//! provider's Widevine and PlayReady `pssh` boxes, its playlist FairPlay's `skd://` key
//! beside ClearKey's, the ClearKey license hands out the provider's key, and ffmpeg given
//! that key decodes the segments to the clear pictures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hyper::Method;
use serde_json::{json, Value};

use crate::cluster::eventually;
use crate::common::*;
use crate::protection::{decoded_frames, hex_bytes, protected_node, token};

const CPIX: &str = "urn:dashif:org:cpix";
const WIDEVINE: &str = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed";
const PLAYREADY: &str = "9a04f079-9840-4286-ab92-e65be0885f95";
const FAIRPLAY: &str = "94ce86fb-07ff-4f43-adb8-93d2fa968ca2";

/// What the key server gave: key id (hex) to (content id, key period, key).
type Given = Arc<Mutex<HashMap<String, (String, Option<String>, [u8; 16])>>>;

/// A version 0 `pssh` box of `system` carrying `data`.
fn pssh(system: &str, data: &[u8]) -> Vec<u8> {
    let id = hex_bytes(&system.replace('-', ""));
    [&((32 + data.len()) as u32).to_be_bytes()[..], b"pssh", &[0; 4], &id, &(data.len() as u32).to_be_bytes(), data]
        .concat()
}

/// The provider's Widevine pssh for a key id: what the test looks for in init segments.
fn widevine_pssh(kid: &str) -> Vec<u8> {
    pssh(WIDEVINE, format!("provider-widevine:{kid}").as_bytes())
}

/// Answers a CPIX request as a SPEKE v2 key server does: each content key filled with a
/// key of its own, each DRM system with its signaling.
fn answer(headers: &HeaderMap, body: &str, given: &Given) -> Result<String, (StatusCode, String)> {
    let bad = |why: &str| (StatusCode::BAD_REQUEST, why.to_string());
    if headers.get("x-speke-version").and_then(|v| v.to_str().ok()) != Some("2.0") {
        return Err(bad("X-Speke-Version: 2.0 is required"));
    }
    let doc = roxmltree::Document::parse(body).map_err(|e| bad(&e.to_string()))?;
    let root = doc.root_element();
    if !root.has_tag_name((CPIX, "CPIX")) || root.attribute("version") != Some("2.3") {
        return Err(bad("a CPIX 2.3 document is required"));
    }
    let content = root.attribute("contentId").ok_or_else(|| bad("no contentId"))?;
    let period =
        root.descendants().find(|n| n.has_tag_name((CPIX, "ContentKeyPeriod"))).and_then(|n| n.attribute("index"));
    let mut keys = String::new();
    for k in root.descendants().filter(|n| n.has_tag_name((CPIX, "ContentKey"))) {
        let kid = k.attribute("kid").ok_or_else(|| bad("a content key without kid"))?;
        if k.attribute("commonEncryptionScheme") != Some("cbcs") {
            return Err(bad("cbcs only"));
        }
        let key: [u8; 16] = ring::rand::generate(&ring::rand::SystemRandom::new()).unwrap().expose();
        given.lock().unwrap().insert(kid.replace('-', ""), (content.to_string(), period.map(str::to_string), key));
        keys.push_str(&format!(
            r#"<cpix:ContentKey kid="{kid}" commonEncryptionScheme="cbcs"><cpix:Data><pskc:Secret><pskc:PlainValue>{}</pskc:PlainValue></pskc:Secret></cpix:Data></cpix:ContentKey>"#,
            B64.encode(key)
        ));
    }
    let mut systems = String::new();
    for d in root.descendants().filter(|n| n.has_tag_name((CPIX, "DRMSystem"))) {
        let (kid, system) = (d.attribute("kid").unwrap_or_default(), d.attribute("systemId").unwrap_or_default());
        let hex_kid = kid.replace('-', "");
        let inner = match system {
            WIDEVINE => format!("<cpix:PSSH>{}</cpix:PSSH>", B64.encode(widevine_pssh(&hex_kid))),
            PLAYREADY => format!("<cpix:PSSH>{}</cpix:PSSH>", B64.encode(pssh(PLAYREADY, b"<WRMHEADER/>"))),
            FAIRPLAY => {
                let tag = format!("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://{hex_kid}\",KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1\"");
                format!(r#"<cpix:HLSSignalingData playlist="media">{}</cpix:HLSSignalingData>"#, B64.encode(tag))
            }
            _ => String::new(),
        };
        systems.push_str(&format!(r#"<cpix:DRMSystem kid="{kid}" systemId="{system}">{inner}</cpix:DRMSystem>"#));
    }
    Ok(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><cpix:CPIX xmlns:cpix="{CPIX}" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" contentId="{content}" version="2.3"><cpix:ContentKeyList>{keys}</cpix:ContentKeyList><cpix:DRMSystemList>{systems}</cpix:DRMSystemList></cpix:CPIX>"#
    ))
}

async fn key_server() -> (String, Given) {
    let given: Given = Arc::default();
    let g = given.clone();
    let app = axum::Router::new().route(
        "/speke/v2",
        routing::post(move |headers: HeaderMap, body: String| {
            let g = g.clone();
            async move {
                match answer(&headers, &body, &g) {
                    Ok(xml) => (StatusCode::OK, [("content-type", "application/xml"), ("x-speke-version", "2.0")], xml),
                    Err((status, why)) => (status, [("content-type", "text/plain"), ("x-speke-version", "2.0")], why),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/speke/v2"), given)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_keyed_by_a_speke_provider_carries_its_signaling_and_decrypts_with_its_key() {
    let (server, given) = key_server().await;
    let (node, api) = protected_node(|c| c.vod_ladder = "source".parse().unwrap()).await;
    let http = node.http_addr();
    let refused = api.call(Method::PUT, "/api/v1/streams/vault", Some(&json!({ "key_server": server }))).await;
    assert!(refused.is_err(), "a key server gives cbcs keys only");
    let body = json!({ "encryption": "cbcs", "key_server": server });
    let set = api.call(Method::PUT, "/api/v1/streams/vault", Some(&body)).await.expect("protected");
    assert_eq!(set["protection"]["key_server"], json!(server));
    let publisher = publish_sample(&node, "vault", 3);
    let valid = token(&api, "live/vault", now_ms() + 600_000, json!({})).await;
    let playlist = eventually(Duration::from_secs(20), "two segments", || async {
        let r = get(http, &format!("/live/vault/src/index.m3u8?token={valid}")).await;
        (r.status == 200 && r.text().matches("#EXTINF").count() >= 2).then(|| r.text())
    })
    .await;

    // The key is the provider's, asked for the stream and its first key period.
    let keys: Vec<&str> = playlist.lines().filter(|l| l.starts_with("#EXT-X-KEY:")).collect();
    let kid = keys[0].rsplit("KEYID=0x").next().unwrap().to_string();
    let (content, period, key) = given.lock().unwrap().get(&kid).cloned().expect("the key id asked of the server");
    assert_eq!((content.as_str(), period.as_deref()), ("live/vault", Some("0")));
    assert!(keys[0].contains("KEYFORMAT=\"org.w3.clearkey\""), "ClearKey first: {playlist}");
    assert_eq!(
        keys[1],
        format!("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://{kid}\",KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1\""),
        "FairPlay's key beside it"
    );

    // The init segment carries the provider's pssh boxes beside the common one.
    let p = parse_media(&playlist);
    let init = get(http, &format!("/live/vault/src/{}", p.maps[0])).await;
    assert_eq!(init.status, 200);
    let has = |b: &[u8]| init.body.windows(b.len()).any(|w| w == b);
    assert!(has(&widevine_pssh(&kid)), "the provider's Widevine pssh");
    assert!(has(&pssh(PLAYREADY, b"<WRMHEADER/>")), "the provider's PlayReady pssh");

    // The ClearKey license hands out the provider's key, and the media decrypts with it.
    let request = json!({ "kids": [base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hex_bytes(&kid))], "type": "temporary" });
    let license = post(http, &format!("/license/clearkey/live/vault/{kid}?token={valid}"), request.to_string()).await;
    assert_eq!(license.status, 200, "{}", license.text());
    let jwk: Value = serde_json::from_slice(&license.body).unwrap();
    let handed =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwk["keys"][0]["k"].as_str().unwrap()).unwrap();
    assert_eq!(handed, key.to_vec(), "the provider's key");
    let (_, _, uri) = p.segments.last().cloned().unwrap();
    let sealed = get(http, &format!("/live/vault/src/{uri}")).await;
    let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let frames = decoded_frames("speke", &init.body, &sealed.body, Some(&key_hex));
    assert!(frames.len() >= 10, "ffmpeg decodes the provider-keyed media: {} frames", frames.len());
    let metrics = get(http, "/metrics").await.text();
    assert!(metrics.contains("tessera_key_server_requests_total{outcome=\"keyed\"}"), "exchanges are counted");

    // An asset keyed by the provider: one key, no key period.
    let id = crate::protection::ready_asset(&api, http, "Provided").await;
    let body = json!({ "encryption": "cbcs", "key_server": server });
    api.call(Method::PUT, &format!("/api/v1/assets/{id}"), Some(&body)).await.expect("the asset protected");
    let valid = token(&api, &format!("vod/{id}"), now_ms() + 600_000, json!({})).await;
    let playlist = eventually(Duration::from_secs(20), "the asset's key", || async {
        let r = get(http, &format!("/vod/{id}/src/index.m3u8?token={valid}")).await;
        (r.status == 200 && r.text().contains("#EXT-X-KEY")).then(|| r.text())
    })
    .await;
    let kid =
        playlist.lines().find(|l| l.starts_with("#EXT-X-KEY:")).unwrap().rsplit("KEYID=0x").next().unwrap().to_string();
    let (content, period, _) = given.lock().unwrap().get(&kid).cloned().expect("the asset's key from the server");
    assert_eq!((content, period), (format!("vod/{id}"), None));
    let map =
        playlist.lines().find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\"")).unwrap().trim_end_matches('"').to_string();
    let init = get(http, &format!("/vod/{id}/src/{map}")).await;
    assert!(
        init.body.windows(widevine_pssh(&kid).len()).any(|w| w == widevine_pssh(&kid)),
        "the asset's init carries it too"
    );
    publisher.abort();
    node.shutdown().await;
}
