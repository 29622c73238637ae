//! The names of a rendition's media files, formatted and parsed here and nowhere else:
//! `init-N.mp4` (and `init-N-KID.mp4`, the same init segment protected for cbcs key `KID`),
//! `part-N.m4s` and `seg-N.m4s`. Live and VOD renditions use them alike, every node the
//! same, so a URI names one file across a cluster and a CDN.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A media file of a rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MediaFile {
    /// Init segment `N` (a live rendition's init number, a VOD job's epoch).
    Init(u64),
    /// Part `N` (a stream-wide part number).
    Part(u64),
    /// Segment `N` (its media sequence number).
    Segment(u64),
}

impl fmt::Display for MediaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaFile::Init(n) => write!(f, "init-{n}.mp4"),
            MediaFile::Part(n) => write!(f, "part-{n}.m4s"),
            MediaFile::Segment(n) => write!(f, "seg-{n}.m4s"),
        }
    }
}

/// Init segment `init` protected for cbcs key `kid` (32 hex digits).
pub fn protected_init(init: u64, kid: &str) -> String {
    format!("init-{init}-{kid}.mp4")
}

/// A file name as a request names it: the file, and for `init-N-KID.mp4` the key id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requested<'a> {
    pub file: MediaFile,
    pub kid: Option<&'a str>,
}

impl MediaFile {
    /// Parses a file name; `None` for anything else (a number that does not fit or has
    /// leading zeros, a key id that is not 32 hex digits, a key id on a part or segment).
    pub fn parse(name: &str) -> Option<Requested<'_>> {
        // Digits without leading zeros: one name per file, so one URI per file in a cache.
        let number = |s: &str| {
            let canonical = s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
            if canonical {
                s.parse().ok()
            } else {
                None
            }
        };
        if let Some(rest) = name.strip_prefix("init-").and_then(|r| r.strip_suffix(".mp4")) {
            return match rest.split_once('-') {
                None => Some(Requested { file: MediaFile::Init(number(rest)?), kid: None }),
                Some((n, kid)) if kid.len() == 32 && kid.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    Some(Requested { file: MediaFile::Init(number(n)?), kid: Some(kid) })
                }
                Some(_) => None,
            };
        }
        let file = if let Some(n) = name.strip_prefix("part-").and_then(|r| r.strip_suffix(".m4s")) {
            MediaFile::Part(number(n)?)
        } else {
            MediaFile::Segment(number(name.strip_prefix("seg-")?.strip_suffix(".m4s")?)?)
        };
        Some(Requested { file, kid: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_refused() {
        for file in [MediaFile::Init(0), MediaFile::Init(7), MediaFile::Part(123), MediaFile::Segment(u64::MAX)] {
            assert_eq!(MediaFile::parse(&file.to_string()), Some(Requested { file, kid: None }));
        }
        let kid = "0123456789abcdef0123456789ABCDEF";
        assert_eq!(
            MediaFile::parse(&protected_init(3, kid)),
            Some(Requested { file: MediaFile::Init(3), kid: Some(kid) })
        );
        for bad in [
            "init-.mp4",
            "init-+1.mp4",
            "init-1-zz.mp4",
            "part-1.mp4",
            "seg--1.m4s",
            "seg-99999999999999999999999.m4s",
            "seg-1.m4s.m4s",
            "index.m3u8",
            "seg-1-0123456789abcdef0123456789abcdef.m4s",
            "part-007.m4s",
            "seg-00.m4s",
        ] {
            assert_eq!(MediaFile::parse(bad), None, "{bad}");
        }
    }
}
