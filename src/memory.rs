//! The process's memory: small pages for the heap, and the heap's figures for diagnostics.
//!
//! The binary and the benches allocate through mimalloc (see `main.rs`). mimalloc v3 maps its
//! arenas aligned to 2 MiB, so on a kernel whose transparent huge pages are `always` (the default
//! of many distributions, and of the machine BENCHMARKS.md was measured on) every fresh mimalloc
//! page faults in a whole huge page, which the kernel zeroes first. A `perf` profile of the load
//! test put 11-15 % of the process's CPU in that zeroing (`clear_page_erms` under
//! `_mi_page_init`); with huge pages off for the process it fell below 1 %, the pipeline ran
//! 10-40 % faster and its peak RSS fell by a fifth (BENCHMARKS.md, 2026-12-06, seventh session).
//!
//! [`prefer_small_pages`] turns them off for this process only (`prctl(PR_SET_THP_DISABLE)`,
//! which mimalloc itself does with `MIMALLOC_ALLOW_THP=0`): the system setting is left alone.
//! An operator who wants huge pages back sets `MIMALLOC_ALLOW_THP=1`.
//!
//! [`CountingAlloc`] wraps the global allocator and, once [`count_heap`] switched it on, keeps the
//! bytes live through it (allocated minus freed), exported as `claimwatch_heap_live_bytes`. Set
//! `CLAIMWATCH_COUNT_HEAP=1` to turn it on: against the RSS it tells a growing heap (a leak, or
//! state) from memory the allocator keeps after it was freed. Off, it costs one relaxed atomic load
//! per allocation; on, one shared atomic add, measurable on a busy many-threaded process, so it is
//! a diagnostic, not a default. With it, the metrics also export what mimalloc holds committed
//! ([`allocator_committed_bytes`]) and glibc's C heap, which librdkafka allocates from
//! ([`c_heap`]), so a soak can put a creeping RSS on the Rust heap, the C heap or the allocator's
//! retention (BENCHMARKS.md, "Soak").
//!
//! Heap profilers that hook `malloc` (heaptrack) do not see mimalloc's allocations: the
//! `system-alloc` feature builds the binary on glibc's malloc for them
//! (`loadtest/soak.sh --heaptrack`).

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicI64 = AtomicI64::new(0);

/// A global allocator that counts the bytes live through it (see the module doc).
pub struct CountingAlloc<A>(pub A);

// SAFETY: every call is passed on to the inner allocator unchanged; the counting only reads the
// layouts.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { self.0.dealloc(ptr, layout) };
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
}

/// Switches the counting of [`CountingAlloc`] on. Call it first in `main`: bytes allocated before
/// and freed after count negative, so the figure is exact up to what was live at that moment.
pub fn count_heap() {
    COUNTING.store(true, Ordering::Relaxed);
}

/// Bytes live through [`CountingAlloc`] since [`count_heap`]; `None` while counting is off.
pub fn live_heap_bytes() -> Option<i64> {
    COUNTING
        .load(Ordering::Relaxed)
        .then(|| LIVE.load(Ordering::Relaxed))
}

/// Bytes mimalloc holds as committed (read/write mappings it reserved and has not purged): the
/// live Rust heap plus what mimalloc keeps after it was freed. Against [`live_heap_bytes`] it tells
/// a growing heap from allocator retention. Zero when mimalloc is not the global allocator.
pub fn allocator_committed_bytes() -> u64 {
    let mut commit: usize = 0;
    // SAFETY: every out-parameter is nullable; the one passed points at a live usize.
    unsafe {
        libmimalloc_sys::mi_process_info(
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut commit,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
    }
    commit as u64
}

/// The C heap (glibc's malloc): what librdkafka, and any other C code, allocates. The Rust heap
/// does not go through it (see `main.rs`), so it is the part of the RSS that
/// [`live_heap_bytes`] cannot see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CHeap {
    /// Bytes in chunks handed out and not freed (small chunks and mmapped large ones).
    pub live: u64,
    /// Bytes glibc holds from the kernel: the arenas (free chunks included) and the mmapped chunks.
    pub held: u64,
}

/// The C heap's figures from `mallinfo2` (summed over glibc's arenas; it takes each arena's lock,
/// so read it at scrape rate, not per record). `None` where the C library is not glibc.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn c_heap() -> Option<CHeap> {
    // SAFETY: mallinfo2 takes no arguments and returns a plain struct.
    let m = unsafe { libc::mallinfo2() };
    Some(CHeap {
        live: (m.uordblks + m.hblkhd) as u64,
        held: (m.arena + m.hblkhd) as u64,
    })
}

/// See the glibc version: other C libraries have no `mallinfo2`.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn c_heap() -> Option<CHeap> {
    None
}

/// Bytes in free chunks of glibc's arenas (`mallinfo2().fordblks`), resident or not: what
/// [`trim_c_heap`] can give back. `None` where the C library is not glibc.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn c_heap_free() -> Option<u64> {
    // SAFETY: mallinfo2 takes no arguments and returns a plain struct.
    Some(unsafe { libc::mallinfo2() }.fordblks as u64)
}

