//! Which warm files to evict: the least popular by recency-weighted frequency (LRFU).
//!
//! Each read adds one to a file's score, and the score halves every `half_life` without
//! reads. A file read often an hour ago and a file read once a minute ago compare by what
//! their scores have decayed to now; a file just written starts at one. When the bytes held
//! exceed the budget, the lowest scores go first. Sans-IO: `now` is passed in.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Entry {
    size: u64,
    score: f64,
    at: Instant,
}

impl Entry {
    fn score_at(&self, now: Instant, half_life: Duration) -> f64 {
        let age = now.saturating_duration_since(self.at).as_secs_f64();
        self.score * 0.5f64.powf(age / half_life.as_secs_f64().max(1e-3))
    }
}

/// The files of a bounded tier and how popular each is.
#[derive(Debug)]
pub struct Popularity<K> {
    budget: u64,
    half_life: Duration,
    held: u64,
    entries: HashMap<K, Entry>,
}

impl<K: Hash + Eq + Clone> Popularity<K> {
    /// A tier of at most `budget` bytes whose scores halve every `half_life`.
    pub fn new(budget: u64, half_life: Duration) -> Self {
        Popularity { budget, half_life, held: 0, entries: HashMap::new() }
    }

    /// Records a file of `size` bytes written at `now` (or found at start-up, with `score`
    /// 0); returns the files to evict to stay within the budget, least popular first. The
    /// file itself is evicted only if it alone exceeds the budget.
    pub fn insert(&mut self, key: K, size: u64, score: f64, now: Instant) -> Vec<K> {
        if let Some(old) = self.entries.insert(key.clone(), Entry { size, score, at: now }) {
            self.held -= old.size;
        }
        self.held += size;
        let mut evicted = Vec::new();
        while self.held > self.budget {
            let victim = self
                .entries
                .iter()
                .filter(|(k, _)| **k != key || self.entries.len() == 1)
                .min_by(|a, b| a.1.score_at(now, self.half_life).total_cmp(&b.1.score_at(now, self.half_life)))
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else { break };
            self.remove(&victim);
            evicted.push(victim);
        }
        evicted
    }

    /// A read of the file at `now`; false if the tier does not hold it.
    pub fn touch(&mut self, key: &K, now: Instant) -> bool {
        let half_life = self.half_life;
        let Some(e) = self.entries.get_mut(key) else { return false };
        e.score = e.score_at(now, half_life) + 1.0;
        e.at = now;
        true
    }

    pub fn remove(&mut self, key: &K) {
        if let Some(e) = self.entries.remove(key) {
            self.held -= e.size;
        }
    }

    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// Bytes held.
    pub fn held(&self) -> u64 {
        self.held
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn the_least_popular_goes_first_when_the_budget_is_exceeded() {
        let t0 = Instant::now();
        let mut p = Popularity::new(300, 10 * MIN);
        for k in ["a", "b", "c"] {
            assert!(p.insert(k, 100, 1.0, t0).is_empty());
        }
        // "a" is read often, "c" once, "b" never.
        for i in 0..5 {
            p.touch(&"a", t0 + Duration::from_secs(i));
        }
        p.touch(&"c", t0 + Duration::from_secs(10));
        assert_eq!(p.insert("d", 100, 1.0, t0 + Duration::from_secs(20)), ["b"]);
        assert_eq!(p.held(), 300);
        assert!(p.contains(&"a") && p.contains(&"c") && p.contains(&"d"));
    }

    #[test]
    fn old_popularity_fades_and_recent_reads_win() {
        let t0 = Instant::now();
        let mut p = Popularity::new(200, MIN);
        p.insert("old-hit", 100, 1.0, t0);
        for _ in 0..20 {
            p.touch(&"old-hit", t0);
        }
        p.insert("recent", 100, 1.0, t0 + 10 * MIN);
        p.touch(&"recent", t0 + 10 * MIN);
        // Ten half-lives later, 21 reads weigh about 0.02: less than one fresh read.
        assert_eq!(p.insert("new", 100, 1.0, t0 + 10 * MIN), ["old-hit"]);
    }

    #[test]
    fn a_file_larger_than_the_budget_is_not_kept_and_replacing_counts_once() {
        let t0 = Instant::now();
        let mut p = Popularity::new(100, MIN);
        assert_eq!(p.insert("huge", 500, 1.0, t0), ["huge"]);
        assert!(p.is_empty() && p.held() == 0);
        p.insert("x", 60, 1.0, t0);
        assert!(p.insert("x", 80, 1.0, t0).is_empty(), "the same file written again");
        assert_eq!((p.held(), p.len()), (80, 1));
    }
}
