//! Live to VOD: a stream set to record is published twice within the reconnect grace;
//! when it ends, the whole broadcast plays back as a VOD asset (the segments the live
//! viewers got, a discontinuity at the reconnect), decoding to every picture published.

use std::time::Duration;

use hyper::Method;
use serde_json::{json, Value};

use crate::common::*;

const ADMIN: &str = "recording-admin";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_live_stream_plays_back_as_vod_once_it_ends() {
    let node = node(|c| {
        c.admin_tokens = vec![ADMIN.into()];
        c.reconnect_grace_ms = 3000;
        c.ladder = "source".parse().unwrap();
    })
    .await;
    let http = node.http_addr();
    let api = tessera_cli::admin::AdminClient::new(&http.to_string(), ADMIN);
    api.call(Method::PUT, "/api/v1/streams/show", Some(&json!({ "ladder": "source" }))).await.unwrap();
    let set = api.call(Method::PUT, "/api/v1/streams/show", Some(&json!({ "record": true }))).await.unwrap();
    assert_eq!(set["record"], true, "{set}");
    api.call(Method::PUT, "/api/v1/streams/other", Some(&json!({ "ladder": "source" }))).await.unwrap();

    // Two publishes, the second within the grace, and a stream not recorded beside them.
    let other = publish_sample(&node, "other", 1);
    publish_sample(&node, "show", 1).await.unwrap();
    let live = get(http, "/live/show/src/index.m3u8").await;
    assert_eq!(live.status, 200, "the broadcast was live");
    publish_sample(&node, "show", 1).await.unwrap();
    other.await.unwrap();

    let asset: Value = crate::cluster::eventually(Duration::from_secs(30), "the recording ready", || async {
        let list: Value = api.get("/api/v1/assets").await.ok()?;
        let a = list["data"]
            .as_array()?
            .iter()
            .find(|a| a["id"].as_str().is_some_and(|id| id.starts_with("show-")))?
            .clone();
        (a["state"] == "ready").then_some(a)
    })
    .await;
    let list: Value = api.get("/api/v1/assets").await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "only the recorded stream became an asset: {list}");
    assert_eq!(asset["source"]["container"], "live", "{asset}");
    let id = asset["id"].as_str().unwrap();
    let seconds = asset["source"]["duration_ms"].as_u64().unwrap() as f64 / 1000.0;
    assert!((10.5..13.0).contains(&seconds), "two publishes of the 6 s sample: {seconds} s");

    let mv = get(http, &format!("/vod/{id}/index.m3u8")).await;
    assert_eq!(mv.status, 200);
    assert!(mv.text().contains("src/index.m3u8"), "{}", mv.text());
    let media = get(http, &format!("/vod/{id}/src/index.m3u8")).await.text();
    assert!(media.contains("#EXT-X-PLAYLIST-TYPE:VOD") && media.ends_with("#EXT-X-ENDLIST\n"), "{media}");
    assert_eq!(media.matches("#EXT-X-DISCONTINUITY").count(), 1, "at the reconnect: {media}");
    let listed: f64 = media
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();
    assert!((listed - seconds).abs() < 0.1, "the playlist lists the whole broadcast: {listed} s against {seconds} s");

    // Every picture of both publishes, from the recorded segments.
    let dir = scratch_dir("recording");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("sample.ts"), SAMPLE).unwrap();
    let frames = |file: &std::path::Path| {
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
            .arg(file)
            .output()
            .expect("ffprobe must be installed (.ci/run installs it)");
        String::from_utf8_lossy(&out.stdout).trim().parse::<u64>().unwrap_or(0)
    };
    let m3u8 = dir.join("recorded.m3u8");
    let mut local = String::new();
    for line in media.lines() {
        if let Some(uri) = line.strip_prefix("#EXT-X-MAP:URI=\"").map(|u| u.trim_end_matches('"')) {
            let data = get(http, &format!("/vod/{id}/src/{uri}")).await.body;
            std::fs::write(dir.join(uri), &data).unwrap();
            local.push_str(&format!("{line}\n"));
        } else if line.starts_with("seg-") {
            let data = get(http, &format!("/vod/{id}/src/{line}")).await.body;
            std::fs::write(dir.join(line), &data).unwrap();
            local.push_str(&format!("{line}\n"));
        } else {
            local.push_str(&format!("{line}\n"));
        }
    }
    std::fs::write(&m3u8, local).unwrap();
    let published = 2 * frames(&dir.join("sample.ts"));
    let recorded = frames(&m3u8);
    // The live segmenter starts at the first keyframe of each publish.
    assert!(recorded + 2 * 15 >= published && recorded <= published, "{recorded} of {published} pictures");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_whose_node_was_killed_is_finished_with_what_it_recorded_when_it_returns() {
    let flags = ["--ladder", "source"];
    let (mut nodes, _join, admin) = crate::cluster::form_each(1, |_| flags.map(String::from).to_vec()).await;
    let api = nodes[0].api(&admin);
    api.call(Method::PUT, "/api/v1/streams/crash", Some(&json!({ "ladder": "source" }))).await.unwrap();
    api.call(Method::PUT, "/api/v1/streams/crash", Some(&json!({ "record": true }))).await.unwrap();
    let publisher = publish_sample_to(nodes[0].srt, "crash", 5);
    let archive = nodes[0].dir().join("archive/vod");
    let recorded = |id: &str| recorded_segments(&archive, id);
    let id = recording_under_way(&api, &archive, 1).await;
    publisher.abort();
    nodes[0].kill();
    let kept = recorded(&id);
    nodes[0].start(&flags);
    let asset = crate::cluster::eventually(Duration::from_secs(30), "the recording finished", || async {
        let a: Value = api.get(&format!("/api/v1/assets/{id}")).await.ok()?;
        (a["state"] == "ready").then_some(a)
    })
    .await;
    let seconds = asset["source"]["duration_ms"].as_u64().unwrap() as f64 / 1000.0;
    assert!(seconds >= 3.0, "what was recorded before the kill: {seconds} s ({asset})");
    let media = get(nodes[0].http, &format!("/vod/{id}/src/index.m3u8")).await.text();
    let listed = media.lines().filter(|l| l.starts_with("seg-")).count();
    assert!(listed >= 3 && listed <= kept, "{listed} segments listed of {kept} recorded:\n{media}");
    assert!(media.ends_with("#EXT-X-ENDLIST\n"), "{media}");
    for uri in media.lines().filter(|l| l.starts_with("seg-") || l.starts_with("#EXT-X-MAP")) {
        let uri = uri.strip_prefix("#EXT-X-MAP:URI=\"").map_or(uri, |u| u.trim_end_matches('"'));
        assert_eq!(get(nodes[0].http, &format!("/vod/{id}/src/{uri}")).await.status, 200, "{uri}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_whose_node_is_removed_from_the_cluster_is_finished_by_another() {
    let shared = scratch_dir("recording-archive").display().to_string();
    let flags = ["--ladder", "source", "--cold-url", &shared];
    let (mut nodes, _join, admin) = crate::cluster::form_each(3, |_| flags.map(String::from).to_vec()).await;
    let api = nodes[0].api(&admin);
    api.call(Method::PUT, "/api/v1/streams/lost", Some(&json!({ "ladder": "source" }))).await.unwrap();
    api.call(Method::PUT, "/api/v1/streams/lost", Some(&json!({ "record": true }))).await.unwrap();
    let publisher = publish_sample_to(nodes[1].srt, "lost", 5);
    let archive = std::path::PathBuf::from(&shared).join("vod");
    let id = recording_under_way(&api, &archive, 2).await;
    publisher.abort();
    nodes[1].kill();
    // Node 2 is not coming back: the admin removes it, and node 1 finishes its recording.
    api.call(Method::DELETE, "/api/v1/nodes/2", None).await.expect("node 2 removed");
    let asset = crate::cluster::eventually(Duration::from_secs(60), "the recording finished", || async {
        let a: Value = api.get(&format!("/api/v1/assets/{id}")).await.ok()?;
        (a["state"] == "ready").then_some(a)
    })
    .await;
    assert!(asset["source"]["duration_ms"].as_u64().unwrap() >= 3000, "{asset}");
    let media = get(nodes[2].http, &format!("/vod/{id}/src/index.m3u8")).await.text();
    assert!(media.lines().filter(|l| l.starts_with("seg-")).count() >= 3, "{media}");
    assert!(media.ends_with("#EXT-X-ENDLIST\n"), "{media}");
}

/// Segments recorded so far of asset `id`'s `src` rendition, in the archive folder `archive`.
fn recorded_segments(archive: &std::path::Path, id: &str) -> usize {
    let dir = archive.join(id).join("src");
    std::fs::read_dir(dir)
        .map_or(0, |d| d.flatten().filter(|f| f.file_name().to_string_lossy().starts_with("seg-")).count())
}

/// The recording node `node` is making, once it has three segments in the archive.
async fn recording_under_way(api: &tessera_cli::admin::AdminClient, archive: &std::path::Path, node: u64) -> String {
    crate::cluster::eventually(Duration::from_secs(30), "three segments recorded", || async {
        let list: Value = api.get("/api/v1/assets").await.ok()?;
        let a = list["data"].as_array()?.first()?.clone();
        let id = a["id"].as_str()?.to_string();
        let ours = a["state"] == "recording" && a["source"]["node"] == node;
        (ours && recorded_segments(archive, &id) >= 3).then_some(id)
    })
    .await
}
