//! The protocol between a node and its codec worker, over the worker's stdin and stdout.
//!
//! Each message is a frame: `header_len: u32 LE`, `body_len: u32 LE`, the header (a
//! postcard-encoded [`ToWorker`] or [`FromWorker`]), then the body (media bytes, or
//! nothing). Sans-IO: [`encode`] makes a frame; [`FrameReader`] takes bytes as they arrive
//! and yields whole messages, refusing lengths over the limits instead of allocating them.
//!
//! Timestamps are 90 kHz ticks, as everywhere in Tessera. A `boundary` is the number of
//! the segment that starts with this frame (counted from 0 in the publisher's session):
//! the worker makes that picture an IDR in every rung and echoes the number on its output.

use bytes::{Buf, Bytes, BytesMut};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::ladder::EncodeTarget;

/// Largest header accepted.
pub const MAX_HEADER: usize = 64 * 1024;
/// Largest body accepted (a frame of compressed video).
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// Compressed formats the worker decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceCodec {
    H264,
    Hevc,
}

/// What the worker is to do for one run of a stream's source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartJob {
    pub stream: String,
    pub codec: SourceCodec,
    /// `avcC` or `hvcC`; samples are 4-byte length-prefixed.
    pub extradata: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// From the source's SPS when it says; otherwise the worker measures it.
    pub fps: Option<(u32, u32)>,
    /// One entry per transcoded rendition; output refers to them by index.
    pub rungs: Vec<RungJob>,
    pub tuning: EncoderTuning,
    /// How often the worker reports [`WorkerStats`], milliseconds.
    pub stats_interval_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RungJob {
    pub name: String,
    pub target: EncodeTarget,
}

/// libx264 settings shared by every rung.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderTuning {
    pub preset: String,
    pub tune: String,
    /// Threads per encoder; 0 lets libx264 choose.
    pub threads: u32,
    /// Extra `x264-params`.
    pub params: String,
}

impl Default for EncoderTuning {
    fn default() -> Self {
        EncoderTuning { preset: "veryfast".into(), tune: "zerolatency".into(), threads: 0, params: String::new() }
    }
}

/// Node to worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToWorker {
    Start(StartJob),
    /// A source access unit (the body). Frames after a `Start` or `Reset` begin with a
    /// boundary.
    Frame {
        pts: i64,
        dts: i64,
        keyframe: bool,
        boundary: Option<u64>,
    },
    /// The source's timeline broke: finish what is in flight, then start over at the next
    /// boundary with fresh encoders.
    Reset,
    /// Stop encoding a rung (the node cannot afford it).
    DropRung(u32),
    /// Finish what is in flight and exit.
    Stop,
}

/// Worker to node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromWorker {
    /// The job started (FFmpeg's version, for the log).
    Ready {
        ffmpeg: String,
    },
    /// An encoded access unit of a rung, Annex B with SPS and PPS before each IDR (the body).
    Packet {
        rung: u32,
        pts: i64,
        dts: i64,
        keyframe: bool,
        boundary: Option<u64>,
    },
    /// Every rung has been given the picture of the source frame with this dts.
    Done {
        dts: i64,
    },
    Stats(WorkerStats),
    /// A source frame the decoder refused; the worker goes on.
    Skipped {
        dts: i64,
        error: String,
    },
    /// The worker cannot go on; it exits after this.
    Failed {
        error: String,
    },
}

/// Work done since the previous report.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WorkerStats {
    pub frames: u64,
    /// Media time of those frames, microseconds.
    pub media_us: u64,
    /// Time the decoding thread was busy, microseconds.
    pub decode_us: u64,
    /// Time each rung's thread was busy scaling and encoding, microseconds.
    pub encode_us: Vec<u64>,
}

impl WorkerStats {
    /// The busiest stage's time over media time: the decoder and every rung run in threads
    /// of their own, so the slowest one sets the pace. Above 1 the worker is slower than
    /// real time.
    pub fn load(&self) -> f64 {
        if self.media_us == 0 {
            return 0.0;
        }
        self.encode_us.iter().copied().chain([self.decode_us]).max().unwrap_or(0) as f64 / self.media_us as f64
    }
}

/// A frame that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("header of {0} bytes exceeds the limit of {MAX_HEADER}")]
    HeaderTooLarge(usize),
    #[error("body of {0} bytes exceeds the limit of {MAX_BODY}")]
    BodyTooLarge(usize),
    #[error("undecodable header at byte {offset}: {detail}")]
    Header { offset: u64, detail: String },
}

