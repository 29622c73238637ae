//! Content keys and the cluster's key-encryption key (KEK).
//!
//! Content keys are 16 random bytes from the operating system's CSPRNG, named by a random
//! 16-byte key id. The catalog (and so the Raft log and snapshots) holds them only wrapped:
//! AES-256-GCM under the KEK, with a fresh 12-byte nonce, the content and key id bound in
//! as associated data, so a wrapped key moved to another stream's record does not unwrap.
//! The KEK comes from a file or the environment (64 hex digits) and is never written by
//! the node.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// A content key and its id.
#[derive(Clone, PartialEq, Eq)]
pub struct ContentKey {
    pub kid: [u8; 16],
    pub key: [u8; 16],
}

impl std::fmt::Debug for ContentKey {
    /// Never the key itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ContentKey {{ kid: {}, key: <redacted> }}", hex(&self.kid))
    }
}

/// What went wrong with a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key-encryption key must be 64 hex digits (32 bytes)")]
    BadKek,
    #[error("the operating system's random source failed")]
    Random,
    #[error("a wrapped key does not unwrap (another cluster's KEK, or altered)")]
    Unwrap,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

/// A new content key from the CSPRNG.
pub fn generate(rng: &SystemRandom) -> Result<ContentKey, KeyError> {
    let mut k = ContentKey { kid: [0; 16], key: [0; 16] };
    rng.fill(&mut k.kid).map_err(|_| KeyError::Random)?;
    rng.fill(&mut k.key).map_err(|_| KeyError::Random)?;
    Ok(k)
}

/// The cluster's key-encryption key.
pub struct Kek {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl Kek {
    /// From 64 hex digits (a file's content or an environment variable).
    pub fn parse(text: &str) -> Result<Kek, KeyError> {
        let bytes = unhex(text).filter(|b| b.len() == 32).ok_or(KeyError::BadKek)?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| KeyError::BadKek)?;
        Ok(Kek { key: LessSafeKey::new(key), rng: SystemRandom::new() })
    }

    /// `key` wrapped for `content`: hex of nonce, ciphertext and tag.
    pub fn wrap(&self, content: &str, key: &ContentKey) -> Result<String, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| KeyError::Random)?;
        let mut sealed = key.key.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(content, &key.kid)),
                &mut sealed,
            )
            .map_err(|_| KeyError::Random)?;
        Ok(format!("{}{}", hex(&nonce), hex(&sealed)))
    }

    /// The key `kid` of `content` from its wrapped form.
    pub fn unwrap(&self, content: &str, kid: [u8; 16], wrapped: &str) -> Result<ContentKey, KeyError> {
        let bytes = unhex(wrapped).ok_or(KeyError::Unwrap)?;
        if bytes.len() != NONCE_LEN + 16 + AES_256_GCM.tag_len() {
            return Err(KeyError::Unwrap);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Unwrap)?;
        let mut sealed = sealed.to_vec();
        let clear =
            self.key.open_in_place(nonce, Aad::from(aad(content, &kid)), &mut sealed).map_err(|_| KeyError::Unwrap)?;
        let key: [u8; 16] = clear.try_into().map_err(|_| KeyError::Unwrap)?;
        Ok(ContentKey { kid, key })
    }
}

fn aad(content: &str, kid: &[u8; 16]) -> Vec<u8> {
    let mut a = content.as_bytes().to_vec();
    a.push(0);
    a.extend_from_slice(kid);
    a
}

/// A key id from its hex form.
pub fn parse_kid(text: &str) -> Option<[u8; 16]> {
    unhex(text)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEK: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn a_wrapped_key_unwraps_only_for_its_content_and_kek() {
        let rng = SystemRandom::new();
        let kek = Kek::parse(KEK).unwrap();
        let key = generate(&rng).unwrap();
        assert_ne!(key, generate(&rng).unwrap(), "fresh randomness each time");
        let wrapped = kek.wrap("live/match", &key).unwrap();
        assert!(!wrapped.contains(&hex(&key.key)), "the key is not in its wrapped form in clear");
        assert_ne!(wrapped, kek.wrap("live/match", &key).unwrap(), "a fresh nonce each time");
        assert_eq!(kek.unwrap("live/match", key.kid, &wrapped).unwrap(), key);
        assert_eq!(kek.unwrap("live/other", key.kid, &wrapped), Err(KeyError::Unwrap), "bound to its content");
        assert_eq!(kek.unwrap("live/match", [9; 16], &wrapped), Err(KeyError::Unwrap), "bound to its key id");
        let other = Kek::parse(&KEK.replace("00", "ff")).unwrap();
        assert_eq!(other.unwrap("live/match", key.kid, &wrapped), Err(KeyError::Unwrap));
        let mut altered = wrapped.clone().into_bytes();
        altered[40] = if altered[40] == b'0' { b'1' } else { b'0' };
        assert_eq!(kek.unwrap("live/match", key.kid, std::str::from_utf8(&altered).unwrap()), Err(KeyError::Unwrap));
        assert!(format!("{key:?}").contains("redacted") && !format!("{key:?}").contains(&hex(&key.key)));
    }

    #[test]
    fn a_kek_is_64_hex_digits() {
        assert!(Kek::parse(&format!("{KEK}\n")).is_ok(), "a trailing newline from a file is fine");
        for bad in ["", "00", &KEK[..62], &format!("{KEK}00"), &KEK.replace('0', "g")] {
            assert!(matches!(Kek::parse(bad), Err(KeyError::BadKek)), "{bad:?}");
        }
        assert_eq!(parse_kid("000102030405060708090a0b0c0d0e0f"), Some(core::array::from_fn(|i| i as u8)));
        assert_eq!(parse_kid("0001"), None);
    }
}
