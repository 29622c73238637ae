//! VOD playback: `/vod/ASSET/index.m3u8` (the multivariant playlist, with an I-frame
//! playlist per rendition), `/vod/ASSET/RENDITION/index.m3u8`, `iframes.m3u8`,
//! `init-EPOCH.mp4` and `seg-N.m4s`, read from the archive (whichever node made them).
//!
//! An asset is served only once its release allows it here (the same gate as live) and
//! each rendition once its job is done; otherwise the answer is the one an unknown asset
//! gets. Playlists of a finished rendition never change, so they are cacheable like media.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_packager::playlist::{render_multivariant, Variant};
use tessera_packager::vod::{iframe_playlist, media_playlist, IFrame, VodSegment};
use tessera_raft::{JobRecord, JobState, Visibility};

use super::package::{names, RenditionManifest};
use super::worker::{manifest_name, stored_names};
use crate::http::HttpState;

const PLAYLIST: &str = "application/vnd.apple.mpegurl";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const PLAYLIST_CACHE: &str = "public, max-age=60";

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], "not found\n").into_response()
}

/// The asset's finished renditions, once its release allows them here.
fn renditions(state: &HttpState, asset: &str) -> Option<Vec<JobRecord>> {
    if !matches!(state.gate.content(&format!("vod/{asset}")), Visibility::Public) {
        return None;
    }
    let found = state.cluster.catalog.read_local(|c| {
        c.assets
            .contains_key(asset)
            .then(|| c.jobs_of(asset).filter(|j| j.state == JobState::Done).cloned().collect::<Vec<_>>())
    });
    found.value.filter(|r| !r.is_empty())
}

async fn manifest(state: &HttpState, job: &JobRecord) -> Option<RenditionManifest> {
    let name = manifest_name(job)?;
    match state.uploads.archive.get(&job.asset, &job.rendition, &name).await {
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).ok(),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(asset = %job.asset, rendition = %job.rendition, error = %e, "a manifest could not be read");
            None
        }
    }
}

/// `GET /vod/{asset}/index.m3u8`.
pub async fn multivariant(State(state): State<Arc<HttpState>>, Path(asset): Path<String>) -> Response {
    let Some(jobs) = renditions(&state, &asset) else { return not_found() };
    let mut variants = Vec::new();
    let mut iframes = Vec::new();
    for job in &jobs {
        let r = &job.rendition;
        let Some(m) = manifest(&state, job).await else { continue };
        variants.push(Variant {
            uri: format!("{r}/index.m3u8"),
            bandwidth: m.bandwidth,
            average_bandwidth: m.average_bandwidth,
            codecs: m.codecs.clone(),
            resolution: m.resolution,
            frame_rate: None,
        });
        // Keyframes alone: about one picture per segment (a recording has no byte ranges
        // of its keyframes).
        if m.segments.iter().any(|(_, len)| *len == 0) {
            continue;
        }
        let video_codec = m.codecs.split(',').next().unwrap_or_default();
        let iframe_bw = m.segments.iter().map(|(s, len)| (*len as f64 * 8.0 / s.max(0.001)) as u64).max().unwrap_or(0);
        let mut line = format!("#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={iframe_bw},CODECS=\"{video_codec}\"");
        if let Some((w, h)) = m.resolution {
            line.push_str(&format!(",RESOLUTION={w}x{h}"));
        }
        line.push_str(&format!(",URI=\"{r}/iframes.m3u8\"\n"));
        iframes.push((m.bandwidth, line));
    }
    if variants.is_empty() {
        return not_found();
    }
    variants.sort_by_key(|v| std::cmp::Reverse(v.bandwidth));
    iframes.sort_by_key(|(bw, _)| std::cmp::Reverse(*bw));
    let body = render_multivariant(&variants, &[]) + &iframes.into_iter().map(|(_, l)| l).collect::<String>();
    ([(header::CONTENT_TYPE, PLAYLIST), (header::CACHE_CONTROL, PLAYLIST_CACHE)], body).into_response()
}

/// `GET /vod/{asset}/{rendition}/{file}`: the playlists, `init-EPOCH.mp4` and `seg-N.m4s`.
pub async fn rendition_file(
    State(state): State<Arc<HttpState>>,
    Path((asset, rendition, file)): Path<(String, String, String)>,
) -> Response {
    let Some(jobs) = renditions(&state, &asset) else { return not_found() };
    let Some(job) = jobs.into_iter().find(|j| j.rendition == rendition) else { return not_found() };
    if file == "index.m3u8" || file == "iframes.m3u8" {
        let Some(m) = manifest(&state, &job).await else { return not_found() };
        if file == "iframes.m3u8" && m.segments.iter().any(|(_, len)| *len == 0) {
            return not_found();
        }
        let map = |k: usize| format!("init-{}.mp4", job.epoch_of(k as u32).unwrap_or(0));
        let body = if file == "index.m3u8" {
            let segments: Vec<VodSegment> = m
                .segments
                .iter()
                .enumerate()
                .map(|(i, (seconds, _))| VodSegment {
                    uri: format!("seg-{i}.m4s"),
                    map: map(i),
                    seconds: *seconds,
                    discontinuity: m.discontinuities.contains(&(i as u32)),
                })
                .collect();
            media_playlist(&segments)
        } else {
            let frames: Vec<IFrame> = m
                .segments
                .iter()
                .enumerate()
                .map(|(i, (seconds, len))| IFrame {
                    uri: format!("seg-{i}.m4s"),
                    map: map(i),
                    offset: 0,
                    length: *len,
                    seconds: *seconds,
                })
                .collect();
            iframe_playlist(&frames)
        };
        return ([(header::CONTENT_TYPE, PLAYLIST), (header::CACHE_CONTROL, PLAYLIST_CACHE)], body).into_response();
    }
    let number = |prefix: &str, suffix: &str| file.strip_prefix(prefix)?.strip_suffix(suffix)?.parse::<u64>().ok();
    let (stored, kind) = if let Some(epoch) = number("init-", ".mp4") {
        // Only the init segment of a claim that made some of this rendition.
        if !job.epochs.iter().any(|(_, e)| *e == epoch) {
            return not_found();
        }
        (names::init(epoch), "video/mp4")
    } else if let Some((seg, _)) = number("seg-", ".m4s").and_then(|k| stored_names(&job, u32::try_from(k).ok()?)) {
        (seg, "video/iso.segment")
    } else {
        return not_found();
    };
    match state.uploads.archive.get(&asset, &rendition, &stored).await {
        Ok(Some(data)) => ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, IMMUTABLE)], data).into_response(),
        Ok(None) => not_found(),
        Err(e) => {
            tracing::warn!(%asset, %rendition, file = %stored, error = %e, "a VOD file could not be read");
            (StatusCode::SERVICE_UNAVAILABLE, [(header::CACHE_CONTROL, "no-store")], "unavailable\n").into_response()
        }
    }
}
