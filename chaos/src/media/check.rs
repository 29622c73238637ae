//! The invariants a media run ends with, and the runner that applies a seeded fault
//! schedule, heals, and checks them. A failure prints the command that replays it.

use super::{MediaSim, NodeId, ORIGIN};
use crate::scenario::announce;

/// Ticks per second of fault window (a part every tick: a sped-up stream).
const TICKS_PER_SECOND: u64 = 500;

/// What went wrong at the end of a run (empty: nothing).
pub fn violations(sim: &MediaSim) -> Vec<String> {
    let mut out = Vec::new();
    let head = (sim.origin.id(), sim.origin.last_seq());
    for (id, f) in sim.followers.iter().filter(|(_, f)| f.alive) {
        // Converged: everything the origin recorded has reached it.
        if f.mirror.position() != Some(head) {
            out.push(format!("node {id} holds up to {:?}; the origin is at {head:?}", f.mirror.position()));
        }
        // Never a part twice, out of order, or after its segment ended.
        out.extend(f.held.faults.iter().map(|v| format!("node {id}: {v}")));
        // Byte for byte: every ended segment it holds is the origin's, whole; the open one a
        // prefix of the origin's.
        for ((r, segment), (parts, ended)) in &f.held.segments {
            let Some(origin) = sim.published.get(&(r.clone(), *segment)) else {
                out.push(format!("node {id} holds {r} segment {segment}, which the origin never published"));
                continue;
            };
            let whole = if *ended { parts == origin } else { origin.starts_with(parts) };
            if !whole {
                let numbers = |p: &[(u64, bytes::Bytes)]| p.iter().map(|x| x.0).collect::<Vec<_>>();
                out.push(format!(
                    "node {id}: {r} segment {segment} holds parts {:?}, the origin's are {:?}",
                    numbers(parts),
                    numbers(origin)
                ));
            }
        }
    }
    // The origin feeds at most `fanout` nodes once the faults are over.
    let fed: Vec<NodeId> = sim.followers.keys().copied().filter(|id| sim.upstream_of(*id) == Some(ORIGIN)).collect();
    if sim.fanout > 0 && fed.len() > sim.fanout {
        out.push(format!("the origin feeds {fed:?}, more than the fan-out of {}", sim.fanout));
    }
    out
}

/// A run's settings.
pub struct Setup {
    pub followers: u64,
    pub fanout: usize,
    /// Segments the origin (and each relay) keeps.
    pub keep: usize,
}

/// Runs `fault` every tick of the fault window (it gets the simulation and the tick
/// number), then heals everything, lets the stream run and settle, and checks. Returns the
/// simulation for scenario-specific checks.
pub fn run(name: &str, default_seed: u64, setup: Setup, mut fault: impl FnMut(&mut MediaSim, u64)) -> MediaSim {
    let (seed, window, replay) = announce(name, default_seed);
    let mut sim = MediaSim::new(seed, setup.followers, setup.fanout, setup.keep);
    let ticks = window.as_secs().max(1) * TICKS_PER_SECOND;
    for t in 0..ticks {
        fault(&mut sim, t);
        sim.step(true);
    }
    // Heal: links up, nodes back; the stream goes on long enough for every follower to
    // find its place in the tree again, then stops and everything settles.
    sim.cut.clear();
    sim.delay.clear();
    for id in sim.followers.keys().copied().collect::<Vec<_>>() {
        sim.restart(id);
    }
    for _ in 0..400 {
        sim.step(true);
    }
    for _ in 0..100 {
        sim.step(false);
    }
    let found = violations(&sim);
    assert!(
        found.is_empty(),
        "chaos {name} (seed {seed}) broke its invariants:\n{}\nreplay: {replay}",
        found.join("\n")
    );
    sim
}
