//! Restore of one partition from changelog entries, without a broker: the part of a restore that
//! is claimwatch's own (the broker read is measured by `cargo bench --bench pipeline`).
//!
//! Takes the real claim states of a generated population (as the changelog carries them),
//! replicates them under fresh keys up to `--entries` (default 1,000,000), and times
//! (1) writing them to sled alone, (2) decoding them into the hot view alone, and
//! (3) `Partition::open_restored`, which does both on two threads and rebuilds the timers.
//!
//! Run: `cargo bench --bench restore [-- --entries N]`.

use std::collections::BTreeMap;
use std::time::Instant;

use claimwatch::core::{Partition, TABLES};
use claimwatch::state::{Checkpoint, StateDb};

mod common;
use common::{drive, engine, events, open};

fn main() {
    let n: usize = std::env::args()
        .skip_while(|a| a != "--entries")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let engine = engine(u64::MAX);
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(&dir.path().join("src")).unwrap();
    let mut parts = open(&engine, Some(&db));
    let evs = events();
    parts[0].capture_changes();
    drive(&engine, &mut parts, &evs[..evs.len() / 2]);
    parts[0].checkpoint(&BTreeMap::new()).unwrap();
    let samples: Vec<(u8, Vec<u8>)> = parts[0]
        .take_changes()
        .into_iter()
        .filter(|c| c.table == TABLES[0].0)
        .filter_map(|c| c.value.map(|v| (TABLES[0].1, v)))
        .collect();
    drop(parts);
    let entries: Vec<(u8, String, Vec<u8>)> = (0..n)
        .map(|i| {
            let (p, v) = &samples[i % samples.len()];
            (*p, format!("RESTORE-{i:09}"), v.clone())
        })
        .collect();
    let bytes: usize = entries.iter().map(|e| e.2.len()).sum();
    println!(
        "restore: {n} claim states ({} MiB, {} distinct real states)",
        bytes >> 20,
        samples.len()
    );
    let cp = Checkpoint::default();

    let db1 = StateDb::open(&dir.path().join("write-only")).unwrap();
    let t = Instant::now();
    db1.partition(0)
        .unwrap()
        .restore(
            entries
                .iter()
                .map(|(p, k, v)| (*p, k.as_str(), v.as_slice())),
            &cp,
        )
        .unwrap();
    let write = t.elapsed();
    drop(db1);

    let db2 = StateDb::open(&dir.path().join("both")).unwrap();
    let t = Instant::now();
    let mut p =
        Partition::open_restored(0, db2.partition(0).unwrap(), &engine, entries, &cp).unwrap();
    let ready = t.elapsed();
    assert_eq!(p.claims().len(), n);
    p.wait_for_restore_write().unwrap();
    let durable = t.elapsed();
    println!(
        "restore: sled write alone {:.2} s; open_restored: ready to process after {:.2} s ({:.0} entries/s: decode into the hot view + timers, disk write running beside), on disk after {:.2} s",
        write.as_secs_f64(),
        ready.as_secs_f64(),
        n as f64 / ready.as_secs_f64(),
        durable.as_secs_f64()
    );
}
