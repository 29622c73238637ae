//! `tessera`: run a node, or a demo that runs one and publishes to it; the client commands
//! (`publish`, `cluster`, `release`, `vod`, `check-hls`) are `tessera-cli`'s.

// A command prints its results for the person who ran it.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use anyhow::Context;
use clap::{ArgMatches, Args, Command, FromArgMatches};
use tessera_cli::commands::{self, wait_for_signal, PatternArgs};
use tessera_cli::publish::publish_stream_id;
use tessera_node::{Node, NodeConfig};
use tracing_subscriber::EnvFilter;

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

fn cli() -> Command {
    let node = NodeConfig::augment_args(Common::augment_args(Command::new("node").about("Run a node")));
    let demo = DemoArgs::augment_args(NodeConfig::augment_args(Common::augment_args(
        Command::new("demo").about("Run a node and publish a live test pattern to it over SRT"),
    )));
    let tessera = Command::new("tessera")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Tessera: live video ingest (SRT) and low-latency HLS")
        .subcommand_required(true)
        .subcommand(node)
        .subcommand(demo);
    commands::add(tessera).subcommand(
        Command::new("codec-worker")
            .hide(true)
            .about("Run a codec worker: started by a node, speaks the worker protocol on stdin and stdout"),
    )
}

/// Changes the log filter of the running process.
type LogHandle = tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>;

fn load(m: &ArgMatches) -> anyhow::Result<(Common, NodeConfig, LogHandle)> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let common = Common::from_arg_matches(m)?;
    let (filter, log) = tracing_subscriber::reload::Layer::new(EnvFilter::try_new(&common.log).context("--log")?);
    tracing_subscriber::registry().with(filter).with(tracing_subscriber::fmt::layer()).init();
    tracing_log::LogTracer::init().ok();
    let config = read_config(&common, m)?;
    Ok((common, config, log))
}

/// The configuration file (if any) with the flags over it.
fn read_config(common: &Common, m: &ArgMatches) -> anyhow::Result<NodeConfig> {
    let file = common.config.as_deref().map(NodeConfig::from_file).transpose()?;
    Ok(NodeConfig::merge(file, m)?)
}

/// SIGHUP reads the configuration again; the admin API can too, and change the log filter.
fn reloadable(node: &Node, common: Common, m: &ArgMatches, log: LogHandle) {
    let m = m.clone();
    node.reloader().set_source(move || read_config(&common, &m).map_err(|e| format!("{e:#}")));
    node.reloader().set_log(move |filter| {
        let filter = EnvFilter::try_new(filter).map_err(|e| format!("log filter {filter:?}: {e}"))?;
        log.reload(filter).map_err(|e| e.to_string())
    });
}

/// Resolves at each SIGHUP (never elsewhere).
async fn hangup(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
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

async fn run(matches: ArgMatches) -> anyhow::Result<()> {
    match matches.subcommand() {
        Some(("node", m)) => {
            let (common, config, log) = load(m)?;
            let node = Node::start(config).await?;
            reloadable(&node, common, m, log);
            let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            // A catalog whose disk failed is fail-stop: the node exits (nonzero, for its
            // supervisor to restart it), and its restart reopens the store and catches up.
            loop {
                tokio::select! {
                    () = wait_for_signal() => {
                        node.shutdown().await;
                        break;
                    }
                    () = hangup(&mut sighup) => {
                        if let Err(e) = node.reloader().reload() {
                            tracing::warn!(error = %e, "SIGHUP: the configuration was not reloaded");
                        }
                    }
                    why = node.catalog_failed() => {
                        tracing::error!(error = %why, "the catalog's storage failed; stopping the node so that a restart reopens it");
                        node.shutdown().await;
                        anyhow::bail!("the catalog's storage failed: {why}");
                    }
                }
            }
        }
        Some(("demo", m)) => {
            let (_, mut config, _) = load(m)?;
            let demo = DemoArgs::from_arg_matches(m)?;
            // The console wants an admin token: one for this run when none is configured.
            let console_token = match config.admin_tokens.first() {
                Some(_) => None,
                None => {
                    let token = tessera_cluster::identity::new_secret();
                    config.admin_tokens.push(token.clone());
                    Some(token)
                }
            };
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
            match console_token {
                Some(t) => println!("Console: http://{host}:{}/console/ (admin token for this run: {t})", http.port()),
                None => println!("Console: http://{host}:{}/console/ (sign in with an admin token)", http.port()),
            }
            let pattern = (!demo.sample).then(|| demo.pattern.config());
            let publisher = tokio::spawn(commands::publisher_loop(srt, publish_stream_id(&demo.stream), pattern, None));
            wait_for_signal().await;
            publisher.abort();
            node.shutdown().await;
        }
        Some((name, m)) => match commands::run(name, m).await {
            Some(done) => done?,
            None => unreachable!("every subcommand is handled"),
        },
        None => unreachable!("subcommand_required"),
    }
    Ok(())
}
