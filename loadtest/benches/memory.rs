//! Heap bytes per open claim and per tracked member, counted by a wrapping global allocator
//! (kept out of the throughput benchmarks, where counting every allocation would slow them).
//!
//! Run: `cargo bench --bench memory`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use claimwatch::model::{InputEvent, DAY_MS};

mod common;
use common::{drive, engine, events, open};

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
    measure("tracked member", &members, false);
}
