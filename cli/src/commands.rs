//! The client commands of `tessera` as clap subcommands, and running one: `publish`,
//! `cluster`, `release`, `vod`, `check-hls`.

// A command prints its results for the person who ran it.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use anyhow::Context;
use clap::{ArgMatches, Args, Command, FromArgMatches, Subcommand};
use tessera_codec::pattern::PatternConfig;

use crate::publish::{connect, publish, publish_pattern, publish_stream_id, TsFile};
use crate::{cluster, release, vod};

/// The bundled 640x360 sample, for `tessera demo --sample`.
pub const SAMPLE: &[u8] = include_bytes!("../../samples/sample.ts");

/// The built-in live test picture.
#[derive(Args, Debug, Clone)]
pub struct PatternArgs {
    /// Test pattern size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720", value_parser = parse_size)]
    size: (u32, u32),
    /// Test pattern frame rate.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Test pattern video bitrate, kbit/s.
    #[arg(long, default_value_t = 3000)]
    video_kbps: u32,
}

impl PatternArgs {
    pub fn config(&self) -> PatternConfig {
        PatternConfig {
            width: self.size.0,
            height: self.size.1,
            fps: (self.fps.max(1), 1),
            video_kbps: self.video_kbps,
            gop: self.fps.max(1),
        }
    }
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once('x').ok_or("expected WIDTHxHEIGHT")?;
    Ok((w.parse().map_err(|_| "bad width")?, h.parse().map_err(|_| "bad height")?))
}

#[derive(Args, Debug)]
struct PublishArgs {
    /// Publish the built-in live test picture (clock, frame counter, bars, tone) as NAME.
    #[arg(long, value_name = "NAME")]
    test_pattern: String,
    /// The node's SRT listener.
    #[arg(long, default_value = "127.0.0.1:9000")]
    to: std::net::SocketAddr,
    /// Publish token, if the node asks for one.
    #[arg(long)]
    token: Option<String>,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    seconds: Option<u64>,
    #[command(flatten)]
    pattern: PatternArgs,
}

/// `--log` for the commands that talk to a node: warnings only unless asked.
fn quiet_log_arg() -> clap::Arg {
    clap::Arg::new("log")
        .long("log")
        .env("RUST_LOG")
        .default_value("warn")
        .global(true)
        .help("Log filter (RUST_LOG syntax)")
}

/// Adds the client commands to `tessera`.
pub fn add(tessera: Command) -> Command {
    let publish = PublishArgs::augment_args(
        Command::new("publish").about("Publish a live feed to a node over SRT").arg(
            clap::Arg::new("log")
                .long("log")
                .env("RUST_LOG")
                .default_value("info")
                .help("Log filter (RUST_LOG syntax)"),
        ),
    );
    tessera
        .subcommand(publish)
        .subcommand(cluster::ClusterCommand::augment_subcommands(
            Command::new("cluster")
                .about("Create a cluster; show, or shrink, a running one")
                .subcommand_required(true)
                .arg(quiet_log_arg()),
        ))
        .subcommand(release::ReleaseCommand::augment_subcommands(
            Command::new("release")
                .about("Schedule, show, move or cancel a premiere (a release gated by the cluster)")
                .subcommand_required(true)
                .arg(quiet_log_arg()),
        ))
        .subcommand(vod::VodCommand::augment_subcommands(
            Command::new("vod")
                .about("Upload a film (resumable, with progress); list, show or delete assets")
                .subcommand_required(true)
                .arg(quiet_log_arg()),
        ))
        .subcommand(
            Command::new("check-hls")
                .about("Check recorded playlists (JSON lines of url, status, body) against the LL-HLS rules")
                .arg(clap::Arg::new("files").required(true).num_args(1..).value_parser(clap::value_parser!(PathBuf))),
        )
}

