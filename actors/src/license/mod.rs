//! The license core, sans-IO: playback tokens ([`token`]), the viewer's region
//! ([`regions`]), content keys wrapped under the cluster's key-encryption key
//! ([`keys`]), who gets a key ([`decision`]), and the ClearKey license exchange of EME
//! players ([`clearkey`]). The license actor and the node's endpoints drive it; nothing
//! here reads a clock (time comes in as an argument) or logs a key.

pub mod actor;
pub mod clearkey;
pub mod decision;
pub mod keys;
pub mod regions;
pub mod token;
