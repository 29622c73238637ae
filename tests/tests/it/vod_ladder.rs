//! An uploaded 1080p film becomes a four-rung VOD ladder on a three-node cluster sharing
//! an archive: the jobs spread over the nodes, a node killed in the middle of a job has
//! that job resumed from its checkpoint by another, and every rung, read from a node that
//! did not make it, decodes to every picture of the film, with segments that line up.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::cluster::{eventually, form_each, index_of, Proc};
use crate::common::*;

/// A 24-second 1080p film with B-frames and AAC, keyframes every 2 s, `moov` last.
fn film(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("film.mp4");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "24"])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "50", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-b:a", "96k"])
        .arg(&path)
        .output()
        .expect("ffmpeg must be installed (.ci/run installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    path
}

/// Pictures and size of a file's first video stream, and what ffprobe complained of.
fn probe(file: &std::path::Path) -> (u64, String, String) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames,width,height", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe must be installed (.ci/run installs it)");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let fields: Vec<&str> = text.split(',').collect();
    let frames = fields.last().and_then(|f| f.parse().ok()).unwrap_or(0);
    let size = fields.iter().take(2).copied().collect::<Vec<_>>().join("x");
    (frames, size, String::from_utf8_lossy(&out.stderr).into_owned())
}

async fn asset(node: &Proc, token: &str, id: &str) -> Option<Value> {
    node.api(token).get(&format!("/api/v1/assets/{id}")).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1080p_upload_becomes_a_four_rung_ladder_across_three_nodes_and_survives_a_worker_kill() {
    let work = scratch_dir("vod-ladder");
    std::fs::create_dir_all(&work).unwrap();
    let source = film(&work);
    let shared = work.join("archive").display().to_string();
    let (mut nodes, _join, admin) =
        form_each(3, |_| ["--cold-url", &shared, "--vod-workers", "1"].map(String::from).to_vec()).await;

    let out = Command::new(env!("CARGO_BIN_EXE_tessera-cli"))
        .args(["vod", "upload"])
        .arg(&source)
        .args(["--title", "Ladder", "--node", &format!("http://{}", nodes[0].http)])
        .env("TESSERA_ADMIN_TOKEN", &admin)
        .env("XDG_CACHE_HOME", work.join("cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let id = stdout.lines().find_map(|l| l.strip_prefix("asset: ")).unwrap().trim().to_string();

    let a = asset(&nodes[0], &admin, &id).await.unwrap();
    let mut specs: Vec<(String, String)> = a["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["rendition"].as_str().unwrap().into(), j["spec"].as_str().unwrap().into()))
        .collect();
    specs.sort();
    let want = [("1080p", "1080p:5000"), ("360p", "360p:800"), ("480p", "480p:1400"), ("720p", "720p:2800")];
    assert_eq!(specs, want.map(|(r, s)| (r.to_string(), s.to_string())).to_vec(), "the default ladder: {a}");

    // Wait until a node other than the first has made a segment of a job, and kill it.
    let (victim, rendition) = eventually(Duration::from_secs(120), "a job checkpointed elsewhere", || async {
        let a = asset(&nodes[0], &admin, &id).await?;
        a["jobs"].as_array()?.iter().find_map(|j| {
            let node = j["lease"]["node"].as_u64()?;
            let working = j["state"] == "leased" && j["segments_done"].as_u64()? >= 1;
            let unfinished = j["segments_done"].as_u64()? < j["segments_total"].as_u64()?;
            (node != 1 && working && unfinished).then(|| (node, j["rendition"].as_str().unwrap().to_string()))
        })
    })
    .await;
    let held_by: BTreeSet<u64> = {
        let a = asset(&nodes[0], &admin, &id).await.unwrap();
        a["jobs"].as_array().unwrap().iter().filter_map(|j| j["lease"]["node"].as_u64()).collect()
    };
    nodes[index_of(victim)].kill();

    let a = eventually(Duration::from_secs(300), "the asset ready", || async {
        let a = asset(&nodes[0], &admin, &id).await?;
        (a["state"] == "ready").then_some(a)
    })
    .await;
    assert_eq!(a["progress"], 1.0, "{a}");
    let jobs = a["jobs"].as_array().unwrap();
    let made_by: BTreeSet<u64> = jobs.iter().filter_map(|j| j["output_node"].as_u64()).chain(held_by).collect();
    assert!(made_by.len() >= 2, "jobs spread over the nodes: {made_by:?} ({a})");
    let resumed = jobs.iter().find(|j| j["rendition"] == rendition.as_str()).unwrap();
    let epochs = resumed["epochs"].as_array().unwrap();
    assert!(epochs.len() >= 2, "{rendition} was taken over: {resumed}");
    assert!(epochs.last().unwrap()[0].as_u64().unwrap() >= 1, "and resumed from its checkpoint: {resumed}");
    assert_ne!(resumed["output_node"].as_u64(), Some(victim), "{resumed}");

    // Every rung, from a surviving node, decodes to every picture of the film.
    let reader = (1..3).find(|i| *i != index_of(victim)).map(|i| &nodes[i]).unwrap();
    let mv = get(reader.http, &format!("/vod/{id}/index.m3u8")).await.text();
    for size in ["1920x1080", "1280x720", "854x480", "640x360"] {
        assert!(mv.contains(&format!("RESOLUTION={size}")), "{mv}");
    }
    assert_eq!(mv.matches("#EXT-X-I-FRAME-STREAM-INF").count(), 4, "{mv}");
    let (source_frames, _, _) = probe(&source);
    let mut segments = None;
    for (rendition, size) in [("1080p", "1920x1080"), ("720p", "1280x720"), ("480p", "854x480"), ("360p", "640x360")] {
        let (bytes, listed) = crate::vod::vod_rendition(reader.http, &id, rendition).await;
        let file = work.join(format!("{rendition}.mp4"));
        std::fs::write(&file, bytes).unwrap();
        let (frames, got, complaints) = probe(&file);
        assert!(complaints.is_empty(), "{rendition}: {complaints}");
        assert_eq!((frames, got.as_str()), (source_frames, size), "{rendition}");
        // Segments line up: the same durations in every rung.
        let durations: Vec<String> = listed.lines().filter(|l| l.starts_with("#EXTINF")).map(String::from).collect();
        assert_eq!(durations.len(), 6, "{rendition}: 24 s in 4 s segments: {listed}");
        assert_eq!(segments.get_or_insert_with(|| durations.clone()), &durations, "{rendition}");
    }
    drop(nodes);
}
