//! Core throughput and memory, on a generated population (decode excluded from the core figures).
//!
//! - `core/durable`: events/s through the partitions on one core with the sled store on, taking a
//!   durable checkpoint (atomic batch + flush) every `checkpoint_every_events` as in production.
//! - `core/hot_only`: the same with only the dashmap hot view.
//! - `codec/avro_decode` and `codec/avro_decode_encode`: Confluent-framed Avro records/s.
//! - Memory per open claim and per tracked member (heap bytes, counted by a wrapping allocator),
//!   printed before the criterion runs.
//!
//! Run: `cargo bench --bench core` (figures in BENCHMARKS.md).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, BatchSize, Criterion, Throughput};

use claimwatch::codec::{AvroCodec, SchemaKind};
use claimwatch::config::CoreConfig;
use claimwatch::core::{partition_for, Engine, Partition};
use claimwatch::generate::{generate, GenerateConfig};
use claimwatch::model::{ClaimAck, ClaimSubmitted, Encounter, InputEvent, Remittance};
use claimwatch::refdata::RefData;
use claimwatch::state::{PartitionStore, StateDb};

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

const MEMBERS: usize = 4_000;
const PARTITIONS: u32 = 4;

/// The population's input events in replay order.
fn events() -> Vec<InputEvent> {
    let g = generate(&GenerateConfig {
        members: MEMBERS,
        seed: 7,
        ..GenerateConfig::default()
    });
    let mut all: Vec<(i64, u8, usize, InputEvent)> = Vec::new();
    all.extend(
        g.claims
            .into_iter()
            .enumerate()
            .map(|(i, e)| (e.event_time, 0, i, InputEvent::Claim(e))),
    );
    all.extend(
        g.encounters
            .into_iter()
            .enumerate()
            .map(|(i, e)| (e.event_time, 1, i, InputEvent::Encounter(e))),
    );
    all.extend(
        g.acks
            .into_iter()
            .enumerate()
            .map(|(i, e)| (e.event_time, 2, i, InputEvent::Ack(e))),
    );
    all.extend(
        g.remits
            .into_iter()
            .enumerate()
            .map(|(i, e)| (e.event_time, 3, i, InputEvent::Remit(e))),
    );
    all.sort_by_key(|(t, s, i, _)| (*t, *s, *i));
    all.into_iter().map(|(_, _, _, e)| e).collect()
}

fn engine(checkpoint_every_events: u64) -> Engine {
    let config = CoreConfig {
        partitions: PARTITIONS,
        checkpoint_every_events,
        ..CoreConfig::default()
    };
    Engine::new(config, RefData::shared())
}

/// Feeds every event through the partitions, checkpointing as configured. Returns outputs.
fn drive(engine: &Engine, partitions: &mut [Partition], events: &[InputEvent]) -> usize {
    let (mut out, mut costs) = (Vec::with_capacity(16), Vec::with_capacity(4));
    let mut produced = 0;
    let every = engine.config.checkpoint_every_events;
    let sinks = BTreeMap::new();
    for (offset, e) in events.iter().enumerate() {
        let p = partition_for(e.key(), PARTITIONS) as usize;
        partitions[p].apply(
            engine,
            e,
            e.stream().name(),
            offset as i64,
            &mut out,
            &mut costs,
        );
        for c in costs.drain(..) {
            let q = partition_for(&c.member_id, PARTITIONS) as usize;
            partitions[q].apply_cost(engine, &c, &mut out);
        }
        produced += out.len();
        out.clear();
        if partitions[p].since_checkpoint() >= every {
            partitions[p].checkpoint(&sinks).expect("checkpoint");
        }
    }
    for p in partitions.iter_mut() {
        p.checkpoint(&sinks).expect("checkpoint");
    }
    produced
}

fn open(engine: &Engine, db: Option<&StateDb>) -> Vec<Partition> {
    (0..PARTITIONS as i32)
        .map(|id| {
            let store = db.map_or_else(
                || PartitionStore::hot_only(id),
                |db| db.partition(id).expect("partition"),
            );
            Partition::open(id, store, engine).expect("open")
        })
        .collect()
}

fn memory_report(events: &[InputEvent]) {
    let engine = engine(u64::MAX);
    let claims_only: Vec<InputEvent> = events
        .iter()
        .filter(|e| !matches!(e, InputEvent::Encounter(_)))
        .cloned()
        .collect();
    let members_only: Vec<InputEvent> = events
        .iter()
        .filter(|e| matches!(e, InputEvent::Encounter(_)))
        .cloned()
        .collect();
    for (label, evs) in [("claim", &claims_only), ("member", &members_only)] {
        let before = LIVE.load(Ordering::Relaxed);
        let mut parts = open(&engine, None);
        drive(&engine, &mut parts, evs);
        let after = LIVE.load(Ordering::Relaxed);
        let keys: usize = parts
            .iter()
            .map(|p| {
                if label == "claim" {
                    p.claims().len()
                } else {
                    p.members().len()
                }
            })
            .sum();
        println!(
            "memory: {:.0} heap bytes per tracked {label} ({keys} {label}s, {:.1} MiB incl. timer index)",
            (after - before) as f64 / keys.max(1) as f64,
            (after - before) as f64 / (1024.0 * 1024.0)
        );
        drop(parts);
    }
}

fn bench(c: &mut Criterion) {
    let events = events();
    println!(
        "population: {MEMBERS} members, {} input events",
        events.len()
    );
    memory_report(&events);

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
            }
            total
        })
    });
    g.bench_function("hot_only", |b| {
        let engine = engine(CoreConfig::default().checkpoint_every_events);
        b.iter_batched(
            || open(&engine, None),
            |mut parts| drive(&engine, &mut parts, &events),
            BatchSize::LargeInput,
        )
    });
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
                }
                .expect("encode");
                criterion::black_box(&buf);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
