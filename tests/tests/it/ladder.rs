//! The ABR ladder end to end: ffmpeg publishes H.264 High with B-frames (or HEVC) over SRT;
//! the node's codec worker makes the rungs; every rendition decodes (ffprobe), every
//! segment number starts at the same presentation time in every rendition, and a killed
//! worker comes back on its own while the passthrough plays on.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use mp4_atom::{Any, Codec};
use tessera_packager::check::{self, parse_media, MediaPlaylist};
use tokio::process::Command;

use crate::common::*;

/// ffmpeg publishing a live test source over SRT for `seconds`.
pub(crate) fn ffmpeg_feed(
    srt: std::net::SocketAddr,
    name: &str,
    size: &str,
    video: &[&str],
    seconds: u32,
) -> tokio::process::Child {
    let url = format!("srt://{srt}?mode=caller&latency=120000&pkt_size=1316");
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=25"))
        .args(["-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string(), "-map", "0:v", "-map", "1:a"])
        .args(video)
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-f", "mpegts"])
        .args(["-srt_streamid", &format!("#!::r=live/{name},m=publish"), &url])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg must be installed (.ci/run installs it)")
}

pub(crate) const H264_B_FRAMES: &[&str] = &[
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-profile:v",
    "high",
    "-bf",
    "3",
    "-g",
    "25",
    "-keyint_min",
    "25",
    "-sc_threshold",
    "0",
    "-b:v",
    "2500k",
];

/// The variants of a multivariant playlist: (uri, resolution, codecs).
fn variants(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.starts_with("#EXT-X-STREAM-INF:") {
            let uri = lines.next().unwrap_or_default().to_string();
            out.push((
                uri,
                check::attr(l, "RESOLUTION").unwrap_or_default(),
                check::attr(l, "CODECS").unwrap_or_default(),
            ));
        }
    }
    out
}

/// Where a segment's video starts: (pts in 90 kHz ticks, first sample is a sync sample,
/// some sample has a composition offset, i.e. B-frames).
fn video_start(init: &[u8], segment: &[u8]) -> (i64, bool, bool) {
    let Some(Any::Moov(moov)) = boxes(init).into_iter().find(|b| matches!(b, Any::Moov(_))) else { panic!("no moov") };
    let track = moov
        .trak
        .iter()
        .find(|t| t.mdia.minf.stbl.stsd.codecs.iter().any(|c| matches!(c, Codec::Avc1(_) | Codec::Hvc1(_))))
        .expect("a video track");
    assert_eq!(track.mdia.mdhd.timescale, 90_000);
    let id = track.tkhd.track_id;
    let mut start = None;
    let mut b_frames = false;
    for b in boxes(segment) {
        let Any::Moof(moof) = b else { continue };
        for traf in moof.traf.iter().filter(|t| t.tfhd.track_id == id) {
            let entries: Vec<_> = traf.trun.iter().flat_map(|t| t.samples.iter()).collect();
            b_frames |= entries.iter().any(|e| e.cts.unwrap_or(0) != 0);
            if start.is_none() {
                let first = entries.first().expect("samples");
                let flags = first.flags.or(traf.tfhd.default_sample_flags).unwrap_or(0);
                let pts = traf.tfdt.as_ref().expect("tfdt").base_media_decode_time as i64 + first.cts.unwrap_or(0);
                start = Some((pts, flags & 0x0001_0000 == 0));
            }
        }
    }
    let (pts, sync) = start.expect("video in the segment");
    (pts, sync, b_frames)
}

pub(crate) async fn playlist(http: std::net::SocketAddr, stream: &str, rendition: &str) -> MediaPlaylist {
    let text = get(http, &format!("/live/{stream}/{rendition}/index.m3u8")).await.text();
    let p = parse_media(&text).unwrap_or_else(|e| panic!("{rendition}: {e:?}\n{text}"));
    assert_eq!(check::check_media(&p), vec![], "{rendition} breaks the LL-HLS rules:\n{text}");
    p
}

/// ffprobe reads the rendition's playlist: codec and size of what it decodes.
pub(crate) async fn probe(http: std::net::SocketAddr, stream: &str, rendition: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-hide_banner", "-v", "error", "-select_streams", "v:0", "-count_frames", "-read_intervals", "%+4"])
        .args(["-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "compact"])
        .arg(format!("http://{http}/live/{stream}/{rendition}/index.m3u8"))
        .output()
        .await
        .expect("ffprobe must be installed (.ci/run installs it)");
    assert!(out.status.success(), "ffprobe {rendition}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "ffprobe {rendition} reported: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// For every segment number that every rendition has, the video of every rendition starts
/// at the same presentation time, on a keyframe, with the same program date-time.
/// Where each rendition's segment starts: (rendition, pts, program date-time).
type Starts<'a> = Vec<(&'a str, i64, Option<String>)>;

pub(crate) async fn assert_aligned(http: std::net::SocketAddr, stream: &str, renditions: &[&str]) -> usize {
    let mut by_msn: BTreeMap<u64, Starts> = BTreeMap::new();
    for r in renditions {
        let p = playlist(http, stream, r).await;
        let init = get(http, &format!("/live/{stream}/{r}/init-0.mp4")).await;
        assert_eq!(init.status, 200, "{r} init");
        for s in p.segments.iter().filter(|s| !s.gap) {
            let seg = get(http, &format!("/live/{stream}/{r}/{}", s.uri)).await;
            if seg.status != 200 {
                continue; // left the retention window meanwhile
            }
            let (pts, sync, _) = video_start(&init.body, &seg.body);
            assert!(sync, "{r} segment {} starts with a keyframe", s.msn);
            by_msn.entry(s.msn).or_default().push((r, pts, s.program_time.clone()));
        }
    }
    let common: Vec<_> = by_msn.iter().filter(|(_, v)| v.len() == renditions.len()).collect();
    for (msn, starts) in &common {
        let (r0, pts0, pdt0) = &starts[0];
        for (r, pts, pdt) in &starts[1..] {
            assert_eq!(pts, pts0, "segment {msn}: {r} starts at {pts}, {r0} at {pts0}");
            assert_eq!(pdt, pdt0, "segment {msn}: {r} and {r0} differ in program date-time");
        }
    }
    common.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_b_frame_feed_becomes_an_aligned_ladder_that_decodes() {
    let _one = transcoding().await;
    let node = node(|_| {}).await;
    let http = node.http_addr();
    let mut ffmpeg = ffmpeg_feed(node.srt_addr(), "abr", "1280x720", H264_B_FRAMES, 16);
    let mv = wait_ok(http, "/live/abr/index.m3u8", Duration::from_secs(20)).await;
    assert_eq!(mv.status, 200);
    let v = variants(&mv.text());
    let names: Vec<&str> = v.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(names, ["src/index.m3u8", "480p/index.m3u8", "360p/index.m3u8"], "{}", mv.text());
    assert_eq!(v[0].1, "1280x720");
    assert_eq!(v[1].1, "854x480");
    assert_eq!(v[2].1, "640x360");
    assert!(v.iter().all(|x| x.2.starts_with("avc1.") && x.2.ends_with(",mp4a.40.2")), "{v:?}");

    // Let a few segments build up in every rendition.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let aligned = assert_aligned(http, "abr", &["src", "480p", "360p"]).await;
    assert!(aligned >= 3, "at least three segments in every rendition, got {aligned}");

    // The source really has B-frames; the rungs are encoded without (zerolatency).
    let src = playlist(http, "abr", "src").await;
    let seg = &src.segments[0];
    let init = get(http, "/live/abr/src/init-0.mp4").await.body;
    let body = get(http, &format!("/live/abr/src/{}", seg.uri)).await.body;
    assert!(video_start(&init, &body).2, "the source feed carries B-frames");

    // Each rendition's playlist reports the others, and ffprobe decodes each one.
    let p = get(http, "/live/abr/480p/index.m3u8").await.text();
    assert!(p.contains("#EXT-X-RENDITION-REPORT:URI=\"../src/index.m3u8\""), "{p}");
    assert!(p.contains("#EXT-X-RENDITION-REPORT:URI=\"../360p/index.m3u8\""), "{p}");
    for (r, size) in
        [("src", "width=1280|height=720"), ("480p", "width=854|height=480"), ("360p", "width=640|height=360")]
    {
        let out = probe(http, "abr", r).await;
        assert!(out.contains("codec_name=h264") && out.contains(size), "{r}: {out}");
    }
    ffmpeg.kill().await.ok();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hevc_sources_are_decoded_into_h264_rungs() {
    let _one = transcoding().await;
    let node = node(|_| {}).await;
    let http = node.http_addr();
    let hevc = ["-c:v", "libx265", "-preset", "ultrafast", "-g", "25", "-x265-params", "log-level=error:bframes=2"];
    let mut ffmpeg = ffmpeg_feed(node.srt_addr(), "hevc", "854x480", &hevc, 12);
    let mv = wait_ok(http, "/live/hevc/index.m3u8", Duration::from_secs(20)).await;
    assert_eq!(mv.status, 200);
    let v = variants(&mv.text());
    assert_eq!(v.len(), 2, "{}", mv.text());
    assert!(v[0].2.starts_with("hvc1."), "the passthrough stays HEVC: {v:?}");
    assert!(v[1].0 == "360p/index.m3u8" && v[1].2.starts_with("avc1."), "{v:?}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let out = probe(http, "hevc", "360p").await;
    assert!(out.contains("codec_name=h264") && out.contains("width=640|height=360"), "{out}");
    assert!(assert_aligned(http, "hevc", &["src", "360p"]).await >= 2);
    ffmpeg.kill().await.ok();
    node.shutdown().await;
}

/// The codec worker's process id, from `/streams`.
async fn worker_pid(http: std::net::SocketAddr, stream: &str) -> Option<(u32, u64)> {
    let status = get(http, "/streams").await.text();
    let v: serde_json::Value = serde_json::from_str(&status).expect("JSON");
    let s = v["streams"].as_array()?.iter().find(|s| s["name"] == stream)?;
    let t = &s["transcoder"];
    Some((t["worker_pid"].as_u64()? as u32, t["worker_restarts"].as_u64()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_codec_worker_comes_back_and_the_passthrough_never_notices() {
    let _one = transcoding().await;
    let node = node(|_| {}).await;
    let http = node.http_addr();
    let mut ffmpeg = ffmpeg_feed(node.srt_addr(), "crash", "854x480", H264_B_FRAMES, 24);
    assert_eq!(wait_ok(http, "/live/crash/index.m3u8", Duration::from_secs(20)).await.status, 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (pid, restarts) = worker_pid(http, "crash").await.expect("a running worker");
    assert_eq!(restarts, 0);
    let before = playlist(http, "crash", "360p").await;
    let last_before = before.segments.last().map(|s| s.msn).unwrap_or(0);

    // What a segfault in FFmpeg would look like from the node.
    let killed = Command::new("kill").args(["-9", &pid.to_string()]).status().await.unwrap();
    assert!(killed.success());

    // A new worker, and new media in the rung after a gap.
    let mut back = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some((p, r)) = worker_pid(http, "crash").await {
            if p != pid && r >= 1 {
                back = Some(p);
                break;
            }
        }
    }
    assert!(back.is_some(), "the worker was restarted");
    tokio::time::sleep(Duration::from_secs(8)).await;
    let rung = playlist(http, "crash", "360p").await;
    // Segments lost while no worker ran (if the restart missed a boundary) are gaps; the
    // segment cut short keeps the source's duration. After that, media again.
    let gaps: Vec<u64> = rung.segments.iter().filter(|s| s.gap).map(|s| s.msn).collect();
    assert!(gaps.iter().all(|g| *g >= last_before), "gaps only after the kill: {gaps:?}");
    let after = gaps.last().copied().unwrap_or(last_before) + 1;
    let resumed: Vec<u64> = rung.segments.iter().filter(|s| !s.gap && s.msn > after).map(|s| s.msn).collect();
    assert!(resumed.len() >= 2, "media again after the restart: {:?}", rung.segments);
    // Numbering stays the source's: the same numbers line up in both renditions.
    let src = playlist(http, "crash", "src").await;
    assert!(src.segments.iter().all(|s| !s.gap), "the passthrough has no gap");
    let (s, r) = (src.segments.last().unwrap().msn, rung.segments.last().unwrap().msn);
    assert!(s <= r + 1, "the rung keeps up with the source: {r} vs {s}");
    assert_eq!(src.discontinuity_sequence, 0);
    assert!(src.segments.iter().all(|s| !s.discontinuity), "nor a discontinuity");
    assert_eq!(rung.segments.iter().filter(|s| s.discontinuity).count(), 0, "the rung continues without one");
    assert!(assert_aligned(http, "crash", &["src", "360p"]).await >= 2);
    // And the rung decodes after the restart.
    let out = probe(http, "crash", "360p").await;
    assert!(out.contains("codec_name=h264"), "{out}");
    let metrics = get(http, "/metrics").await.text();
    assert!(metrics.contains("tessera_codec_worker_restarts_total"), "restart counted");
    ffmpeg.kill().await.ok();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ladder_the_node_cannot_afford_sheds_rungs_and_keeps_latency_bounded() {
    let _one = transcoding().await;
    // libx264's slowest preset: far slower than real time here.
    let node = node(|c| {
        c.ladder = "source,360p:600,240p:300".parse().unwrap();
        c.encoder_preset = "placebo".into();
        c.encoder_tune = String::new();
    })
    .await;
    let http = node.http_addr();
    let mut ffmpeg = ffmpeg_feed(node.srt_addr(), "heavy", "854x480", H264_B_FRAMES, 30);
    assert_eq!(wait_ok(http, "/live/heavy/src/index.m3u8", Duration::from_secs(20)).await.status, 200);
    let mut dropped = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let status: serde_json::Value = serde_json::from_str(&get(http, "/streams").await.text()).unwrap();
        dropped = status["streams"][0]["renditions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| !r["dropped"].is_null())
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect();
        if dropped.len() == 2 {
            break;
        }
    }
    assert!(dropped.contains(&"360p".to_string()), "the most expensive rung goes first: {dropped:?}");
    let mv = get(http, "/live/heavy/index.m3u8").await.text();
    assert!(mv.contains("# 360p dropped for this session:"), "the multivariant playlist says so:\n{mv}");
    assert!(!mv.contains("360p/index.m3u8"), "and no longer offers it:\n{mv}");
    let metrics = get(http, "/metrics").await.text();
    assert!(metrics.contains("tessera_transcode_rungs_dropped_total"), "counted");
    // The dropped rung's playlist keeps pace with the source as gaps: latency never grows.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let src = playlist(http, "heavy", "src").await;
    let rung = playlist(http, "heavy", "360p").await;
    let (s, r) = (src.segments.last().unwrap().msn, rung.segments.last().unwrap().msn);
    assert!(s <= r + 1, "the dropped rung is at most one segment behind the source: {r} vs {s}");
    assert!(rung.segments.last().unwrap().gap);
    ffmpeg.kill().await.ok();
    node.shutdown().await;
}
