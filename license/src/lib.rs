//! Who gets a content key, and the actor that answers.
//!
//! The core is sans-IO: playback tokens ([`token`]), the viewer's region ([`regions`]),
//! content keys wrapped under the cluster's key-encryption key ([`keys`]), who gets a key
//! ([`decision`]), and the ClearKey license exchange of EME players ([`clearkey`]). Nothing
//! there reads a clock (time comes in as an argument) or logs a key.
//!
//! # Contract
//! - The [`actor`], one per node, drives the core: it answers key and signed-URL requests
//!   by the decision, issues playback tokens, and makes and rotates the content keys of the
//!   encrypted streams its node is origin of. It reads the catalog as its node has applied
//!   it and never blocks on the network: a count at another node runs in a task of its own.
//! - The actor runs under a [`supervisor`], which starts it again if it fails; everyone
//!   else holds a [`supervisor::LicenseRef`] to the running one.
//! - On every node, [`viewer`] says who asks (the socket's address, or what a trusted
//!   proxy says), [`rights`] whether the content's region rule lets them watch (every
//!   request, clear or encrypted; regions from the catalog's table, else [`geoip`]),
//!   [`serving`] encrypts protected media on its way out (never in clear),
//!   [`http`] answers key requests, [`urls`] carries a viewer's token and the URL
//!   signature onto playlists, and [`gate`] says whether content is released here.
//! - Keys reach the catalog only wrapped (AES-256-GCM under the KEK, content and key id as
//!   associated data); neither keys nor tokens are logged.

pub mod actor;
pub mod admin;
pub mod cache;
pub mod clearkey;
pub mod counting;
pub mod cpix;
pub mod decision;
pub mod gate;
pub mod geoip;
pub mod http;
pub mod jwt;
pub mod keys;
pub mod provider;
pub mod purge;
pub mod regions;
pub mod rights;
pub mod serving;
pub mod supervisor;
pub mod token;
pub mod urls;
pub mod viewer;
pub mod watched;
