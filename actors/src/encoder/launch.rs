//! Where a ladder's codec worker runs: a [`WorkerLauncher`] starts one for the encoder and
//! hands back a [`WorkerLink`] to it, wherever it is.
//!
//! The encoder does not know the cluster. It asks its launcher for a worker (with the
//! ladder's cost and the nodes that just failed it), feeds the link it gets, and takes
//! what the worker sends as [`WorkerEvent`]s: the same events whether the worker is a
//! process beside it ([`WorkerProcess`](super::process::WorkerProcess)) or on another node. A link whose worker is gone
//! reports [`WorkerEvent::Exited`] (or [`WorkerEvent::Lost`] when its node is) exactly
//! once, and nothing after it. A link may also ask for its worker to be moved
//! ([`WorkerEvent::Displaced`], [`WorkerEvent::Crowded`]); the encoder then hands the
//! ladder over without a gap.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tessera_transcode::wire::ToWorker;

pub use super::process::QueueError;

/// What a worker's link reports to its encoder.
#[derive(Debug)]
pub enum WorkerEvent {
    Message(tessera_transcode::wire::FromWorker, Bytes),
    /// The output could not be read: the worker is to be killed.
    Garbled(String),
    /// The worker ended.
    Exited(String),
    /// The worker's node is gone, or cut off: the worker is taken as dead there.
    Lost(String),
    /// The worker runs where it should no longer (its node is draining): the encoder moves
    /// it, starting another that takes over at a boundary. Repeated while it holds.
    Displaced(String),
    /// The worker's node is short of cores and another has room to spare: the encoder
    /// moves it there the same way, or leaves it if no node takes it. Repeated while it holds.
    Crowded(String),
}

/// Where events go: answers false once nobody listens.
pub type WorkerEvents = Arc<dyn Fn(WorkerEvent) -> bool + Send + Sync>;

/// Where a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerPlace {
    /// A process of this node.
    Local { pid: Option<u32> },
    /// A worker hosted by node `node` under placement `epoch`.
    Node { node: u64, epoch: u64 },
}

impl WorkerPlace {
    pub fn node(&self) -> Option<u64> {
        match self {
            WorkerPlace::Local { .. } => None,
            WorkerPlace::Node { node, .. } => Some(*node),
        }
    }
}

/// What the encoder asks its launcher for.
#[derive(Debug, Clone)]
pub struct LaunchRequest {
    pub stream: String,
    pub session: u64,
    pub generation: u64,
    /// What the ladder costs, in cores.
    pub cost: f64,
    /// Nodes that lost a worker of this ladder lately: placed elsewhere while others have room.
    pub avoid: Vec<u64>,
    /// The worker takes over from the current one, which finishes its segments first: the
    /// current placement stays valid until the current worker's link goes.
    pub handover: bool,
    /// The handover relieves the crowded node the worker runs on: it goes only to another
    /// node with room to spare, or not at all.
    pub relieve: bool,
}

/// A running worker, wherever it is.
pub trait WorkerLink: Send {
    /// Queues a message for the worker; never waits.
    fn send(&self, msg: &ToWorker, body: Bytes) -> Result<(), QueueError>;
    /// Stops the worker; its end is still reported.
    fn kill(&mut self);
    fn place(&self) -> WorkerPlace;
}

impl std::fmt::Debug for dyn WorkerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WorkerLink({:?})", self.place())
    }
}

/// Why no worker could be started.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LaunchError(pub String);

pub type Launching = Pin<Box<dyn Future<Output = Result<Box<dyn WorkerLink>, LaunchError>> + Send>>;

/// Starts codec workers for encoders.
pub trait WorkerLauncher: Send + Sync + 'static {
    fn launch(&self, request: LaunchRequest, events: WorkerEvents) -> Launching;
    /// The encoder's session is over: whatever the launcher recorded for it goes.
    fn finished(&self, _stream: &str, _session: u64) {}
}
