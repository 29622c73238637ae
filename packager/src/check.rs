//! An LL-HLS media playlist checker: parses what a server sent and reports every rule it
//! breaks (draft-pantos-hls-rfc8216bis and Apple's low-latency server profile). Used by
//! the tests and by `tessera check-hls` on playlists recorded from real players.
//!
//! Single-playlist rules are in [`check_media`]; rules across the successive playlists of
//! one rendition (numbering, delta updates) are in [`History`].

use std::collections::HashMap;

/// A broken rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub rule: &'static str,
    pub detail: String,
}

fn v(rule: &'static str, detail: impl Into<String>) -> Violation {
    Violation { rule, detail: detail.into() }
}

/// A part as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedPart {
    pub msn: u64,
    pub index: usize,
    pub duration: f64,
    pub uri: String,
    pub independent: bool,
}

/// A complete segment as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedSegment {
    pub msn: u64,
    pub duration: f64,
    pub uri: String,
    pub program_time: Option<String>,
    pub discontinuity: bool,
    /// Listed with `EXT-X-GAP`: no media.
    pub gap: bool,
}

/// What a media playlist says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaPlaylist {
    pub version: Option<u32>,
    pub target_duration: Option<f64>,
    pub part_target: Option<f64>,
    pub part_hold_back: Option<f64>,
    pub hold_back: Option<f64>,
    pub can_skip_until: Option<f64>,
    pub can_block_reload: bool,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub skipped: u64,
    pub segments: Vec<ListedSegment>,
    pub parts: Vec<ListedPart>,
    pub preload_hints: Vec<(String, String)>,
    pub maps: usize,
    pub rendition_reports: Vec<String>,
    pub ended: bool,
}

/// Reads an attribute of a tag line (`KEY=value` or `KEY="value"`).
pub fn attr(line: &str, key: &str) -> Option<String> {
    let at = [':', ','].iter().find_map(|sep| line.find(&format!("{sep}{key}=")))? + key.len() + 2;
    let rest = &line[at..];
    if let Some(r) = rest.strip_prefix('"') {
        return r.split('"').next().map(str::to_string);
    }
    Some(rest.split(',').next().unwrap_or("").to_string())
}

fn num(line: &str, key: &str) -> Result<Option<f64>, Violation> {
    match attr(line, key) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| v("syntax", format!("{key} is not a number in {line}"))),
    }
}

