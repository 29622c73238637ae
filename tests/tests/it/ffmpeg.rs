//! Interop with ffmpeg's libsrt publisher and ffprobe. These fail, never skip, when the
//! tools are missing: `.ci/run` installs them.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_over_srt_and_ffprobe_reads_it() {
    let node = node(|_| {}).await;
    let srt = node.srt_addr();
    let http = node.http_addr();
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/sample.ts");
    let url = format!("srt://{srt}?mode=caller&latency=120000&pkt_size=1316");
    let mut ffmpeg = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "2",
            "-i",
            sample,
            "-c",
            "copy",
            "-f",
            "mpegts",
        ])
        .args(["-srt_streamid", "#!::r=live/ff,m=publish", &url])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg must be installed (.ci/run installs it)");
    let mv = wait_ok(http, "/live/ff/index.m3u8", Duration::from_secs(15)).await;
    assert_eq!(mv.status, 200, "the stream published by ffmpeg appears");
    let out = Command::new("ffprobe")
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,width,height,sample_rate",
            "-of",
            "compact",
        ])
        .arg(format!("http://{http}/live/ff/index.m3u8"))
        .output()
        .await
        .expect("ffprobe must be installed (.ci/run installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ffprobe failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("codec_name=h264") && text.contains("width=640") && text.contains("height=360"), "{text}");
    assert!(text.contains("codec_name=aac") && text.contains("sample_rate=48000"), "{text}");
    ffmpeg.kill().await.ok();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hevc_over_srt_is_packaged_as_hvc1() {
    let node = node(|_| {}).await;
    let srt = node.srt_addr();
    let http = node.http_addr();
    let url = format!("srt://{srt}?mode=caller&latency=120000&pkt_size=1316");
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100", "-t", "12"])
        .args([
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error:keyint=25:min-keyint=25:bframes=0",
        ])
        .args(["-c:a", "aac", "-b:a", "64k", "-f", "mpegts", "-srt_streamid", "#!::r=live/hevc,m=publish", &url])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg must be installed (.ci/run installs it)");
    let mv = wait_ok(http, "/live/hevc/index.m3u8", Duration::from_secs(15)).await;
    assert_eq!(mv.status, 200);
    assert!(mv.text().contains("CODECS=\"hvc1.1.6.L"), "{}", mv.text());
    assert!(mv.text().contains("mp4a.40.2") && mv.text().contains("RESOLUTION=320x180"), "{}", mv.text());
    let out = Command::new("ffprobe")
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,codec_tag_string,width,height",
            "-of",
            "compact",
        ])
        .arg(format!("http://{http}/live/hevc/index.m3u8"))
        .output()
        .await
        .expect("ffprobe must be installed (.ci/run installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("codec_name=hevc") && text.contains("codec_tag_string=hvc1") && text.contains("width=320"),
        "{text}"
    );
    ffmpeg.kill().await.ok();
    node.shutdown().await;
}
