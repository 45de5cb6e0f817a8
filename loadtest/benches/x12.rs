//! MB/s of 835 parsed to events on one core, on a large input made by repeating
//! whole interchanges of the public samples with fresh control numbers.
//!
//! `cargo bench --bench x12 -- --warm-up-time 1 --measurement-time 3`
//!
//! A second function in the same run is the floor for any X12 reader: one `memchr` pass counting
//! segment terminators over the same bytes. On a shared, noisy machine the ratio of the two medians
//! is the steadier figure.

use claimwatch::x12::{parse_each, synth::repeat_interchanges};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SAMPLES: &[&[u8]] = &[
    include_bytes!("../../tests/fixtures/x12/chs-cds-aiml/test.835"),
    include_bytes!("../../tests/fixtures/x12/linuxforhealth-x12/managed-care.835"),
    include_bytes!("../../tests/fixtures/x12/tigershark/835-example.txt"),
];

fn bench(c: &mut Criterion) {
    let size: usize = std::env::var("X12_BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let input = repeat_interchanges(SAMPLES, size << 20);
    let mut g = c.benchmark_group("x12");
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.sample_size(10);
    g.bench_function(format!("835_to_events_{}MB", input.len() >> 20), |b| {
        b.iter(|| {
            let mut n = 0usize;
            let s = parse_each(&input, "bench", |e| {
                n += 1;
                std::hint::black_box(e);
            });
            std::hint::black_box((n, s.findings.len()))
        })
    });
    let terminator = input[105];
    g.bench_function(format!("memchr_terminators_{}MB", input.len() >> 20), |b| {
        b.iter(|| std::hint::black_box(memchr::memchr_iter(terminator, &input).count()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
