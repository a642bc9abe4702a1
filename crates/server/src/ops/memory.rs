//! Giving memory back after a peak. glibc's allocator keeps what was freed (in its per-thread
//! arenas, and in the middle of its heaps) for the next allocation, so after a burst of
//! connections or a few large messages the process would stay at its peak for good. A thread
//! looks at the allocator's free memory every interval and, when it has grown well past its
//! lowest since the last look that acted, hands it back with `malloc_trim`. It covers
//! Python's allocations as well as the server's: both go through glibc (the choice, and the
//! allocators measured against it, are in ARCHITECTURE.md).
//!
//! `malloc_trim` does not shrink the top of a thread's arena, which glibc shrinks by itself
//! only past its trim threshold; and once a large block allocated with `mmap` is freed, glibc
//! raises that threshold to twice the block's size (up to 64 MiB), so the next large
//! messages are carved from the arena and stay there. The thresholds are therefore fixed at
//! start: blocks of 1 MiB and more are mapped and unmapped on their own, and an arena's top
//! is given back past 2 MiB.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Free memory the allocator may keep beyond its lowest before it is handed back: less is
/// the ordinary coming and going of a busy server, not worth the walk over the heap.
const SLACK: usize = 2 << 20;

static STARTED: AtomicBool = AtomicBool::new(false);

/// Starts the thread (once per process: the Python package may serve twice), looking every
/// `interval`.
pub fn give_back_every(interval: Duration) {
    if STARTED.swap(true, Ordering::AcqRel) {
        return;
    }
    allocator::fix_thresholds();
    let spawned = std::thread::Builder::new().name("robyn-ws-trim".into()).spawn(move || {
        let mut watch = Watch::default();
        loop {
            std::thread::sleep(interval);
            let free = allocator::free_bytes();
            tracing::trace!(free, "the allocator's free memory");
            if watch.should_trim(free) {
                allocator::trim();
                tracing::debug!(free, after = allocator::free_bytes(), "gave freed memory back to the system");
            }
        }
    });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot start the thread that gives freed memory back: the process keeps its peak");
    }
}

/// When to trim: the allocator's free memory has grown by [`SLACK`] over its lowest since the
/// last trim (which made the free memory then the new lowest). The lowest starts at nothing
/// free, so a peak that came and went before the first look is given back too.
#[derive(Default)]
struct Watch {
    lowest: usize,
}

impl Watch {
    fn should_trim(&mut self, free: usize) -> bool {
        self.lowest = self.lowest.min(free);
        let trim = free >= self.lowest + SLACK;
        if trim {
            self.lowest = free;
        }
        trim
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod allocator {
    /// Bytes glibc holds free in its arenas. `mallinfo` rather than `mallinfo2` (glibc 2.33):
    /// the Python package's wheel links against glibc 2.17; its counts saturate at 2 GiB,
    /// which only makes a trim of more than that wait for the next look.
    #[allow(unsafe_code, reason = "mallinfo(3) has no safe wrapper")]
    #[allow(deprecated, reason = "mallinfo2 is not in the glibc the wheel is built for")]
    pub fn free_bytes() -> usize {
        // SAFETY: mallinfo has no preconditions and returns a struct by value.
        let info = unsafe { libc::mallinfo() };
        usize::try_from(info.fordblks).unwrap_or(0)
    }

    /// Blocks this large and larger are mapped on their own (and unmapped when freed).
    const MMAP_THRESHOLD: libc::c_int = 1 << 20;
    /// Free memory at the top of an arena beyond this is given back at once.
    const TRIM_THRESHOLD: libc::c_int = 2 << 20;

    /// Fixes glibc's thresholds, which it would otherwise raise after the first large block.
    #[allow(unsafe_code, reason = "mallopt(3) has no safe wrapper")]
    pub fn fix_thresholds() {
        // SAFETY: mallopt only sets the allocator's parameters; both values are valid for them.
        let fixed = unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        };
        if !fixed {
            tracing::warn!("glibc refused the allocator thresholds: large messages may stay in memory after use");
        }
    }

    #[allow(unsafe_code, reason = "malloc_trim(3) has no safe wrapper")]
    pub fn trim() {
        // SAFETY: malloc_trim has no preconditions; 0 keeps no padding at the top of the heap.
        unsafe { libc::malloc_trim(0) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod allocator {
    /// Elsewhere there is no glibc to ask, nor to trim.
    pub fn free_bytes() -> usize {
        0
    }

    pub fn fix_thresholds() {}

    pub fn trim() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trim_follows_growth_of_free_memory_past_the_slack_and_resets_the_lowest() {
        let mut watch = Watch::default();
        assert!(watch.should_trim(20 << 20), "freed before the first look");
        assert!(!watch.should_trim(1 << 20), "less free memory: a new lowest");
        assert!(!watch.should_trim(2 << 20), "grown, but within the slack");
        assert!(watch.should_trim(3 << 20), "grown past it");
        assert!(!watch.should_trim(4 << 20), "what a trim leaves free is the new lowest");
        assert!(watch.should_trim(5 << 20));
    }
}