/// Parses a media playlist.
pub fn parse_media(text: &str) -> Result<MediaPlaylist, Violation> {
    let mut lines = text.lines();
    if lines.next() != Some("#EXTM3U") {
        return Err(v("syntax", "first line is not #EXTM3U"));
    }
    let mut p = MediaPlaylist::default();
    let mut msn = None::<u64>;
    let mut index = 0;
    let mut extinf = None;
    let mut pdt = None;
    let mut disc = false;
    let mut gap = false;
    for line in lines {
        let cur = *msn.get_or_insert(p.media_sequence);
        if let Some(x) = line.strip_prefix("#EXT-X-VERSION:") {
            p.version = x.parse().ok();
        } else if let Some(x) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            p.target_duration = Some(x.parse().map_err(|_| v("syntax", line))?);
        } else if let Some(x) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            p.media_sequence = x.parse().map_err(|_| v("syntax", line))?;
            msn = Some(p.media_sequence);
        } else if let Some(x) = line.strip_prefix("#EXT-X-DISCONTINUITY-SEQUENCE:") {
            p.discontinuity_sequence = x.parse().map_err(|_| v("syntax", line))?;
        } else if line.starts_with("#EXT-X-PART-INF:") {
            p.part_target = num(line, "PART-TARGET")?;
        } else if line.starts_with("#EXT-X-SERVER-CONTROL:") {
            p.part_hold_back = num(line, "PART-HOLD-BACK")?;
            p.hold_back = num(line, "HOLD-BACK")?;
            p.can_skip_until = num(line, "CAN-SKIP-UNTIL")?;
            p.can_block_reload = attr(line, "CAN-BLOCK-RELOAD").as_deref() == Some("YES");
        } else if line.starts_with("#EXT-X-SKIP:") {
            p.skipped = num(line, "SKIPPED-SEGMENTS")?.ok_or_else(|| v("syntax", line))? as u64;
            msn = Some(cur + p.skipped);
        } else if line.starts_with("#EXT-X-PART:") {
            let duration =
                num(line, "DURATION")?.ok_or_else(|| v("syntax", format!("PART without DURATION: {line}")))?;
            let uri = attr(line, "URI").ok_or_else(|| v("syntax", format!("PART without URI: {line}")))?;
            p.parts.push(ListedPart {
                msn: cur,
                index,
                duration,
                uri,
                independent: attr(line, "INDEPENDENT").as_deref() == Some("YES"),
            });
            index += 1;
        } else if let Some(x) = line.strip_prefix("#EXTINF:") {
            extinf = Some(x.split(',').next().unwrap_or("").parse::<f64>().map_err(|_| v("syntax", line))?);
        } else if let Some(x) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pdt = Some(x.to_string());
        } else if line == "#EXT-X-DISCONTINUITY" {
            disc = true;
        } else if line == "#EXT-X-GAP" {
            gap = true;
        } else if line.starts_with("#EXT-X-PRELOAD-HINT:") {
            p.preload_hints.push((attr(line, "TYPE").unwrap_or_default(), attr(line, "URI").unwrap_or_default()));
        } else if line.starts_with("#EXT-X-MAP:") {
            p.maps += 1;
        } else if line.starts_with("#EXT-X-RENDITION-REPORT:") {
            p.rendition_reports.push(line.to_string());
        } else if line == "#EXT-X-ENDLIST" {
            p.ended = true;
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let duration = extinf.take().ok_or_else(|| v("syntax", format!("segment {line} without EXTINF")))?;
            p.segments.push(ListedSegment {
                msn: cur,
                duration,
                uri: line.to_string(),
                program_time: pdt.take(),
                discontinuity: disc,
                gap,
            });
            disc = false;
            gap = false;
            msn = Some(cur + 1);
            index = 0;
        }
    }
    Ok(p)
}

fn parse_pdt_ms(s: &str) -> Option<i64> {
    // YYYY-MM-DDTHH:MM:SS(.mmm)Z, UTC only.
    let (date, time) = s.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, dd) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, mi) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?);
    let sec: f64 = t.next()?.parse().ok()?;
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60) as f64 * 1000.0 + sec * 1000.0).round() as i64)
}

