//! A file a live rendition finished (an init segment or a segment), how its bytes are held
//! ([`ChainedBytes`]), and who hears of it besides the tiers: a recording of the stream.

use bytes::{Bytes, BytesMut};
use tessera_ingest::TrackInfo;

/// A file's bytes as the live store holds them: a segment is its parts, chained, never
/// copied into one buffer. Cloning shares the parts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainedBytes {
    chunks: Vec<Bytes>,
    len: usize,
}

impl ChainedBytes {
    /// Adds `chunk` at the end.
    pub fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push(chunk);
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunks, in order.
    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    /// The bytes in one buffer: the only chunk as it is, else the chunks copied into one.
    /// For the consumers that need them contiguous (a cipher, a disk write).
    pub fn to_bytes(&self) -> Bytes {
        match self.chunks.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => {
                let mut out = BytesMut::with_capacity(self.len);
                for chunk in many {
                    out.extend_from_slice(chunk);
                }
                out.freeze()
            }
        }
    }
}

impl From<Bytes> for ChainedBytes {
    fn from(bytes: Bytes) -> Self {
        let mut chained = ChainedBytes::default();
        chained.push(bytes);
        chained
    }
}

/// A file a rendition finished, for the storage tiers and a recording.
#[derive(Debug, Clone)]
pub struct FinishedFile {
    /// `init-N.mp4` or `seg-MSN.m4s`.
    pub file: String,
    pub data: ChainedBytes,
    pub kind: FinishedKind,
}

#[derive(Debug, Clone)]
pub enum FinishedKind {
    Init {
        id: u32,
        tracks: Vec<TrackInfo>,
    },
    /// `discontinuity`: its timeline does not follow the segment before it (a new publish).
    Segment {
        msn: u64,
        seconds: f64,
        init: u32,
        discontinuity: bool,
    },
}

/// Told of the files a stream's renditions finish on its origin, and of the stream's end
/// (its publisher gone for longer than the reconnect grace). Must not block: the segment
/// store's locks are held.
pub trait Recorder: Send + Sync {
    fn finished(&self, stream: &str, rendition: &str, file: &FinishedFile);
    fn ended(&self, stream: &str);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chained_bytes_keep_their_chunks_and_join_only_when_asked() {
        let mut chained = ChainedBytes::default();
        let (a, b) = (Bytes::from_static(b"moof+mdat 1;"), Bytes::from_static(b"moof+mdat 2"));
        chained.push(a.clone());
        chained.push(Bytes::new());
        chained.push(b.clone());
        assert_eq!(chained.len(), a.len() + b.len());
        assert_eq!(chained.chunks(), [a.clone(), b]);
        assert_eq!(&chained.to_bytes()[..], b"moof+mdat 1;moof+mdat 2");
        let one = ChainedBytes::from(a.clone());
        assert_eq!(one.to_bytes().as_ptr(), a.as_ptr(), "a single chunk is not copied");
        assert!(ChainedBytes::default().to_bytes().is_empty());
    }
}
