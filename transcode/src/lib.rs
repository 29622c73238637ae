//! What Tessera transcodes and how it talks to the process that does it: the ladder
//! ([`ladder`]), the node-to-worker protocol ([`wire`]), the real-time governor
//! ([`governor`]) and the ledger of segments each rung will never have ([`ledger`]).
//!
//! # Contract
//! - No I/O and no codecs here: the codec work runs in a separate worker process
//!   (`tessera-codec`, started as `tessera codec-worker`) so that a crash in a C library
//!   ends that stream's transcoding only. This crate is what both sides agree on.
//! - Pure functions and state machines; time is passed in.
//! - Timestamps are 90 kHz ticks; bitrates are bit/s unless a name says kbit/s.

pub mod cost;
pub mod governor;
pub mod ladder;
pub mod ledger;
pub mod roster;
pub mod wire;

pub use governor::{DropReason, GovernorConfig, LoadGovernor};
pub use ladder::{plan, EncodeTarget, H264Profile, LadderSpec, Rendition, RungSpec, SOURCE};
pub use ledger::{Gap, GapLedger};
pub use roster::{Admit, Role, WorkerRoster};
