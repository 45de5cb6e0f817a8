//! Entries and encoded bytes per state table in a stopped service's state directory (sled), for
//! telling which table's values grow over a soak, and the heap the state takes once decoded into
//! the hot view (what a partition's restore from disk allocates: values, keys, hash tables, the
//! timer index), against which the service's `claimwatch_heap_live_bytes` can be set, and the
//! bytes one decoded value of the two largest tables takes (its inline size plus its own heap, no
//! key or table): `cargo run --release --example state_sizes DIR`.

use std::collections::BTreeMap;
use std::path::Path;

use claimwatch::core::{Engine, Partition};
use claimwatch::memory::{count_heap, live_heap_bytes, CountingAlloc};
use claimwatch::refdata::RefData;

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc(std::alloc::System);

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: state_sizes STATE_DIR");
        std::process::exit(2);
    };
    let db = match sled::open(&dir) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("state_sizes: cannot open {dir}: {e}");
            std::process::exit(1);
        }
    };
    let names: BTreeMap<u8, &str> = claimwatch::core::TABLES
        .iter()
        .map(|(name, prefix)| (*prefix, *name))
        .collect();
    // prefix -> (entries, value bytes, largest value)
    let mut sizes: BTreeMap<u8, (u64, u64, u64)> = BTreeMap::new();
    let mut partitions = Vec::new();
    for name in db.tree_names() {
        if !name.starts_with(b"p") {
            continue;
        }
        if let Some(p) = std::str::from_utf8(&name[1..])
            .ok()
            .and_then(|s| s.parse::<i32>().ok())
        {
            partitions.push(p);
        }
        let Ok(tree) = db.open_tree(&name) else {
            continue;
        };
        for (k, v) in tree.iter().flatten() {
            let Some(&prefix) = k.first() else { continue };
            let e = sizes.entry(prefix).or_default();
            e.0 += 1;
            e.1 += v.len() as u64;
            e.2 = e.2.max(v.len() as u64);
        }
    }
    println!(
        "{:<22} {:>9} {:>12} {:>10} {:>10}",
        "table", "entries", "bytes", "mean", "largest"
    );
    let (mut entries, mut encoded) = (0, 0);
    for (prefix, (n, bytes, max)) in sizes {
        let name = names.get(&prefix).copied().unwrap_or("(checkpoint/other)");
        println!(
            "{name:<22} {n:>9} {bytes:>12} {:>10} {max:>10}",
            bytes / n.max(1)
        );
        entries += n;
        encoded += bytes;
    }
    count_heap();
    value_bytes::<claimwatch::reconcile::ClaimState>(&db, "claims");
    value_bytes::<claimwatch::enrolment::EnrolmentState>(&db, "enrolment");
    drop(db);
    decoded(Path::new(&dir), &partitions, entries, encoded);
}

/// Decodes every value of `table` (all partitions) into a vector and prints the mean bytes one
/// takes: its inline size plus the heap it owns.
fn value_bytes<V: serde::de::DeserializeOwned>(db: &sled::Db, table: &str) {
    let Some(&(_, prefix)) = claimwatch::core::TABLES.iter().find(|(t, _)| *t == table) else {
        return;
    };
    let before = live_heap_bytes().unwrap_or(0);
    let mut values: Vec<V> = Vec::new();
    for name in db.tree_names() {
        let Ok(tree) = db.open_tree(&name) else {
            continue;
        };
        for (_, v) in tree.scan_prefix([prefix]).flatten() {
            if let Ok((value, _)) =
                bincode::serde::decode_from_slice::<V, _>(&v, bincode::config::standard())
            {
                values.push(value);
            }
        }
    }
    values.shrink_to_fit();
    let bytes = live_heap_bytes().unwrap_or(0) - before;
    println!(
        "decoded {table} values: {} of {} bytes each (inline {} + own heap)",
        values.len(),
        bytes / values.len().max(1) as i64,
        std::mem::size_of::<V>()
    );
}

/// Opens every partition as the service does after a restart and counts the heap it takes.
fn decoded(dir: &Path, partitions: &[i32], entries: u64, encoded: u64) {
    let state = match claimwatch::state::StateDb::open_with_cache(dir, 1 << 20) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("state_sizes: cannot open the state: {e}");
            return;
        }
    };
    let engine = Engine::new(Default::default(), RefData::shared());
    count_heap();
    let base = live_heap_bytes().unwrap_or(0);
    let mut open = Vec::new();
    for &p in partitions {
        let before = live_heap_bytes().unwrap_or(0);
        let part = state
            .partition(p)
            .map_err(|e| e.to_string())
            .and_then(|store| Partition::open(p, store, &engine).map_err(|e| e.to_string()));
        match part {
            Ok(part) => {
                let bytes = live_heap_bytes().unwrap_or(0) - before;
                println!("decoded partition {p}: {} MiB on the heap", bytes >> 20);
                open.push(part);
            }
            Err(e) => eprintln!("state_sizes: partition {p}: {e}"),
        }
    }
    let total = live_heap_bytes().unwrap_or(0) - base;
    println!(
        "decoded: {entries} entries, {} MiB encoded, {} MiB on the heap ({} bytes per entry; sled's reads included)",
        encoded >> 20,
        total >> 20,
        total / entries.max(1) as i64
    );
}
