//! HLS `METHOD=AES-128`: a whole segment or part, AES-128-CBC with PKCS#7 padding.

use super::{cbc_decrypt_blocks, cbc_encrypt_blocks, cipher, Iv, Key, BLOCK};

/// The IV of segment `msn` (and of its parts) when the playlist names none: the media
/// sequence number, big-endian, in 16 bytes.
pub fn segment_iv(msn: u64) -> Iv {
    let mut iv = [0u8; 16];
    iv[8..].copy_from_slice(&msn.to_be_bytes());
    iv
}

/// Encrypts a resource: always one to sixteen bytes longer (the padding).
pub fn encrypt(key: &Key, iv: &Iv, clear: &[u8]) -> Vec<u8> {
    let pad = BLOCK - clear.len() % BLOCK;
    let mut out = Vec::with_capacity(clear.len() + pad);
    out.extend_from_slice(clear);
    out.resize(clear.len() + pad, pad as u8);
    cbc_encrypt_blocks(&cipher(key), iv, &mut out);
    out
}

/// Why a resource does not decrypt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("{0} bytes is not a whole number of AES blocks")]
    Length(usize),
    #[error("bad PKCS#7 padding (wrong key or IV, or damaged data)")]
    Padding,
}

/// Decrypts a resource (for checks and tests; players decrypt themselves).
pub fn decrypt(key: &Key, iv: &Iv, encrypted: &[u8]) -> Result<Vec<u8>, DecryptError> {
    if encrypted.is_empty() || !encrypted.len().is_multiple_of(BLOCK) {
        return Err(DecryptError::Length(encrypted.len()));
    }
    let mut out = encrypted.to_vec();
    cbc_decrypt_blocks(&cipher(key), iv, &mut out);
    let pad = *out.last().expect("not empty") as usize;
    if !(1..=BLOCK).contains(&pad) || !out[out.len() - pad..].iter().all(|b| *b as usize == pad) {
        return Err(DecryptError::Padding);
    }
    out.truncate(out.len() - pad);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// NIST SP 800-38A, F.2.1 (CBC-AES128.Encrypt).
    #[test]
    fn cbc_matches_the_nist_vectors() {
        let key: Key = hex("2b7e151628aed2a6abf7158809cf4f3c").try_into().unwrap();
        let iv: Iv = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let clear = hex(concat!(
            "6bc1bee22e409f96e93d7e117393172a",
            "ae2d8a571e03ac9c9eb76fac45af8e51",
            "30c81c46a35ce411e5fbc1191a0a52ef",
            "f69f2445df4f9b17ad2b417be66c3710"
        ));
        let expected = hex(concat!(
            "7649abac8119b246cee98e9b12e9197d",
            "5086cb9b507219ee95db113a917678b2",
            "73bed6b8e3c1743b7116e69e22229516",
            "3ff1caa1681fac09120eca307586e1a7"
        ));
        let out = encrypt(&key, &iv, &clear);
        assert_eq!(&out[..64], &expected[..], "the four NIST blocks");
        assert_eq!(out.len(), 80, "a whole block of padding after a whole number of blocks");
        assert_eq!(decrypt(&key, &iv, &out).unwrap(), clear);
    }

    #[test]
    fn padding_is_pkcs7_and_a_wrong_key_is_noticed() {
        let key = [7u8; 16];
        let iv = segment_iv(42);
        assert_eq!(iv[15], 42);
        assert_eq!(&iv[..8], &[0; 8]);
        for len in [0, 1, 15, 16, 17, 1000] {
            let clear: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let out = encrypt(&key, &iv, &clear);
            assert_eq!(out.len(), (len / 16 + 1) * 16, "{len} bytes");
            assert_eq!(decrypt(&key, &iv, &out).unwrap(), clear, "{len} bytes round-trip");
        }
        let out = encrypt(&key, &iv, b"a part of a segment");
        assert_eq!(decrypt(&[8u8; 16], &iv, &out), Err(DecryptError::Padding));
        assert_eq!(decrypt(&key, &iv, &out[..31]), Err(DecryptError::Length(31)));
    }
}
