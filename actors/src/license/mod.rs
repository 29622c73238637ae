//! The license core, sans-IO: playback tokens ([`token`]), the viewer's region
//! ([`regions`]), content keys wrapped under the cluster's key-encryption key
//! ([`keys`]), and who gets a key ([`decision`]). The license actor and the node's endpoint drive it; nothing here reads a
//! clock (time comes in as an argument) or logs a key.

pub mod actor;
pub mod decision;
pub mod keys;
pub mod regions;
pub mod token;
