//! `tessera`: run a node, or a demo that publishes a bundled sample to itself.

use std::path::PathBuf;

use anyhow::Context;
use clap::{ArgMatches, Args, Command, FromArgMatches};
use tessera_node::publish::{connect, publish, publish_stream_id, TsFile};
use tessera_node::{Node, NodeConfig};

const SAMPLE: &[u8] = include_bytes!("../../samples/sample.ts");

#[derive(Args, Debug)]
struct Common {
    /// TOML configuration file (flags override it).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Log filter (RUST_LOG syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log: String,
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Stream name the demo publishes.
    #[arg(long, default_value = "demo")]
    stream: String,
}

fn cli() -> Command {
    let node = NodeConfig::augment_args(Common::augment_args(Command::new("node").about("Run a node")));
    let demo = DemoArgs::augment_args(NodeConfig::augment_args(Common::augment_args(
        Command::new("demo").about("Run a node and publish the bundled sample to it over SRT, in a loop"),
    )));
    Command::new("tessera")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Tessera: live video ingest (SRT) and low-latency HLS")
        .subcommand_required(true)
        .subcommand(node)
        .subcommand(demo)
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let matches = cli().get_matches();
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
            println!("Tessera demo: publishing the bundled sample over SRT to {srt} as live/{}", demo.stream);
            println!("Play: http://{host}:{}/live/{}/index.m3u8", http.port(), demo.stream);
            let file = TsFile::new(SAMPLE)?;
            let stream = demo.stream.clone();
            let publisher = tokio::spawn(async move {
                loop {
                    match connect(srt, &publish_stream_id(&stream)).await {
                        Ok(mut socket) => {
                            if let Err(e) = publish(&mut socket, &file, None).await {
                                tracing::warn!(error = %e, "demo publisher interrupted; reconnecting");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "demo publisher cannot connect; retrying"),
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            });
            wait_for_signal().await;
            publisher.abort();
            node.shutdown().await;
        }
        Some(("check-hls", m)) => {
            let mut failed = false;
            for path in m.get_many::<PathBuf>("files").into_iter().flatten() {
                let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
                let r = tessera_node::check_hls::check_recording(&text).map_err(anyhow::Error::msg)?;
                println!(
                    "{}: {} media playlists ({} delta updates, {} checked against the full playlist), {} multivariant, {} violations",
                    path.display(),
                    r.media_playlists,
                    r.delta_updates,
                    r.checked_deltas,
                    r.multivariant_playlists,
                    r.violations.len()
                );
                for (url, v) in r.violations.iter().take(50) {
                    println!("  {url}: [{}] {}", v.rule, v.detail);
                }
                failed |= !r.violations.is_empty() || r.media_playlists == 0;
            }
            if failed {
                std::process::exit(1);
            }
        }
        _ => unreachable!("subcommand_required"),
    }
    Ok(())
}
