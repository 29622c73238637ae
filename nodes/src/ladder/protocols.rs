//! What nodes say to each other about ladders.

use serde::{Deserialize, Serialize};
use tessera_cluster::protocol::{Access, Protocol};
use tessera_cluster::remote::RemoteKind;
use tessera_transcode::wire::{FromWorker, ToWorker};

use super::policy::NodeLoad;

/// A codec worker on another node: source frames in (the media as each message's body),
/// rung packets and reports out, exactly as over a local worker's pipes.
pub struct CodecWorker;

/// What a hosted codec worker is started with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerArgs {
    pub stream: String,
    /// The placement the host checks against its catalog before it starts, and keeps
    /// checking while it runs.
    pub epoch: u64,
    /// What the ladder is expected to cost, in cores.
    pub cost: f64,
}

impl RemoteKind for CodecWorker {
    const NAME: &'static str = "transcode.worker";
    type Args = WorkerArgs;
    type In = ToWorker;
    type Out = FromWorker;
}

/// A node's transcoding capacity, promises, measured load and ladders.
pub struct LadderLoad;

impl Protocol for LadderLoad {
    const NAME: &'static str = "transcode.load";
    const ACCESS: Access = Access::Member;
    type Request = ();
    type Response = NodeLoad;
}
