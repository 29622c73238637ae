//! `tessera check-hls`: validates playlists recorded from real players (one JSON object
//! per line: `{"url": ..., "status": ..., "body": ...}`) with the LL-HLS checker.

use std::collections::BTreeMap;

use tessera_packager::check::{self, History, Violation};

/// The outcome of checking a recording.
#[derive(Debug, Default)]
pub struct Report {
    pub media_playlists: usize,
    pub multivariant_playlists: usize,
    pub delta_updates: usize,
    pub checked_deltas: usize,
    pub violations: Vec<(String, Violation)>,
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
                report.violations.extend(found.into_iter().map(|x| (url.to_string(), x)));
            }
            Err(e) => report.violations.push((url.to_string(), e)),
        }
    }
    report.checked_deltas = histories.values().map(|h| h.checked_deltas).sum();
    Ok(report)
}
