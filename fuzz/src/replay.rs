//! Replays the committed corpora on stable Rust: every input of every target, with the
//! largest allocation each makes measured against [`crate::MAX_ALLOCATION`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{Target, MAX_ALLOCATION};

/// The system allocator, remembering the largest single allocation since it was last
/// asked. Install it as the global allocator of the binary that replays.
pub struct LargestAllocation {
    largest: AtomicUsize,
}

impl LargestAllocation {
    pub const fn new() -> Self {
        LargestAllocation { largest: AtomicUsize::new(0) }
    }

    /// The largest allocation since the last call.
    pub fn take(&self) -> usize {
        self.largest.swap(0, Ordering::Relaxed)
    }
}

impl Default for LargestAllocation {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.largest.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.largest.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.largest.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// `fuzz/corpus/TARGET`.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target)
}

/// The files of a target's corpus, in name order.
pub fn corpus(target: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(target))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// What one input did wrong.
#[derive(Debug)]
pub struct Failure {
    pub target: &'static str,
    pub input: PathBuf,
    pub what: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} on {}: {} (again: scripts/fuzz.sh {} --input {})",
            self.target,
            self.input.display(),
            self.what,
            self.target,
            self.input.display()
        )
    }
}

/// Runs `target` on `data`: a panic or an allocation past the bound is a failure.
pub fn check(target: Target, data: &[u8], largest: &LargestAllocation) -> Result<(), String> {
    largest.take();
    let outcome = catch_unwind(AssertUnwindSafe(|| (target.run)(data)));
    let peak = largest.take();
    match outcome {
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into())),
        Ok(()) if peak > MAX_ALLOCATION => Err(format!("allocated {peak} bytes at once (bound {MAX_ALLOCATION})")),
        Ok(()) => Ok(()),
    }
}
