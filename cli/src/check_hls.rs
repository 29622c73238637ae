//! `tessera check-hls`: validates playlists recorded from real players (one JSON object
//! per line: `{"url": ..., "status": ..., "body": ...}`) with the LL-HLS checker, and checks
//! that the renditions of a stream (`.../STREAM/RENDITION/index.m3u8`) agree on every
//! segment: the same number starts at the same program date-time and lasts as long.

use std::collections::BTreeMap;

use tessera_packager::check::{self, History, Violation};

/// The outcome of checking a recording.
#[derive(Debug, Default)]
pub struct Report {
    pub media_playlists: usize,
    pub multivariant_playlists: usize,
    pub delta_updates: usize,
    pub checked_deltas: usize,
    /// Segment numbers seen in more than one rendition of a stream, compared.
    pub aligned_segments: usize,
    pub violations: Vec<(String, Violation)>,
}

/// What each rendition of a stream said about each segment number: (start ms, duration).
type Timeline = BTreeMap<u64, BTreeMap<String, (Option<String>, f64)>>;

fn split_rendition(url: &str) -> Option<(String, String)> {
    let path = url.split('?').next()?;
    let mut parts = path.rsplitn(3, '/');
    let _file = parts.next()?;
    let rendition = parts.next()?.to_string();
    Some((parts.next()?.to_string(), rendition))
}

fn alignment(streams: &BTreeMap<String, Timeline>, report: &mut Report) {
    for (stream, timeline) in streams {
        for (msn, by) in timeline.iter().filter(|(_, by)| by.len() > 1) {
            report.aligned_segments += 1;
            let mut it = by.iter();
            let (r0, (t0, d0)) = it.next().expect("more than one");
            for (r, (t, d)) in it {
                if t != t0 || (d - d0).abs() > 0.05 {
                    report.violations.push((
                        stream.clone(),
                        Violation {
                            rule: "renditions-aligned",
                            detail: format!("segment {msn}: {r0} starts {t0:?} for {d0} s, {r} starts {t:?} for {d} s"),
                        },
                    ));
                }
            }
        }
    }
}

fn multivariant_violations(body: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    let variants: Vec<&str> = body.lines().filter(|l| l.starts_with("#EXT-X-STREAM-INF:")).collect();
    if variants.is_empty() {
        out.push(Violation { rule: "multivariant", detail: "no EXT-X-STREAM-INF".into() });
    }
    for v in variants {
        for key in ["BANDWIDTH", "CODECS"] {
            if check::attr(v, key).is_none() {
                out.push(Violation { rule: "multivariant", detail: format!("{key} missing in {v}") });
            }
        }
    }
    out
}

/// Checks every 200 response of a recording, grouped by playlist URL (query removed), in order.
pub fn check_recording(text: &str) -> Result<Report, String> {
    let mut report = Report::default();
    let mut histories: BTreeMap<String, History> = BTreeMap::new();
    let mut streams: BTreeMap<String, Timeline> = BTreeMap::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        if v["status"].as_u64() != Some(200) {
            continue;
        }
        let url = v["url"].as_str().unwrap_or_default();
        let body = v["body"].as_str().unwrap_or_default();
        let key = url.split('?').next().unwrap_or(url).to_string();
        if body.contains("#EXT-X-STREAM-INF") {
            report.multivariant_playlists += 1;
            report.violations.extend(multivariant_violations(body).into_iter().map(|x| (url.to_string(), x)));
            continue;
        }
        report.media_playlists += 1;
        match check::parse_media(body) {
            Ok(p) => {
                if p.skipped > 0 {
                    report.delta_updates += 1;
                }
                let mut found = check::check_media(&p);
                found.extend(histories.entry(key).or_default().add(&p));
                if let Some((stream, rendition)) = split_rendition(url) {
                    let timeline = streams.entry(stream).or_default();
                    for seg in &p.segments {
                        timeline
                            .entry(seg.msn)
                            .or_default()
                            .insert(rendition.clone(), (seg.program_time.clone(), seg.duration));
                    }
                }
                report.violations.extend(found.into_iter().map(|x| (url.to_string(), x)));
            }
            Err(e) => report.violations.push((url.to_string(), e)),
        }
    }
    report.checked_deltas = histories.values().map(|h| h.checked_deltas).sum();
    alignment(&streams, &mut report);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(url: &str, body: &str) -> String {
        serde_json::json!({"url": url, "status": 200, "body": body}).to_string()
    }

    fn playlist(first_pdt: &str, second_duration: f64) -> String {
        format!(
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-MAP:URI=\"init-0.mp4\"\n\
             #EXT-X-PROGRAM-DATE-TIME:{first_pdt}\n#EXTINF:2.00000,\nseg-7.m4s\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:02.000Z\n#EXTINF:{second_duration:.5},\nseg-8.m4s\n#EXT-X-ENDLIST\n"
        )
    }

    #[test]
    fn renditions_must_agree_on_each_segment() {
        let good = [
            line("http://h/live/a/src/index.m3u8", &playlist("2026-01-01T00:00:00.000Z", 2.0)),
            line("http://h/live/a/360p/index.m3u8?_HLS_msn=9", &playlist("2026-01-01T00:00:00.000Z", 2.0)),
        ]
        .join("\n");
        let r = check_recording(&good).unwrap();
        assert_eq!(r.aligned_segments, 2);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        let bad = [
            line("http://h/live/a/src/index.m3u8", &playlist("2026-01-01T00:00:00.000Z", 2.0)),
            line("http://h/live/a/360p/index.m3u8", &playlist("2026-01-01T00:00:00.040Z", 1.8)),
        ]
        .join("\n");
        let r = check_recording(&bad).unwrap();
        assert_eq!(r.violations.iter().filter(|v| v.1.rule == "renditions-aligned").count(), 2, "{:?}", r.violations);
    }
}
