//! When a session may publish as its stream's origin: the term of its origin lease as the
//! holder sees it, on its own monotonic clock.
//!
//! A lease is confirmed by linearizable reads of the catalog. A read that confirms it
//! started before any grant to another node could have committed, so the holder may go
//! on publishing for [`LEASE_GRACE`] after the *start* of its last confirming read, and
//! not a moment longer, whether or not it hears from the cluster again. A node granted a
//! stream that another node held without releasing it waits [`takeover_wait`] (that grace,
//! and room for clocks that run at different rates) before publishing anything. Only
//! durations are compared, each on one node's clock: skewed wall clocks do not matter.
//!
//! Sans-IO: every question takes `now`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long an origin publishes on a confirmation alone.
pub const LEASE_GRACE: Duration = Duration::from_secs(3);

/// How long a node that took a stream over from an unreleased lease waits before it
/// publishes: [`LEASE_GRACE`], plus a tenth for clock rates, plus a quarter second.
pub fn takeover_wait() -> Duration {
    LEASE_GRACE + LEASE_GRACE / 10 + Duration::from_millis(250)
}

/// Where a session stands in its term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermState {
    /// Taken over from another node's lease: not yet (what it makes is held).
    NotYet,
    /// It publishes.
    Open,
    /// Fenced: lost, or not confirmed in time. It publishes nothing more.
    Over,
}

/// The term of one session's origin lease. Shared by the task that confirms the lease and
/// the sink that publishes; lock-free.
#[derive(Debug)]
pub struct OriginTerm {
    base: Instant,
    /// Nanoseconds after `base` from which it may publish.
    from_ns: u64,
    /// Nanoseconds after `base` until which it may publish; 0 once fenced.
    until_ns: AtomicU64,
}

impl OriginTerm {
    /// A lease whose grant was asked for at `asked` and answered at `granted`; `takeover`
    /// when it replaced another node's unreleased lease. It lasts a grace past `asked`
    /// unless confirmed again, also while it waits to open.
    pub fn new(asked: Instant, granted: Instant, takeover: bool) -> Self {
        let from = if takeover { granted + takeover_wait() } else { asked };
        let base = asked.min(granted);
        // The grant itself confirms the lease as of when it was asked for.
        let until = AtomicU64::new(Self::ns(base, asked + LEASE_GRACE));
        OriginTerm { base, from_ns: Self::ns(base, from), until_ns: until }
    }

    /// An open term that no lease bounds (a node without a cluster, tests).
    pub fn unbounded() -> Self {
        OriginTerm { base: Instant::now(), from_ns: 0, until_ns: AtomicU64::new(u64::MAX) }
    }

    fn ns(base: Instant, t: Instant) -> u64 {
        t.saturating_duration_since(base).as_nanos().min(u64::MAX as u128 - 1) as u64 + 1
    }

    /// A read that started at `read_started` confirmed the lease. Never shortens the term,
    /// never reopens a fenced one.
    pub fn confirmed(&self, read_started: Instant) {
        let until = Self::ns(self.base, read_started + LEASE_GRACE);
        let _ =
            self.until_ns.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| (now != 0).then(|| now.max(until)));
    }

    /// The lease is lost: fenced for good.
    pub fn end(&self) {
        self.until_ns.store(0, Ordering::SeqCst);
    }

    /// Where the term stands at `now`.
    pub fn state(&self, now: Instant) -> TermState {
        let until = self.until_ns.load(Ordering::SeqCst);
        let now = Self::ns(self.base, now);
        if until == 0 || now >= until {
            TermState::Over
        } else if now < self.from_ns {
            TermState::NotYet
        } else {
            TermState::Open
        }
    }

    /// When the term ends unless confirmed again (`None`: fenced).
    pub fn until(&self) -> Option<Instant> {
        match self.until_ns.load(Ordering::SeqCst) {
            0 => None,
            u64::MAX => Some(self.base + Duration::from_secs(86_400 * 365)),
            ns => Some(self.base + Duration::from_nanos(ns - 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_term_runs_a_grace_past_the_start_of_its_last_confirmation() {
        let t0 = Instant::now();
        let s = |ms| t0 + Duration::from_millis(ms);
        let term = OriginTerm::new(t0, s(40), false);
        assert_eq!(term.state(t0), TermState::Open);
        assert_eq!(term.state(s(2_999)), TermState::Open);
        assert_eq!(term.state(s(3_000)), TermState::Over, "no confirmation: over a grace after asking");
        // A read that started at 1 s and answered later extends to 4 s, not from its answer.
        term.confirmed(s(1_000));
        assert_eq!(term.state(s(3_999)), TermState::Open);
        assert_eq!(term.state(s(4_000)), TermState::Over);
        // An older confirmation arriving late never shortens it.
        term.confirmed(s(500));
        assert_eq!(term.state(s(3_999)), TermState::Open);
        term.end();
        assert_eq!(term.state(s(1_001)), TermState::Over);
        term.confirmed(s(2_000));
        assert_eq!(term.state(s(2_001)), TermState::Over, "a fenced term never reopens");
    }

    #[test]
    fn a_takeover_waits_out_the_old_holders_grace() {
        let t0 = Instant::now();
        let granted = t0 + Duration::from_millis(300);
        let term = OriginTerm::new(t0, granted, true);
        assert_eq!(term.state(granted), TermState::NotYet);
        for s in 1..=3 {
            term.confirmed(granted + Duration::from_secs(s));
        }
        assert_eq!(term.state(granted + LEASE_GRACE), TermState::NotYet, "the old holder may still publish");
        assert_eq!(term.state(granted + takeover_wait()), TermState::Open);
        // Unconfirmed while it waits, it never opens.
        let unconfirmed = OriginTerm::new(t0, granted, true);
        assert_eq!(unconfirmed.state(granted + takeover_wait()), TermState::Over);
        // The old holder's last confirmation started before the grant committed: it is over
        // before the new holder opens, with the margin between them.
        let old = OriginTerm::new(t0, t0, false);
        old.confirmed(granted - Duration::from_millis(1));
        let old_over = old.until().unwrap();
        assert!(old_over + Duration::from_millis(500) < granted + takeover_wait());
        // Confirmations keep the new holder's term open past its start.
        term.confirmed(granted + takeover_wait());
        assert_eq!(term.state(granted + takeover_wait() + Duration::from_secs(2)), TermState::Open);
    }
}
