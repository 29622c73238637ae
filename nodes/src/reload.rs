//! What a running node takes from a changed configuration without a restart: on SIGHUP
//! (the configuration file and flags read again) or `POST /api/v1/node/reload`; and its log
//! filter through `PUT /api/v1/node/log`.
//!
//! Applied live: the fallback publish tokens (to the next publisher's check), the default
//! and per-stream ladders, the ingest limits and the idle timeout (to each publisher that
//! connects afterwards; those connected keep what they started with). Everything else is
//! reported as needing a restart and left as it runs.

use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;

use crate::auth::StaticTokens;
use crate::config::NodeConfig;
use crate::session::IngestSettings;
use crate::NodeError;

/// The settings (by their configuration key) a reload applies.
pub const LIVE: [&str; 6] =
    ["publish_tokens", "ladder", "stream_ladders", "max_ingest_kbps", "max_frame_bytes", "ingest_idle_timeout_ms"];

type Source = Box<dyn Fn() -> Result<NodeConfig, String> + Send + Sync>;
type LogFilter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;
type Rebuild = Box<dyn Fn(&NodeConfig) -> Result<IngestSettings, NodeError> + Send + Sync>;

/// What a reload did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ReloadReport {
    /// Keys whose new values now apply.
    pub applied: Vec<String>,
    /// Keys that changed but take a restart; the node runs with their old values.
    pub needs_restart: Vec<String>,
}

/// The node's live settings and how to replace them.
pub struct Reloader {
    running: Mutex<NodeConfig>,
    settings: watch::Sender<IngestSettings>,
    rebuild: Rebuild,
    fallback: Arc<RwLock<Arc<StaticTokens>>>,
    source: Mutex<Option<Source>>,
    log: Mutex<Option<LogFilter>>,
}

impl Reloader {
    pub fn new(
        running: NodeConfig,
        settings: watch::Sender<IngestSettings>,
        rebuild: Rebuild,
        fallback: Arc<RwLock<Arc<StaticTokens>>>,
    ) -> Self {
        Reloader {
            running: Mutex::new(running),
            settings,
            rebuild,
            fallback,
            source: Mutex::new(None),
            log: Mutex::new(None),
        }
    }

    /// Where [`Self::reload`] reads the configuration from (the binary's file and flags).
    pub fn set_source(&self, source: impl Fn() -> Result<NodeConfig, String> + Send + Sync + 'static) {
        *lock(&self.source) = Some(Box::new(source));
    }

    /// How [`Self::set_log_filter`] changes the log filter (the binary's subscriber).
    pub fn set_log(&self, log: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) {
        *lock(&self.log) = Some(Box::new(log));
    }

    /// Reads the configuration again and applies it.
    pub fn reload(&self) -> Result<ReloadReport, NodeError> {
        let read = {
            let source = lock(&self.source);
            let source = source
                .as_ref()
                .ok_or_else(|| NodeError::Config("this node has no configuration to read again".into()))?;
            source().map_err(NodeError::Config)?
        };
        self.apply(read)
    }

    /// Applies what can change live of `new`; reports the rest.
    pub fn apply(&self, new: NodeConfig) -> Result<ReloadReport, NodeError> {
        new.validate()?;
        let mut running = lock(&self.running);
        let (old, wanted) = (as_map(&running), as_map(&new));
        let changed: Vec<&String> = wanted.iter().filter(|(k, v)| old.get(*k) != Some(*v)).map(|(k, _)| k).collect();
        let (live, restart): (Vec<&String>, Vec<&String>) =
            changed.into_iter().partition(|k| LIVE.contains(&k.as_str()));
        let mut next = old.clone();
        for k in &live {
            next.insert((*k).clone(), wanted[*k].clone());
        }
        let next: NodeConfig =
            serde_json::from_value(Value::Object(next)).map_err(|e| NodeError::Config(format!("reload: {e}")))?;
        let tokens = StaticTokens::from_entries(&next.publish_tokens).map_err(NodeError::Config)?;
        let settings = (self.rebuild)(&next)?;
        *self.fallback.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tokens);
        self.settings.send_replace(settings);
        *running = next;
        let report = ReloadReport {
            applied: live.into_iter().cloned().collect(),
            needs_restart: restart.into_iter().cloned().collect(),
        };
        tracing::info!(applied = ?report.applied, needs_restart = ?report.needs_restart, "configuration reloaded");
        metrics::counter!("tessera_config_reloads_total").increment(1);
        Ok(report)
    }

    /// Replaces the log filter (`info`, `warn,tessera_packager=debug`: tracing's syntax).
    pub fn set_log_filter(&self, filter: &str) -> Result<(), String> {
        let log = lock(&self.log);
        let log = log.as_ref().ok_or("this node's log filter cannot change while it runs")?;
        log(filter)?;
        tracing::info!(filter, "log filter changed");
        Ok(())
    }
}

fn as_map(config: &NodeConfig) -> serde_json::Map<String, Value> {
    match serde_json::to_value(config) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
