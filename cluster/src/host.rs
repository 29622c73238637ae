//! Where a member runs: on this machine (its own UDP sockets, the system clock, the log's
//! group-commit thread), or inside a simulation that provides each of them, so that a whole
//! member, catalog and QUIC transport, replays under one seed.
//!
//! A node always runs on [`Host::Machine`]. The simulator hands each member a
//! [`SimulatedHost`]: a datagram network to bind its sockets on (the member's own and, to
//! join, a stranger's), a seed for QUIC's random choices, and the catalog's
//! [`Environment`] (a virtual clock, log writes committed inline).

use std::net::SocketAddr;
use std::sync::Arc;

use tessera_raft::Environment;

/// A network a simulation provides: binding an address gives a socket on it.
pub trait DatagramNetwork: Send + Sync + 'static {
    /// A socket at `addr`, replacing any bound there before.
    fn bind(&self, addr: SocketAddr) -> Arc<dyn quinn::AsyncUdpSocket>;
}

/// Where a member runs.
#[derive(Clone, Default, Debug)]
pub enum Host {
    #[default]
    Machine,
    Simulated(SimulatedHost),
}

/// What a simulation provides a member.
#[derive(Clone)]
pub struct SimulatedHost {
    pub network: Arc<dyn DatagramNetwork>,
    /// QUIC's random choices (connection ids, skipped packet numbers) come from this seed
    /// and the bound address.
    pub seed: u64,
    pub environment: Environment,
}

impl std::fmt::Debug for SimulatedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedHost").field("seed", &self.seed).finish_non_exhaustive()
    }
}

impl SimulatedHost {
    /// The seed of the endpoint bound at `addr`.
    pub(crate) fn rng_seed(&self, addr: SocketAddr) -> [u8; 32] {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.seed.to_le_bytes());
        let name = addr.to_string();
        for (i, b) in name.bytes().enumerate() {
            seed[8 + i % 24] ^= b;
        }
        seed
    }
}

impl Host {
    /// The catalog's clock and log writes.
    pub(crate) fn environment(&self) -> Environment {
        match self {
            Host::Machine => Environment::default(),
            Host::Simulated(s) => s.environment.clone(),
        }
    }
}
