//! What this node measures itself using: the CPU time of its own process and of the codec
//! workers it runs, over the last interval, in cores.
//!
//! Read from `/proc/PID/stat` (user and system time, in clock ticks of 1/100 s, Linux's
//! `USER_HZ` on every architecture it runs on). Elsewhere the node reports no load.
//!
//! What is reported is the use over the last few samples (about two seconds at the host's
//! pace): one sample of half a second swings with every keyframe and every burst of
//! packaging, and decisions taken on it would follow the swings.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

const TICKS_PER_SECOND: f64 = 100.0;
/// Samples the reported use is taken over.
const WINDOW: usize = 4;

/// Samples CPU time; reports the cores used over the last [`WINDOW`] samples.
#[derive(Debug)]
pub(crate) struct CpuMeter {
    last: Option<(Instant, HashMap<u32, u64>)>,
    /// Each recent sample: its length in seconds and the CPU seconds used in it.
    recent: VecDeque<(f64, f64)>,
}

impl CpuMeter {
    pub(crate) fn new() -> Self {
        CpuMeter { last: None, recent: VecDeque::with_capacity(WINDOW) }
    }

    /// Samples `pids` (this process's own id among them) at `now`; returns the cores they
    /// used over the recent samples. A process that ended since counts for nothing.
    pub(crate) fn sample(&mut self, now: Instant, pids: &[u32]) -> f64 {
        let ticks: HashMap<u32, u64> = pids.iter().filter_map(|p| Some((*p, cpu_ticks(*p)?))).collect();
        if let Some((then, before)) = &self.last {
            let secs = now.duration_since(*then).as_secs_f64();
            if secs > 0.05 {
                let used: u64 = ticks.iter().map(|(p, t)| t.saturating_sub(*before.get(p).unwrap_or(t))).sum();
                if self.recent.len() == WINDOW {
                    self.recent.pop_front();
                }
                self.recent.push_back((secs, used as f64 / TICKS_PER_SECOND));
            }
        }
        self.last = Some((now, ticks));
        self.busy()
    }

    /// Cores used over the recent samples; 0 before there are any.
    pub(crate) fn busy(&self) -> f64 {
        let secs: f64 = self.recent.iter().map(|(s, _)| s).sum();
        if secs <= 0.0 {
            return 0.0;
        }
        self.recent.iter().map(|(_, used)| used).sum::<f64>() / secs
    }
}

/// User and system time of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// Fields 14 and 15 of `/proc/PID/stat`, counted after the command name (which may hold
/// spaces and parentheses, so the fields start after its last `)`).
fn parse_stat(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_system_time_are_read_past_a_command_with_spaces() {
        let stat = "4242 (codec (worker) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 3 0 100 0 0";
        assert_eq!(parse_stat(stat), Some(300));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_measured() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        let mut meter = CpuMeter::new();
        let start = Instant::now();
        meter.sample(start, &[me]);
        let mut x = 0u64;
        while start.elapsed().as_millis() < 300 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let busy = meter.sample(Instant::now(), &[me]);
        assert!(busy > 0.3, "a busy loop uses most of a core: {busy}");
    }
}