/// See the glibc version.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn c_heap_free() -> Option<u64> {
    None
}

/// Hands the whole pages inside the C heap's free chunks back to the kernel (`malloc_trim(0)`,
/// `MADV_DONTNEED`). glibc returns memory by itself only from the top of an arena; records
/// librdkafka fetched ahead during a lag, freed in any order once the service caught up, leave
/// free chunks inside its threads' arenas that stay resident. It takes each arena's lock while it
/// walks the arena's free chunks (tens of milliseconds for ~100 MiB of them), so [`TrimPolicy`]
/// decides when, and it runs off the partition tasks' threads. A no-op where the C library is not
/// glibc.
pub fn trim_c_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases pages of free chunks; no pointer of ours is involved.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// When to trim the C heap ([`trim_c_heap`]), from its free bytes ([`c_heap_free`]) sampled at a
/// slow cadence: when they exceed `min_free` and have grown by more than a quarter of it since their
/// lowest point after the last trim (memory freed since), or, still over `min_free`, once
/// [`TrimPolicy::REPEAT`] has passed (pages reused and freed again leave the free bytes level).
/// A trim does not lower the free bytes (the chunks stay free, their pages released), so a
/// threshold alone would trim at every sample after a lag.
#[derive(Debug, Clone)]
pub struct TrimPolicy {
    min_free: u64,
    low: u64,
    last: Option<std::time::Instant>,
}

impl TrimPolicy {
    /// The longest a C heap holding more than `min_free` free bytes goes without a trim.
    pub const REPEAT: std::time::Duration = std::time::Duration::from_secs(120);

    pub fn new(min_free: u64) -> Self {
        Self {
            min_free,
            low: 0,
            last: None,
        }
    }

    /// Whether to trim now, `free` being the free bytes sampled at `now`; a `true` counts as the
    /// trim done.
    pub fn due(&mut self, free: u64, now: std::time::Instant) -> bool {
        self.low = self.low.min(free);
        let grew = free.saturating_sub(self.low) > self.min_free / 4;
        let stale = self
            .last
            .is_none_or(|t| now.duration_since(t) >= Self::REPEAT);
        if free > self.min_free && (grew || stale) {
            self.low = free;
            self.last = Some(now);
            true
        } else {
            false
        }
    }
}

/// What [`prefer_small_pages`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HugePages {
    /// Transparent huge pages are now off for this process.
    Disabled,
    /// Left as the system has them: `MIMALLOC_ALLOW_THP` asks for them (any value but `0`).
    KeptByRequest,
    /// Not Linux, or the kernel refused (`errno` is in the log).
    Unsupported,
}

/// Turns transparent huge pages off for this process, unless `MIMALLOC_ALLOW_THP` asks for them.
/// Call it first in `main`: it applies to every mapping from then on (the setting is read at
/// fault time), including those mimalloc reserved before `main`.
pub fn prefer_small_pages() -> HugePages {
    match std::env::var("MIMALLOC_ALLOW_THP") {
        Ok(v) if v.trim() != "0" => return HugePages::KeptByRequest,
        _ => {}
    }
    disable_thp()
}

#[cfg(target_os = "linux")]
fn disable_thp() -> HugePages {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if r == 0 {
        HugePages::Disabled
    } else {
        tracing::debug!(error = %std::io::Error::last_os_error(), "PR_SET_THP_DISABLE refused");
        HugePages::Unsupported
    }
}

