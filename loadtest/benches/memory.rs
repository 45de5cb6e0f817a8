//! Heap bytes per open claim, per retired claim (one that left state by retention but keeps its
//! output version) and per tracked member, counted by a wrapping global allocator
//! (kept out of the throughput benchmarks, where counting every allocation would slow them).
//!
//! Run: `cargo bench --bench memory`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use claimwatch::model::{InputEvent, DAY_MS};

mod common;
use claimwatch::core::Engine;
use claimwatch::refdata::RefData;
use common::{config, drive, engine, events, open};

/// Counts live heap bytes, to measure state memory.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap growth while loading the first `days` of events into fresh partitions, per key.
fn measure(label: &str, evs: &[InputEvent], claims: bool) {
    let engine = engine(u64::MAX);
    let before = LIVE.load(Ordering::Relaxed);
    let mut parts = open(&engine, None);
    drive(&engine, &mut parts, evs);
    let after = LIVE.load(Ordering::Relaxed);
    let keys: usize = parts
        .iter()
        .map(|p| {
            if claims {
                p.claims().len()
            } else {
                p.members().len()
            }
        })
        .sum();
    println!(
        "memory: {:.0} heap bytes per {label} ({keys} {label}s in state, {:.1} MiB incl. timer index and hot-view tables)",
        (after - before) as f64 / keys.max(1) as f64,
        (after - before) as f64 / (1024.0 * 1024.0)
    );
}

/// Heap bytes per claim that left state by retention and keeps its version: the claims are
/// loaded, every one is retired (past `open_claim_retention_days`), and the heap is compared with
/// the same run keeping no version (`claim_version_retention_days = 0`).
fn measure_retired(evs: &[InputEvent]) {
    let end = evs.last().map_or(0, |e| e.event_time()) + 401 * DAY_MS;
    let heap = |version_days: u32| {
        let mut c = config(u64::MAX);
        c.claim_version_retention_days = version_days;
        let engine = Engine::new(c, RefData::shared());
        let before = LIVE.load(Ordering::Relaxed);
        let mut parts = open(&engine, None);
        drive(&engine, &mut parts, evs);
        let (mut out, mut costs) = (Vec::new(), Vec::new());
        for p in &mut parts {
            p.advance_to(&engine, end, &mut out, &mut costs);
        }
        drop((out, costs));
        let bytes = LIVE.load(Ordering::Relaxed) - before;
        let retired: usize = parts.iter().map(|p| p.claims().len()).sum();
        (bytes, retired, parts)
    };
    let (kept, retired, a) = heap(400);
    drop(a);
    let (none, left, b) = heap(0);
    drop(b);
    assert_eq!(left, 0, "without version retention no claim stays");
    println!(
        "memory: {:.0} heap bytes per retired claim ({retired} retired claims keeping their version, {:.1} MiB)",
        (kept - none) as f64 / retired.max(1) as f64,
        (kept - none) as f64 / (1024.0 * 1024.0)
    );
}

fn main() {
    let all = events();
    // The first 90 days: no claim has reached its retention period yet, so every claim seen is
    // still in state (an "open" claim in the sense of state size).
    let horizon = all.first().map_or(0, |e| e.event_time()) + 90 * DAY_MS;
    let early: Vec<InputEvent> = all
        .iter()
        .filter(|e| e.event_time() < horizon)
        .cloned()
        .collect();
    let claims: Vec<InputEvent> = early
        .iter()
        .filter(|e| !matches!(e, InputEvent::Encounter(_)))
        .cloned()
        .collect();
    let members: Vec<InputEvent> = all
        .iter()
        .filter(|e| matches!(e, InputEvent::Encounter(_)))
        .cloned()
        .collect();
    measure("open claim", &claims, true);
    measure_retired(&claims);
    measure("tracked member", &members, false);
}
