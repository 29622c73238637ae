//! The deterministic simulator the catalog scenarios run under: one seed fixes every timer,
//! every message's order and every fault, so running a seed twice gives the same history.
//!
//! What makes a run replay:
//! - **One thread.** Every node, client, fault schedule and checker is a task of one
//!   current-thread tokio runtime; tasks run in the order they were woken, and nothing else
//!   runs beside them (the catalog's log writes are committed inline,
//!   [`tessera_raft::store::LogWrites::Inline`], instead of on the group-commit thread).
//! - **Virtual time.** The runtime's clock is paused: it stands still while a task runs and
//!   jumps to the next timer when every task waits, so election timeouts, heartbeats,
//!   client timeouts and fault windows fire in the same order on any machine at any load.
//!   The wall clock the catalog stamps proposals with, and the "true time" of the
//!   scenarios, are [`now_ms`]: a fixed epoch plus the virtual time elapsed.
//! - **Seeded randomness.** openraft's election timeouts come from
//!   [`tessera_raft::runtime::seed_thread_rng`]; tokio's own choices (which ready branch of
//!   `select!` goes first, which watch receiver wakes first) from the runtime's seed, which
//!   needs `--cfg tokio_unstable` (set in `.cargo/config.toml`); the network's loss and the
//!   scenarios' faults from the scenario's [`crate::cluster::Rng`].
//!
//! Nothing here touches a socket: a simulated run that tried would wait forever, since the
//! runtime has no I/O driver.

use std::cell::Cell;
use std::future::Future;

use tokio::time::Instant;

/// Where virtual time starts on the wall clock: 2026-09-01T00:00:00Z.
pub const EPOCH_MS: i64 = 1_788_220_800_000;

thread_local! {
    /// The virtual instant this thread's simulation started at, while one runs.
    static ORIGIN: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Whether a simulation runs on this thread.
pub fn active() -> bool {
    ORIGIN.with(|o| o.get().is_some())
}

/// The time in milliseconds since the Unix epoch: virtual under the simulator, the system
/// clock otherwise.
pub fn now_ms() -> i64 {
    match ORIGIN.with(|o| o.get()) {
        Some(origin) => EPOCH_MS + (Instant::now() - origin).as_millis() as i64,
        None => tessera_raft::Clock::system().now_ms(),
    }
}

/// Clears the origin when the simulation ends, however it ends.
struct Running;

impl Drop for Running {
    fn drop(&mut self) {
        ORIGIN.with(|o| o.set(None));
    }
}

/// Runs `scenario` to its end under the simulator, seeded with `seed`.
///
/// # Panics
/// If the build lacks `--cfg tokio_unstable` (a `RUSTFLAGS` variable replaces the flags
/// of `.cargo/config.toml`): tokio's choices could not be seeded, and a seed would not
/// replay.
pub fn run<F: Future>(seed: u64, scenario: F) -> F::Output {
    tessera_raft::runtime::seed_thread_rng(seed);
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_time().start_paused(true);
    seed_tokio(&mut builder, seed);
    let runtime = builder.build().expect("the simulator's runtime");
    runtime.block_on(async {
        ORIGIN.with(|o| o.set(Some(Instant::now())));
        let _running = Running;
        scenario.await
    })
}

#[cfg(tokio_unstable)]
fn seed_tokio(builder: &mut tokio::runtime::Builder, seed: u64) {
    builder.rng_seed(tokio::runtime::RngSeed::from_bytes(&seed.to_le_bytes()));
}

#[cfg(not(tokio_unstable))]
fn seed_tokio(_: &mut tokio::runtime::Builder, _: u64) {
    panic!("the simulator needs --cfg tokio_unstable (from .cargo/config.toml; RUSTFLAGS replaces it)");
}
