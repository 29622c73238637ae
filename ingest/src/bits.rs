//! A bit reader for RBSP syntax (H.264/HEVC parameter sets), with Exp-Golomb codes.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("bitstream ended early at bit {0}")]
pub struct BitsExhausted(pub usize);

/// Reads bits MSB-first from an RBSP (emulation prevention already removed).
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn bit(&mut self) -> Result<bool, BitsExhausted> {
        let byte = self.data.get(self.pos / 8).ok_or(BitsExhausted(self.pos))?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Reads `n` bits (at most 32) as an unsigned integer.
    pub fn bits(&mut self, n: u32) -> Result<u32, BitsExhausted> {
        debug_assert!(n <= 32);
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | self.bit()? as u64;
        }
        Ok(v as u32)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), BitsExhausted> {
        if self.pos + n > self.data.len() * 8 {
            return Err(BitsExhausted(self.pos));
        }
        self.pos += n;
        Ok(())
    }

    /// Unsigned Exp-Golomb, `ue(v)`.
    pub fn ue(&mut self) -> Result<u32, BitsExhausted> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(BitsExhausted(self.pos));
            }
        }
        if zeros == 0 {
            return Ok(0);
        }
        let rest = self.bits(zeros)? as u64;
        Ok(((1u64 << zeros) - 1 + rest) as u32)
    }

    /// Signed Exp-Golomb, `se(v)`.
    pub fn se(&mut self) -> Result<i32, BitsExhausted> {
        let k = self.ue()? as i64;
        Ok(if k % 2 == 1 { ((k + 1) / 2) as i32 } else { (-(k / 2)) as i32 })
    }
}

/// Removes emulation prevention bytes (`00 00 03` -> `00 00`) from a NAL unit payload.
pub fn unescape_rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Splits an Annex B byte stream into NAL units (without start codes).
pub fn annexb_nals(data: &[u8]) -> Vec<&[u8]> {
    let mut nals = Vec::new();
    let mut i = 0;
    let mut start: Option<usize> = None;
    while i + 2 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if let Some(s) = start {
                let mut end = i;
                while end > s && data[end - 1] == 0 {
                    end -= 1;
                }
                if end > s {
                    nals.push(&data[s..end]);
                }
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        if s < data.len() {
            nals.push(&data[s..]);
        }
    }
    nals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb() {
        // 1 -> 0, 010 -> 1, 011 -> 2, 00100 -> 3
        let data = [0b1010_0110, 0b0100_0000];
        let mut r = BitReader::new(&data);
        assert_eq!(r.ue().unwrap(), 0);
        assert_eq!(r.ue().unwrap(), 1);
        assert_eq!(r.ue().unwrap(), 2);
        assert_eq!(r.ue().unwrap(), 3);
        let data = [0b0110_0100];
        let mut r = BitReader::new(&data);
        assert_eq!(r.se().unwrap(), -1);
        assert_eq!(r.se().unwrap(), 2);
    }

    #[test]
    fn exhaustion_is_an_error() {
        let mut r = BitReader::new(&[0]);
        assert!(r.ue().is_err());
        let mut r = BitReader::new(&[]);
        assert!(r.bit().is_err());
    }

    #[test]
    fn rbsp_unescape() {
        assert_eq!(unescape_rbsp(&[0, 0, 3, 1, 0, 0, 3, 0]), vec![0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn annexb_split() {
        let data = [0, 0, 0, 1, 9, 0xf0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 5];
        let nals = annexb_nals(&data);
        assert_eq!(nals, vec![&[9, 0xf0][..], &[0x67, 1, 2][..], &[0x68, 5][..]]);
        assert!(annexb_nals(&[1, 2, 3]).is_empty());
    }
}
