//! Entries and encoded bytes per state table in a stopped service's state directory (sled), for
//! telling which table's values grow over a soak: `cargo run --release --example state_sizes DIR`.

use std::collections::BTreeMap;

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
    for name in db.tree_names() {
        if !name.starts_with(b"p") {
            continue;
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
    for (prefix, (n, bytes, max)) in sizes {
        let name = names.get(&prefix).copied().unwrap_or("(checkpoint/other)");
        println!(
            "{name:<22} {n:>9} {bytes:>12} {:>10} {max:>10}",
            bytes / n.max(1)
        );
    }
}
