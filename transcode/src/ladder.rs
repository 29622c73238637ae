//! The adaptive-bitrate ladder: what an operator configures ([`LadderSpec`]) and what a
//! given source gets ([`plan`]).
//!
//! A ladder is a comma-separated list of rungs. `source` is the feed as it came
//! (passthrough, no decode); `HEIGHTp:KBPS` is an H.264 rendition, with optional
//! `:max=KBPS` (peak rate, default 110 % of the average) and `:profile=baseline|main|high`
//! (default `high`). The default is `source,720p:2500,480p:1200,360p:600`.
//!
//! Planning never upscales: a transcoded rung is kept only if its size is below the
//! source's (or equal to it when the ladder has no passthrough). The rung's number is the
//! short side of the picture, so a portrait 720x1280 phone feed gets a 480x854 "480p" rung;
//! the long side follows the source's aspect ratio, rounded to an even number of pixels.
//! Pixels are taken as square.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Name of the passthrough rendition (also its URL path segment).
pub const SOURCE: &str = "src";

/// H.264 profiles a transcoded rung may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum H264Profile {
    Baseline,
    Main,
    High,
}

impl H264Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            H264Profile::Baseline => "baseline",
            H264Profile::Main => "main",
            H264Profile::High => "high",
        }
    }
}

/// One configured rung.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RungSpec {
    /// The source as it came.
    Source,
    /// An H.264 rendition whose short side is `size` pixels.
    H264 { size: u32, kbps: u32, max_kbps: Option<u32>, profile: H264Profile },
}

impl RungSpec {
    /// The rendition name: `src`, or `720p`.
    pub fn name(&self) -> String {
        match self {
            RungSpec::Source => SOURCE.to_string(),
            RungSpec::H264 { size, .. } => format!("{size}p"),
        }
    }
}

impl fmt::Display for RungSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RungSpec::Source => f.write_str("source"),
            RungSpec::H264 { size, kbps, max_kbps, profile } => {
                write!(f, "{size}p:{kbps}")?;
                if let Some(m) = max_kbps {
                    write!(f, ":max={m}")?;
                }
                if *profile != H264Profile::High {
                    write!(f, ":profile={}", profile.as_str())?;
                }
                Ok(())
            }
        }
    }
}

/// Why a ladder does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LadderError {
    #[error("empty ladder: give at least one rung (`source` or HEIGHTp:KBPS)")]
    Empty,
    #[error("rung {0:?}: expected `source` or HEIGHTp:KBPS[:max=KBPS][:profile=P]")]
    Syntax(String),
    #[error("rung {0:?}: {1}")]
    Value(String, &'static str),
    #[error("rung {0} appears twice")]
    Duplicate(String),
}

impl FromStr for RungSpec {
    type Err = LadderError;

    fn from_str(s: &str) -> Result<Self, LadderError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("source") || s == SOURCE || s.eq_ignore_ascii_case("passthrough") {
            return Ok(RungSpec::Source);
        }
        let syntax = || LadderError::Syntax(s.to_string());
        let mut fields = s.split(':');
        let size = fields.next().and_then(|h| h.strip_suffix('p')).ok_or_else(syntax)?;
        let size: u32 = size.parse().map_err(|_| syntax())?;
        let kbps: u32 =
            fields.next().map(|k| k.trim_end_matches('k')).ok_or_else(syntax)?.parse().map_err(|_| syntax())?;
        let (mut max_kbps, mut profile) = (None, H264Profile::High);
        for field in fields {
            match field.split_once('=') {
                Some(("max", v)) => max_kbps = Some(v.trim_end_matches('k').parse().map_err(|_| syntax())?),
                Some(("profile", "baseline")) => profile = H264Profile::Baseline,
                Some(("profile", "main")) => profile = H264Profile::Main,
                Some(("profile", "high")) => profile = H264Profile::High,
                Some(("profile", _)) => return Err(LadderError::Value(s.into(), "profile is baseline, main or high")),
                _ => return Err(syntax()),
            }
        }
        if !(64..=4320).contains(&size) || !size.is_multiple_of(2) {
            return Err(LadderError::Value(s.into(), "size must be even, from 64p to 4320p"));
        }
        if !(50..=100_000).contains(&kbps) {
            return Err(LadderError::Value(s.into(), "bitrate must be 50 to 100000 kbit/s"));
        }
        if max_kbps.is_some_and(|m| m < kbps) {
            return Err(LadderError::Value(s.into(), "max must be at least the bitrate"));
        }
        Ok(RungSpec::H264 { size, kbps, max_kbps, profile })
    }
}

