//! Content encryption, sans-IO: bytes and a key in, encrypted bytes out.
//!
//! - [`aes128`]: HLS `METHOD=AES-128`, a whole resource (segment or part) encrypted with
//!   AES-128-CBC and PKCS#7 padding. The IV is the media sequence number of the segment
//!   (a part uses its parent segment's), big-endian in 16 bytes, as RFC 8216 prescribes
//!   when `EXT-X-KEY` carries no `IV`.
//! - [`cbcs`]: ISO/IEC 23001-7 `cbcs` sample encryption: within each sample, subsamples of
//!   clear bytes (NAL lengths and headers, the start of each slice) followed by protected
//!   bytes, of which one 16-byte block in ten is encrypted (pattern 1:9) with AES-128-CBC;
//!   the chain restarts from the constant IV at every subsample and a trailing partial
//!   block stays clear. Audio samples are encrypted whole (every complete block).
//! - [`cmaf`]: `cbcs` applied to CMAF the packager wrote: a clear init segment's protected
//!   twin, and clear fragments' encrypted twins.
//!
//! Keys are 16 bytes; nothing here generates, stores or logs them.

pub mod aes128;
pub mod cbcs;
pub mod cmaf;

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes128;

/// AES block size, bytes.
pub const BLOCK: usize = 16;

/// A content key.
pub type Key = [u8; 16];
/// An initialisation vector.
pub type Iv = [u8; 16];

fn cipher(key: &Key) -> Aes128 {
    Aes128::new(key.into())
}

/// CBC-encrypts whole blocks of `data` in place, chaining from `iv`; returns the last
/// ciphertext block (the next IV of the chain). `data.len()` must be a multiple of 16.
fn cbc_encrypt_blocks(aes: &Aes128, iv: &Iv, data: &mut [u8]) -> Iv {
    debug_assert_eq!(data.len() % BLOCK, 0);
    let mut prev = *iv;
    for block in data.chunks_exact_mut(BLOCK) {
        for (b, p) in block.iter_mut().zip(prev) {
            *b ^= p;
        }
        aes.encrypt_block(block.into());
        prev.copy_from_slice(block);
    }
    prev
}

/// The inverse of [`cbc_encrypt_blocks`].
fn cbc_decrypt_blocks(aes: &Aes128, iv: &Iv, data: &mut [u8]) -> Iv {
    debug_assert_eq!(data.len() % BLOCK, 0);
    let mut prev = *iv;
    for block in data.chunks_exact_mut(BLOCK) {
        let mut this = [0u8; BLOCK];
        this.copy_from_slice(block);
        aes.decrypt_block(block.into());
        for (b, p) in block.iter_mut().zip(prev) {
            *b ^= p;
        }
        prev = this;
    }
    prev
}