/// Logs to stderr (or stdout) with the command's `--log` filter.
fn logs(m: &ArgMatches, stderr: bool) -> anyhow::Result<()> {
    let log = m.get_one::<String>("log").cloned().unwrap_or_default();
    let filter = tracing_subscriber::EnvFilter::try_new(&log).context("--log")?;
    if stderr {
        tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    tracing_log::LogTracer::init().ok();
    Ok(())
}

/// Runs client command `name`; `None` when it is not one of them.
pub async fn run(name: &str, m: &ArgMatches) -> Option<anyhow::Result<()>> {
    Some(match name {
        "publish" => publish_command(m).await,
        "cluster" => match logs(m, true).and_then(|()| Ok(cluster::ClusterCommand::from_arg_matches(m)?)) {
            Ok(c) => cluster::run(c).await,
            Err(e) => Err(e),
        },
        "release" => match logs(m, true).and_then(|()| Ok(release::ReleaseCommand::from_arg_matches(m)?)) {
            Ok(c) => release::run(c).await,
            Err(e) => Err(e),
        },
        "vod" => match logs(m, true).and_then(|()| Ok(vod::VodCommand::from_arg_matches(m)?)) {
            Ok(c) => vod::run(c).await,
            Err(e) => Err(e),
        },
        "check-hls" => check_hls(m),
        _ => return None,
    })
}

async fn publish_command(m: &ArgMatches) -> anyhow::Result<()> {
    logs(m, false)?;
    let args = PublishArgs::from_arg_matches(m)?;
    let mut stream_id = publish_stream_id(&args.test_pattern);
    if let Some(t) = &args.token {
        stream_id.push_str(&format!(",t={t}"));
    }
    println!("Publishing a live test pattern to srt://{} as live/{}", args.to, args.test_pattern);
    let job = publisher_loop(args.to, stream_id, Some(args.pattern.config()), args.seconds);
    tokio::select! {
        _ = job => {}
        _ = wait_for_signal() => {}
    }
    Ok(())
}

fn check_hls(m: &ArgMatches) -> anyhow::Result<()> {
    let mut failed = false;
    for path in m.get_many::<PathBuf>("files").into_iter().flatten() {
        let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
        let r = crate::check_hls::check_recording(&text).map_err(anyhow::Error::msg)?;
        println!(
            "{}: {} media playlists ({} delta updates, {} checked against the full playlist), {} multivariant, \
             {} segment numbers compared across renditions, {} violations",
            path.display(),
            r.media_playlists,
            r.delta_updates,
            r.checked_deltas,
            r.multivariant_playlists,
            r.aligned_segments,
            r.violations.len()
        );
        for (url, v) in r.violations.iter().take(50) {
            println!("  {url}: [{}] {}", v.rule, v.detail);
        }
        failed |= !r.violations.is_empty() || r.media_playlists == 0;
    }
    if failed {
        anyhow::bail!("playlists break the LL-HLS rules");
    }
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Publishes the test pattern (or, with `None`, the bundled sample in a loop) to the SRT
/// listener at `srt`, connecting again after a failure; for `seconds` (forever with
/// `None`).
pub async fn publisher_loop(
    srt: std::net::SocketAddr,
    stream_id: String,
    pattern: Option<PatternConfig>,
    seconds: Option<u64>,
) {
    let file = if pattern.is_none() { Some(TsFile::new(SAMPLE).expect("the bundled sample is valid")) } else { None };
    loop {
        match connect(srt, &stream_id).await {
            Ok(mut socket) => {
                let r = match (&pattern, &file) {
                    (Some(p), _) => publish_pattern(&mut socket, p.clone(), seconds).await,
                    (None, Some(f)) => publish(&mut socket, f, None).await,
                    (None, None) => unreachable!("one or the other"),
                };
                match r {
                    Ok(()) if seconds.is_some() => {
                        use futures::SinkExt;
                        let _ = socket.close().await;
                        return;
                    }
                    Ok(()) => {}
                    Err(e) => tracing::warn!(error = %e, "publisher interrupted; reconnecting"),
                }
            }
            Err(e) => tracing::warn!(error = %e, %srt, "cannot connect; retrying"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
