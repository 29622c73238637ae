//! `tessera release ...`: schedule, list, show, move and cancel premieres through a node's
//! admin API (`/api/v1/releases`).

// A command prints its results for the person who ran it.
#![allow(clippy::print_stdout)]

use clap::Subcommand;
use hyper::Method;
use serde_json::{json, Value};

use crate::cluster::ApiArgs;

#[derive(Subcommand, Debug)]
pub enum ReleaseCommand {
    /// Announce CONTENT (`live/NAME` or `vod/ASSET`) for a time; gated everywhere until then.
    Schedule {
        /// `live/NAME` or `vod/ASSET`.
        content: String,
        /// When it opens (RFC 3339, e.g. 2026-12-01T20:00:00Z).
        #[arg(long)]
        at: String,
        /// When it is taken down.
        #[arg(long)]
        end: Option<String>,
        /// Only nodes of this region serve it (repeatable).
        #[arg(long = "region")]
        regions: Vec<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Every release, newest first.
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// One release: its state, commit and readiness per node.
    Show {
        /// The release's id (from `schedule` or `list`).
        id: u64,
        /// As JSON (the admin API's answer).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Move a release's time (while scheduled) or set its end (a takedown).
    Move {
        /// The release's id.
        id: u64,
        /// The new release time (RFC 3339).
        #[arg(long)]
        at: Option<String>,
        /// The new end (RFC 3339): takes the release down then.
        #[arg(long, conflicts_with = "no_end")]
        end: Option<String>,
        /// Remove the end.
        #[arg(long)]
        no_end: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Cancel a release that has not opened (the content stays gated).
    Cancel {
        /// The release's id.
        id: u64,
        #[command(flatten)]
        api: ApiArgs,
    },
}

pub async fn run(command: ReleaseCommand) -> anyhow::Result<()> {
    match command {
        ReleaseCommand::Schedule { content, at, end, regions, api } => {
            let body = json!({ "content": content, "at": at, "end": end, "regions": regions });
            let r = api.client().call(Method::POST, "/api/v1/releases", Some(&body)).await?;
            print!("{}", render(&r));
        }
        ReleaseCommand::List { api } => {
            let r = api.client().get("/api/v1/releases").await?;
            println!("{:>4}  {:<24} {:<10} {:<25} {:>6}", "ID", "CONTENT", "STATE", "AT", "READY");
            for x in r["data"].as_array().into_iter().flatten() {
                println!(
                    "{:>4}  {:<24} {:<10} {:<25} {:>6}",
                    x["id"],
                    text(&x["content"]),
                    text(&x["state"]),
                    text(&x["at"]),
                    format!("{}/{}", x["ready_nodes"], x["serving_nodes"])
                );
            }
        }
        ReleaseCommand::Show { id, json, api } => {
            let r = api.client().get(&format!("/api/v1/releases/{id}")).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", render(&r));
            }
        }
        ReleaseCommand::Move { id, at, end, no_end, api } => {
            let mut body = json!({});
            if let Some(at) = at {
                body["at"] = json!(at);
            }
            if let Some(end) = end {
                body["end"] = json!(end);
            } else if no_end {
                body["end"] = Value::Null;
            }
            let r = api.client().call(Method::PUT, &format!("/api/v1/releases/{id}"), Some(&body)).await?;
            print!("{}", render(&r));
        }
        ReleaseCommand::Cancel { id, api } => {
            let r = api.client().call(Method::DELETE, &format!("/api/v1/releases/{id}"), None).await?;
            print!("{}", render(&r));
        }
    }
    Ok(())
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

/// A release and every node's part in it, as a table.
fn render(r: &Value) -> String {
    let mut out = format!(
        "release {} of {}: {} at {}{}{}\n",
        r["id"],
        text(&r["content"]),
        text(&r["state"]),
        text(&r["at"]),
        r["end"].as_str().map(|e| format!(", until {e}")).unwrap_or_default(),
        r["committed"]
            .as_str()
            .map(|c| format!(", committed {c} ({} ms after)", r["commit_after_ms"]))
            .unwrap_or_default(),
    );
    out.push_str(&format!(
        "{:>4}  {:<10} {:<7} {:<6} {:<25} {}\n",
        "NODE", "REGION", "SERVES", "READY", "VOTED (ITS CLOCK)", "HOLDS"
    ));
    for n in r["nodes"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:>4}  {:<10} {:<7} {:<6} {:<25} {}\n",
            n["node"],
            text(&n["region"]),
            if n["serves"] == true { "yes" } else { "no" },
            if n["ready"] == true { "yes" } else { "no" },
            text(&n["open_vote_clock"]),
            text(&n["detail"]),
        ));
    }
    out
}
