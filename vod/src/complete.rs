//! An upload's last byte: the whole file checked, read through, stored as the asset's
//! source and recorded in the catalog — or refused and deleted.

use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use tessera_raft::catalog::TITLE_MAX;
use tessera_raft::{AssetRecord, AssetState, CatalogError, Command, Outcome, SourceRecord};

use super::source::{probe, SourceSummary};
use super::uploads::{completed, paths, refuse, save_meta, UploadMeta as Meta};
use crate::VodState;
use tessera_cluster::ClusterError;

/// Where asset `id`'s source is stored.
pub fn source_path(sources: &Path, id: &str) -> std::path::PathBuf {
    sources.join(id).join("source")
}

/// Completes upload `id`.
pub(super) async fn finish(state: &Arc<VodState>, id: &str, mut meta: Meta) -> Response {
    let cfg = &state.uploads;
    let (bin, json) = paths(cfg, id);
    let source = source_path(&cfg.sources, id);
    // A completion retried after its catalog write failed finds its source moved already.
    let stored = tokio::fs::metadata(&source).await.is_ok();
    let from = if stored { source.clone() } else { bin.clone() };
    type Checked = (String, SourceSummary, u32);
    let checked = tokio::task::spawn_blocking(move || -> Result<Checked, (StatusCode, &'static str, String)> {
        let sha256 =
            super::sha256_file(&from).map_err(|e| (StatusCode::INSUFFICIENT_STORAGE, "storage", e.to_string()))?;
        let summary = probe(&from).map_err(|e| (StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()))?;
        let segments = summary.segment_plan().len() as u32;
        Ok((sha256, summary, segments))
    })
    .await
    .unwrap_or_else(|e| Err((StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())));
    let refuse_and_forget = |status: StatusCode, code: &str, message: String| {
        tracing::warn!(upload = %id, code, "upload refused: {message}");
        metrics::counter!("tessera_upload_refusals_total", "reason" => code.to_string()).increment(1);
        refuse(status, code, message)
    };
    let (sha256, summary, segments) = match checked {
        Ok(c) => c,
        Err((status, code, message)) => {
            if status == StatusCode::UNPROCESSABLE_ENTITY {
                forget(&bin, &json, &source).await;
            }
            return refuse_and_forget(status, code, message);
        }
    };
    if let Some(expected) = meta.metadata.get("sha256") {
        if !expected.eq_ignore_ascii_case(&sha256) {
            forget(&bin, &json, &source).await;
            let message = format!("the file's SHA-256 is {sha256}, the upload said {expected}");
            return refuse_and_forget(StatusCode::from_u16(460).expect("460"), "checksum_mismatch", message);
        }
    }
    if !stored {
        let moved = async {
            tokio::fs::create_dir_all(source.parent().expect("a folder")).await?;
            tokio::fs::rename(&bin, &source).await?;
            let dir = source.parent().expect("a folder").to_path_buf();
            tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
                .await
                .map_err(std::io::Error::other)?
        };
        if let Err(e) = moved.await {
            return refuse_and_forget(StatusCode::INSUFFICIENT_STORAGE, "storage", e.to_string());
        }
    }
    let title = meta.metadata.get("title").or(meta.metadata.get("filename")).map_or(id, |t| t.as_str());
    let asset = AssetRecord {
        id: id.to_string(),
        title: clean_title(title),
        source: SourceRecord {
            node: state.cluster.identity.id,
            size: meta.length,
            sha256,
            container: summary.container.to_string(),
            duration_ms: summary.duration_ms,
            video: summary.video(),
            audio: summary.audio(),
        },
        state: AssetState::Uploaded,
        keep_source: meta.metadata.get("keep_source").is_none_or(|v| v != "false"),
        created_ms: 0,
    };
    let rejected = match state.cluster.propose(Command::AddAsset { asset }).await {
        Ok(Outcome::Rejected(r)) | Err(ClusterError::Catalog(CatalogError::Rejected(r))) => Some(r),
        Ok(_) => None,
        Err(e) => {
            // The source stays where it is: an empty PATCH at the last offset tries again.
            tracing::warn!(upload = %id, error = %e, "the asset could not be recorded yet");
            let message = format!("the asset could not be recorded yet ({e}); PATCH again at the last offset");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        }
    };
    if let Some(r) = rejected {
        forget(&bin, &json, &source).await;
        return refuse_and_forget(StatusCode::UNPROCESSABLE_ENTITY, "rejected", r.to_string());
    }
    // Its jobs: one per rendition of the ladder (never upscaled).
    let dims = summary.tracks.iter().find_map(|t| t.codec.dimensions()).unwrap_or((0, 0));
    let jobs = Command::AddJobs {
        asset: id.to_string(),
        jobs: super::worker::ladder_jobs(&cfg.ladder, dims),
        segments_total: segments,
    };
    if let Err(e) = state.cluster.propose(jobs).await {
        tracing::warn!(upload = %id, error = %e, "the asset's jobs could not be recorded yet");
        let message = format!("the asset's jobs could not be recorded yet ({e}); PATCH again at the last offset");
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
    }
    // Shared through the archive for workers on other nodes (retried every minute).
    let uploads = cfg.clone();
    let shared = id.to_string();
    tokio::spawn(async move { super::share_source(&uploads, &shared).await });
    meta.asset = Some(id.to_string());
    if let Err(e) = save_meta(&json, &meta).await {
        tracing::warn!(upload = %id, error = %e, "the completed upload's record was not updated");
    }
    tracing::info!(upload = %id, asset = %id, bytes = meta.length, duration_ms = summary.duration_ms, "asset uploaded");
    metrics::counter!("tessera_assets_uploaded_total").increment(1);
    completed(meta.length, Some(id))
}

/// A title as the catalog keeps it: no control characters, at most its length in bytes.
fn clean_title(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > TITLE_MAX {
            break;
        }
        out.push(c);
    }
    out
}

async fn forget(bin: &Path, json: &Path, source: &Path) {
    for p in [bin, json, source] {
        let _ = tokio::fs::remove_file(p).await;
    }
    if let Some(dir) = source.parent() {
        let _ = tokio::fs::remove_dir(dir).await;
    }
}
