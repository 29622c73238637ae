//! What a new user sees first: `tessera demo` plays at once, and the built-in publisher
//! keeps publishing at a broadcast bitrate.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{free_port, Proc, BIN};
use crate::common::{get, get_with, parse_media, scratch_dir};

/// A process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `path` until it answers 200 (a refused connection is a node still starting);
/// how long that took.
async fn until_served(http: std::net::SocketAddr, path: &str, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if tokio::net::TcpStream::connect(http).await.is_ok() && get(http, path).await.status == 200 {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// The newest segment a media playlist lists.
async fn newest_segment(http: std::net::SocketAddr, path: &str) -> u64 {
    parse_media(&get(http, path).await.text()).segments.last().map_or(0, |s| s.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_plays_within_five_seconds_of_printing_its_url() {
    let dir = scratch_dir("demo");
    let http = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let port = |p: u16| format!("127.0.0.1:{p}");
    let log_path = dir.with_extension("log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut demo = Killed(
        Command::new(BIN)
            .args(["demo", "--data-dir"])
            .arg(&dir)
            .args(["--http-listen", &http.to_string(), "--srt-listen", &port(free_port())])
            .args(["--rtmp-listen", &port(free_port()), "--cluster", &port(free_port())])
            .args(["--log", "info,openraft=warn"])
            .stdout(Stdio::piped())
            .stderr(log.try_clone().unwrap())
            .spawn()
            .expect("tessera demo starts"),
    );
    // The demo prints its URL among its log lines: all of them go on to the log file.
    let stdout = demo.0.stdout.take().unwrap();
    let (play_tx, play) = tokio::sync::oneshot::channel();
    let (console_tx, console) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        use std::io::Write;
        let (mut log, mut play_tx, mut console_tx) = (log, Some(play_tx), Some(console_tx));
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = writeln!(log, "{line}");
            if let Some(url) = line.strip_prefix("Play: ") {
                play_tx.take().map(|tx| tx.send(url.to_string()));
            }
            if let Some(rest) = line.strip_prefix("Console: ") {
                console_tx.take().map(|tx| tx.send(rest.to_string()));
            }
        }
    });
    let url = tokio::time::timeout(Duration::from_secs(60), play).await.expect("the demo starts");
    let url = url.expect("the demo prints its playback URL");
    // And its console, with an admin token made for the run that the node accepts.
    let console = console.await.expect("the demo prints its console");
    assert!(console.starts_with(&format!("http://{http}/console/ ")), "{console}");
    let token = console.rsplit(": ").next().unwrap().trim_end_matches(')');
    let bearer = format!("Bearer {token}");
    assert_eq!(get_with(http, "/api/v1/cluster", &[("authorization", &bearer)]).await.status, 200, "{console}");
    let path = url.strip_prefix(&format!("http://{http}")).expect("the URL names the node's HTTP address");
    assert_eq!(path, "/live/demo/index.m3u8");

    let took = until_served(http, path, Duration::from_secs(5)).await;
    let node_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(took.is_some(), "the printed URL did not play within 5 s:\n{}", node_log());

    // It goes on playing, from the publisher's first session.
    let media = "/live/demo/src/index.m3u8";
    let first = newest_segment(http, media).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(newest_segment(http, media).await >= first + 2, "the stream goes on:\n{}", node_log());
    let sessions = node_log().matches("publisher connected").count();
    assert_eq!(sessions, 1, "the built-in publisher was never cut:\n{}", node_log());
}

/// The test pattern at 8 Mbit/s: its keyframes are hundreds of packets, handed to the SRT
/// sender faster than it paces them at first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_publisher_keeps_publishing_at_a_broadcast_bitrate() {
    let mut node = Proc::new("big-pattern");
    node.start(&["--ladder", "source"]);
    let up = until_served(node.http, "/healthz", Duration::from_secs(30)).await;
    assert!(up.is_some(), "the node starts:\n{}", node.log());
    let _publisher = Killed(
        Command::new(BIN)
            .args(["publish", "--test-pattern", "big", "--to", &node.srt.to_string()])
            .args(["--size", "1280x720", "--video-kbps", "8000", "--seconds", "40"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tessera publish starts"),
    );
    let took = until_served(node.http, "/live/big/index.m3u8", Duration::from_secs(5)).await;
    assert!(took.is_some(), "the stream did not play within 5 s:\n{}", node.log());
    // Segments of about 2 s: two more within 10 s, whatever else the machine is doing.
    let media = "/live/big/src/index.m3u8";
    let first = newest_segment(node.http, media).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(newest_segment(node.http, media).await >= first + 2, "the stream goes on:\n{}", node.log());
    assert_eq!(node.log().matches("publisher connected").count(), 1, "one session, never cut:\n{}", node.log());
}
