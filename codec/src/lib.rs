//! Tessera's codec work, through FFmpeg's libraries (libavcodec with libx264, libswscale):
//! the codec worker that turns one live source into the transcoded rungs of its ladder,
//! and the built-in test source.
//!
//! # Contract
//! - The worker ([`worker`]) runs in a process of its own (`tessera codec-worker`), one per
//!   transcoded stream, and speaks [`tessera_transcode::wire`] on stdin/stdout. FFmpeg runs
//!   only there: a crash on hostile input ends that process, never the node.
//! - The C surface is a small shim (`src/shim.c`) compiled against the installed headers
//!   by `build.rs`, so no struct layout is guessed on the Rust side; [`video`] and [`audio`]
//!   wrap it in owning, `Drop`-safe handles. Pictures and packets borrow the handle that
//!   made them until its next call.
//! - Blocking and CPU-bound: call from a worker process or a blocking thread, never from an
//!   async task.

mod ffi;

pub mod audio;
pub mod pattern;
pub mod video;
pub mod worker;

pub use video::{ffmpeg_version, CodecError};
