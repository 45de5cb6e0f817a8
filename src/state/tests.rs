//! Model-based test: random operations including checkpoints and restarts against a `BTreeMap`.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

#[derive(Clone, Debug)]
enum Op {
    Put(u8, u32),
    Delete(u8),
    Checkpoint(i64),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u8..16, any::<u32>()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => (0u8..16).prop_map(Op::Delete),
        2 => any::<i64>().prop_map(Op::Checkpoint),
        1 => Just(Op::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..proptest::test_runner::Config { failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"))), ..proptest::test_runner::Config::default() } })]
    #[test]
    fn store_matches_model_across_restarts(ops in proptest::collection::vec(op(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let mut db = StateDb::open(dir.path()).unwrap();
        let mut store = db.partition(3).unwrap();
        let mut table: Table<u32> = Table::new("t", b't');
        let mut other: Table<u32> = Table::new("o", b'o');
        // The model: what is live now, and what the last checkpoint made durable.
        let mut live = BTreeMap::new();
        let mut durable = BTreeMap::new();
        let mut durable_offset: Option<i64> = None;
        for op in ops {
            match op {
                Op::Put(k, v) => {
                    table.insert(k.to_string(), v);
                    live.insert(k.to_string(), v);
                    // A second table in the same tree must not see the first's keys.
                    other.insert(k.to_string(), v ^ 1);
                }
                Op::Delete(k) => {
                    table.remove(&k.to_string());
                    live.remove(&k.to_string());
                }
                Op::Checkpoint(offset) => {
                    let mut cp = Checkpoint::default();
                    cp.offsets.insert("in".into(), offset);
                    store.commit(&mut [&mut table, &mut other], &cp, None).unwrap();
                    durable = live.clone();
                    durable_offset = Some(offset);
                }
                Op::Restart => {
                    drop(store);
                    drop(db);
                    db = StateDb::open(dir.path()).unwrap();
                    store = db.partition(3).unwrap();
                    table = Table::new("t", b't');
                    other = Table::new("o", b'o');
                    store.load(&mut table).unwrap();
                    store.load(&mut other).unwrap();
                    live = durable.clone();
                    let cp = store.checkpoint().unwrap();
                    prop_assert_eq!(cp.map(|c| c.offsets["in"]), durable_offset);
                }
            }
            let got: BTreeMap<String, u32> = table.iter().map(|e| (e.key().clone(), *e.value())).collect();
            prop_assert_eq!(&got, &live);
        }
    }
}

#[test]
fn hot_only_store_keeps_nothing() {
    let store = PartitionStore::hot_only(0);
    let mut t: Table<u32> = Table::new("t", b't');
    t.insert("a".into(), 1);
    let stats = store
        .commit(&mut [&mut t], &Checkpoint::default(), None)
        .unwrap();
    assert_eq!(stats, CheckpointStats::default());
    assert_eq!(t.dirty_len(), 0);
    assert!(store.checkpoint().unwrap().is_none());
}

#[test]
fn corrupt_entry_is_an_error_not_a_panic() {
    let db = StateDb::temporary().unwrap();
    let store = db.partition(0).unwrap();
    store
        .tree
        .as_ref()
        .unwrap()
        .insert(b"tkey", vec![0xff; 3])
        .unwrap();
    let mut t: Table<String> = Table::new("t", b't');
    assert!(matches!(
        store.load(&mut t),
        Err(StateError::Corrupt { .. })
    ));
}
