//! Time as Tessera counts it: media timestamps in 90 kHz ticks, and the wall clock.
//!
//! Media time is ticks of a 90 kHz clock ([`TICKS_PER_SECOND`]) throughout: frames, parts,
//! segment targets, fMP4 video tracks. Wall-clock time (a part's program date, a catalog
//! entry's time) is milliseconds since the Unix epoch, read in one place ([`unix_ms`]);
//! the sans-IO cores never read it, they are given it.
//!
//! PTS and DTS are 33-bit counters of a 90 kHz clock; they wrap every 2^33 ticks (about
//! 26.5 hours). PCR is a 33-bit 90 kHz base plus a 9-bit 27 MHz extension. Tessera unwraps
//! every timestamp into an `i64` of 90 kHz ticks that never goes backwards across a wrap:
//! each new value is placed in the 2^33 period closest to the previous unwrapped value, so
//! a step of less than 2^32 ticks (13.25 hours) in either direction is read as such.

/// Ticks of the media clock per second.
pub const TICKS_PER_SECOND: i64 = 90_000;
/// Ticks of the media clock per millisecond.
pub const TICKS_PER_MS: i64 = TICKS_PER_SECOND / 1000;

/// Milliseconds since the Unix epoch on this machine's clock.
pub fn unix_ms() -> i64 {
    unix_us() / 1000
}

/// Microseconds since the Unix epoch on this machine's clock.
pub fn unix_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// One period of the 33-bit clock.
pub const WRAP: i64 = 1 << 33;

/// Places wrapping timestamps (33-bit by default) on a continuous `i64` timeline.
#[derive(Debug, Clone)]
pub struct Unwrapper {
    last: Option<i64>,
    period: i64,
}

impl Default for Unwrapper {
    fn default() -> Self {
        Unwrapper { last: None, period: WRAP }
    }
}

impl Unwrapper {
    pub fn new() -> Self {
        Self::default()
    }

    /// An unwrapper for counters that wrap every `period` (a power of two), such as RTMP's
    /// 32-bit millisecond timestamps.
    pub fn with_period(period: i64) -> Self {
        debug_assert!(period > 0 && period & (period - 1) == 0);
        Unwrapper { last: None, period }
    }

    /// Unwraps a value relative to the last value seen.
    pub fn unwrap(&mut self, raw: u64) -> i64 {
        let value = self.place(raw, self.last);
        self.last = Some(value);
        value
    }

    /// Unwraps a value without moving the reference (for DTS after its PTS).
    pub fn unwrap_near(&self, raw: u64, near: i64) -> i64 {
        self.place(raw, Some(near))
    }

    fn place(&self, raw: u64, near: Option<i64>) -> i64 {
        let period = self.period;
        let raw = (raw as i64) & (period - 1);
        match near {
            None => raw,
            Some(last) => {
                let base = last.div_euclid(period) * period;
                let candidates = [base - period + raw, base + raw, base + period + raw];
                *candidates.iter().min_by_key(|c| (*c - last).abs()).expect("three candidates")
            }
        }
    }
}

/// Reads a 5-byte PES timestamp field (PTS or DTS), with its marker bits.
pub fn read_pes_timestamp(b: &[u8]) -> Option<u64> {
    if b.len() < 5 || b[0] & 1 != 1 || b[2] & 1 != 1 || b[4] & 1 != 1 {
        return None;
    }
    let v = (((b[0] >> 1) & 0x07) as u64) << 30
        | (b[1] as u64) << 22
        | ((b[2] >> 1) as u64) << 15
        | (b[3] as u64) << 7
        | (b[4] >> 1) as u64;
    Some(v)
}

/// Reads the 6-byte PCR field of an adaptation field: the 33-bit 90 kHz base and the
/// 9-bit 27 MHz extension.
pub fn read_pcr(b: &[u8]) -> Option<(u64, u64)> {
    let b = b.get(..6)?;
    let base = ((b[0] as u64) << 25)
        | ((b[1] as u64) << 17)
        | ((b[2] as u64) << 9)
        | ((b[3] as u64) << 1)
        | (b[4] >> 7) as u64;
    let ext = (((b[4] & 1) as u64) << 8) | b[5] as u64;
    Some((base, ext))
}

/// Writes a 5-byte PES timestamp field with the given 4-bit prefix (`0b0010` PTS only,
/// `0b0011` PTS of a PTS+DTS pair, `0b0001` DTS).
pub fn write_pes_timestamp(prefix: u8, ts: u64) -> [u8; 5] {
    let ts = ts & ((1 << 33) - 1);
    [
        (prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1,
        (ts >> 22) as u8,
        (((ts >> 15) as u8) << 1) | 1,
        (ts >> 7) as u8,
        ((ts as u8) << 1) | 1,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_forward_across_33_bits() {
        let mut u = Unwrapper::new();
        assert_eq!(u.unwrap((WRAP - 3000) as u64), WRAP - 3000);
        assert_eq!(u.unwrap(0), WRAP);
        assert_eq!(u.unwrap(3000), WRAP + 3000);
        // A second wrap, reached in steps.
        assert_eq!(u.unwrap((WRAP / 2) as u64), WRAP + WRAP / 2);
        assert_eq!(u.unwrap((WRAP - 10) as u64), 2 * WRAP - 10);
        assert_eq!(u.unwrap(5), 2 * WRAP + 5);
    }

    #[test]
    fn small_backward_steps_stay_backward() {
        let mut u = Unwrapper::new();
        assert_eq!(u.unwrap(10), 10);
        // B-frame-like step back across the wrap point.
        assert_eq!(u.unwrap((WRAP - 3003) as u64), -3003);
        assert_eq!(u.unwrap(6006), 6006);
    }

    #[test]
    fn near_does_not_move_reference() {
        let mut u = Unwrapper::new();
        u.unwrap(100);
        assert_eq!(u.unwrap_near((WRAP - 50) as u64, 100), -50);
        assert_eq!(u.unwrap(200), 200);
    }

    #[test]
    fn pes_timestamp_round_trip() {
        for ts in [0u64, 1, 90_000, (1 << 33) - 1, 0x1_2345_6789] {
            let b = write_pes_timestamp(0b0010, ts);
            assert_eq!(read_pes_timestamp(&b), Some(ts & ((1 << 33) - 1)));
        }
        let mut b = write_pes_timestamp(0b0010, 5);
        b[4] &= 0xfe; // broken marker bit
        assert_eq!(read_pes_timestamp(&b), None);
    }
}
