//! VOD playback: `/vod/ASSET/index.m3u8` (the multivariant playlist, with an I-frame
//! playlist per rendition), `/vod/ASSET/RENDITION/index.m3u8`, `iframes.m3u8`,
//! `init-EPOCH.mp4` and `seg-N.m4s`, read from the archive (whichever node made them).
//!
//! An asset is served only once its release allows it here (the same gate as live) and
//! each rendition once its job is done; otherwise the answer is the one an unknown asset
//! gets. Then, as for live: its region rule for the viewer, and with signed URLs a playback
//! token for playlists (whose media URIs then carry the URL signature) and the signature
//! for media. Playlists of a finished rendition never change, so they are cacheable like
//! media.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tessera_packager::playlist::{render_multivariant, Variant};
use tessera_packager::vod::{iframe_playlist, media_playlist, IFrame, VodSegment};
use tessera_packager::{MediaFile, SegmentKey};
use tessera_raft::{JobRecord, JobState, Visibility};

use super::package::{names, RenditionManifest};
use super::worker::{manifest_name, stored_names};
use tessera_cluster::api::ApiError;
use tessera_license::cache::Object;
use tessera_license::serving::Refusal;
use tessera_license::urls::{viewer_token, with_signature, with_token, PlaybackParams};
use tessera_license::viewer::Viewer;

use crate::VodState;

const PLAYLIST: &str = "application/vnd.apple.mpegurl";
/// A finished rendition's playlists never change: a minute in caches, as far as the
/// asset's rights allow.
const PLAYLIST_LIFETIME: Object = Object::Playlist { max_age_s: 60 };

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], "not found\n").into_response()
}

/// The asset's finished renditions, once its release allows them here.
fn renditions(state: &VodState, asset: &str) -> Option<Vec<JobRecord>> {
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

async fn manifest(state: &VodState, job: &JobRecord) -> Option<RenditionManifest> {
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

/// The keys of an asset's playlists (none when it is clear).
fn keys(state: &VodState, asset: &str) -> Result<Vec<SegmentKey>, Refusal> {
    state.protection.content_keys(&format!("vod/{asset}"))
}

fn playlist(state: &VodState, asset: &str, body: String, (token, sig): (Option<&String>, Option<&str>)) -> Response {
    let body = match sig {
        Some(sig) => with_signature(body, sig),
        None => body,
    };
    let body = with_token(body, token.map(String::as_str));
    let cache = state.protection.cache_control(&format!("vod/{asset}"), PLAYLIST_LIFETIME);
    ([(header::CONTENT_TYPE, HeaderValue::from_static(PLAYLIST)), (header::CACHE_CONTROL, cache)], body).into_response()
}

/// What a viewer must pass before any file of the asset: its region rule, then (signed
/// URLs) a token for a playlist, which answers the media signature, or the signature for
/// media.
async fn access(
    state: &VodState,
    asset: &str,
    (q, headers, viewer): (&HashMap<String, String>, &HeaderMap, Viewer),
    playlist: bool,
) -> Result<Option<String>, Response> {
    let content = format!("vod/{asset}");
    let refused = |r: Refusal| r.into_response();
    state.protection.region_access(&content, viewer, if playlist { "playlist" } else { "media" }).map_err(refused)?;
    if playlist {
        state.protection.playlist_access(&content, viewer_token(q, headers), viewer).await.map_err(refused)
    } else {
        state.protection.media_access(&content, q.get("sig")).await.map_err(refused).map(|()| None)
    }
}

/// A VOD asset's multivariant playlist
///
/// Its renditions made so far, and an I-frame playlist for each. An encrypted asset's viewer
/// passes `?token=`, which the playlists carry on to the key URIs.
#[utoipa::path(get, path = "/vod/{asset}/index.m3u8", tag = "playback", operation_id = "vod_multivariant", security((), ("playback" = [])),
    params(("asset" = String, Path, description = "The asset"), PlaybackParams),
    responses((status = 200, description = "The playlist", content_type = "application/vnd.apple.mpegurl", body = String),
        (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, description = "No such asset, or nothing made yet")))]
pub async fn multivariant(
    State(state): State<Arc<VodState>>,
    Path(asset): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Response {
    let Some(jobs) = renditions(&state, &asset) else { return not_found() };
    if let Err(refused) = access(&state, &asset, (&q, &headers, viewer), true).await {
        return refused;
    }
    let encrypted = match keys(&state, &asset) {
        Ok(k) => !k.is_empty(),
        Err(r) => return r.into_response(),
    };
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
        // of its keyframes, and an encrypted asset's byte ranges move as it is encrypted).
        if encrypted || m.segments.iter().any(|(_, len)| *len == 0) {
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
    playlist(&state, &asset, body, (q.get("token"), None))
}

/// A VOD rendition's playlist, init segment or segment
///
/// `index.m3u8`, `iframes.m3u8`, `init-EPOCH.mp4` and `seg-N.m4s`, from this node's tiers
/// or the archive.
#[utoipa::path(get, path = "/vod/{asset}/{rendition}/{file}", tag = "playback", operation_id = "vod_file", security((), ("playback" = [])),
    params(("asset" = String, Path, description = "The asset"), ("rendition" = String, Path, description = "The rendition"),
        ("file" = String, Path, description = "`index.m3u8`, `iframes.m3u8`, `init-EPOCH.mp4` or `seg-N.m4s`"), PlaybackParams),
    responses((status = 200, description = "A playlist (application/vnd.apple.mpegurl) or CMAF media (video/mp4)", body = Vec<u8>),
        (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, description = "No such file")))]
