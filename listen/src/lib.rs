//! The SRT and RTMP listeners of a node: sockets, handshakes and admission, nothing more.
//!
//! # Contract
//! - Each driver owns its sockets only. It asks the caller for admission (at the SRT
//!   handshake, from the streamid and whether the caller encrypts; at RTMP `publish`, from
//!   the stream key) before anything is allocated for a stream, and hands each admitted
//!   publisher to the caller: SRT as MPEG-TS bytes, RTMP as FLV tags. Parsing them is
//!   `tessera-ingest`'s, wherever the caller runs its pipeline.
//! - A refusal is answered on the wire (an SRT rejection code, `NetStream.Publish.*`),
//!   logged and counted (`tessera_ingest_rejected_total{protocol,reason}`); it never
//!   touches another publisher.
//! - RTMP connections are limited (`max_connections`) and cut when idle; SRT callers are
//!   bounded by the caller's admission.

pub mod rtmp;
pub mod srt;