#[cfg(not(target_os = "linux"))]
fn disable_thp() -> HugePages {
    HugePages::Unsupported
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counter follows allocations, reallocations and frees made through the wrapper once
    /// counting is on (the test binary's own global allocator is not the wrapper, so only these
    /// calls move it).
    #[test]
    fn the_counting_allocator_keeps_the_live_bytes() {
        let a = CountingAlloc(std::alloc::System);
        let layout = Layout::from_size_align(1000, 8).unwrap();
        // SAFETY: a non-zero layout; every pointer is freed with the layout it has.
        unsafe {
            let off = a.alloc(layout);
            assert_eq!(live_heap_bytes(), None, "off until switched on");
            a.dealloc(off, layout);
            count_heap();
            let base = live_heap_bytes().unwrap();
            let p = a.alloc(layout);
            assert_eq!(live_heap_bytes(), Some(base + 1000));
            let p = a.realloc(p, layout, 3000);
            assert_eq!(live_heap_bytes(), Some(base + 3000));
            let z = a.alloc_zeroed(layout);
            assert_eq!(live_heap_bytes(), Some(base + 4000));
            a.dealloc(z, layout);
            a.dealloc(p, Layout::from_size_align(3000, 8).unwrap());
            assert_eq!(live_heap_bytes(), Some(base));
        }
    }

    /// glibc's figures follow a C allocation: 64 MiB from `malloc` (above the mmap threshold, so
    /// its own chunk) shows in both figures until it is freed. Other tests' threads may allocate
    /// or free C memory meanwhile (librdkafka), so the checks leave them 32 MiB of room.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_c_heap_figures_follow_malloc() {
        const SIZE: usize = 64 << 20;
        let before = c_heap().unwrap();
        assert!(before.held >= before.live);
        // SAFETY: a plain malloc/free pair; the block is written so its pages are real.
        let during = unsafe {
            // black_box: an optimised build may otherwise elide the pair.
            let p = std::hint::black_box(libc::malloc(SIZE)) as *mut u8;
            assert!(!p.is_null());
            p.write_bytes(1, SIZE);
            let during = c_heap().unwrap();
            libc::free(p as *mut libc::c_void);
            during
        };
        assert!(
            during.live >= before.live + (SIZE as u64) / 2,
            "{before:?} -> {during:?}"
        );
        assert!(during.held >= during.live);
        let after = c_heap().unwrap();
        assert!(
            after.live + (SIZE as u64) / 2 <= during.live,
            "freed: {during:?} -> {after:?}"
        );
    }

    /// The policy trims when the free bytes pass the threshold, not again while they stay level
    /// (a trim leaves them as they were), again once they grew by a quarter of the threshold above their
    /// lowest point, and again after `REPEAT` while still over the threshold.
    #[test]
    fn the_trim_policy_trims_once_per_growth_of_the_free_bytes() {
        const MIB: u64 = 1 << 20;
        let t0 = std::time::Instant::now();
        let at = |s: u64| t0 + std::time::Duration::from_secs(s);
        let mut p = TrimPolicy::new(64 * MIB);
        assert!(!p.due(10 * MIB, at(0)), "under the threshold");
        assert!(!p.due(60 * MIB, at(10)));
        assert!(p.due(100 * MIB, at(20)), "over it: trim");
        assert!(
            !p.due(100 * MIB, at(30)),
            "level after the trim: nothing new"
        );
        assert!(
            !p.due(110 * MIB, at(40)),
            "grew by less than a quarter of the threshold"
        );
        assert!(!p.due(80 * MIB, at(50)), "reused");
        assert!(
            p.due(110 * MIB, at(60)),
            "grew by 30 MiB from its low of 80"
        );
        assert!(!p.due(110 * MIB, at(70)));
        let later = 60 + TrimPolicy::REPEAT.as_secs();
        assert!(
            p.due(110 * MIB, at(later)),
            "REPEAT passed, still over the threshold"
        );
        assert!(
            !p.due(50 * MIB, at(2 * later)),
            "under the threshold: never"
        );
    }

    /// Resident bytes of this process (`/proc/self/statm`).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn rss_bytes() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        // SAFETY: sysconf reads a constant.
        pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
    }

    /// What the trim is for: 64 MiB of small C chunks freed in the middle of an arena (every
    /// chunk but each 64th, and the last, so the arena's top stays in use) stay resident until
    /// `trim_c_heap` releases them; `c_heap_free` counts them. Other tests' threads share the
    /// process's RSS, so the check leaves them half of the 64 MiB.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_c_heap_trim_gives_fragmented_free_memory_back() {
        const CHUNK: usize = 16 << 10;
        const CHUNKS: usize = 4096;
        // Run on a thread of its own: a fresh thread gets an arena that other tests use less.
        std::thread::spawn(|| {
            // SAFETY: plain malloc/free pairs; the blocks are written so their pages are real.
            let kept: Vec<*mut libc::c_void> = unsafe {
                let all: Vec<*mut libc::c_void> = (0..CHUNKS)
                    .map(|_| {
                        let p = libc::malloc(CHUNK);
                        assert!(!p.is_null());
                        (p as *mut u8).write_bytes(1, CHUNK);
                        p
                    })
                    .collect();
                let mut kept = Vec::new();
                for (i, p) in all.into_iter().enumerate() {
                    if i % 64 == 0 || i == CHUNKS - 1 {
                        kept.push(p);
                    } else {
                        libc::free(p);
                    }
                }
                kept
            };
            let found = c_heap_free().unwrap();
            let before = rss_bytes();
            trim_c_heap();
            let after = rss_bytes();
            assert!(found >= 48 << 20, "free chunks found: {found}");
            assert!(
                after + (32 << 20) <= before,
                "RSS {} MiB -> {} MiB",
                before >> 20,
                after >> 20
            );
            // SAFETY: the kept blocks came from malloc above and are freed once.
            unsafe { kept.into_iter().for_each(|p| libc::free(p)) };
        })
        .join()
        .unwrap();
    }

    /// The process setting is what the kernel reports back (`PR_GET_THP_DISABLE`), so this
    /// fails if the call silently did nothing.
    #[cfg(target_os = "linux")]
    #[test]
    fn huge_pages_are_off_for_the_process_after_the_call() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            return; // the operator's choice is honoured instead; nothing to check here
        }
        assert_eq!(prefer_small_pages(), HugePages::Disabled);
        // SAFETY: as above.
        let now = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(now, 1);
    }
}
