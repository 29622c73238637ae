//! `tessera vod ...`: upload a film (tus 1.0, resumable, with a progress bar), list, show
//! and delete assets through a node's admin API.
//!
//! An upload remembers where it went (`$XDG_CACHE_HOME/tessera/uploads`, by the file's
//! content and the node), so running the same command again after an interruption resumes
//! it from the offset the node reports ([`tessera_vod::tus_client`]).

// A command prints its results for the person who ran it.
#![allow(clippy::print_stdout)]

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Subcommand;
use hyper::Method;
use tessera_vod::tus_client::{TusClient, UploadOptions, UploadProgress};

use crate::cluster::ApiArgs;

#[derive(Subcommand, Debug)]
pub enum VodCommand {
    /// Upload a film (MP4, QuickTime or MPEG-TS): resumes where a previous run stopped.
    Upload {
        file: PathBuf,
        /// The asset's title (default: the file's name).
        #[arg(long)]
        title: Option<String>,
        /// Delete the source once it is transcoded.
        #[arg(long)]
        drop_source: bool,
        /// Bytes per request, KiB.
        #[arg(long, default_value_t = 4096)]
        chunk_kib: usize,
        /// Pause between requests, ms (to pace an upload).
        #[arg(long, default_value_t = 0, hide = true)]
        pause_ms: u64,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Every asset.
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// One asset and the progress of its jobs (`--json` for everything the API says).
    Show {
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Try a failed or dead-lettered job again.
    Retry {
        id: String,
        rendition: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Delete an asset and its source.
    Delete {
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

pub async fn run(command: VodCommand) -> anyhow::Result<()> {
    match command {
        VodCommand::Upload { file, title, drop_source, chunk_kib, pause_ms, api } => {
            let resume_dir = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|c| c.join("tessera").join("uploads"));
            if let Some(d) = &resume_dir {
                std::fs::create_dir_all(d)?;
            }
            let opts = UploadOptions {
                title,
                keep_source: !drop_source,
                chunk: chunk_kib.max(1) << 10,
                pause: Duration::from_millis(pause_ms),
                resume_dir,
            };
            let (base, token) = api.parts();
            let mut bar = Progress { started: Instant::now(), from: None, tty: std::io::stderr().is_terminal() };
            let id = TusClient::new(&base, &token).upload(&file, &opts, |p| bar.update(p)).await;
            if bar.tty {
                eprintln!();
            }
            println!("asset: {}", id?);
        }
        VodCommand::List { api } => {
            let r = api.client().get("/api/v1/assets").await?;
            println!("{:<34} {:<12} {:>5} {:>9} {:<16} TITLE", "ID", "STATE", "DONE", "DURATION", "VIDEO");
            for a in r["data"].as_array().into_iter().flatten() {
                let s = a["source"]["duration_ms"].as_u64().unwrap_or(0) / 1000;
                println!(
                    "{:<34} {:<12} {:>4.0}% {:>9} {:<16} {}",
                    a["id"].as_str().unwrap_or_default(),
                    a["state"].as_str().unwrap_or_default(),
                    a["progress"].as_f64().unwrap_or(0.0) * 100.0,
                    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
                    a["source"]["video"].as_str().unwrap_or("-"),
                    a["title"].as_str().unwrap_or_default()
                );
            }
        }
        VodCommand::Show { id, json, api } => {
            let r = api.client().get(&format!("/api/v1/assets/{id}")).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_asset(&r);
            }
        }
        VodCommand::Retry { id, rendition, api } => {
            let path = format!("/api/v1/assets/{id}/jobs/{rendition}/retry");
            api.client().call(Method::POST, &path, None).await?;
            println!("{id}/{rendition} will be tried again");
        }
        VodCommand::Delete { id, api } => {
            api.client().call(Method::DELETE, &format!("/api/v1/assets/{id}"), None).await?;
            println!("deleted {id}");
        }
    }
    Ok(())
}

/// An asset and a line per job: state, segments made, the node working on it, the last error.
fn print_asset(a: &serde_json::Value) {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    println!("{}  {}  ({})", text(&a["id"]), text(&a["title"]), text(&a["state"]));
    println!(
        "source: {} {} {}",
        text(&a["source"]["container"]),
        text(&a["source"]["video"]),
        text(&a["source"]["audio"])
    );
    println!("progress: {:.0}%", a["progress"].as_f64().unwrap_or(0.0) * 100.0);
    println!("{:<10} {:<18} {:<8} {:>9} {:>8} {:>5}  ERROR", "RENDITION", "SPEC", "STATE", "SEGMENTS", "NODE", "TRIES");
    for j in a["jobs"].as_array().into_iter().flatten() {
        let node = j["lease"]["node"].as_u64().or(j["output_node"].as_u64()).map_or("-".into(), |n| n.to_string());
        println!(
            "{:<10} {:<18} {:<8} {:>9} {:>8} {:>5}  {}",
            text(&j["rendition"]),
            text(&j["spec"]),
            text(&j["state"]),
            format!("{}/{}", j["segments_done"].as_u64().unwrap_or(0), j["segments_total"].as_u64().unwrap_or(0)),
            node,
            j["attempts"].as_u64().unwrap_or(0),
            j["last_error"].as_str().unwrap_or("")
        );
    }
}

/// A progress line on stderr: done, total, rate, time left.
struct Progress {
    started: Instant,
    /// Where this run started.
    from: Option<u64>,
    tty: bool,
}

impl Progress {
    fn update(&mut self, p: UploadProgress) {
        match p {
            UploadProgress::Resumed { offset, length } => {
                eprintln!("resuming at byte {offset} of {length}");
                self.from = Some(offset);
            }
            UploadProgress::Stored { offset, length } => self.show(offset, length),
            UploadProgress::Retrying { wait } => eprintln!("\nretrying in {:.1} s", wait.as_secs_f64()),
        }
    }

    fn show(&mut self, done: u64, total: u64) {
        let from = *self.from.get_or_insert(0);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = done.saturating_sub(from) as f64 / secs;
        let left = if rate > 0.0 { (total.saturating_sub(done) as f64 / rate) as u64 } else { 0 };
        let pct = if total == 0 { 100.0 } else { done as f64 * 100.0 / total as f64 };
        let filled = (pct / 5.0) as usize;
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        let line = format!(
            "[{}{}] {pct:5.1}% {:.1}/{:.1} MiB {:.1} MiB/s ETA {}:{:02}",
            "#".repeat(filled),
            "-".repeat(20 - filled.min(20)),
            mib(done),
            mib(total),
            rate / (1 << 20) as f64,
            left / 60,
            left % 60
        );
        if self.tty {
            eprint!("\r{line}");
        } else {
            eprintln!("{line}");
        }
        let _ = std::io::stderr().flush();
    }
}
