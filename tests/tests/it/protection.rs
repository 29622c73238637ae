//! An encrypted live stream (HLS AES-128): the playlists name the key with the viewer's
//! token carried on, every segment and part is served encrypted and decrypts with the key
//! the license endpoint hands a valid token, and the endpoint refuses a missing, expired,
//! foreign or tampered token and a revoked viewer, each with its reason. A `cbcs` stream
//! names a ClearKey key and an init segment per key, and ffmpeg, given the key the ClearKey
//! license hands out, decodes its segments to exactly the pictures of the clear stream.

use std::time::Duration;

use hyper::Method;
use serde_json::{json, Value};
use tessera_cli::admin::AdminClient;
use tessera_packager::encrypt::aes128;

use crate::common::*;

const KEK: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
pub(crate) const ADMIN: &str = "protection-admin-token";

pub(crate) async fn token(api: &AdminClient, content: &str, expires_ms: i64, extra: Value) -> String {
    let mut body = json!({ "subject": "viewer-7", "content": content, "expires": rfc3339(expires_ms) });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let r = api.call(Method::POST, "/api/v1/tokens", Some(&body)).await.expect("a token");
    r["token"].as_str().expect("token").to_string()
}

/// The sample film uploaded over tus as an asset titled `title`, once it is ready: its id.
pub(crate) async fn ready_asset(api: &AdminClient, http: std::net::SocketAddr, title: &str) -> String {
    let tus = crate::vod::Tus { addr: http, auth: format!("Bearer {ADMIN}") };
    let url = crate::vod::location(&tus.create(crate::vod::MP4.len(), &[("title", title)]).await);
    let done = tus.patch(&url, 0, crate::vod::MP4, None).await;
    let id = done.headers["tessera-asset"].to_str().unwrap().to_string();
    crate::cluster::eventually(Duration::from_secs(30), "the asset ready", || async {
        let a: Value = api.get(&format!("/api/v1/assets/{id}")).await.ok()?;
        (a["state"] == "ready").then_some(())
    })
    .await;
    id
}

