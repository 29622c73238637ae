//! `cbcs` sample encryption (ISO/IEC 23001-7, 10.4): AES-128-CBC over a pattern of blocks
//! within the protected bytes of each subsample, from a constant IV.
//!
//! A video sample is split per NAL unit ([`video_subsamples`]): the length field, the NAL
//! header and the first bytes of a slice (where its header is) stay clear, as do whole
//! non-slice NAL units (parameter sets, SEI); the rest of a slice is protected, one block in
//! ten encrypted ([`VIDEO_PATTERN`]). An audio sample is one protected range with every
//! whole block encrypted ([`AUDIO_PATTERN`]). In both, the CBC chain starts from the IV at
//! every subsample, and a partial block at the end of a protected range stays clear.

use super::{cbc_decrypt_blocks, cbc_encrypt_blocks, cipher, Iv, Key, BLOCK};

/// Encrypted blocks, then skipped ones, repeating; 0:0 encrypts every block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern {
    pub crypt: u8,
    pub skip: u8,
}

/// Video: one block in ten.
pub const VIDEO_PATTERN: Pattern = Pattern { crypt: 1, skip: 9 };
/// Audio: every whole block.
pub const AUDIO_PATTERN: Pattern = Pattern { crypt: 0, skip: 0 };

/// Bytes of a slice NAL unit, after its header, that stay clear (its slice header lies
/// there in practice).
pub const CLEAR_SLICE_LEAD: usize = 32;

/// One subsample: clear bytes, then protected bytes (as `senc` records them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subsample {
    pub clear: u16,
    pub protected: u32,
}

/// How NAL units are told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NalSyntax {
    /// H.264: 1-byte header, slices are types 1 to 5.
    H264,
    /// HEVC: 2-byte header, slices are types 0 to 31.
    Hevc,
}

impl NalSyntax {
    fn header_len(self) -> usize {
        match self {
            NalSyntax::H264 => 1,
            NalSyntax::Hevc => 2,
        }
    }

    fn is_slice(self, first: u8) -> bool {
        match self {
            NalSyntax::H264 => (1..=5).contains(&(first & 0x1f)),
            NalSyntax::Hevc => (first >> 1) & 0x3f < 32,
        }
    }
}

/// Why a sample cannot be split into subsamples.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CbcsError {
    #[error("NAL unit at byte {offset} claims {claimed} bytes, {left} are left in the sample")]
    NalOverrun { offset: usize, claimed: usize, left: usize },
    #[error("the subsamples cover {covered} bytes of a {len}-byte sample")]
    Coverage { covered: usize, len: usize },
}

/// The subsamples of a video sample of length-prefixed NAL units (`length_size` bytes).
pub fn video_subsamples(sample: &[u8], length_size: usize, syntax: NalSyntax) -> Result<Vec<Subsample>, CbcsError> {
    let mut out = Vec::new();
    let mut clear = 0usize; // clear bytes not yet given to a subsample
    let mut at = 0usize;
    while at < sample.len() {
        let left = sample.len() - at;
        if left < length_size {
            return Err(CbcsError::NalOverrun { offset: at, claimed: length_size, left });
        }
        let len = sample[at..at + length_size].iter().fold(0usize, |n, b| (n << 8) | *b as usize);
        if len > left - length_size {
            return Err(CbcsError::NalOverrun { offset: at, claimed: len, left: left - length_size });
        }
        let nal = &sample[at + length_size..at + length_size + len];
        let lead = syntax.header_len() + CLEAR_SLICE_LEAD;
        if nal.first().is_some_and(|b| syntax.is_slice(*b)) && len > lead {
            clear += length_size + lead;
            push(&mut out, &mut clear, (len - lead) as u32);
        } else {
            clear += length_size + len;
        }
        at += length_size + len;
    }
    if clear > 0 {
        push(&mut out, &mut clear, 0);
    }
    Ok(out)
}

/// Adds a subsample of the pending clear bytes and `protected` bytes; clear runs longer
/// than a subsample can say are split off as clear-only subsamples.
fn push(out: &mut Vec<Subsample>, clear: &mut usize, protected: u32) {
    while *clear > u16::MAX as usize {
        out.push(Subsample { clear: u16::MAX, protected: 0 });
        *clear -= u16::MAX as usize;
    }
    out.push(Subsample { clear: *clear as u16, protected });
    *clear = 0;
}

/// Applies `f` to every block of the pattern in each protected range, chaining from `iv`
/// anew in each subsample. Without subsamples the whole sample is one protected range.
fn for_each_run(
    sample: &mut [u8],
    subsamples: &[Subsample],
    pattern: Pattern,
    mut f: impl FnMut(&mut [u8], &Iv) -> Iv,
    iv: &Iv,
) -> Result<(), CbcsError> {
    let whole = [Subsample { clear: 0, protected: sample.len() as u32 }];
    let subsamples = if subsamples.is_empty() { &whole[..] } else { subsamples };
    let covered: usize = subsamples.iter().map(|s| s.clear as usize + s.protected as usize).sum();
    if covered != sample.len() {
        return Err(CbcsError::Coverage { covered, len: sample.len() });
    }
    let mut at = 0usize;
    for s in subsamples {
        at += s.clear as usize;
        let range = &mut sample[at..at + s.protected as usize];
        at += s.protected as usize;
        let whole_blocks = range.len() / BLOCK * BLOCK;
        let range = &mut range[..whole_blocks];
        if pattern.crypt == 0 {
            f(range, iv);
            continue;
        }
        let (crypt, cycle) = (pattern.crypt as usize * BLOCK, (pattern.crypt as usize + pattern.skip as usize) * BLOCK);
        let mut chain = *iv;
        for run in range.chunks_mut(cycle) {
            let n = run.len().min(crypt) / BLOCK * BLOCK;
            chain = f(&mut run[..n], &chain);
        }
    }
    Ok(())
}

/// Encrypts a sample in place.
pub fn encrypt(
    key: &Key,
    iv: &Iv,
    sample: &mut [u8],
    subsamples: &[Subsample],
    pattern: Pattern,
) -> Result<(), CbcsError> {
    let aes = cipher(key);
    for_each_run(sample, subsamples, pattern, |run, chain| cbc_encrypt_blocks(&aes, chain, run), iv)
}

/// Decrypts a sample in place (for checks and tests; players decrypt themselves).
pub fn decrypt(
    key: &Key,
    iv: &Iv,
    sample: &mut [u8],
    subsamples: &[Subsample],
    pattern: Pattern,
) -> Result<(), CbcsError> {
    let aes = cipher(key);
    for_each_run(sample, subsamples, pattern, |run, chain| cbc_decrypt_blocks(&aes, chain, run), iv)
}

#[cfg(test)]
mod tests;
