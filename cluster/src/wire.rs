//! The framing of every exchange between nodes, and what can go wrong on a link.
//!
//! A message is `header_len: u32 BE`, `body_len: u32 BE`, the header, then the body. The
//! header is what the protocol encodes (postcard for requests and answers); the body is
//! raw bytes sent as they are (media), never re-encoded. Lengths past [`MAX_HEADER`] or
//! [`MAX_BODY`] are refused before anything is allocated for them.
//!
//! An exchange is one bidirectional QUIC stream. Its first message names the protocol
//! (a postcard string) followed by the request; the answer is `Result<Response,
//! WireError>`. A streaming protocol goes on exchanging messages after that.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::NodeId;

/// Largest header accepted (a snapshot of the catalog travels in one).
pub const MAX_HEADER: usize = 64 * 1024 * 1024;
/// Largest body accepted.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// One message as read from a stream.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub header: Bytes,
    pub body: Bytes,
}

/// What a link did wrong: the connection, the stream, or the bytes on it.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("cannot open a socket: {0}")]
    Socket(std::io::Error),
    #[error("TLS: {0}")]
    Tls(crate::tls::TlsError),
    #[error("cannot connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("read: {0}")]
    Read(#[from] quinn::ReadExactError),
    #[error("stream already finished: {0}")]
    Finished(#[from] quinn::ClosedStream),
    #[error("malformed message: {0}")]
    Decode(#[from] postcard::Error),
    #[error("{what} of {len} bytes exceeds {max}")]
    TooLarge { what: &'static str, len: usize, max: usize },
    #[error("the stream ended before an answer")]
    Ended,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Why the far side refused an exchange before any handler saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum WireError {
    #[error("no handler for protocol {0:?}")]
    UnknownProtocol(String),
    #[error("a certificate from the cluster CA is required")]
    Unauthenticated,
    #[error("node {0} is not a member of this cluster")]
    NotMember(NodeId),
    #[error("malformed request: {0}")]
    Malformed(String),
}

/// Writes one message; `body` goes out as it is. Returns the bytes written.
pub async fn write(send: &mut quinn::SendStream, header: &[u8], body: &[Bytes]) -> Result<usize, LinkError> {
    let body_len: usize = body.iter().map(Bytes::len).sum();
    if header.len() > MAX_HEADER {
        return Err(LinkError::TooLarge { what: "header", len: header.len(), max: MAX_HEADER });
    }
    if body_len > MAX_BODY {
        return Err(LinkError::TooLarge { what: "body", len: body_len, max: MAX_BODY });
    }
    let mut head = BytesMut::with_capacity(8 + header.len());
    head.extend_from_slice(&(header.len() as u32).to_be_bytes());
    head.extend_from_slice(&(body_len as u32).to_be_bytes());
    head.extend_from_slice(header);
    let mut chunks = Vec::with_capacity(1 + body.len());
    chunks.push(head.freeze());
    chunks.extend(body.iter().filter(|b| !b.is_empty()).cloned());
    send.write_all_chunks(&mut chunks).await?;
    Ok(8 + header.len() + body_len)
}

/// Writes a message whose header is `value` in postcard (encoded before the first await,
/// so the future does not hold `value`).
pub fn write_value<'a, T: Serialize + ?Sized>(
    send: &'a mut quinn::SendStream,
    value: &T,
) -> impl std::future::Future<Output = Result<usize, LinkError>> + Send + 'a {
    let header = postcard::to_allocvec(value);
    async move { write(send, &header?, &[]).await }
}

/// Largest request from a caller without a certificate (a joiner's): its first message is
/// read before anything is known of it.
pub const MAX_STRANGER_REQUEST: usize = 64 * 1024;

/// Reads one message; `None` if the stream ended cleanly before it.
pub async fn read(recv: &mut quinn::RecvStream) -> Result<Option<Message>, LinkError> {
    read_at_most(recv, MAX_HEADER, MAX_BODY).await
}

/// [`read`], refusing a header over `max_header` bytes or a body over `max_body`.
pub async fn read_at_most(
    recv: &mut quinn::RecvStream,
    max_header: usize,
    max_body: usize,
) -> Result<Option<Message>, LinkError> {
    let mut lens = [0u8; 8];
    match recv.read_exact(&mut lens).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let (header_len, body_len) = lengths(lens, max_header, max_body)?;
    let mut header = vec![0u8; header_len];
    recv.read_exact(&mut header).await?;
    let mut body = BytesMut::zeroed(body_len);
    recv.read_exact(&mut body).await?;
    Ok(Some(Message { header: header.into(), body: body.freeze() }))
}

/// The header and body lengths a message's first eight bytes announce, refused past the
/// limits before anything is allocated for them.
pub fn lengths(head: [u8; 8], max_header: usize, max_body: usize) -> Result<(usize, usize), LinkError> {
    let header_len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let body_len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if header_len > max_header {
        return Err(LinkError::TooLarge { what: "header", len: header_len, max: max_header });
    }
    if body_len > max_body {
        return Err(LinkError::TooLarge { what: "body", len: body_len, max: max_body });
    }
    Ok((header_len, body_len))
}

/// Reads one message whose header is a `T` in postcard; the stream must not end first.
pub async fn read_value<T: serde::de::DeserializeOwned>(recv: &mut quinn::RecvStream) -> Result<T, LinkError> {
    let message = read(recv).await?.ok_or(LinkError::Ended)?;
    Ok(postcard::from_bytes(&message.header)?)
}

/// The two halves of an open streaming exchange, after its opening answer.
pub struct Duplex {
    pub send: MessageSink,
    pub recv: MessageSource,
}

impl Duplex {
    pub(crate) fn new(send: quinn::SendStream, recv: quinn::RecvStream) -> Self {
        Duplex { send: MessageSink(send), recv: MessageSource(recv) }
    }
}

/// The sending half of a streaming exchange.
pub struct MessageSink(quinn::SendStream);

impl MessageSink {
    /// Sends one message (see [`write`]); returns the bytes written.
    pub async fn send(&mut self, header: &[u8], body: &[Bytes]) -> Result<usize, LinkError> {
        write(&mut self.0, header, body).await
    }

    /// Ends this half: the far side reads the end after what was sent.
    pub fn finish(&mut self) -> Result<(), LinkError> {
        Ok(self.0.finish()?)
    }
}

/// The receiving half of a streaming exchange.
pub struct MessageSource(quinn::RecvStream);

impl MessageSource {
    /// The next message; `None` once the far side finished. Not cancel-safe: read it from
    /// one task and never drop the future half way.
    pub async fn next(&mut self) -> Result<Option<Message>, LinkError> {
        read(&mut self.0).await
    }
}

#[cfg(test)]
mod tests {
    use tessera_raft::{Command, ContentSettings, PlacementRule, Proposal, Protection, StreamSettings};

    /// Lengths past the limits are refused from the first eight bytes, before anything is
    /// allocated for them.
    #[test]
    fn lengths_past_the_limits_are_refused_before_reading() {
        let head = |h: u32, b: u32| {
            let mut x = [0u8; 8];
            x[..4].copy_from_slice(&h.to_be_bytes());
            x[4..].copy_from_slice(&b.to_be_bytes());
            x
        };
        assert_eq!(super::lengths(head(10, 20), 64, 64).unwrap(), (10, 20));
        assert!(matches!(super::lengths(head(65, 0), 64, 64), Err(super::LinkError::TooLarge { what: "header", .. })));
        assert!(matches!(
            super::lengths(head(0, u32::MAX), 64, 64),
            Err(super::LinkError::TooLarge { what: "body", .. })
        ));
    }

    /// Log entries cross the wire in postcard, which is not self-describing: a command
    /// whose fields are skipped when empty would not decode on the other side.
    #[test]
    fn catalog_commands_round_trip_in_postcard() {
        let full = ContentSettings {
            stream: Some(StreamSettings { ladder: Some("source".into()), token_sha256: None }),
            record: Some(true),
            placement: Some(PlacementRule { pin: vec![2], prefer: vec![] }),
            encryption: Some(Protection::Cbcs),
            regions: Some(vec!["eu".into()]),
            signed_urls: None,
            key_server: Some(None),
        };
        for settings in [full, ContentSettings::default()] {
            let p = Proposal { at_ms: 1, command: Command::ConfigureContent { content: "live/a".into(), settings } };
            let bytes = postcard::to_allocvec(&p).unwrap();
            assert_eq!(postcard::from_bytes::<Proposal>(&bytes).unwrap(), p);
        }
    }
}