/// A node with the key-encryption key and the admin token, and its admin client.
pub(crate) async fn protected_node(
    tweak: impl FnOnce(&mut tessera_node::NodeConfig),
) -> (tessera_node::Node, AdminClient) {
    let kek = scratch_dir("kek");
    std::fs::create_dir_all(&kek).unwrap();
    std::fs::write(kek.join("kek"), KEK).unwrap();
    let node = node(|c| {
        c.kek_file = Some(kek.join("kek"));
        c.admin_tokens = vec![ADMIN.into()];
        tweak(c);
    })
    .await;
    let api = AdminClient::new(&node.http_addr().to_string(), ADMIN);
    (node, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_stream_is_served_encrypted_and_its_key_only_to_a_valid_token() {
    let (node, api) = protected_node(|_| {}).await;
    let http = node.http_addr();
    let set = api.call(Method::PUT, "/api/v1/streams/enc", Some(&json!({ "encryption": "aes-128" }))).await;
    assert_eq!(set.expect("encryption set")["protection"]["mode"], "aes-128");

    let publisher = publish_sample(&node, "enc", 3);
    let valid = token(&api, "live/enc", now_ms() + 600_000, json!({})).await;
    let mv = wait_ok(http, &format!("/live/enc/index.m3u8?token={valid}"), Duration::from_secs(15)).await;
    assert!(mv.text().contains(&format!("src/index.m3u8?token={valid}")), "renditions carry the token:\n{}", mv.text());
    let playlist = crate::cluster::eventually(Duration::from_secs(20), "two complete segments", || async {
        let r = get(http, &format!("/live/enc/src/index.m3u8?token={valid}")).await;
        (r.status == 200 && r.text().matches("#EXTINF").count() >= 2).then(|| r.text())
    })
    .await;
    let key_line = playlist.lines().find(|l| l.starts_with("#EXT-X-KEY:")).expect("a key tag").to_string();
    assert!(key_line.starts_with("#EXT-X-KEY:METHOD=AES-128,URI=\"/license/live/enc/"), "{key_line}");
    assert!(key_line.contains(&format!("?token={valid}\"")), "the key URI carries the token: {key_line}");
    let map_at = playlist.find("#EXT-X-MAP").unwrap();
    assert!(map_at < playlist.find("#EXT-X-KEY").unwrap(), "the init segment stays clear:\n{playlist}");
    let key_uri = key_line.split('"').nth(1).unwrap().to_string();
    let key_path = key_uri.split('?').next().unwrap().to_string();

    // The key, for a valid token: 16 bytes, never cached.
    let k = get(http, &key_uri).await;
    assert_eq!(k.status, 200, "{}", k.text());
    assert_eq!(k.headers.get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store, private"));
    let key: [u8; 16] = k.body.as_ref().try_into().expect("16 bytes");

    // Every segment and part is served encrypted, and decrypts to fMP4 with the key.
    let p = parse_media(&playlist);
    let (msn, _, uri) = p.segments.last().cloned().unwrap();
    let seg = get(http, &format!("/live/enc/src/{uri}")).await;
    assert_eq!(seg.status, 200);
    assert!(seg.body.len() % 16 == 0 && &seg.body[4..8] != b"moof", "served in clear");
    let clear = aes128::decrypt(&key, &aes128::segment_iv(msn), &seg.body).expect("the segment decrypts");
    assert_eq!(&clear[4..8], b"moof", "a segment is fragments");
    assert!(boxes(&clear).len() >= 2, "whole boxes, moof and mdat");
    let part = p.parts.last().cloned().unwrap();
    let part_bytes = get(http, &format!("/live/enc/src/{}", part.3)).await.body;
    let clear_part = aes128::decrypt(&key, &aes128::segment_iv(part.0), &part_bytes).expect("the part decrypts");
    assert_eq!(&clear_part[4..8], b"moof", "a part is a moof and its mdat");
    let init = get(http, &format!("/live/enc/src/{}", p.maps[0])).await.body;
    assert_eq!(&init[4..8], b"ftyp", "the init segment is clear");

    // Refusals, each with its reason.
    let refused = |path: String| async move {
        let r = get(http, &path).await;
        let v: Value = serde_json::from_slice(&r.body).unwrap_or_default();
        (r.status, v["error"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(refused(key_path.clone()).await, (401, "token_missing".to_string()));
    let expired = token(&api, "live/enc", now_ms() - 10_000, json!({})).await;
    assert_eq!(refused(format!("{key_path}?token={expired}")).await, (401, "token_expired".to_string()));
    let other = token(&api, "live/other", now_ms() + 600_000, json!({})).await;
    assert_eq!(refused(format!("{key_path}?token={other}")).await, (401, "token_wrong_content".to_string()));
    let mut tampered = valid.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(refused(format!("{key_path}?token={tampered}")).await, (401, "token_signature".to_string()));
    let us_only = token(&api, "live/enc", now_ms() + 600_000, json!({ "regions": ["us"] })).await;
    assert_eq!(refused(format!("{key_path}?token={us_only}")).await, (403, "region_not_allowed".to_string()));
    api.call(Method::POST, "/api/v1/revocations", Some(&json!({ "subject": "viewer-7" }))).await.expect("revoked");
    assert_eq!(refused(format!("{key_path}?token={valid}")).await, (403, "revoked".to_string()));
    api.call(Method::DELETE, "/api/v1/revocations/viewer-7", None).await.expect("restored");
    assert_eq!(get(http, &key_uri).await.status, 200);
    let metrics = get(http, "/metrics").await.text();
    assert!(metrics.contains("tessera_license_requests_total{outcome=\"token_expired\"}"), "refusals are counted");
    publisher.abort();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_at_segment_boundaries_and_every_segment_decrypts_with_the_key_named_before_it() {
    let (node, api) = protected_node(|c| {
        c.key_rotation_s = 2;
        c.window_segments = 12;
    })
    .await;
    let http = node.http_addr();
    api.call(Method::PUT, "/api/v1/streams/turning", Some(&json!({ "encryption": "aes-128" }))).await.unwrap();
    let publisher = publish_sample(&node, "turning", 4);
    let valid = token(&api, "live/turning", now_ms() + 600_000, json!({})).await;
    let path = format!("/live/turning/src/index.m3u8?token={valid}");
    // Each complete segment under the key named last before it.
    let under_keys = |playlist: &str| -> Vec<(u64, String)> {
        let mut current: Option<String> = None;
        let mut under = Vec::new();
        let p = parse_media(playlist);
        let mut segments = p.segments.iter();
        for line in playlist.lines() {
            if line.starts_with("#EXT-X-KEY:METHOD=AES-128") {
                current = Some(line.split('"').nth(1).unwrap().to_string());
            } else if line.starts_with("seg-") {
                let (msn, _, _) = segments.next().unwrap();
                under.push((*msn, current.clone().expect("a key before every segment")));
            }
        }
        under
    };
    let under = crate::cluster::eventually(Duration::from_secs(40), "segments under three keys", || async {
        let r = get(http, &path).await;
        if r.status != 200 {
            return None; // the first key is not made yet
        }
        let under = under_keys(&r.text());
        let distinct: std::collections::BTreeSet<&String> = under.iter().map(|(_, k)| k).collect();
        (distinct.len() >= 3).then_some(under)
    })
    .await;
    let mut keys = std::collections::BTreeMap::new();
    for (msn, uri) in &under {
        if !keys.contains_key(uri) {
            let k = get(http, uri).await;
            assert_eq!(k.status, 200, "{uri}: {}", k.text());
            keys.insert(uri.clone(), <[u8; 16]>::try_from(k.body.as_ref()).unwrap());
        }
        let seg = get(http, &format!("/live/turning/src/seg-{msn}.m4s")).await.body;
        let clear = aes128::decrypt(&keys[uri], &aes128::segment_iv(*msn), &seg);
        assert!(clear.is_ok_and(|c| &c[4..8] == b"moof"), "segment {msn} under {uri}");
    }
    assert!(keys.len() >= 3, "{} keys over {} segments", keys.len(), under.len());
    let distinct: std::collections::BTreeSet<_> = keys.values().collect();
    assert_eq!(distinct.len(), keys.len(), "every key is new");
    publisher.abort();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_with_signed_urls_needs_a_token_for_playlists_and_a_shared_signature_for_media() {
    let (node, api) = protected_node(|_| {}).await;
    let http = node.http_addr();
    let set = api.call(Method::PUT, "/api/v1/streams/members", Some(&json!({ "signed_urls": true }))).await.unwrap();
    assert_eq!(set["protection"]["signed_urls"], true, "{set}");
    let publisher = publish_sample(&node, "members", 2);
    let first = token(&api, "live/members", now_ms() + 600_000, json!({})).await;
    let media_path = format!("/live/members/src/index.m3u8?token={first}");
    let playlist = crate::cluster::eventually(Duration::from_secs(20), "a segment", || async {
        let r = get(http, &media_path).await;
        (r.status == 200 && r.text().contains("#EXTINF")).then(|| r.text())
    })
    .await;
    assert!(!playlist.contains("EXT-X-KEY"), "signed, not encrypted");
    let seg_line = playlist.lines().find(|l| l.starts_with("seg-")).expect("a segment").to_string();
    let sig = seg_line.split_once("?sig=").expect("media URIs carry a signature").1.to_string();
    assert!(playlist.contains(&format!("#EXT-X-MAP:URI=\"init-0.mp4?sig={sig}\"")), "{playlist}");

    // Another viewer gets the same media URLs (one per file for a CDN); the cookie works too.
    let second = token(&api, "live/members", now_ms() + 600_000, json!({})).await;
    let other =
        get_with(http, "/live/members/src/index.m3u8", &[("cookie", &format!("a=b; tessera_token={second}"))]).await;
    assert_eq!(other.status, 200, "{}", other.text());
    assert!(other.text().contains(&format!("?sig={sig}")));

    // Media: only with the signature; playlists: only with a token.
    let seg = seg_line.split('?').next().unwrap();
    assert_eq!(get(http, &format!("/live/members/src/{seg_line}")).await.status, 200);
    assert_eq!(get(http, &format!("/live/members/src/{seg}")).await.status, 403);
    assert_eq!(get(http, &format!("/live/members/src/{seg}?sig=AAAAAAAAAAAAAAAAAAAAAA")).await.status, 403);
    assert_eq!(get(http, "/live/members/index.m3u8").await.status, 401);
    assert_eq!(get(http, "/live/members/src/index.m3u8").await.status, 401);
    let expired = token(&api, "live/members", now_ms() - 1_000, json!({})).await;
    assert_eq!(get(http, &format!("/live/members/index.m3u8?token={expired}")).await.status, 401);
    let mv = get(http, &format!("/live/members/index.m3u8?token={first}")).await;
    assert_eq!(mv.status, 200);
    assert!(mv.text().contains(&format!("src/index.m3u8?token={first}")));
    publisher.abort();
    node.shutdown().await;
}

/// The first fragment (`moof` + `mdat`) of a segment.
fn first_fragment(segment: &[u8]) -> &[u8] {
    let size = |at: usize| u32::from_be_bytes(segment[at..at + 4].try_into().unwrap()) as usize;
    let moof = size(0);
    &segment[..moof + size(moof)]
}

/// Decodes an init segment followed by the first fragment of a segment with ffmpeg, the
/// key given when there is one: the MD5 of every decoded video and audio frame. (ffmpeg 5.1
/// mixes up the encryption information of fragments it reads ahead, so it is given one.)
pub(crate) fn decoded_frames(what: &str, init: &[u8], segment: &[u8], key: Option<&str>) -> Vec<String> {
    let file = scratch_dir("cbcs").join(format!("{what}.mp4"));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, [init, first_fragment(segment)].concat()).unwrap();
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-v", "error", "-nostdin"]);
    if let Some(key) = key {
        cmd.args(["-decryption_key", key]);
    }
    let out = cmd
        .arg("-i")
        .arg(&file)
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg must be installed (.ci/run installs it)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cbcs_stream_names_a_clearkey_key_and_an_init_per_key_and_decrypts_to_the_clear_pictures() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;
    let (node, api) = protected_node(|_| {}).await;
    let http = node.http_addr();
    let set = api.call(Method::PUT, "/api/v1/streams/sealed", Some(&json!({ "encryption": "cbcs" }))).await;
    assert_eq!(set.expect("encryption set")["protection"]["mode"], "cbcs");
    let publisher = publish_sample(&node, "sealed", 3);
    let valid = token(&api, "live/sealed", now_ms() + 600_000, json!({})).await;
    let playlist = crate::cluster::eventually(Duration::from_secs(20), "two complete segments", || async {
        let r = get(http, &format!("/live/sealed/src/index.m3u8?token={valid}")).await;
        (r.status == 200 && r.text().matches("#EXTINF").count() >= 2).then(|| r.text())
    })
    .await;
    let key_line = playlist.lines().find(|l| l.starts_with("#EXT-X-KEY:")).expect("a key tag").to_string();
    let kid = key_line.rsplit("KEYID=0x").next().unwrap().to_string();
    assert_eq!(kid.len(), 32, "{key_line}");
    assert_eq!(
        key_line,
        format!("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"/license/clearkey/live/sealed/{kid}?token={valid}\",KEYFORMAT=\"org.w3.clearkey\",KEYFORMATVERSIONS=\"1\",KEYID=0x{kid}")
    );
    let p = parse_media(&playlist);
    assert_eq!(p.maps[0], format!("init-0-{kid}.mp4"), "the init segment names the key");
    assert!(playlist.find("#EXT-X-KEY").unwrap() < playlist.find("#EXT-X-MAP").unwrap(), "{playlist}");
    let init = get(http, &format!("/live/sealed/src/{}", p.maps[0])).await;
    assert_eq!(init.status, 200);
    for kind in [&b"encv"[..], b"enca", b"sinf", b"tenc", b"pssh"] {
        assert!(init.body.windows(4).any(|w| w == kind), "the init segment has {}", String::from_utf8_lossy(kind));
    }
    assert!(init.body.windows(16).any(|w| w == hex_bytes(&kid)), "tenc and pssh name the key id");
    let foreign = get(http, &format!("/live/sealed/src/init-0-{}.mp4", "0".repeat(32))).await;
    assert_eq!(foreign.status, 404, "no init segment for a key not the stream's");
    let (msn, _, uri) = p.segments.last().cloned().unwrap();
    let sealed = get(http, &format!("/live/sealed/src/{uri}")).await;
    assert_eq!(sealed.status, 200);
    assert!(sealed.body.windows(4).any(|w| w == b"senc"), "samples carry their subsamples");

    // The ClearKey license, as a browser's CDM asks for it, and the same key by id.
    let request = json!({ "kids": [B64.encode(hex_bytes(&kid))], "type": "temporary" }).to_string();
    let license = post(http, &format!("/license/clearkey/live/sealed/{kid}?token={valid}"), request.clone()).await;
    assert_eq!(license.status, 200, "{}", license.text());
    assert_eq!(license.headers.get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store, private"));
    let jwk: Value = serde_json::from_slice(&license.body).unwrap();
    assert_eq!(jwk["keys"][0]["kid"], B64.encode(hex_bytes(&kid)));
    let key = B64.decode(jwk["keys"][0]["k"].as_str().unwrap()).unwrap();
    let raw = get(http, &format!("/license/live/sealed/{kid}?token={valid}")).await;
    assert_eq!(raw.body.to_vec(), key, "one key, by either endpoint");
    assert_eq!(post(http, &format!("/license/clearkey/live/sealed/{kid}"), request.clone()).await.status, 401);
    let malformed = post(http, &format!("/license/clearkey/live/sealed?token={valid}"), "kids").await;
    assert_eq!(malformed.status, 400, "{}", malformed.text());
    let other = token(&api, "live/other", now_ms() + 600_000, json!({})).await;
    assert_eq!(post(http, &format!("/license/clearkey/live/sealed?token={other}"), request).await.status, 401);

    // ffmpeg decrypts with the key and decodes exactly the clear stream's pictures: the
    // same segment, served clear once the stream is no longer encrypted.
    let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let decrypted = decoded_frames("decrypted", &init.body, &sealed.body, Some(&key_hex));
    let wrong = decoded_frames("wrong-key", &init.body, &sealed.body, Some(&"00".repeat(16)));
    api.call(Method::PUT, "/api/v1/streams/sealed", Some(&json!({ "encryption": "none" }))).await.unwrap();
    let clear_init = get(http, "/live/sealed/src/init-0.mp4").await.body;
    let clear = get(http, &format!("/live/sealed/src/seg-{msn}.m4s")).await;
    assert_eq!(clear.status, 200);
    assert!(!clear.body.windows(4).any(|w| w == b"senc"), "served clear now");
    let frames = decoded_frames("clear", &clear_init, &clear.body, None);
    assert!(frames.len() >= 10, "{} frames decoded", frames.len());
    assert_eq!(decrypted, frames, "the decrypted fragment decodes to the clear pictures and sound");
    assert_ne!(wrong, frames, "without the right key the pictures are not the clear ones");
    publisher.abort();
    node.shutdown().await;
}

pub(crate) fn hex_bytes(hex: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_limit_holds_across_the_cluster_whichever_node_a_viewer_asks() {
    let kek = scratch_dir("cluster-kek").join("kek");
    std::fs::create_dir_all(kek.parent().unwrap()).unwrap();
    std::fs::write(&kek, KEK).unwrap();
    let kek_flag = kek.to_string_lossy().into_owned();
    let (nodes, _join, admin) =
        crate::cluster::form_each(3, |_| vec!["--kek-file".to_string(), kek_flag.clone()]).await;
    let api = nodes[0].api(&admin);
    api.call(Method::PUT, "/api/v1/streams/shared", Some(&json!({ "encryption": "aes-128" }))).await.unwrap();
    let publisher = publish_sample_to(nodes[0].srt, "shared", 4);
    // One subject with a limit of one stream, signed in on two devices (two tokens, told
    // apart by their expiry).
    let limited = json!({ "max_streams": 1 });
    let phone = token(&api, "live/shared", now_ms() + 600_000, limited.clone()).await;
    let tv = token(&api, "live/shared", now_ms() + 900_000, limited).await;
    assert_ne!(phone, tv);
    let key_path = crate::cluster::eventually(Duration::from_secs(30), "a key on every node", || async {
        let mut paths = Vec::new();
        for n in &nodes {
            let r = get(n.http, &format!("/live/shared/src/index.m3u8?token={phone}")).await;
            let line = r.text().lines().find(|l| l.starts_with("#EXT-X-KEY:"))?.to_string();
            paths.push(line.split('"').nth(1)?.split('?').next()?.to_string());
        }
        paths.dedup();
        (paths.len() == 1).then(|| paths.remove(0))
    })
    .await;
    let ask = |i: usize, token: &str| {
        let (addr, path) = (nodes[i].http, format!("{key_path}?token={token}"));
        async move {
            let r = get(addr, &path).await;
            let v: Value = serde_json::from_slice(&r.body).unwrap_or_default();
            (r.status, v["error"].as_str().unwrap_or_default().to_string())
        }
    };
    assert_eq!(ask(0, &phone).await.0, 200, "the phone watches, through node 1");
    assert_eq!(ask(1, &tv).await, (403, "stream_limit".to_string()), "the TV, through node 2, is over the limit");
    assert_eq!(ask(2, &tv).await, (403, "stream_limit".to_string()), "and through node 3");
    assert_eq!(ask(2, &phone).await.0, 200, "the phone's own stream moving to node 3 is still one stream");
    assert_eq!(ask(1, &phone).await.0, 200);
    let refused: u64 = futures::future::join_all(nodes.iter().map(|n| async move {
        let m = get(n.http, "/metrics").await.text();
        m.lines()
            .find_map(|l| l.strip_prefix("tessera_license_requests_total{outcome=\"stream_limit\"} "))
            .map_or(0, |v| v.parse().unwrap())
    }))
    .await
    .into_iter()
    .sum();
    assert_eq!(refused, 2, "each refusal counted once, on the node that answered it");
    publisher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_asset_is_served_encrypted_and_its_key_only_to_a_valid_token() {
    let (node, api) = protected_node(|c| c.vod_ladder = "source".parse().unwrap()).await;
    let http = node.http_addr();
    let id = ready_asset(&api, http, "Locked").await;
    let clear0 = get(http, &format!("/vod/{id}/src/seg-0.m4s")).await.body;
    assert_eq!(&clear0[4..8], b"moof");
    assert_eq!(get(http, &format!("/vod/{id}/src/iframes.m3u8")).await.status, 200);

    let set = api.call(Method::PUT, &format!("/api/v1/assets/{id}"), Some(&json!({ "encryption": "aes-128" }))).await;
    assert_eq!(set.unwrap()["protection"]["mode"], "aes-128");
    let refused = api.call(Method::PUT, &format!("/api/v1/assets/{id}"), Some(&json!({ "ladder": "source" }))).await;
    assert!(refused.is_err(), "an asset takes no ladder");
    let valid = token(&api, &format!("vod/{id}"), now_ms() + 600_000, json!({})).await;
    let playlist = crate::cluster::eventually(Duration::from_secs(10), "the asset's key", || async {
        let r = get(http, &format!("/vod/{id}/src/index.m3u8?token={valid}")).await;
        (r.status == 200).then(|| r.text())
    })
    .await;
    let key_line = playlist.lines().find(|l| l.starts_with("#EXT-X-KEY:METHOD=AES-128")).expect(&playlist);
    assert!(key_line.contains(&format!("URI=\"/license/vod/{id}/")), "{key_line}");
    assert!(key_line.contains(&format!("?token={valid}\"")), "the key URI carries the token: {key_line}");
    assert!(playlist.find("#EXT-X-MAP").unwrap() < playlist.find("#EXT-X-KEY").unwrap(), "clear init:\n{playlist}");
    let mv = get(http, &format!("/vod/{id}/index.m3u8?token={valid}")).await.text();
    assert!(mv.contains(&format!("src/index.m3u8?token={valid}")), "{mv}");
    assert!(!mv.contains("I-FRAME"), "no I-frame byte ranges into encrypted segments: {mv}");
    assert_eq!(get(http, &format!("/vod/{id}/src/iframes.m3u8")).await.status, 404);

    let key_uri = key_line.split('"').nth(1).unwrap().to_string();
    let k = get(http, &key_uri).await;
    assert_eq!(k.status, 200, "{}", k.text());
    let key: [u8; 16] = k.body.as_ref().try_into().expect("16 bytes");
    let seg = get(http, &format!("/vod/{id}/src/seg-0.m4s")).await.body;
    assert_ne!(seg, clear0, "served encrypted");
    let clear = aes128::decrypt(&key, &aes128::segment_iv(0), &seg).expect("the segment decrypts");
    assert_eq!(clear, clear0.to_vec(), "to the clear segment");

    // The same asset under cbcs: the ClearKey key, an init segment per key, samples
    // encrypted in place.
    api.call(Method::PUT, &format!("/api/v1/assets/{id}"), Some(&json!({ "encryption": "cbcs" }))).await.unwrap();
    let playlist = get(http, &format!("/vod/{id}/src/index.m3u8?token={valid}")).await.text();
    let key_line = playlist.lines().find(|l| l.starts_with("#EXT-X-KEY:METHOD=SAMPLE-AES")).expect(&playlist);
    assert!(key_line.contains("KEYFORMAT=\"org.w3.clearkey\"") && key_line.contains("KEYID=0x"), "{key_line}");
    let kid = key_line.rsplit("KEYID=0x").next().unwrap().to_string();
    assert!(playlist.contains(&format!("#EXT-X-MAP:URI=\"init-1-{kid}.mp4\"")), "{playlist}");
    let init = get(http, &format!("/vod/{id}/src/init-1-{kid}.mp4")).await;
    assert_eq!(init.status, 200);
    for b in [&b"encv"[..], b"tenc", b"pssh"] {
        assert!(init.body.windows(4).any(|w| w == b), "the init segment has {}", String::from_utf8_lossy(b));
    }
    assert_eq!(get(http, &format!("/vod/{id}/src/init-1-{}.mp4", "0".repeat(32))).await.status, 404, "a foreign key");
    let seg = get(http, &format!("/vod/{id}/src/seg-0.m4s")).await.body;
    assert!(seg != clear0 && seg.windows(4).any(|w| w == b"senc"), "samples encrypted in place");
    let license = format!("/license/clearkey/vod/{id}/{kid}?token={valid}");
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
    use base64::Engine;
    let kid_b64 = B64URL.encode(hex_bytes(&kid));
    let body = json!({ "kids": [kid_b64], "type": "temporary" }).to_string();
    let r = post(http, &license, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let jwk: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(B64URL.decode(jwk["keys"][0]["k"].as_str().unwrap()).unwrap(), key.to_vec(), "the asset's one key");

    let key_path = key_uri.split('?').next().unwrap();
    let refusal = |r: Response| (r.status, serde_json::from_slice::<Value>(&r.body).unwrap()["error"].to_string());
    assert_eq!(refusal(get(http, key_path).await), (401, "\"token_missing\"".into()));
    let foreign = token(&api, "live/other", now_ms() + 600_000, json!({})).await;
    let refused = refusal(get(http, &format!("{key_path}?token={foreign}")).await);
    assert_eq!(refused, (401, "\"token_wrong_content\"".into()), "another content's token");
    node.shutdown().await;
}
