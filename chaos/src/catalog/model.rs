//! What the clients do and what the checker compares: keys, commands of every family on a
//! few keys each (so that clients contend), and each key's projection of the catalog.

use serde_json::Value;
use tessera_raft::{AssetRecord, Catalog, Command, KeyRecord, NodeId, Outcome, Protection, SourceRecord, TokenKind};

use crate::cluster::Rng;

/// One client operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Write(Command),
    /// A linearizable read of the key's projection.
    Read,
}

/// What came back.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A write's outcome (a rejection is one), normalised.
    Outcome(Value),
    /// A read's projection.
    Value(Value),
    /// No answer: a write that may take effect at any time after it was invoked, or never.
    Unknown,
}

/// One operation of a history.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEvent {
    pub client: usize,
    pub node: NodeId,
    pub key: String,
    pub call: Call,
    pub answer: Answer,
    /// The wall clock when it was invoked (the model applies writes at it).
    pub at_ms: i64,
    pub invoked_us: u64,
    pub returned_us: Option<u64>,
}

/// A node's own copy, as a local read saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalObservation {
    pub node: NodeId,
    pub applied: Option<u64>,
    pub key: String,
    pub value: Value,
}

/// The keys the clients contend on.
pub fn keys() -> Vec<String> {
    let mut k = Vec::new();
    for i in 0..2 {
        k.push(format!("stream:s{i}"));
        k.push(format!("token:{}", token(i)));
        k.push(format!("release:live/r{i}"));
        k.push(format!("content:vod/c{i}"));
        k.push(format!("asset:a{i}"));
    }
    k
}

fn token(i: u64) -> String {
    format!("{i:x}").repeat(64)
}

/// A random write on `key`.
pub fn command(key: &str, rng: &mut Rng) -> Command {
    let (family, name) = key.split_once(':').expect("family:name");
    let name = name.to_string();
    let node = 1 + rng.below(3);
    let small = |rng: &mut Rng| 1 + rng.below(4);
    match family {
        "stream" => match rng.below(7) {
            0 | 1 => Command::PutStream { name, ladder: None, token_sha256: None, create_only: rng.below(2) == 0 },
            2 => Command::DeleteStream { name },
            3 => Command::AcquireOrigin { stream: name, node },
            4 => Command::ReleaseOrigin { stream: name, node, epoch: small(rng) },
            5 => Command::SetRecording { stream: name, record: rng.below(2) == 0 },
            _ => Command::PlaceLadder { stream: name, origin_epoch: small(rng), node },
        },
        "token" => match rng.below(2) {
            0 => Command::AddToken { kind: TokenKind::Admin, sha256: name },
            _ => Command::RevokeToken { kind: TokenKind::Admin, sha256: name },
        },
        "release" => {
            let regions = if rng.below(2) == 0 { vec![] } else { vec!["eu".to_string()] };
            let at_ms = 4_000_000_000_000 + rng.below(1000) as i64;
            Command::ScheduleRelease { content: name, at_ms, end_ms: None, regions }
        }
        "content" => match rng.below(4) {
            0 => Command::SetProtection {
                content: name,
                mode: if rng.below(2) == 0 { Protection::Cbcs } else { Protection::None },
            },
            1 => Command::SetRights { content: name, regions: vec![["eu", "us"][rng.below(2) as usize].to_string()] },
            2 => Command::SetSignedUrls { content: name, required: rng.below(2) == 0 },
            _ => Command::AddKey {
                content: name,
                key: KeyRecord {
                    kid: format!("{:032x}", rng.below(4)),
                    wrapped: "wrapped".into(),
                    from_msn: rng.below(10),
                    created_ms: 0,
                    drm: vec![],
                },
            },
        },
        "asset" => {
            let rendition = "720p".to_string();
            match rng.below(7) {
                0 => Command::AddAsset { asset: asset(&name) },
                1 => Command::AddJobs {
                    asset: name,
                    jobs: vec![(rendition, "h264:1280x720@2500".into())],
                    segments_total: 4,
                },
                2 => Command::ClaimJob { asset: name, rendition, node, lease_ms: 600_000 },
                3 => Command::RenewJob {
                    asset: name,
                    rendition,
                    node,
                    epoch: small(rng),
                    lease_ms: 600_000,
                    segments_done: rng.below(5) as u32,
                },
                4 => Command::FinishJob { asset: name, rendition, node, epoch: small(rng) },
                5 => Command::FailJob { asset: name, rendition, node, epoch: small(rng), error: "codec".into() },
                _ => Command::RetryJob { asset: name, rendition },
            }
        }
        other => unreachable!("no family {other}"),
    }
}

fn asset(id: &str) -> AssetRecord {
    AssetRecord {
        id: id.to_string(),
        title: "film".into(),
        source: SourceRecord {
            node: 1,
            size: 1,
            sha256: "ab".repeat(32),
            container: "mp4".into(),
            duration_ms: 1000,
            video: None,
            audio: None,
        },
        state: Default::default(),
        keep_source: false,
        created_ms: 0,
    }
}

/// What the catalog holds of `key`, normalised.
pub fn project(c: &Catalog, key: &str) -> Value {
    let (family, name) = key.split_once(':').expect("family:name");
    let v = match family {
        "stream" => serde_json::to_value(c.streams.get(name)),
        "token" => Ok(Value::Bool(c.accepts(TokenKind::Admin, name))),
        "release" => serde_json::to_value(c.release_by_content.get(name).and_then(|id| c.releases.get(id))),
        "content" => serde_json::to_value(c.protection.get(name)),
        "asset" => {
            let prefix = format!("{name}/");
            let jobs: Vec<_> = c.jobs.iter().filter(|(k, _)| k.starts_with(&prefix)).collect();
            serde_json::to_value((c.assets.get(name), jobs))
        }
        other => unreachable!("no family {other}"),
    };
    normalise(v.expect("a catalog serialises"))
}

/// A write's outcome, normalised.
pub fn outcome(o: &Outcome) -> Value {
    normalise(serde_json::to_value(o).expect("an outcome serialises"))
}

/// Leaves out what the leader assigns and a model cannot know: times (`*_ms`) and ids.
fn normalise(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter().filter(|(k, _)| !(k.ends_with("_ms") || k == "id")).map(|(k, v)| (k, normalise(v))).collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(normalise).collect()),
        other => other,
    }
}
