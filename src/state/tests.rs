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
    /// Encode some changed entries ahead of the checkpoint (what an idle task does).
    Stage(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u8..16, any::<u32>()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => (0u8..16).prop_map(Op::Delete),
        2 => any::<i64>().prop_map(Op::Checkpoint),
        1 => Just(Op::Restart),
        2 => (1usize..6).prop_map(Op::Stage),
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
                Op::Stage(n) => {
                    table.stage(n);
                    other.stage(n);
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

/// Staged entries reach the checkpoint with their latest value: staged and unchanged, staged
/// then changed again, staged then removed, removed then staged.
#[test]
fn staged_entries_checkpoint_their_latest_value() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    let store = db.partition(0).unwrap();
    let mut t: Table<u32> = Table::new("t", b't');
    for k in ["a", "b", "c", "d"] {
        t.insert(k.into(), 1);
    }
    store
        .commit(&mut [&mut t], &Checkpoint::default(), None)
        .unwrap();
    t.insert("a".into(), 2);
    t.insert("b".into(), 2);
    t.insert("c".into(), 2);
    t.remove("d");
    assert_eq!(t.stage(10), 4);
    assert_eq!(t.dirty_len(), 4, "staged entries still count as changed");
    t.insert("b".into(), 3); // changed after staging
    t.remove("c"); // removed after staging
    t.insert("e".into(), 5);
    assert_eq!(t.stage(1), 1, "the budget bounds a step");
    let mut changes = Vec::new();
    let stats = store
        .commit(&mut [&mut t], &Checkpoint::default(), Some(&mut changes))
        .unwrap();
    assert_eq!((stats.written, stats.removed), (3, 2));
    assert_eq!(t.dirty_len(), 0);
    let mut got: Vec<(String, Option<u32>)> = changes
        .iter()
        .map(|c| {
            let v = c.value.as_deref().map(|b| decode::<u32>("t", b).unwrap());
            (c.key.clone(), v)
        })
        .collect();
    got.sort();
    let want = [
        ("a", Some(2)),
        ("b", Some(3)),
        ("c", None),
        ("d", None),
        ("e", Some(5)),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    assert_eq!(got, want);
    let mut back: Table<u32> = Table::new("t", b't');
    store.load(&mut back).unwrap();
    let mut on_disk: Vec<(String, u32)> =
        back.iter().map(|e| (e.key().clone(), *e.value())).collect();
    on_disk.sort();
    assert_eq!(
        on_disk,
        [
            ("a".to_owned(), 2),
            ("b".to_owned(), 3),
            ("e".to_owned(), 5)
        ]
    );
}
