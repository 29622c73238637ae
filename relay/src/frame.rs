//! What an origin sends a subscriber, and how it is laid out on the wire: a header
//! (postcard) describing the items, then their media as it is. Parts and init segments are
//! never copied through the encoder: [`encode`] hands their `Bytes` over as the body and
//! [`decode`] gives each item a slice of the one buffer the body was read into.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::event::{FeedEvent, FeedItem};

/// A batch of a journal's items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedFrame {
    /// The journal the items' sequence numbers belong to.
    pub journal: u64,
    pub items: Vec<FeedItem>,
    /// The journal's newest sequence number when the frame was cut: a subscriber that has
    /// applied up to it has caught up with the origin's live edge.
    pub head: u64,
}

/// Why a frame could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("malformed frame header: {0}")]
    Header(#[from] postcard::Error),
    #[error("the header names {named} bytes of media, the body has {body}")]
    BodyLength { named: usize, body: usize },
}

/// The media payload of an item, if it carries one.
fn payload(event: &mut FeedEvent) -> Option<&mut Bytes> {
    match event {
        FeedEvent::Part { data, .. } | FeedEvent::Init { data, .. } => Some(data),
        _ => None,
    }
}

/// The frame's header and its body: each payload's length is in the header, the payload
/// itself in the body, in item order.
pub fn encode(mut frame: FeedFrame) -> Result<(Vec<u8>, Vec<Bytes>), postcard::Error> {
    let mut body = Vec::new();
    let mut lengths = Vec::new();
    for item in &mut frame.items {
        if let Some(data) = payload(&mut item.event) {
            let data = std::mem::take(data);
            lengths.push(data.len() as u32);
            body.push(data);
        }
    }
    Ok((postcard::to_allocvec(&(frame, lengths))?, body))
}

/// The frame [`encode`] laid out as `header` and `body`.
pub fn decode(header: &[u8], body: Bytes) -> Result<FeedFrame, FrameError> {
    let (mut frame, lengths): (FeedFrame, Vec<u32>) = postcard::from_bytes(header)?;
    let named: usize = lengths.iter().map(|l| *l as usize).sum();
    if named != body.len() {
        return Err(FrameError::BodyLength { named, body: body.len() });
    }
    let mut lengths = lengths.into_iter();
    let mut at = 0;
    for item in &mut frame.items {
        if let Some(data) = payload(&mut item.event) {
            let len = lengths.next().ok_or(FrameError::BodyLength { named, body: body.len() })? as usize;
            *data = body.slice(at..at + len);
            at += len;
        }
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(seq: u64, data: &'static [u8]) -> FeedItem {
        FeedItem {
            seq,
            event: FeedEvent::Part {
                rendition: "src".into(),
                number: seq,
                segment: 0,
                starts_segment: seq == 1,
                data: Bytes::from_static(data),
                duration: 0.2,
                independent: true,
                program_time_ms: 0,
                part_target: 0.2,
                published_us: 0,
            },
        }
    }

    #[test]
    fn media_crosses_as_the_body_and_comes_back_in_place() {
        let frame = FeedFrame {
            journal: 7,
            items: vec![
                part(1, b"first part"),
                FeedItem { seq: 2, event: FeedEvent::Reset { kept_from: 2 } },
                part(3, b""),
            ],
            head: 3,
        };
        let (header, body) = encode(frame.clone()).unwrap();
        assert_eq!(body.iter().map(Bytes::len).sum::<usize>(), 10);
        assert!(!header.windows(10).any(|w| w == b"first part"), "media is not in the header");
        let joined: Vec<u8> = body.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(decode(&header, joined.into()).unwrap(), frame);
    }

    #[test]
    fn a_body_that_disagrees_with_its_header_is_refused() {
        let frame = FeedFrame { journal: 1, items: vec![part(1, b"abc")], head: 1 };
        let (header, _) = encode(frame).unwrap();
        assert!(matches!(decode(&header, Bytes::from_static(b"ab")), Err(FrameError::BodyLength { .. })));
        assert!(decode(&header[..header.len() - 1], Bytes::from_static(b"abc")).is_err());
        assert!(decode(b"\xff\xff\xff", Bytes::new()).is_err());
    }
}
