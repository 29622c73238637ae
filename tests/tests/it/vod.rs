//! VOD uploads over tus 1.0 against a real node: created, sent in chunks (a corrupted chunk
//! refused and not kept, a wrong offset refused), resumed from the offset the node reports,
//! completed into an asset whose stored source is the file byte for byte; files that are
//! not media, truncated or over the size limit refused, with nothing registered.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use hyper::Method;
use serde_json::Value;

use crate::common::*;

const ADMIN: &str = "vod-admin-token";
pub(crate) const MP4: &[u8] = include_bytes!("../../../samples/sample.mp4");

fn sha256_hex(data: &[u8]) -> String {
    sha256(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 by way of coreutils' sha256sum, an implementation independent of the node's.
fn sha256(data: &[u8]) -> Vec<u8> {
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    let hex = String::from_utf8(out.stdout).unwrap();
    (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect()
}

pub(crate) struct Tus {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) auth: String,
}

impl Tus {
    async fn call(&self, method: Method, path: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Response {
        let mut all = vec![("authorization", self.auth.as_str()), ("tus-resumable", "1.0.0")];
        all.extend_from_slice(headers);
        request(method, self.addr, path, &all, body.into()).await
    }

    /// Creates an upload: its URL.
    pub(crate) async fn create(&self, length: usize, metadata: &[(&str, &str)]) -> Response {
        let meta: Vec<String> = metadata.iter().map(|(k, v)| format!("{k} {}", B64.encode(v))).collect();
        let length = length.to_string();
        let headers = [("upload-length", length.as_str()), ("upload-metadata", &meta.join(","))];
        self.call(Method::POST, "/api/v1/uploads", &headers, Bytes::new()).await
    }

    pub(crate) async fn patch(&self, url: &str, offset: usize, chunk: &[u8], checksum: Option<&[u8]>) -> Response {
        let offset = offset.to_string();
        let sum = checksum.map(|c| format!("sha256 {}", B64.encode(sha256(c))));
        let mut headers = vec![("upload-offset", offset.as_str()), ("content-type", "application/offset+octet-stream")];
        if let Some(s) = &sum {
            headers.push(("upload-checksum", s.as_str()));
        }
        self.call(Method::PATCH, url, &headers, Bytes::copy_from_slice(chunk)).await
    }

    async fn offset(&self, url: &str) -> Option<u64> {
        let r = self.call(Method::HEAD, url, &[], Bytes::new()).await;
        r.headers.get("upload-offset")?.to_str().ok()?.parse().ok()
    }
}

pub(crate) fn location(r: &Response) -> String {
    assert_eq!(r.status, 201, "{}", r.text());
    r.headers.get("location").expect("a Location").to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_film_uploaded_over_tus_in_chunks_and_resumed_becomes_an_asset_and_bad_files_are_refused() {
    let data = scratch_dir("vod");
    let node = node(|c| {
        c.data_dir = data.clone();
        c.admin_tokens = vec![ADMIN.into()];
        c.upload_max_bytes = 1 << 20;
    })
    .await;
    let tus = Tus { addr: node.http_addr(), auth: format!("Bearer {ADMIN}") };
    let options = request(Method::OPTIONS, node.http_addr(), "/api/v1/uploads", &[], Bytes::new()).await;
    assert_eq!(options.status, 204);
    assert_eq!(options.headers["tus-version"], "1.0.0");
    assert_eq!(options.headers["tus-max-size"], (1u64 << 20).to_string().as_str());
    assert!(options.headers["tus-extension"].to_str().unwrap().contains("checksum"));

    let sha = sha256_hex(MP4);
    let url = location(&tus.create(MP4.len(), &[("title", "The Sample"), ("sha256", &sha)]).await);
    let third = MP4.len() / 3;
    let first = tus.patch(&url, 0, &MP4[..third], Some(&MP4[..third])).await;
    assert_eq!(first.status, 204, "{}", first.text());
    assert_eq!(first.headers["upload-offset"], third.to_string().as_str());
    // A chunk damaged on the way: refused by its checksum, nothing of it kept.
    let mut damaged = MP4[third..2 * third].to_vec();
    damaged[100] ^= 0xff;
    let refused = tus.patch(&url, third, &damaged, Some(&MP4[third..2 * third])).await;
    assert_eq!(refused.status, 460, "{}", refused.text());
    assert_eq!(tus.offset(&url).await, Some(third as u64), "the damaged chunk was not kept");
    // A client that lost track of the offset is told where the upload stands.
    let wrong = tus.patch(&url, 0, &MP4[..10], None).await;
    assert_eq!((wrong.status, wrong.headers["upload-offset"].to_str().unwrap()), (409, third.to_string().as_str()));
    // Resumed from the offset the node reports, to the end.
    let at = tus.offset(&url).await.unwrap() as usize;
    assert_eq!(tus.patch(&url, at, &MP4[at..2 * third], None).await.status, 204);
    let last = tus.patch(&url, 2 * third, &MP4[2 * third..], None).await;
    assert_eq!(last.status, 204, "{}", last.text());
    let id = last.headers["tessera-asset"].to_str().unwrap().to_string();
    assert_eq!(tus.offset(&url).await, Some(MP4.len() as u64), "a finished upload says so when resumed");

    let api = tessera_cli::admin::AdminClient::new(&node.http_addr().to_string(), ADMIN);
    let asset: Value = api.get(&format!("/api/v1/assets/{id}")).await.unwrap();
    assert_eq!(asset["title"], "The Sample");
    assert!(asset["state"] == "transcoding" || asset["state"] == "ready", "its jobs are recorded: {asset}");
    assert_eq!(asset["source"]["sha256"], sha.as_str());
    assert_eq!(asset["source"]["container"], "mp4");
    assert_eq!(asset["source"]["video"], "h264 640x360");
    assert_eq!(asset["source"]["audio"], "aac 48000 Hz 2 ch");
    let duration = asset["source"]["duration_ms"].as_u64().unwrap();
    assert!((5_900..6_200).contains(&duration), "{duration}");
    let stored = data.join("sources").join(&id).join("source");
    assert_eq!(std::fs::read(&stored).unwrap(), MP4, "the stored source is the file");

    // Not media; truncated (a complete upload of a cut file); over the limit; a wrong hash.
    let text = b"shot list: 1. wide, 2. close-up, 3. the ending nobody agreed on".to_vec();
    let cut = MP4[..MP4.len() * 2 / 3].to_vec();
    for (file, status, code) in [(&text, 422, "not_media"), (&cut, 422, "truncated")] {
        let url = location(&tus.create(file.len(), &[("title", "bad")]).await);
        let r = tus.patch(&url, 0, file, None).await;
        let v: Value = serde_json::from_slice(&r.body).unwrap_or_default();
        assert_eq!((r.status, v["error"].as_str().unwrap_or_default()), (status, code), "{}", r.text());
        assert_eq!(tus.call(Method::HEAD, &url, &[], Bytes::new()).await.status, 404, "the refused upload is gone");
    }
    let url = location(&tus.create(MP4.len(), &[("sha256", &"0".repeat(64))]).await);
    assert_eq!(tus.patch(&url, 0, MP4, None).await.status, 460, "the whole file's SHA-256 is checked");
    assert_eq!(tus.create(2 << 20, &[]).await.status, 413);
    assert_eq!(request(Method::POST, node.http_addr(), "/api/v1/uploads", &[], Bytes::new()).await.status, 401);
    let assets: Value = api.get("/api/v1/assets").await.unwrap();
    assert_eq!(assets["data"].as_array().unwrap().len(), 1, "only the good file is an asset: {assets}");

    api.call(Method::DELETE, &format!("/api/v1/assets/{id}"), None).await.unwrap();
    assert!(!stored.exists(), "the source goes with its asset");
    assert!(api.get(&format!("/api/v1/assets/{id}")).await.is_err());
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tessera_vod_upload_resumes_after_being_killed_and_the_stored_file_is_whole() {
    let node = node(|c| c.admin_tokens = vec![ADMIN.into()]).await;
    let cache = scratch_dir("vod-cache");
    let film = scratch_dir("vod-film").join("film.mp4");
    std::fs::create_dir_all(film.parent().unwrap()).unwrap();
    std::fs::write(&film, MP4).unwrap();
    let cli = |pause: &str| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tessera-cli"));
        c.args(["vod", "upload"])
            .arg(&film)
            .args(["--title", "Resumed", "--chunk-kib", "16", "--pause-ms", pause])
            .args(["--node", &format!("http://{}", node.http_addr())])
            .env("TESSERA_ADMIN_TOKEN", ADMIN)
            .env("XDG_CACHE_HOME", &cache);
        c
    };
    // Paced at 16 KiB every 100 ms, the upload takes about two seconds: killed in the middle.
    let mut first = cli("100").stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    // Killed once it has remembered the upload and sent some of it (however slowly the
    // machine starts it).
    crate::cluster::eventually(std::time::Duration::from_secs(20), "the upload under way", || async {
        let started = std::fs::read_dir(cache.join("tessera/uploads")).ok()?.next().is_some();
        started.then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    first.kill().unwrap();
    first.wait().unwrap();
    let remembered = std::fs::read_dir(cache.join("tessera/uploads")).unwrap().next().unwrap().unwrap().path();
    let url = std::fs::read_to_string(remembered).unwrap();
    let tus = Tus { addr: node.http_addr(), auth: format!("Bearer {ADMIN}") };
    let cut_at = tus.offset(url.trim()).await.expect("the interrupted upload is known");
    assert!(cut_at > 0 && cut_at < MP4.len() as u64, "killed mid-upload, at byte {cut_at}");

    let second = cli("0").output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&second.stdout), String::from_utf8_lossy(&second.stderr));
    assert!(second.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("resuming at byte {cut_at}")), "{stderr}");
    assert!(
        stderr.contains("100.0%") && stderr.contains("MiB/s") && stderr.contains("ETA"),
        "a progress bar: {stderr}"
    );
    let id = stdout.trim().strip_prefix("asset: ").expect("the asset's id").to_string();
    let api = tessera_cli::admin::AdminClient::new(&node.http_addr().to_string(), ADMIN);
    let asset: Value = api.get(&format!("/api/v1/assets/{id}")).await.unwrap();
    assert_eq!(
        (asset["title"].as_str(), asset["source"]["sha256"].as_str()),
        (Some("Resumed"), Some(sha256_hex(MP4).as_str()))
    );
    node.shutdown().await;
}

/// Frames ffprobe decodes from a file (video), and whether it complained.
fn ffprobe_frames(file: &std::path::Path) -> (u64, String) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames"])
        .args(["-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe must be installed (.ci/run installs it)");
    let frames = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
    (frames, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_film_is_packaged_by_a_worker_and_played_back_as_vod_with_an_iframe_playlist() {
    let data = scratch_dir("vod-packaged");
    let node = node(|c| {
        c.data_dir = data.clone();
        c.admin_tokens = vec![ADMIN.into()];
        c.vod_ladder = "source,240p:300".parse().unwrap();
    })
    .await;
    let http = node.http_addr();
    let tus = Tus { addr: http, auth: format!("Bearer {ADMIN}") };
    let url = location(&tus.create(MP4.len(), &[("title", "Packaged"), ("keep_source", "false")]).await);
    let done = tus.patch(&url, 0, MP4, None).await;
    assert_eq!(done.status, 204, "{}", done.text());
    let id = done.headers["tessera-asset"].to_str().unwrap().to_string();
    let api = tessera_cli::admin::AdminClient::new(&http.to_string(), ADMIN);
    let asset = crate::cluster::eventually(std::time::Duration::from_secs(30), "the asset ready", || async {
        let a: Value = api.get(&format!("/api/v1/assets/{id}")).await.ok()?;
        (a["state"] == "ready").then_some(a)
    })
    .await;
    assert_eq!(asset["source"]["container"], "mp4");
    let source = data.join("sources").join(&id);
    let archived = data.join("archive/vod").join(&id);
    assert!(archived.join("240p").exists() && archived.join("src").exists(), "renditions are in the archive");
    crate::cluster::eventually(std::time::Duration::from_secs(5), "the source not kept", || async {
        (!source.exists() && !archived.join("_source").exists()).then_some(())
    })
    .await;

    let mv = get(http, &format!("/vod/{id}/index.m3u8")).await;
    assert_eq!(mv.status, 200);
    let mv = mv.text();
    assert!(
        mv.contains("#EXT-X-STREAM-INF:") && mv.contains("CODECS=\"avc1.") && mv.contains("RESOLUTION=640x360"),
        "{mv}"
    );
    assert!(mv.contains("#EXT-X-I-FRAME-STREAM-INF:") && mv.contains("URI=\"src/iframes.m3u8\""), "{mv}");
    let media = get(http, &format!("/vod/{id}/src/index.m3u8")).await.text();
    assert!(media.contains("#EXT-X-MAP:URI=\"init-1.mp4\"\n"), "{media}");
    assert!(media.contains("#EXT-X-PLAYLIST-TYPE:VOD\n") && media.ends_with("#EXT-X-ENDLIST\n"), "{media}");
    let segments: Vec<&str> = media.lines().filter(|l| l.starts_with("seg-")).collect();
    assert!(segments.len() >= 2, "{media}");
    let listed: f64 = media
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();
    assert!((5.9..6.2).contains(&listed), "the segments add up to the film: {listed} s");

    // Init and every segment, end to end, decode to every picture of the source, in the
    // source rendition and in the transcoded one, whose segments are the same.
    let dir = scratch_dir("vod-out");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("source.mp4"), MP4).unwrap();
    let (source, _) = ffprobe_frames(&dir.join("source.mp4"));
    let media = media.lines().filter(|l| !l.starts_with("#EXT-X-MAP")).collect::<Vec<_>>().join("\n");
    for rendition in ["src", "240p"] {
        let (film, listed) = vod_rendition(http, &id, rendition).await;
        assert_eq!(listed, media, "{rendition}: the same segments as the source rendition");
        std::fs::write(dir.join(format!("{rendition}.mp4")), &film).unwrap();
        let (ours, complaints) = ffprobe_frames(&dir.join(format!("{rendition}.mp4")));
        assert!(complaints.is_empty(), "{rendition}: {complaints}");
        assert_eq!(ours, source, "{rendition}: every picture of the source");
    }
    let init = get(http, &format!("/vod/{id}/src/init-1.mp4")).await;
    assert_eq!(init.headers["cache-control"], "public, max-age=31536000, immutable");
    assert!(mv.contains("RESOLUTION=426x240") && mv.contains("240p/index.m3u8"), "{mv}");

    // The I-frame playlist's byte range of a segment is its keyframe, decodable alone.
    let iframes = get(http, &format!("/vod/{id}/src/iframes.m3u8")).await.text();
    assert!(iframes.contains("#EXT-X-I-FRAMES-ONLY"), "{iframes}");
    let range = iframes.lines().find_map(|l| l.strip_prefix("#EXT-X-BYTERANGE:")).unwrap();
    let (len, at) = range.split_once('@').unwrap();
    let (len, at): (usize, usize) = (len.parse().unwrap(), at.parse().unwrap());
    let seg0 = get(http, &format!("/vod/{id}/src/seg-0.m4s")).await.body;
    std::fs::write(dir.join("key.mp4"), [&init.body[..], &seg0[at..at + len]].concat()).unwrap();
    assert_eq!(ffprobe_frames(&dir.join("key.mp4")).0, 1, "one picture");

    assert_eq!(get(http, "/vod/no-such-asset/index.m3u8").await.status, 404);
    assert_eq!(get(http, &format!("/vod/{id}/720p/index.m3u8")).await.status, 404, "no such rendition");
    api.call(hyper::Method::DELETE, &format!("/api/v1/assets/{id}"), None).await.unwrap();
    assert_eq!(get(http, &format!("/vod/{id}/index.m3u8")).await.status, 404, "a deleted asset is not served");
    assert!(!archived.exists(), "its renditions go with it");
    node.shutdown().await;
}

/// A VOD rendition's init segment and segments end to end, and its media playlist with
/// the init segment's name (which names the claim that wrote it) taken out.
pub async fn vod_rendition(http: std::net::SocketAddr, id: &str, rendition: &str) -> (Vec<u8>, String) {
    let media = get(http, &format!("/vod/{id}/{rendition}/index.m3u8")).await;
    assert_eq!(media.status, 200, "{rendition}");
    let media = media.text();
    let mut film = Vec::new();
    for line in media.lines() {
        let uri = match line.strip_prefix("#EXT-X-MAP:URI=\"") {
            Some(map) => map.trim_end_matches('"'),
            None if line.starts_with("seg-") => line,
            None => continue,
        };
        let file = get(http, &format!("/vod/{id}/{rendition}/{uri}")).await;
        assert_eq!(file.status, 200, "{rendition}/{uri}");
        film.extend_from_slice(&file.body);
    }
    let without_maps = media.lines().filter(|l| !l.starts_with("#EXT-X-MAP")).collect::<Vec<_>>().join("\n");
    (film, without_maps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hevc_film_keeps_its_hevc_rendition_and_gets_h264_rungs_decoded_from_it() {
    let dir = scratch_dir("vod-hevc");
    std::fs::create_dir_all(&dir).unwrap();
    let film = dir.join("film.mp4");
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "9"])
        .args(["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=50:min-keyint=50:log-level=error"])
        .args(["-tag:v", "hvc1", "-c:a", "aac", "-b:a", "64k"])
        .arg(&film)
        .output()
        .expect("ffmpeg must be installed (.ci/run installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&film).unwrap();
    let node = node(|c| {
        c.admin_tokens = vec![ADMIN.into()];
        c.vod_ladder = "source,240p:300".parse().unwrap();
    })
    .await;
    let http = node.http_addr();
    let tus = Tus { addr: http, auth: format!("Bearer {ADMIN}") };
    let url = location(&tus.create(bytes.len(), &[("title", "HEVC")]).await);
    let done = tus.patch(&url, 0, &bytes, None).await;
    assert_eq!(done.status, 204, "{}", done.text());
    let id = done.headers["tessera-asset"].to_str().unwrap().to_string();
    let api = tessera_cli::admin::AdminClient::new(&http.to_string(), ADMIN);
    let asset = crate::cluster::eventually(std::time::Duration::from_secs(60), "the asset ready", || async {
        let a: Value = api.get(&format!("/api/v1/assets/{id}")).await.ok()?;
        (a["state"] != "transcoding" && a["state"] != "uploaded").then_some(a)
    })
    .await;
    assert_eq!(asset["state"], "ready", "{asset}");
    assert!(asset["source"]["video"].as_str().unwrap().starts_with("hevc 640x360"), "{asset}");
    let mv = get(http, &format!("/vod/{id}/index.m3u8")).await.text();
    assert!(mv.contains("CODECS=\"hvc1.") && mv.contains("CODECS=\"avc1."), "HEVC kept, H.264 made: {mv}");
    let (source, _) = ffprobe_frames(&film);
    for rendition in ["src", "240p"] {
        let (data, _) = vod_rendition(http, &id, rendition).await;
        let file = dir.join(format!("{rendition}.mp4"));
        std::fs::write(&file, data).unwrap();
        let (frames, complaints) = ffprobe_frames(&file);
        assert!(complaints.is_empty(), "{rendition}: {complaints}");
        assert_eq!(frames, source, "{rendition}: every picture of the film");
    }
    node.shutdown().await;
}
