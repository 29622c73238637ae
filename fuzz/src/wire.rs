//! What crosses between processes: the codec worker's frames (both ways) and the cluster's
//! messages (the framing, a protocol's opening request, the relay's media frames).

use bytes::Bytes;
use tessera_cluster::wire::{self, LinkError};
use tessera_relay::FeedEvent;
use tessera_transcode::wire::{FrameReader, FromWorker, ToWorker, WireError};

use crate::pieces;

/// The codec worker's stdout as the node reads it, and its stdin as the worker reads it:
/// the messages do not depend on how the pipe split the bytes, and an undecodable header
/// names its offset.
pub(crate) fn codec_worker(data: &[u8]) {
    fn read<M: serde::de::DeserializeOwned + std::fmt::Debug>(pieces: &[&[u8]]) -> Vec<String> {
        let mut reader = FrameReader::new();
        let mut out = Vec::new();
        for piece in pieces {
            reader.push(piece);
            loop {
                match reader.next_message::<M>() {
                    Ok(Some((message, body))) => out.push(format!("{message:?} {}", body.len())),
                    Ok(None) => break,
                    Err(e) => {
                        if let WireError::Header { .. } = e {
                            assert!(e.to_string().contains("at byte"), "{e}");
                        }
                        out.push(e.to_string());
                        return out;
                    }
                }
            }
        }
        out
    }
    let (pieces, whole) = pieces(data);
    assert_eq!(read::<FromWorker>(&pieces), read::<FromWorker>(&[whole]), "messages depend on the split");
    assert_eq!(read::<ToWorker>(&pieces), read::<ToWorker>(&[whole]), "messages depend on the split");
}

/// One message on a QUIC stream between nodes: its lengths (refused past the limits before
/// anything is allocated), its header read as a protocol's opening (a name, then that
/// protocol's request) and as a relay feed frame with its body.
pub(crate) fn cluster(data: &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<8>() else { return };
    let (header_len, body_len) = match wire::lengths(*head, wire::MAX_STRANGER_REQUEST, wire::MAX_BODY) {
        Ok(lengths) => lengths,
        Err(e) => {
            assert!(matches!(e, LinkError::TooLarge { .. }), "{e}");
            return;
        }
    };
    let header = &rest[..header_len.min(rest.len())];
    let rest = &rest[header.len()..];
    let body = Bytes::copy_from_slice(&rest[..body_len.min(rest.len())]);
    if let Ok((_name, request)) = postcard::take_from_bytes::<&str>(header) {
        let _ = postcard::from_bytes::<tessera_raft::network::RaftRpc>(request);
        let _ = postcard::from_bytes::<tessera_cluster::membership::Forwarded>(request);
        let _ = postcard::from_bytes::<tessera_cluster::membership::JoinRequest>(request);
        let _ = postcard::from_bytes::<tessera_license::decision::StreamClaim>(request);
    }
    if let Ok(frame) = tessera_relay::frame::decode(header, body.clone()) {
        let carried: usize = frame
            .items
            .iter()
            .map(|item| match &item.event {
                FeedEvent::Part { data, .. } | FeedEvent::Init { data, .. } => data.len(),
                _ => 0,
            })
            .sum();
        assert!(carried <= body.len(), "a frame's items carry more than its body");
    }
}
