//! Files on disk and in the object store carry their own checksum: the payload, then the
//! SHA-256 of the payload. A file whose checksum does not match (a torn write, bit rot, a
//! truncated upload) is never served: the reader discards it and fetches another copy.

use bytes::{Bytes, BytesMut};
use thiserror::Error;

const DIGEST: usize = 32;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SealError {
    #[error("shorter than its checksum ({0} bytes)")]
    Truncated(usize),
    #[error("checksum mismatch over {0} bytes")]
    Mismatch(usize),
}

/// The payload with its checksum appended.
pub fn seal(payload: &[u8]) -> Bytes {
    let digest = ring::digest::digest(&ring::digest::SHA256, payload);
    let mut out = BytesMut::with_capacity(payload.len() + DIGEST);
    out.extend_from_slice(payload);
    out.extend_from_slice(digest.as_ref());
    out.freeze()
}

/// The payload of a sealed file, if its checksum holds.
pub fn open(sealed: Bytes) -> Result<Bytes, SealError> {
    if sealed.len() < DIGEST {
        return Err(SealError::Truncated(sealed.len()));
    }
    let split = sealed.len() - DIGEST;
    let digest = ring::digest::digest(&ring::digest::SHA256, &sealed[..split]);
    if digest.as_ref() != &sealed[split..] {
        return Err(SealError::Mismatch(split));
    }
    Ok(sealed.slice(..split))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_file_opens_to_its_payload_and_any_damage_is_caught() {
        let payload = b"moof mdat and all".repeat(100);
        let sealed = seal(&payload);
        assert_eq!(open(sealed.clone()).unwrap(), payload);
        for at in [0, 17, payload.len() - 1, payload.len() + 5] {
            let mut bad = sealed.to_vec();
            bad[at] ^= 0x40;
            assert!(open(Bytes::from(bad)).is_err(), "a flipped bit at {at}");
        }
        assert_eq!(open(sealed.slice(..sealed.len() - 1)), Err(SealError::Mismatch(payload.len() - 1)));
        assert_eq!(open(Bytes::from_static(b"short")), Err(SealError::Truncated(5)));
        assert_eq!(open(seal(b"")).unwrap(), Bytes::new());
    }
}
