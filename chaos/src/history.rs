//! A record of every client operation against the catalog: when it was invoked, when (and
//! whether) it returned, and what it returned. The linearizability checker reads it. Times
//! are tokio's, so virtual under the simulator.

use std::sync::Mutex;
use tokio::time::Instant;

/// What a client asked, on one stream name (each name is an independent register).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Create the stream if absent.
    Create,
    /// Delete the stream if present.
    Delete,
    /// Is the stream there?
    Read,
}

/// What came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ret {
    /// Create/Delete took effect.
    Done,
    /// Create found it present, Delete found it absent.
    Refused,
    /// A read's answer.
    Present(bool),
    /// No answer (timeout, connection lost): it may or may not have taken effect.
    Unknown,
}

/// One operation of the history.
#[derive(Debug, Clone)]
pub struct Event {
    pub client: usize,
    /// The node that served it, and that node's term when asked.
    pub node: u64,
    pub term: u64,
    pub key: String,
    pub op: Op,
    pub ret: Ret,
    /// Microseconds since the history began.
    pub invoked_us: u64,
    /// `None` when the outcome is unknown: the operation may take effect at any later time.
    pub returned_us: Option<u64>,
}

/// Collects events from concurrent clients.
pub struct History {
    start: Instant,
    events: Mutex<Vec<Event>>,
}

impl Default for History {
    fn default() -> Self {
        History { start: Instant::now(), events: Mutex::new(Vec::new()) }
    }
}

impl History {
    /// Microseconds since the history began.
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Records an operation that was invoked at `invoked_us` and has just finished with `ret`.
    #[allow(clippy::too_many_arguments)]
    pub fn record(&self, client: usize, node: u64, term: u64, key: &str, op: Op, ret: Ret, invoked_us: u64) {
        let returned_us = (ret != Ret::Unknown).then(|| self.now_us());
        self.events.lock().expect("history").push(Event {
            client,
            node,
            term,
            key: key.to_string(),
            op,
            ret,
            invoked_us,
            returned_us,
        });
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("history").clone()
    }
}