/// The rules one playlist must follow on its own.
pub fn check_media(p: &MediaPlaylist) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some(td) = p.target_duration else {
        return vec![v("target-duration", "EXT-X-TARGETDURATION missing")];
    };
    if p.skipped > 0 && p.version.unwrap_or(0) < 9 {
        out.push(v("version", "EXT-X-SKIP needs EXT-X-VERSION 9"));
    }
    if p.maps == 0 && !p.segments.is_empty() {
        out.push(v("map", "no EXT-X-MAP for fMP4 segments"));
    }
    for s in &p.segments {
        if s.duration.round() > td {
            out.push(v("target-duration", format!("segment {} lasts {} s, TARGETDURATION is {td}", s.msn, s.duration)));
        }
    }
    if let Some(hb) = p.hold_back {
        if hb < 3.0 * td - 1e-9 {
            out.push(v("hold-back", format!("HOLD-BACK {hb} < 3 x TARGETDURATION {td}")));
        }
    }
    if let Some(skip) = p.can_skip_until {
        if skip < 6.0 * td - 1e-9 {
            out.push(v("can-skip-until", format!("CAN-SKIP-UNTIL {skip} < 6 x TARGETDURATION {td}")));
        }
    }
    if !p.parts.is_empty() || !p.preload_hints.is_empty() {
        let Some(pt) = p.part_target else {
            out.push(v("part-inf", "parts without EXT-X-PART-INF"));
            return out;
        };
        match p.part_hold_back {
            Some(phb) if phb + 1e-9 >= 3.0 * pt => {}
            Some(phb) => out.push(v("part-hold-back", format!("PART-HOLD-BACK {phb} < 3 x PART-TARGET {pt}"))),
            None => out.push(v("part-hold-back", "PART-HOLD-BACK missing")),
        }
        if !p.can_block_reload {
            out.push(v("can-block-reload", "parts without CAN-BLOCK-RELOAD=YES"));
        }
        for (i, part) in p.parts.iter().enumerate() {
            // Durations are printed to 5 decimals; allow that rounding.
            if part.duration > pt + 5e-6 {
                out.push(v("part-duration", format!("{} lasts {} s > PART-TARGET {pt}", part.uri, part.duration)));
            }
            let last_of_segment =
                p.parts.get(i + 1).is_none_or(|n| n.msn != part.msn) && p.segments.iter().any(|s| s.msn == part.msn);
            if !part.independent && !last_of_segment && part.duration < 0.85 * pt - 5e-6 {
                out.push(v(
                    "part-duration",
                    format!("{} lasts {} s < 85% of PART-TARGET {pt}", part.uri, part.duration),
                ));
            }
            if part.index == 0 && !part.independent {
                out.push(v("independent", format!("{} starts segment {} but is not INDEPENDENT", part.uri, part.msn)));
            }
        }
        // The parts of a complete segment add up to it.
        for s in &p.segments {
            let parts: Vec<&ListedPart> = p.parts.iter().filter(|x| x.msn == s.msn).collect();
            if !parts.is_empty() {
                let sum: f64 = parts.iter().map(|x| x.duration).sum();
                if (sum - s.duration).abs() > 0.001 * parts.len() as f64 {
                    out.push(v(
                        "part-sum",
                        format!("parts of segment {} add up to {sum} s, EXTINF says {}", s.msn, s.duration),
                    ));
                }
            }
        }
    }
    let part_hints = p.preload_hints.iter().filter(|h| h.0 == "PART").count();
    if part_hints > 1 {
        out.push(v("preload-hint", "more than one PART preload hint"));
    }
    if p.ended && !p.preload_hints.is_empty() {
        out.push(v("preload-hint", "preload hint in an ended playlist"));
    }
    for (_, uri) in &p.preload_hints {
        if p.parts.iter().any(|x| &x.uri == uri) {
            out.push(v("preload-hint", format!("preload hint {uri} names a part already listed")));
        }
    }
    if !p.ended && !p.parts.is_empty() && part_hints == 0 {
        out.push(v("preload-hint", "live low-latency playlist without a PART preload hint"));
    }
    for s in p.segments.iter().filter(|s| s.gap) {
        if p.parts.iter().any(|x| x.msn == s.msn) {
            out.push(v("gap", format!("gap segment {} lists parts", s.msn)));
        }
    }
    for r in &p.rendition_reports {
        if attr(r, "URI").is_none() || attr(r, "LAST-MSN").is_none() {
            out.push(v("rendition-report", format!("incomplete: {r}")));
        }
    }
    // Program date-times advance with the segments.
    for w in p.segments.windows(2) {
        if let (Some(a), Some(b)) =
            (w[0].program_time.as_deref().and_then(parse_pdt_ms), w[1].program_time.as_deref().and_then(parse_pdt_ms))
        {
            let step = (b - a) as f64 / 1000.0;
            if !w[1].discontinuity && (step - w[0].duration).abs() > 0.1 {
                out.push(v(
                    "program-date-time",
                    format!("segment {} starts {step} s after {}, which lasts {}", w[1].msn, w[0].msn, w[0].duration),
                ));
            }
        }
    }
    out
}

/// Checks successive playlists of one rendition against each other.
#[derive(Debug, Default)]
pub struct History {
    last_sequence: Option<(u64, u64)>,
    segments: HashMap<u64, (String, f64)>,
    parts: HashMap<String, (u64, usize, f64)>,
    /// Full playlists by their last listed part (or segment) URI, for delta checks.
    full: HashMap<String, MediaPlaylist>,
    pending_deltas: Vec<MediaPlaylist>,
    pub checked_deltas: usize,
}