/// One frame: the message and its body.
pub fn encode<M: Serialize>(msg: &M, body: &[u8]) -> Vec<u8> {
    let header = postcard::to_allocvec(msg).expect("messages always serialize");
    let mut out = Vec::with_capacity(8 + header.len() + body.len());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(body);
    out
}

/// Reassembles frames from a byte stream.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: BytesMut,
    /// Bytes consumed so far, for error offsets.
    offset: u64,
}

impl FrameReader {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held that do not yet form a frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message, if the bytes so far hold one. After an error the stream
    /// cannot be resynchronised: the caller ends it.
    pub fn next_message<M: DeserializeOwned>(&mut self) -> Result<Option<(M, Bytes)>, WireError> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let header_len = u32::from_le_bytes(self.buf[0..4].try_into().expect("4 bytes")) as usize;
        let body_len = u32::from_le_bytes(self.buf[4..8].try_into().expect("4 bytes")) as usize;
        if header_len > MAX_HEADER {
            return Err(WireError::HeaderTooLarge(header_len));
        }
        if body_len > MAX_BODY {
            return Err(WireError::BodyTooLarge(body_len));
        }
        if self.buf.len() < 8 + header_len + body_len {
            self.buf.reserve(8 + header_len + body_len - self.buf.len());
            return Ok(None);
        }
        let offset = self.offset;
        self.buf.advance(8);
        let header = self.buf.split_to(header_len);
        let body = self.buf.split_to(body_len).freeze();
        self.offset += (8 + header_len + body_len) as u64;
        let msg = postcard::from_bytes(&header).map_err(|e| WireError::Header { offset, detail: e.to_string() })?;
        Ok(Some((msg, body)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_across_arbitrary_splits() {
        let msgs = vec![
            (ToWorker::Frame { pts: 3003, dts: 0, keyframe: true, boundary: Some(0) }, vec![1u8; 5000]),
            (ToWorker::DropRung(2), vec![]),
            (ToWorker::Frame { pts: -5, dts: -8, keyframe: false, boundary: None }, vec![9u8; 3]),
            (ToWorker::Stop, vec![]),
        ];
        let mut stream = Vec::new();
        for (m, b) in &msgs {
            stream.extend(encode(m, b));
        }
        for chunk in [1, 7, 8, 100, stream.len()] {
            let mut r = FrameReader::new();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                r.push(piece);
                while let Some((m, b)) = r.next_message::<ToWorker>().unwrap() {
                    got.push((m, b.to_vec()));
                }
            }
            assert_eq!(got, msgs, "chunks of {chunk}");
            assert_eq!(r.pending(), 0);
        }
    }

    #[test]
    fn lying_lengths_are_refused_without_allocating() {
        let mut r = FrameReader::new();
        r.push(&u32::MAX.to_le_bytes());
        r.push(&0u32.to_le_bytes());
        assert_eq!(r.next_message::<ToWorker>(), Err(WireError::HeaderTooLarge(u32::MAX as usize)));
        let mut r = FrameReader::new();
        r.push(&4u32.to_le_bytes());
        r.push(&(MAX_BODY as u32 + 1).to_le_bytes());
        assert!(matches!(r.next_message::<ToWorker>(), Err(WireError::BodyTooLarge(_))));
    }

    #[test]
    fn a_garbled_header_says_where() {
        let mut good = encode(&ToWorker::Stop, &[]);
        let mut bad = encode(&ToWorker::Stop, &[]);
        bad[8] = 0xff; // no such variant
        good.extend(bad);
        let mut r = FrameReader::new();
        r.push(&good);
        assert_eq!(r.next_message::<ToWorker>().unwrap().unwrap().0, ToWorker::Stop);
        match r.next_message::<ToWorker>() {
            Err(WireError::Header { offset, .. }) => assert_eq!(offset, 9),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn load_is_the_busiest_stage_over_media_time() {
        let s = WorkerStats { frames: 30, media_us: 1_000_000, decode_us: 200_000, encode_us: vec![300_000, 100_000] };
        assert!((s.load() - 0.3).abs() < 1e-9);
        let s = WorkerStats { frames: 30, media_us: 1_000_000, decode_us: 900_000, encode_us: vec![300_000] };
        assert!((s.load() - 0.9).abs() < 1e-9);
        assert_eq!(WorkerStats::default().load(), 0.0);
    }
}
