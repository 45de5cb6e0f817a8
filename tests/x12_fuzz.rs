//! Robustness: arbitrary bytes and mutations of real sample files never panic and
//! do bounded work. Long fuzzing run (no nightly needed):
//!
//! `PROPTEST_CASES=1000000 CARGO_TARGET_DIR=/work/target-x12 cargo test --release --test x12_fuzz`

use claimwatch::x12::parse;
use proptest::prelude::*;

const SAMPLES: &[&[u8]] = &[
    include_bytes!("fixtures/x12/chs-cds-aiml/test.835"),
    include_bytes!("fixtures/x12/imsweb/x12_277CA_accepted.txt"),
    include_bytes!("fixtures/x12/pyx12/fail_no_IEA.source.x12"),
    include_bytes!("fixtures/x12/pyx12/mult_isa.source.x12"),
    include_bytes!("fixtures/x12/tigershark/835-example.txt"),
    include_bytes!("fixtures/x12/linuxforhealth-x12/demo.example1.837"),
    include_bytes!("fixtures/x12/linuxforhealth-x12/managed-care.835"),
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (
            any::<usize>(),
            prop::sample::select(b"*~:^|>\n\r ISAGSTE0123456789".to_vec())
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn check(bytes: &[u8]) {
    let out = parse(bytes, "fuzz");
    // Bounded work: output is linear in the input.
    let n = bytes.len() + 1;
    assert!(out.events.len() <= n);
    assert!(out.findings.len() + out.errors.len() <= 4 * n + 8);
    assert!(out.segments <= n);
}

proptest! {
    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        check(&bytes);
    }

    #[test]
    fn isa_prefixed_garbage(tail in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut b = SAMPLES[0][..106].to_vec();
        b.extend(tail);
        check(&b);
    }

    #[test]
    fn mutated_samples(which in 0..SAMPLES.len(), muts in prop::collection::vec(mutation(), 1..8)) {
        let mut b = SAMPLES[which].to_vec();
        for m in muts {
            let len = b.len().max(1);
            match m {
                Mutation::Flip(i, x) => { if !b.is_empty() { let i = i % len; b[i] ^= x.max(1); } }
                Mutation::Insert(i, x) => { let i = i % (b.len() + 1); b.insert(i, x); }
                Mutation::Delete(i) => { if !b.is_empty() { b.remove(i % len); } }
                Mutation::Truncate(i) => { b.truncate(i % len); }
            }
        }
        check(&b);
    }
}