/// What identifies the moment a playlist describes: its last part or segment, its hints and
/// whether it has ended.
fn edge(p: &MediaPlaylist) -> String {
    let last = p.parts.last().map(|x| x.uri.clone()).or_else(|| p.segments.last().map(|s| s.uri.clone()));
    format!("{}|{:?}|{}|{}", last.unwrap_or_default(), p.preload_hints, p.ended, p.segments.len() + p.skipped as usize)
}

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next playlist served (in the order served).
    pub fn add(&mut self, p: &MediaPlaylist) -> Vec<Violation> {
        let mut out = Vec::new();
        if let Some((ms, ds)) = self.last_sequence {
            if p.media_sequence < ms {
                out.push(v("media-sequence", format!("went back from {ms} to {}", p.media_sequence)));
            }
            if p.discontinuity_sequence < ds {
                out.push(v("discontinuity-sequence", format!("went back from {ds} to {}", p.discontinuity_sequence)));
            }
        }
        self.last_sequence = Some((p.media_sequence, p.discontinuity_sequence));
        for s in &p.segments {
            if let Some((uri, d)) = self.segments.insert(s.msn, (s.uri.clone(), s.duration)) {
                if uri != s.uri || (d - s.duration).abs() > 1e-6 {
                    out.push(v(
                        "segment-numbering",
                        format!("segment {} was {uri} ({d} s), now {} ({} s)", s.msn, s.uri, s.duration),
                    ));
                }
            }
        }
        for x in &p.parts {
            if let Some((msn, index, d)) = self.parts.insert(x.uri.clone(), (x.msn, x.index, x.duration)) {
                if msn != x.msn || index != x.index || (d - x.duration).abs() > 1e-6 {
                    out.push(v(
                        "part-numbering",
                        format!("{} was part {index} of {msn}, now part {} of {}", x.uri, x.index, x.msn),
                    ));
                }
            }
        }
        if p.skipped > 0 {
            // A client rebuilds the full playlist from what it saw before: every skipped
            // segment must have been listed earlier, and the rebuilt playlist must obey the
            // skip boundary.
            let skipped: Option<Vec<ListedSegment>> = (p.media_sequence..p.media_sequence + p.skipped)
                .map(|msn| {
                    self.segments.get(&msn).map(|(uri, d)| ListedSegment {
                        msn,
                        duration: *d,
                        uri: uri.clone(),
                        program_time: None,
                        discontinuity: false,
                        gap: false,
                    })
                })
                .collect();
            match skipped {
                None => out.push(v(
                    "delta",
                    format!("delta update skips segments from {} that were never listed", p.media_sequence),
                )),
                Some(mut rebuilt) => {
                    rebuilt.extend(p.segments.iter().cloned());
                    let full = MediaPlaylist { segments: rebuilt, skipped: 0, ..p.clone() };
                    out.extend(check_delta(&full, p));
                    self.checked_deltas += 1;
                }
            }
            self.pending_deltas.push(p.clone());
        } else {
            self.full.insert(edge(p), p.clone());
        }
        let full = &self.full;
        let mut still = Vec::new();
        for d in std::mem::take(&mut self.pending_deltas) {
            match full.get(&edge(&d)) {
                Some(f) => {
                    self.checked_deltas += 1;
                    out.extend(check_delta(f, &d));
                }
                None => still.push(d),
            }
        }
        self.pending_deltas = still;
        out
    }
}

/// A delta update must equal the full playlist of the same moment minus the skipped segments.
pub fn check_delta(full: &MediaPlaylist, delta: &MediaPlaylist) -> Vec<Violation> {
    let mut out = Vec::new();
    let skipped = delta.skipped as usize;
    if full.media_sequence != delta.media_sequence {
        out.push(v(
            "delta",
            format!(
                "MEDIA-SEQUENCE {} in the delta, {} in the full playlist",
                delta.media_sequence, full.media_sequence
            ),
        ));
    }
    if full.segments.get(skipped..) != Some(&delta.segments[..]) {
        out.push(v("delta", format!("the delta's segments are not the full playlist's after skipping {skipped}")));
    }
    if full.parts != delta.parts || full.preload_hints != delta.preload_hints || full.ended != delta.ended {
        out.push(v("delta", "the delta's parts, hints or end differ from the full playlist"));
    }
    if let Some(skip_until) = full.can_skip_until {
        let total: f64 = full.segments.iter().map(|s| s.duration).sum();
        let mut start = 0.0;
        for s in full.segments.iter().take(skipped) {
            start += s.duration;
            if total - start < skip_until - 1e-6 {
                out.push(v(
                    "delta",
                    format!("segment {} skipped though it ends within CAN-SKIP-UNTIL of the end", s.msn),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
