//! Core throughput and memory, on a generated population (decode excluded from the core figures).
//!
//! - `core/durable`: events/s through the partitions on one core with the sled store on, taking a
//!   durable checkpoint (atomic batch + flush) every `checkpoint_every_events` as in production.
//! - `core/hot_only`: the same with only the dashmap hot view.
//! - `core/hot_only_without_analytics`: `hot_only` with the population analytics of issue 8 off
//!   (readmission summary and ROI, care gaps, high-cost members, cash forecast, provider KPIs).
//! - `codec/avro_decode` and `codec/avro_decode_encode`: Confluent-framed Avro records/s.
//! - `allocator/*`: alloc + dealloc pairs through mimalloc and through the binary's heap-counting
//!   wrapper, counting off (the default) and on.
//! - Memory per open claim and per tracked member: `loadtest/benches/memory.rs`.
//!
//! Run: `cargo bench --bench core` (figures in BENCHMARKS.md).

use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};

use claimwatch::codec::{AvroCodec, SchemaKind};
use claimwatch::config::CoreConfig;
use claimwatch::model::{ClaimAck, ClaimSubmitted, Encounter, InputEvent, Remittance};
use claimwatch::state::StateDb;

/// The allocator of the `claimwatch` binary (mimalloc behind the heap-counting wrapper, counting
/// off), so the figures are the service's.
#[global_allocator]
static GLOBAL: claimwatch::memory::CountingAlloc<mimalloc::MiMalloc> =
    claimwatch::memory::CountingAlloc(mimalloc::MiMalloc);

mod common;
use common::{drive, engine, engine_without_analytics, events, open, MEMBERS};

fn bench(c: &mut Criterion) {
    let events = events();
    println!(
        "population: {MEMBERS} members, {} input events",
        events.len()
    );

    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("durable", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("tempdir");
                let db = StateDb::open(dir.path()).expect("sled");
                let engine = engine(CoreConfig::default().checkpoint_every_events);
                let mut parts = open(&engine, Some(&db));
                let start = Instant::now();
                criterion::black_box(drive(&engine, &mut parts, &events));
                total += start.elapsed();
                drop(parts);
            }
            total
        })
    });
    // The hot view only, with the default engine and with the issue-8 analytics off.
    type MakeEngine = fn(u64) -> claimwatch::core::Engine;
    let hot: [(&str, MakeEngine); 2] = [
        ("hot_only", engine),
        ("hot_only_without_analytics", engine_without_analytics),
    ];
    for (name, make_engine) in hot {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let engine = make_engine(CoreConfig::default().checkpoint_every_events);
                    let mut parts = open(&engine, None);
                    let start = Instant::now();
                    criterion::black_box(drive(&engine, &mut parts, &events));
                    total += start.elapsed();
                    // Dropping the state is not part of processing the events.
                    drop(parts);
                }
                total
            })
        });
    }
    g.finish();

    let codec = AvroCodec::new();
    let framed: Vec<(SchemaKind, Vec<u8>)> = events
        .iter()
        .map(|e| {
            let mut buf = Vec::new();
            let kind = match e {
                InputEvent::Claim(x) => codec
                    .encode_framed(SchemaKind::ClaimSubmitted, x, &mut buf)
                    .map(|()| SchemaKind::ClaimSubmitted),
                InputEvent::Encounter(x) => codec
                    .encode_framed(SchemaKind::Encounter, x, &mut buf)
                    .map(|()| SchemaKind::Encounter),
                InputEvent::Ack(x) => codec
                    .encode_framed(SchemaKind::ClaimAck, x, &mut buf)
                    .map(|()| SchemaKind::ClaimAck),
                InputEvent::Remit(x) => codec
                    .encode_framed(SchemaKind::Remittance, x, &mut buf)
                    .map(|()| SchemaKind::Remittance),
                InputEvent::Enrollment(x) => codec
                    .encode_framed(SchemaKind::MemberEnrollment, x, &mut buf)
                    .map(|()| SchemaKind::MemberEnrollment),
            }
            .expect("encode");
            (kind, buf)
        })
        .collect();
    let bytes: usize = framed.iter().map(|(_, b)| b.len()).sum();
    println!(
        "avro: {} records, {:.0} bytes per record on average",
        framed.len(),
        bytes as f64 / framed.len() as f64
    );
    let decode = |kind: SchemaKind, bytes: &[u8]| -> InputEvent {
        match kind {
            SchemaKind::ClaimSubmitted => InputEvent::Claim(
                codec
                    .decode_framed::<ClaimSubmitted>(kind, bytes)
                    .expect("decode"),
            ),
            SchemaKind::Encounter => InputEvent::Encounter(
                codec
                    .decode_framed::<Encounter>(kind, bytes)
                    .expect("decode"),
            ),
            SchemaKind::ClaimAck => InputEvent::Ack(
                codec
                    .decode_framed::<ClaimAck>(kind, bytes)
                    .expect("decode"),
            ),
            _ => InputEvent::Remit(
                codec
                    .decode_framed::<Remittance>(kind, bytes)
                    .expect("decode"),
            ),
        }
    };
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(framed.len() as u64));
    g.sample_size(10);
    g.bench_function("avro_decode", |b| {
        b.iter(|| {
            for (kind, bytes) in &framed {
                criterion::black_box(decode(*kind, bytes));
            }
        })
    });
    g.bench_function("avro_decode_encode", |b| {
        let mut buf = Vec::with_capacity(4096);
        b.iter(|| {
            for (kind, bytes) in &framed {
                buf.clear();
                match decode(*kind, bytes) {
                    InputEvent::Claim(x) => codec.encode_framed(*kind, &x, &mut buf),
                    InputEvent::Encounter(x) => codec.encode_framed(*kind, &x, &mut buf),
                    InputEvent::Ack(x) => codec.encode_framed(*kind, &x, &mut buf),
                    InputEvent::Remit(x) => codec.encode_framed(*kind, &x, &mut buf),
                    InputEvent::Enrollment(x) => codec.encode_framed(*kind, &x, &mut buf),
                }
                .expect("encode");
                criterion::black_box(&buf);
            }
        })
    });
    g.finish();
}

