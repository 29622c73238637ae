//! The store's side of the storage tiers: finished files are handed over as they finish,
//! and a file the store no longer holds is looked up there.

use std::sync::Arc;

use bytes::Bytes;

use super::{Recorder, SegmentStore, StreamState};
use tessera_storage::{FileKey, Tiers};

impl SegmentStore {
    /// Makes the node's storage tiers keep what the store finishes from now on.
    pub fn attach_tiers(&self, tiers: Arc<Tiers>) {
        let _ = self.tiers.set(tiers);
    }

    /// Hands the files the stream's renditions finished to the tiers: to the archive too
    /// when this node is the stream's origin (a follower's copy is its own disk's only).
    pub(super) fn hand_over(&self, name: &str, st: &mut StreamState) {
        let archive = !st.mirrored;
        let recorder = self.recorder.get().filter(|_| archive);
        for r in st.renditions.values_mut() {
            for f in r.finished.drain(..) {
                if let Some(rec) = recorder {
                    rec.finished(name, &r.name, &f);
                }
                if let (Some(tiers), Some(key)) = (self.tiers.get(), FileKey::new(name, &r.name, &f.file)) {
                    tiers.keep(key, f.data, archive);
                }
            }
        }
    }

    /// Makes `recorder` hear of every file this node finishes as a stream's origin, and of
    /// every stream's end.
    pub fn attach_recorder(&self, recorder: Arc<dyn Recorder>) {
        let _ = self.recorder.set(recorder);
    }

    /// A finished file (`seg-MSN.m4s`, `init-N.mp4`) the store no longer holds, from this
    /// node's disk or the archive.
    pub async fn past_file(&self, name: &str, rendition: &str, file: &str) -> Option<Bytes> {
        self.tiers.get()?.get(&FileKey::new(name, rendition, file)?).await
    }

    /// A rendition's DVR playlist: the stream's DVR window, from `since_ms` if given (see
    /// [`PlaylistState::render_dvr`](tessera_packager::PlaylistState::render_dvr)).
    pub fn dvr_playlist(
        &self,
        name: &str,
        rendition: &str,
        since_ms: Option<i64>,
        keys: &[tessera_packager::SegmentKey],
    ) -> Result<String, super::StoreError> {
        let entry = self.entry(name).ok_or(super::StoreError::NotFound)?;
        let st = entry.state.lock().expect("stream lock");
        let r = st.renditions.get(rendition).ok_or(super::StoreError::NotFound)?;
        if !r.has_complete_segment() {
            return Err(super::StoreError::NotFound);
        }
        Ok(r.playlist.render_dvr(since_ms, keys))
    }
}
