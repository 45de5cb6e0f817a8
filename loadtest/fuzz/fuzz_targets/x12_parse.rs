//! Fuzz target: the X12 tokenizer and parser on arbitrary bytes. Invariants:
//! no panic; bounded output (linear in the input); every emitted event passes
//! validation; every dead-letter range lies inside the input; the tokenizer's
//! indexed elements equal a plain split of the segment. Hangs and unbounded
//! allocation are caught by libFuzzer's -timeout and -rss_limit_mb/-malloc_limit_mb.
//!
//! bash loadtest/fuzz/run.sh [SECONDS]   (seeds the corpus, then cargo fuzz run; see the script)
#![no_main]

use claimwatch::x12::{parse, parse_interchange, tokenizer::Tokenizer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for seg in Tokenizer::new(data) {
        let e = seg.sep.element;
        for (n, want) in seg.raw.split(|&b| b == e).enumerate().take(40) {
            assert_eq!(seg.el_bytes(n), want);
        }
        assert_eq!(seg.len(), seg.raw.iter().filter(|&&b| b == e).count());
    }
    let out = parse(data, "fuzz");
    let n = data.len() + 1;
    assert!(out.events.len() <= n);
    assert!(out.findings.len() + out.errors.len() <= 4 * n + 8);
    assert!(out.segments <= n);
    for ev in &out.events {
        assert!(claimwatch::model::validate(ev).is_ok());
    }
    for err in &out.errors {
        assert!(err.range.start <= err.range.end && err.range.end <= data.len());
        let _ = err.raw(data);
    }
    let one = parse_interchange(data, "fuzz");
    assert_eq!(one.events.len(), out.events.len());
});
