//! `tessera`: run a node, publish a test feed to one, or a demo that does both.

mod cluster_cli;
mod release_cli;
mod vod_cli;

use std::path::PathBuf;

use anyhow::Context;
use clap::{ArgMatches, Args, Command, FromArgMatches, Subcommand};
use tessera_codec::pattern::PatternConfig;
use tessera_node::publish::{connect, publish, publish_pattern, publish_stream_id, TsFile};
use tessera_node::{Node, NodeConfig};

const SAMPLE: &[u8] = include_bytes!("../../samples/sample.ts");

#[derive(Args, Debug)]
struct Common {
    /// TOML configuration file (flags override it).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Log filter (RUST_LOG syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info,openraft=warn")]
    log: String,
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Stream name the demo publishes.
    #[arg(long, default_value = "demo")]
    stream: String,
    /// Publish the bundled 640x360 sample file instead of the live test pattern.
    #[arg(long)]
    sample: bool,
    #[command(flatten)]
    pattern: PatternArgs,
}

#[derive(Args, Debug, Clone)]
struct PatternArgs {
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
    fn config(&self) -> PatternConfig {
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

fn cli() -> Command {
    let node = NodeConfig::augment_args(Common::augment_args(Command::new("node").about("Run a node")));
    let demo = DemoArgs::augment_args(NodeConfig::augment_args(Common::augment_args(
        Command::new("demo").about("Run a node and publish a live test pattern to it over SRT"),
    )));
    let publish = PublishArgs::augment_args(
        Command::new("publish").about("Publish a live feed to a node over SRT").arg(
            clap::Arg::new("log")
                .long("log")
                .env("RUST_LOG")
                .default_value("info")
                .help("Log filter (RUST_LOG syntax)"),
        ),
    );
    Command::new("tessera")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Tessera: live video ingest (SRT) and low-latency HLS")
        .subcommand_required(true)
        .subcommand(node)
        .subcommand(demo)
        .subcommand(publish)
        .subcommand(cluster_cli::ClusterCommand::augment_subcommands(
            Command::new("cluster")
                .about("Create a cluster; show, or shrink, a running one")
                .subcommand_required(true)
                .arg(quiet_log_arg()),
        ))
        .subcommand(release_cli::ReleaseCommand::augment_subcommands(
            Command::new("release")
                .about("Schedule, show, move or cancel a premiere (a release gated by the cluster)")
                .subcommand_required(true)
                .arg(quiet_log_arg()),
        ))
        .subcommand(vod_cli::VodCommand::augment_subcommands(
            Command::new("vod")
                .about("Upload a film (resumable, with progress); list, show or delete assets")
                .subcommand_required(true)
                .arg(quiet_log_arg()),
        ))
        .subcommand(
            Command::new("codec-worker")
                .hide(true)
                .about("Run a codec worker: started by a node, speaks the worker protocol on stdin and stdout"),
        )
        .subcommand(
            Command::new("check-hls")
                .about("Check recorded playlists (JSON lines of url, status, body) against the LL-HLS rules")
                .arg(clap::Arg::new("files").required(true).num_args(1..).value_parser(clap::value_parser!(PathBuf))),
        )
}

fn load(m: &ArgMatches) -> anyhow::Result<(Common, NodeConfig)> {
    let common = Common::from_arg_matches(m)?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&common.log).context("--log")?)
        .init();
    tracing_log::LogTracer::init().ok();
    let file = common.config.as_deref().map(NodeConfig::from_file).transpose()?;
    let config = NodeConfig::merge(file, m)?;
    Ok((common, config))
}

async fn wait_for_signal() {
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

fn main() -> anyhow::Result<std::process::ExitCode> {
    let matches = cli().get_matches();
    if matches.subcommand_name() == Some("codec-worker") {
        // No runtime, no logging: the worker answers on stdout and dies alone.
        return Ok(tessera_codec::worker::main());
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(matches))?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn publisher_loop(
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

async fn run(matches: ArgMatches) -> anyhow::Result<()> {
    match matches.subcommand() {
        Some(("node", m)) => {
            let (_, config) = load(m)?;
            let node = Node::start(config).await?;
            wait_for_signal().await;
            node.shutdown().await;
        }
        Some(("demo", m)) => {
            let (_, config) = load(m)?;
            let demo = DemoArgs::from_arg_matches(m)?;
            let node = Node::start(config).await?;
            let mut srt = node.srt_addr();
            if srt.ip().is_unspecified() {
                srt.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            let http = node.http_addr();
            let host = if http.ip().is_unspecified() { "127.0.0.1".to_string() } else { http.ip().to_string() };
            let what = if demo.sample { "the bundled sample" } else { "a live test pattern" };
            println!("Tessera demo: publishing {what} over SRT to {srt} as live/{}", demo.stream);
            println!("Play: http://{host}:{}/live/{}/index.m3u8", http.port(), demo.stream);
            let pattern = (!demo.sample).then(|| demo.pattern.config());
            let publisher = tokio::spawn(publisher_loop(srt, publish_stream_id(&demo.stream), pattern, None));
            wait_for_signal().await;
            publisher.abort();
            node.shutdown().await;
        }
        Some(("publish", m)) => {
            let log = m.get_one::<String>("log").cloned().unwrap_or_default();
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::try_new(&log).context("--log")?)
                .init();
            tracing_log::LogTracer::init().ok();
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
        }
        Some(("cluster", m)) => {
            stderr_logs(m)?;
            cluster_cli::run(cluster_cli::ClusterCommand::from_arg_matches(m)?).await?;
        }
        Some(("release", m)) => {
            stderr_logs(m)?;
            release_cli::run(release_cli::ReleaseCommand::from_arg_matches(m)?).await?;
        }
        Some(("vod", m)) => {
            stderr_logs(m)?;
            vod_cli::run(vod_cli::VodCommand::from_arg_matches(m)?).await?;
        }
        Some(("check-hls", m)) => {
            let mut failed = false;
            for path in m.get_many::<PathBuf>("files").into_iter().flatten() {
                let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
                let r = tessera_node::check_hls::check_recording(&text).map_err(anyhow::Error::msg)?;
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
        }
        _ => unreachable!("subcommand_required"),
    }
    Ok(())
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

/// Logs to stderr with the command's `--log` filter.
fn stderr_logs(m: &ArgMatches) -> anyhow::Result<()> {
    let log = m.get_one::<String>("log").cloned().unwrap_or_default();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&log).context("--log")?)
        .init();
    Ok(())
}
