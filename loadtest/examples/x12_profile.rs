//! Small driver for profiling the 835 parser outside criterion (perf, callgrind):
//!
//! `CARGO_TARGET_DIR=... cargo build --release --example x12_profile`
//! `valgrind --tool=callgrind target/release/examples/x12_profile 4 1`
//! `perf record -g target/release/examples/x12_profile 32 20`
//!
//! Arguments: input size in MiB (default 8) and number of passes (default 5). Prints
//! throughput, event count and findings per code (codes only, never PHI).

use claimwatch::x12::{parse_each, synth::repeat_interchanges};
use std::collections::BTreeMap;
use std::time::Instant;

const SAMPLES: &[&[u8]] = &[
    include_bytes!("../../tests/fixtures/x12/chs-cds-aiml/test.835"),
    include_bytes!("../../tests/fixtures/x12/linuxforhealth-x12/managed-care.835"),
    include_bytes!("../../tests/fixtures/x12/tigershark/835-example.txt"),
];

fn main() {
    let mut args = std::env::args().skip(1);
    let mb: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(8);
    let passes: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let input = repeat_interchanges(SAMPLES, mb << 20);
    let mut events = 0usize;
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let t = Instant::now();
    for pass in 0..passes {
        let s = parse_each(&input, "profile", |e| {
            events += 1;
            std::hint::black_box(e);
        });
        if pass == 0 {
            for f in &s.findings {
                *codes.entry(f.code.clone()).or_default() += 1;
            }
            for e in &s.errors {
                *codes.entry(format!("error:{}", e.code)).or_default() += 1;
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let total = (input.len() * passes) as f64;
    println!(
        "{} bytes x {passes} passes: {:.1} MiB/s, {} events per pass",
        input.len(),
        total / secs / (1 << 20) as f64,
        events / passes.max(1)
    );
    for (c, n) in codes {
        println!("  {c}: {n}");
    }
}
