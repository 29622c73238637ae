//! The command-line clients of `tessera`: publishing a test feed over SRT ([`publish`]),
//! creating and looking after a cluster ([`cluster`]), premieres ([`release`]), VOD uploads
//! and assets ([`vod`], through `tessera-vod`'s tus client), checking recorded playlists
//! against the LL-HLS rules ([`check_hls`]), and the admin API client they share
//! ([`admin`]). [`commands`] puts them on the `tessera` command line.
//!
//! Errors that end a command are `anyhow` errors, as in the binary: each is printed once,
//! with its context, and the process exits non-zero. The reusable parts (the admin client,
//! the publishers, the checker) have typed errors of their own.

pub mod admin;
pub mod check_hls;
pub mod cluster;
pub mod commands;
pub mod publish;
pub mod release;
pub mod vod;
