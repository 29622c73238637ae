//! VOD playback: `/vod/ASSET/index.m3u8` (the multivariant playlist, with an I-frame
//! playlist per rendition), `/vod/ASSET/RENDITION/index.m3u8`, `iframes.m3u8`, `init.mp4`
//! and `seg-N.m4s`, from the renditions finished on this node.
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
use tessera_raft::{JobState, Visibility};

use super::package::RenditionManifest;
use super::worker::{rendition_dir, segment_file};
use crate::http::HttpState;

const PLAYLIST: &str = "application/vnd.apple.mpegurl";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const PLAYLIST_CACHE: &str = "public, max-age=60";

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], "not found\n").into_response()
}

/// The asset's renditions this node serves: done, released, held here.
fn renditions(state: &HttpState, asset: &str) -> Option<Vec<String>> {
    if !matches!(state.gate.content(&format!("vod/{asset}")), Visibility::Public) {
        return None;
    }
    let me = state.cluster.identity.id;
    let found = state.cluster.catalog.read_local(|c| {
        c.assets.contains_key(asset).then(|| {
            c.jobs_of(asset)
                .filter(|j| j.state == JobState::Done && j.output_node == Some(me))
                .map(|j| j.rendition.clone())
                .collect::<Vec<_>>()
        })
    });
    found.value.filter(|r| !r.is_empty())
}

async fn manifest(state: &HttpState, asset: &str, rendition: &str) -> Option<RenditionManifest> {
    let path = rendition_dir(&state.uploads.output, asset, rendition).join("manifest.json");
    serde_json::from_slice(&tokio::fs::read(path).await.ok()?).ok()
}

/// `GET /vod/{asset}/index.m3u8`.
pub async fn multivariant(State(state): State<Arc<HttpState>>, Path(asset): Path<String>) -> Response {
    let Some(renditions) = renditions(&state, &asset) else { return not_found() };
    let mut variants = Vec::new();
    let mut iframes = String::new();
    for r in &renditions {
        let Some(m) = manifest(&state, &asset, r).await else { continue };
        variants.push(Variant {
            uri: format!("{r}/index.m3u8"),
            bandwidth: m.bandwidth,
            average_bandwidth: m.average_bandwidth,
            codecs: m.codecs.clone(),
            resolution: m.resolution,
            frame_rate: None,
        });
        // Keyframes alone: about one picture per segment.
        let video_codec = m.codecs.split(',').next().unwrap_or_default();
        let iframe_bw = m.segments.iter().map(|(s, len)| (*len as f64 * 8.0 / s.max(0.001)) as u64).max().unwrap_or(0);
        iframes.push_str(&format!("#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={iframe_bw},CODECS=\"{video_codec}\""));
        if let Some((w, h)) = m.resolution {
            iframes.push_str(&format!(",RESOLUTION={w}x{h}"));
        }
        iframes.push_str(&format!(",URI=\"{r}/iframes.m3u8\"\n"));
    }
    if variants.is_empty() {
        return not_found();
    }
    variants.sort_by_key(|v| std::cmp::Reverse(v.bandwidth));
    let body = render_multivariant(&variants, &[]) + &iframes;
    ([(header::CONTENT_TYPE, PLAYLIST), (header::CACHE_CONTROL, PLAYLIST_CACHE)], body).into_response()
}

/// `GET /vod/{asset}/{rendition}/{file}`.
pub async fn rendition_file(
    State(state): State<Arc<HttpState>>,
    Path((asset, rendition, file)): Path<(String, String, String)>,
) -> Response {
    let Some(renditions) = renditions(&state, &asset) else { return not_found() };
    if !renditions.contains(&rendition) {
        return not_found();
    }
    if file == "index.m3u8" || file == "iframes.m3u8" {
        let Some(m) = manifest(&state, &asset, &rendition).await else { return not_found() };
        let body = if file == "index.m3u8" {
            let segments: Vec<VodSegment> = m
                .segments
                .iter()
                .enumerate()
                .map(|(i, (seconds, _))| VodSegment { uri: format!("seg-{i}.m4s"), seconds: *seconds })
                .collect();
            media_playlist("init.mp4", &segments)
        } else {
            let frames: Vec<IFrame> = m
                .segments
                .iter()
                .enumerate()
                .map(|(i, (seconds, len))| IFrame {
                    uri: format!("seg-{i}.m4s"),
                    offset: 0,
                    length: *len,
                    seconds: *seconds,
                })
                .collect();
            iframe_playlist("init.mp4", &frames)
        };
        return ([(header::CONTENT_TYPE, PLAYLIST), (header::CACHE_CONTROL, PLAYLIST_CACHE)], body).into_response();
    }
    let stored = if file == "init.mp4" {
        Some(file.clone())
    } else {
        let k = file.strip_prefix("seg-").and_then(|f| f.strip_suffix(".m4s")).and_then(|n| n.parse::<u32>().ok());
        let key = tessera_raft::job_key(&asset, &rendition);
        let epoch =
            k.and_then(|k| state.cluster.catalog.read_local(|c| c.jobs.get(&key).and_then(|j| j.epoch_of(k))).value);
        k.zip(epoch).map(|(k, e)| segment_file(k, e))
    };
    let Some(stored) = stored else { return not_found() };
    let kind = if file == "init.mp4" { "video/mp4" } else { "video/iso.segment" };
    match tokio::fs::read(rendition_dir(&state.uploads.output, &asset, &rendition).join(&stored)).await {
        Ok(data) => ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, IMMUTABLE)], data).into_response(),
        Err(_) => not_found(),
    }
}