pub async fn rendition_file(
    State(state): State<Arc<VodState>>,
    Path((asset, rendition, file)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Response {
    let Some(jobs) = renditions(&state, &asset) else { return not_found() };
    let Some(job) = jobs.into_iter().find(|j| j.rendition == rendition) else { return not_found() };
    let is_playlist = file == "index.m3u8" || file == "iframes.m3u8";
    let sig = match access(&state, &asset, (&q, &headers, viewer), is_playlist).await {
        Ok(sig) => sig,
        Err(refused) => return refused,
    };
    let keys = match keys(&state, &asset) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    if is_playlist {
        let Some(m) = manifest(&state, &job).await else { return not_found() };
        if file == "iframes.m3u8" && (!keys.is_empty() || m.segments.iter().any(|(_, len)| *len == 0)) {
            return not_found();
        }
        let map = |k: usize| MediaFile::Init(job.epoch_of(k as u32).unwrap_or(0)).to_string();
        let body = if file == "index.m3u8" {
            let segments: Vec<VodSegment> = m
                .segments
                .iter()
                .enumerate()
                .map(|(i, (seconds, _))| VodSegment {
                    uri: MediaFile::Segment(i as u64).to_string(),
                    map: map(i),
                    seconds: *seconds,
                    discontinuity: m.discontinuities.contains(&(i as u32)),
                })
                .collect();
            media_playlist(&segments, &keys)
        } else {
            let frames: Vec<IFrame> = m
                .segments
                .iter()
                .enumerate()
                .map(|(i, (seconds, len))| IFrame {
                    uri: MediaFile::Segment(i as u64).to_string(),
                    map: map(i),
                    offset: 0,
                    length: *len,
                    seconds: *seconds,
                })
                .collect();
            iframe_playlist(&frames)
        };
        return playlist(&state, &asset, body, (q.get("token"), sig.as_deref()));
    }
    let content = format!("vod/{asset}");
    let read = |name: String| {
        let (state, asset, rendition) = (state.clone(), asset.clone(), rendition.clone());
        async move {
            match state.uploads.archive.get(&asset, &rendition, &name).await {
                Ok(Some(data)) => Ok(data),
                Ok(None) => Err(not_found()),
                Err(e) => {
                    tracing::warn!(%asset, %rendition, file = %name, error = %e, "a VOD file could not be read");
                    Err((StatusCode::SERVICE_UNAVAILABLE, [(header::CACHE_CONTROL, "no-store")], "unavailable\n")
                        .into_response())
                }
            }
        }
    };
    let cache = state.protection.cache_control(&content, Object::Media);
    let media = |data: Bytes, kind: &'static str| {
        ([(header::CONTENT_TYPE, HeaderValue::from_static(kind)), (header::CACHE_CONTROL, cache.clone())], data)
            .into_response()
    };
    let at = (rendition.as_str(), file.as_str());
    let Some(requested) = MediaFile::parse(&file) else { return not_found() };
    if let MediaFile::Init(epoch) = requested.file {
        // `init-EPOCH.mp4`, or `init-EPOCH-KID.mp4` protected for a cbcs key; only of a
        // claim that made some of this rendition.
        let kid = requested.kid;
        if !job.epochs.iter().any(|(_, made)| *made == epoch) {
            return not_found();
        }
        let clear = match read(names::init(epoch)).await {
            Ok(d) => d,
            Err(r) => return r,
        };
        return match kid {
            None => media(clear, "video/mp4"),
            Some(kid) => match state.protection.protect_init(&content, at, kid, clear).await {
                Ok(Some(d)) => media(d, "video/mp4"),
                Ok(None) => not_found(),
                Err(r) => r.into_response(),
            },
        };
    }
    let k = match requested.file {
        MediaFile::Segment(k) => u32::try_from(k).ok(),
        _ => None,
    };
    let Some((k, (stored, init))) = k.and_then(|k| Some((k, stored_names(&job, k)?))) else { return not_found() };
    let data = match read(stored).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    // Under cbcs the segment's clear init segment says how its samples are laid out.
    let cbcs = keys.last().is_some_and(|k| k.sample_aes.is_some());
    let clear_init = if cbcs { read(init).await.ok() } else { None };
    match state.protection.protect(&content, at, k as u64, data, || clear_init).await {
        Ok(d) => media(d, "video/iso.segment"),
        Err(r) => r.into_response(),
    }
}
