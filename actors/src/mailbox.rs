//! Bounded mailboxes on top of ractor's unbounded ones.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ractor::{ActorRef, Message};

/// Why a message was not sent.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// The consumer has `capacity` messages waiting.
    Full,
    /// The consumer is gone.
    Closed,
}

/// The receiving side's counter: call [`Inflight::done`] once per handled message.
#[derive(Debug, Clone, Default)]
pub struct Inflight(Arc<AtomicUsize>);

impl Inflight {
    pub fn done(&self) {
        let _ = self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| Some(v.saturating_sub(1)));
    }

    pub fn pending(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// A sender that refuses to queue more than `capacity` messages.
pub struct BoundedRef<M: Message> {
    actor: ActorRef<M>,
    inflight: Inflight,
    capacity: usize,
}

impl<M: Message> Clone for BoundedRef<M> {
    fn clone(&self) -> Self {
        BoundedRef { actor: self.actor.clone(), inflight: self.inflight.clone(), capacity: self.capacity }
    }
}

impl<M: Message> BoundedRef<M> {
    pub fn new(actor: ActorRef<M>, inflight: Inflight, capacity: usize) -> Self {
        BoundedRef { actor, inflight, capacity }
    }

    /// Sends unless the mailbox is full.
    pub fn try_send(&self, msg: M) -> Result<(), SendError> {
        if self.inflight.pending() >= self.capacity {
            return Err(SendError::Full);
        }
        self.send(msg)
    }

    /// Sends regardless of the bound (control messages: end of stream, track changes).
    pub fn send(&self, msg: M) -> Result<(), SendError> {
        self.inflight.0.fetch_add(1, Ordering::AcqRel);
        self.actor.send_message(msg).map_err(|_| {
            self.inflight.done();
            SendError::Closed
        })
    }

    pub fn actor(&self) -> &ActorRef<M> {
        &self.actor
    }
}
