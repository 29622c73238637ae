//! The release gate: whether this node may serve a piece of content now, as far as a
//! scheduled release says (when, and in which regions).
//!
//! # Contract
//! - [`ReleaseGate`] reads what this node has applied and never asks the leader: gated
//!   content is served only once this node has applied the committed entry that opened it
//!   (how a release opens by quorum time is in `tessera_raft`'s release module). A node cut
//!   off from the quorum keeps serving what it had applied as open, and opens nothing new.
//! - Gated content answers exactly as unknown content does (`404`, `no-store`): its
//!   existence does not leak. Each refusal is counted (`tessera_release_gated_requests_total`).
//! - Time enters at one place, the node's [`Clock`] (the wall clock, or a skewed one in
//!   tests): read by the node's release clock task (for votes) and by the gate (a
//!   takedown's end, where early is the safe side). The catalog reads no clock.

use std::sync::Arc;

use tessera_raft::{CatalogNode, Gate, Visibility};

/// A node's clock: the wall clock, or (for tests of skewed clocks) an offset from it.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock shifted by `skew_ms` (0: the wall clock itself).
pub fn clock_with_skew(skew_ms: i64) -> Clock {
    Arc::new(move || tessera_ingest::timestamp::unix_ms() + skew_ms)
}

/// Decides whether this node may serve a piece of content now.
#[derive(Clone)]
pub struct ReleaseGate {
    catalog: CatalogNode,
    region: Option<String>,
    clock: Clock,
}

impl ReleaseGate {
    pub fn new(catalog: CatalogNode, region: Option<String>, clock: Clock) -> Self {
        ReleaseGate { catalog, region, clock }
    }

    /// Whether the live stream `name` may be served here; a refusal is counted.
    pub fn live(&self, name: &str) -> Visibility {
        self.content(&format!("live/{name}"))
    }

    /// Whether `content` (`live/NAME`, `vod/ASSET`) may be served here.
    pub fn content(&self, content: &str) -> Visibility {
        let v = self.visibility(content);
        if let Visibility::Gated(gate) = v {
            metrics::counter!("tessera_release_gated_requests_total", "gate" => gate_name(gate)).increment(1);
        }
        v
    }

    /// Whether the live stream may be served, without counting a refusal (for listings).
    pub fn live_is_public(&self, name: &str) -> bool {
        self.visibility(&format!("live/{name}")) == Visibility::Public
    }

    fn visibility(&self, content: &str) -> Visibility {
        self.catalog.peek(|c| {
            if c.release_by_content.is_empty() {
                return Visibility::Public;
            }
            c.visibility(content, self.region.as_deref(), (self.clock)())
        })
    }

    /// When the live stream's release opened it, if a release governs it: its past before
    /// then (the rehearsal) is not offered for seeking.
    pub fn live_released_at(&self, name: &str) -> Option<i64> {
        let content = format!("live/{name}");
        self.catalog.peek(|c| c.release_of(&content).map(|r| r.at_ms))
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

pub fn gate_name(gate: Gate) -> &'static str {
    match gate {
        Gate::NotReleased => "not_released",
        Gate::Cancelled => "cancelled",
        Gate::OutOfRegion => "out_of_region",
        Gate::TakenDown => "taken_down",
    }
}
