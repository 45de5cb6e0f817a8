//! Peak-memory check for the streaming API: parser overhead (VmHWM after parsing
//! minus VmHWM after building the input) must not grow with the input size.
//!
//! `X12_MEM_MB=256 cargo test --release --test x12_memory -- --ignored --nocapture`
//! (also run under `/usr/bin/time -v` for the process peak).

use claimwatch::x12::{parse_stream, synth::repeat_interchanges};

const SAMPLES: &[&[u8]] = &[
    include_bytes!("fixtures/x12/chs-cds-aiml/test.835"),
    include_bytes!("fixtures/x12/linuxforhealth-x12/managed-care.835"),
    include_bytes!("fixtures/x12/tigershark/835-example.txt"),
];

fn hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[test]
#[ignore]
fn streaming_memory_is_flat() {
    let mb: usize = std::env::var("X12_MEM_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let input = repeat_interchanges(SAMPLES, mb << 20);
    let before = hwm_kb();
    let mut events = 0usize;
    let mut reports = 0usize;
    let _ = parse_stream(&input, "mem", |_e| events += 1, |_r| reports += 1);
    let after = hwm_kb();
    println!(
        "input {} MB, events {events}, reports {reports}, VmHWM before parse {before} kB, after {after} kB, parser overhead {} kB",
        input.len() >> 20,
        after.saturating_sub(before)
    );
}
