//! Keeps a stream's transcoding in real time: measures how far the codec worker is behind
//! and decides when to shed work.
//!
//! Two signals, both measured against the media's own clock:
//! - **delay**: the age of the oldest source frame sent to the worker and not yet
//!   answered (`Done`). Above `max_delay` the node stops feeding the worker until it has
//!   caught up and the next segment boundary comes, so latency is bounded whatever the load
//!   (the renditions get a gap for the segments skipped).
//! - **load**: the busiest worker stage's time over the media time it processed, per
//!   report (the stages run in parallel, so the slowest sets the pace). Above
//!   `max_load` for `overloaded_reports` reports in a row, or after `skips_to_drop` skips
//!   for delay within `skip_window`, the most expensive rung still active is dropped for the
//!   rest of the session. A single spike (another process starting on the machine, a
//!   burst of detail in the picture) costs a gap at most, never a rung.
//!
//! Sans-IO: every call takes `now`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::wire::WorkerStats;

#[derive(Debug, Clone)]
pub struct GovernorConfig {
    pub max_load: f64,
    pub overloaded_reports: u32,
    pub max_delay: Duration,
    pub skips_to_drop: usize,
    pub skip_window: Duration,
}

impl Default for GovernorConfig {
    fn default() -> Self {
        GovernorConfig {
            max_load: 1.0,
            overloaded_reports: 5,
            max_delay: Duration::from_millis(1500),
            skips_to_drop: 2,
            skip_window: Duration::from_secs(30),
        }
    }
}

/// Why a rung was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Slower than real time for several reports.
    Load,
    /// Input had to be skipped to keep latency bounded.
    Delay,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Load => "load",
            DropReason::Delay => "delay",
        }
    }
}

#[derive(Debug)]
pub struct LoadGovernor {
    config: GovernorConfig,
    active: Vec<bool>,
    /// Latest scale+encode cost per rung, microseconds per report.
    cost: Vec<u64>,
    overloaded: u32,
    in_flight: VecDeque<(i64, Instant)>,
    /// When input was skipped for delay, within the window.
    skips: VecDeque<Instant>,
    last_load: f64,
}

impl LoadGovernor {
    pub fn new(config: GovernorConfig, rungs: usize) -> Self {
        LoadGovernor {
            config,
            active: vec![true; rungs],
            cost: vec![0; rungs],
            overloaded: 0,
            in_flight: VecDeque::new(),
            skips: VecDeque::new(),
            last_load: 0.0,
        }
    }

    pub fn is_active(&self, rung: usize) -> bool {
        self.active.get(rung).copied().unwrap_or(false)
    }

    pub fn active_count(&self) -> usize {
        self.active.iter().filter(|a| **a).count()
    }

    /// The last reported load (busy time over media time).
    pub fn load(&self) -> f64 {
        self.last_load
    }

    /// A source frame went to the worker.
    pub fn sent(&mut self, dts: i64, now: Instant) {
        self.in_flight.push_back((dts, now));
    }

    /// The worker finished the frame with this dts; returns how long it took.
    pub fn done(&mut self, dts: i64, now: Instant) -> Option<Duration> {
        let mut took = None;
        while let Some((d, at)) = self.in_flight.front().copied() {
            if d > dts {
                break;
            }
            self.in_flight.pop_front();
            if d == dts {
                took = Some(now.saturating_duration_since(at));
            }
        }
        took
    }

    /// Frames sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Age of the oldest unanswered frame.
    pub fn delay(&self, now: Instant) -> Duration {
        self.in_flight.front().map_or(Duration::ZERO, |(_, at)| now.saturating_duration_since(*at))
    }

    /// Whether the worker is too far behind to be given more input.
    pub fn behind(&self, now: Instant) -> bool {
        self.delay(now) > self.config.max_delay
    }

    /// The node skipped input to bound latency.
    pub fn skipped_for_delay(&mut self, now: Instant) {
        self.skips.push_back(now);
    }

    /// The worker restarted: nothing is in flight any more.
    pub fn worker_restarted(&mut self) {
        self.in_flight.clear();
        self.overloaded = 0;
    }