/// A configured ladder: the rungs in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LadderSpec(pub Vec<RungSpec>);

impl LadderSpec {
    /// Whether any rung needs the codec worker.
    pub fn transcodes(&self) -> bool {
        self.0.iter().any(|r| matches!(r, RungSpec::H264 { .. }))
    }

    pub fn has_source(&self) -> bool {
        self.0.contains(&RungSpec::Source)
    }
}

impl Default for LadderSpec {
    fn default() -> Self {
        "source,720p:2500,480p:1200,360p:600".parse().expect("the default ladder parses")
    }
}

impl FromStr for LadderSpec {
    type Err = LadderError;

    fn from_str(s: &str) -> Result<Self, LadderError> {
        let rungs =
            s.split(',').filter(|r| !r.trim().is_empty()).map(str::parse::<RungSpec>).collect::<Result<Vec<_>, _>>()?;
        if rungs.is_empty() {
            return Err(LadderError::Empty);
        }
        let mut names: Vec<String> = Vec::new();
        for r in &rungs {
            let n = r.name();
            if names.contains(&n) {
                return Err(LadderError::Duplicate(n));
            }
            names.push(n);
        }
        Ok(LadderSpec(rungs))
    }
}

impl fmt::Display for LadderSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl Serialize for LadderSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for LadderSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What one transcoded rendition is encoded with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodeTarget {
    pub width: u32,
    pub height: u32,
    /// Average bitrate, bit/s.
    pub bitrate: u64,
    /// Peak bitrate (VBV maximum rate), bit/s.
    pub maxrate: u64,
    /// VBV buffer, bits: one second at the peak rate, so no second strays far above it.
    pub bufsize: u64,
    pub profile: H264Profile,
}

/// A planned rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    pub name: String,
    /// `None` for the passthrough.
    pub encode: Option<EncodeTarget>,
}

/// The renditions a source of `width` x `height` gets from `spec`: the passthrough first
/// (if configured), then the transcoded rungs from the largest down. A ladder without
/// passthrough whose every rung would upscale keeps its smallest rung at the source's size
/// (odd source sizes are rounded down to even), so a stream always has a rendition.
pub fn plan(spec: &LadderSpec, width: u32, height: u32) -> Vec<Rendition> {
    let (short, long) = (width.min(height).max(1), width.max(height));
    let portrait = height > width;
    let mut out = Vec::new();
    if spec.has_source() {
        out.push(Rendition { name: SOURCE.to_string(), encode: None });
    }
    let mut rungs: Vec<(u32, &RungSpec)> = spec
        .0
        .iter()
        .filter_map(|r| match r {
            RungSpec::H264 { size, .. } => Some((*size, r)),
            RungSpec::Source => None,
        })
        .collect();
    rungs.sort_by_key(|r| std::cmp::Reverse(r.0));
    let fits = |size: u32| size < short || (size == short && !spec.has_source());
    let smallest = rungs.last().copied();
    rungs.retain(|(size, _)| fits(*size));
    if rungs.is_empty() && !spec.has_source() {
        // Every rung would upscale and there is no passthrough: the smallest rung, at the
        // source's size.
        rungs.extend(smallest.map(|(_, r)| (short, r)));
    }
    for (size, rung) in rungs {
        let RungSpec::H264 { kbps, max_kbps, profile, .. } = rung else { continue };
        let size = size.min(short & !1);
        let other = even((size as u64 * long as u64) as f64 / short as f64).min(long & !1);
        let (w, h) = if portrait { (size, other) } else { (other, size) };
        let bitrate = *kbps as u64 * 1000;
        let maxrate = max_kbps.map_or(bitrate * 11 / 10, |m| m as u64 * 1000);
        out.push(Rendition {
            name: rung.name(),
            encode: Some(EncodeTarget { width: w, height: h, bitrate, maxrate, bufsize: maxrate, profile: *profile }),
        });
    }
    out
}

/// Rounds to the nearest even number, at least 2.
fn even(x: f64) -> u32 {
    (((x / 2.0).round() as u32) * 2).max(2)
}

#[cfg(test)]
mod tests;