/// What the binary's heap-counting wrapper costs: alloc + dealloc pairs of 16, 64, 256 and 4,096
/// bytes through mimalloc itself, through `CountingAlloc<MiMalloc>` with counting off (the
/// default), and with counting on (`CLAIMWATCH_COUNT_HEAP=1`; last, as it cannot be switched off).
fn allocator(c: &mut Criterion) {
    use std::alloc::{GlobalAlloc, Layout};
    const PAIRS: usize = 1000;
    let layouts: Vec<Layout> = [16, 64, 256, 4096]
        .iter()
        .map(|s| Layout::from_size_align(*s, 8).expect("a valid layout"))
        .collect();
    fn pairs<A: GlobalAlloc>(a: &A, layouts: &[Layout]) {
        for _ in 0..PAIRS {
            for l in layouts {
                // SAFETY: a non-zero size; the pointer is freed once with its own layout.
                unsafe {
                    let p = a.alloc(*l);
                    if !p.is_null() {
                        criterion::black_box(p);
                        a.dealloc(p, *l);
                    }
                }
            }
        }
    }
    let raw = mimalloc::MiMalloc;
    let wrapped = claimwatch::memory::CountingAlloc(mimalloc::MiMalloc);
    let mut g = c.benchmark_group("allocator");
    g.throughput(Throughput::Elements((PAIRS * layouts.len()) as u64));
    g.bench_function("mimalloc", |b| b.iter(|| pairs(&raw, &layouts)));
    g.bench_function("counting_off", |b| b.iter(|| pairs(&wrapped, &layouts)));
    g.bench_function("counting_on", |b| {
        claimwatch::memory::count_heap();
        b.iter(|| pairs(&wrapped, &layouts))
    });
    g.finish();
}

criterion_group!(benches, bench, allocator);

fn main() {
    claimwatch::memory::prefer_small_pages();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