    /// Takes a worker report; returns the rung to drop, if one must go.
    pub fn report(&mut self, stats: &WorkerStats, now: Instant) -> Option<(usize, DropReason)> {
        while self.skips.front().is_some_and(|t| now.saturating_duration_since(*t) > self.config.skip_window) {
            self.skips.pop_front();
        }
        for (c, s) in self.cost.iter_mut().zip(&stats.encode_us) {
            *c = *s;
        }
        self.last_load = stats.load();
        if stats.media_us > 0 && self.last_load > self.config.max_load {
            self.overloaded += 1;
        } else if stats.media_us > 0 {
            self.overloaded = 0;
        }
        let reason = if self.skips.len() >= self.config.skips_to_drop.max(1) {
            self.skips.clear();
            DropReason::Delay
        } else if self.overloaded >= self.config.overloaded_reports {
            DropReason::Load
        } else {
            return None;
        };
        self.overloaded = 0;
        let rung = self.most_expensive()?;
        self.active[rung] = false;
        Some((rung, reason))
    }

    /// The active rung that costs the most (by its last measured cost, then by index:
    /// rungs are ordered largest first).
    fn most_expensive(&self) -> Option<usize> {
        (0..self.active.len())
            .filter(|i| self.active[*i])
            .max_by(|a, b| self.cost[*a].cmp(&self.cost[*b]).then(b.cmp(a)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(load_per_rung: &[f64], media_ms: u64) -> WorkerStats {
        WorkerStats {
            frames: 30,
            media_us: media_ms * 1000,
            decode_us: 0,
            encode_us: load_per_rung.iter().map(|l| (l * media_ms as f64 * 1000.0) as u64).collect(),
        }
    }

    #[test]
    fn sustained_overload_drops_the_most_expensive_rung_then_the_next() {
        let now = Instant::now();
        let mut g = LoadGovernor::new(GovernorConfig::default(), 3);
        for _ in 0..4 {
            assert_eq!(g.report(&stats(&[1.2, 0.3, 0.2], 1000), now), None);
        }
        assert_eq!(g.report(&stats(&[1.2, 0.3, 0.2], 1000), now), Some((0, DropReason::Load)));
        assert!(!g.is_active(0));
        assert_eq!(g.active_count(), 2);
        // Still too slow without it: the next most expensive goes after five more reports.
        for _ in 0..4 {
            assert_eq!(g.report(&stats(&[0.0, 1.1, 0.4], 1000), now), None);
        }
        assert_eq!(g.report(&stats(&[0.0, 1.1, 0.4], 1000), now), Some((1, DropReason::Load)));
    }

    #[test]
    fn a_brief_spike_drops_nothing() {
        let now = Instant::now();
        let mut g = LoadGovernor::new(GovernorConfig::default(), 2);
        for _ in 0..10 {
            for _ in 0..4 {
                assert_eq!(g.report(&stats(&[1.2, 0.3], 1000), now), None);
            }
            assert_eq!(g.report(&stats(&[0.4, 0.3], 1000), now), None);
        }
        assert_eq!(g.active_count(), 2);
    }

    #[test]
    fn repeated_skips_for_delay_drop_a_rung_and_a_single_one_does_not() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut g = LoadGovernor::new(GovernorConfig::default(), 2);
        g.skipped_for_delay(s(0));
        assert_eq!(g.report(&stats(&[0.1, 0.5], 1000), s(1)), None, "one skip is a gap, not a drop");
        g.skipped_for_delay(s(40));
        assert_eq!(g.report(&stats(&[0.1, 0.5], 1000), s(41)), None, "the first left the window");
        g.skipped_for_delay(s(45));
        assert_eq!(g.report(&stats(&[0.1, 0.5], 1000), s(46)), Some((1, DropReason::Delay)), "by measured cost");
        g.skipped_for_delay(s(47));
        g.skipped_for_delay(s(48));
        assert_eq!(g.report(&stats(&[0.0, 0.0], 0), s(49)), Some((0, DropReason::Delay)));
        g.skipped_for_delay(s(50));
        g.skipped_for_delay(s(51));
        assert_eq!(g.report(&stats(&[0.0, 0.0], 0), s(52)), None, "nothing left to drop");
    }

    #[test]
    fn delay_is_the_age_of_the_oldest_unanswered_frame() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut g = LoadGovernor::new(GovernorConfig::default(), 1);
        g.sent(0, ms(0));
        g.sent(3000, ms(33));
        g.sent(6000, ms(66));
        assert_eq!(g.delay(ms(100)), Duration::from_millis(100));
        assert!(!g.behind(ms(1500)));
        assert!(g.behind(ms(1501)));
        assert_eq!(g.done(3000, ms(120)), Some(Duration::from_millis(87)), "answers in order; earlier ones too");
        assert_eq!(g.in_flight(), 1);
        assert_eq!(g.delay(ms(120)), Duration::from_millis(54));
        g.worker_restarted();
        assert_eq!(g.delay(ms(5000)), Duration::ZERO);
    }
}
