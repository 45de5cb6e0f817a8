//! File replay end to end: golden determinism, stop-and-resume equivalence, dead letters.

use std::fs;
use std::path::Path;

use claimwatch::codec::Format;
use claimwatch::config::CoreConfig;
use claimwatch::model::fixtures::{ack, claim, remit, stay};
use claimwatch::model::{AdjustmentGroup::*, InputStream};
use claimwatch::replay::{files, run, ReplayOptions, OUTPUT_FILES};

fn write_inputs(dir: &Path, format: Format) {
    let mut claims = Vec::new();
    let mut acks = Vec::new();
    let mut remits = Vec::new();
    for i in 0..40 {
        let id = format!("C{i:03}");
        let day = format!("2024-03-{:02}", 1 + i % 20);
        claims.push(claim(&id, &day));
        if i % 7 != 0 {
            acks.push(ack(
                &id,
                &format!("2024-03-{:02}", 2 + i % 20),
                if i % 11 == 0 { "A7" } else { "A2" },
                "20",
            ));
        }
        if i % 5 != 0 && i % 11 != 0 {
            let adj: &[_] = if i % 6 == 0 {
                &[(CO, "197", 100_000)]
            } else {
                &[(CO, "45", 40_000), (PR, "2", 10_000)]
            };
            remits.push(remit(
                &id,
                &format!("2024-04-{:02}", 1 + i % 20),
                "1",
                if i % 6 == 0 { 0 } else { 50_000 },
                adj,
            ));
        }
    }
    let encounters = vec![
        stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023"),
        stay("M1", "E2", "F1", "2024-01-20", "2024-01-24", "01", "J189"),
        stay("M2", "E3", "F1", "2024-02-01", "2024-02-03", "02", "I214"),
        stay("M2", "E4", "F2", "2024-02-04", "2024-02-09", "01", "I214"),
        stay("M2", "E5", "F1", "2024-02-20", "2024-02-22", "01", "I214"),
    ];
    let sort = |v: &mut Vec<_>| v.sort_by_key(|e: &claimwatch::model::ClaimSubmitted| e.event_time);
    sort(&mut claims);
    acks.sort_by_key(|a| a.event_time);
    remits.sort_by_key(|r| r.event_time);
    files::write_stream(dir, InputStream::Claims, format, &claims).unwrap();
    files::write_stream(dir, InputStream::Acks, format, &acks).unwrap();
    files::write_stream(dir, InputStream::Remits, format, &remits).unwrap();
    files::write_stream(dir, InputStream::Encounters, format, &encounters).unwrap();
}

fn outputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    OUTPUT_FILES
        .iter()
        .map(|t| {
            (
                t.to_string(),
                fs::read(dir.join(format!("{t}.jsonl"))).unwrap(),
            )
        })
        .collect()
}

fn opts(input: &Path, out: &Path, state: Option<&Path>, stop_after: Option<u64>) -> ReplayOptions {
    let config = CoreConfig {
        checkpoint_every_events: 7,
        ..Default::default()
    };
    ReplayOptions {
        input: input.into(),
        out: out.into(),
        state: state.map(Into::into),
        config,
        stop_after,
        close_open_windows: true,
    }
}

/// The outputs of the fixture population are checked in: any change to what replay emits shows
/// up as a diff here. Regenerate deliberately with `UPDATE_GOLDEN=1 cargo test --test replay`.
#[test]
fn outputs_match_the_checked_in_golden_files() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir_all(&input).unwrap();
    write_inputs(&input, Format::Json);
    let out = tmp.path().join("out");
    run(&opts(&input, &out, None, None)).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for (topic, bytes) in outputs(&out) {
        let path = golden.join(format!("{topic}.jsonl"));
        if update {
            fs::create_dir_all(&golden).unwrap();
            fs::write(&path, &bytes).unwrap();
            continue;
        }
        let expected = fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
        assert!(bytes == expected, "{topic} differs from {}", path.display());
    }
}

#[test]
fn same_input_gives_byte_identical_output_in_both_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let (json_in, avro_in) = (tmp.path().join("json"), tmp.path().join("avro"));
    fs::create_dir_all(&json_in).unwrap();
    fs::create_dir_all(&avro_in).unwrap();
    write_inputs(&json_in, Format::Json);
    write_inputs(&avro_in, Format::Avro);
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let c = tmp.path().join("c");
    let ra = run(&opts(&json_in, &a, None, None)).unwrap();
    run(&opts(&json_in, &b, None, None)).unwrap();
    run(&opts(&avro_in, &c, None, None)).unwrap();
    assert_eq!(outputs(&a), outputs(&b));
    assert_eq!(
        outputs(&a),
        outputs(&c),
        "Avro and JSON inputs give the same outputs"
    );
    let s = ra.summary;
    assert_eq!(s.claims.claims, 40);
    assert_eq!(s.dead_letters, 0);
    assert_eq!(
        s.readmissions.unplanned_readmissions, 2,
        "E1->E2, and the E3/E4 transfer chain ->E5"
    );
    assert_eq!(s.readmissions.index_stays, 4);
    assert!(s.outputs["claimwatch.claim-lifecycle"] > 40);
}

#[test]
fn stopping_anywhere_and_resuming_gives_the_same_output() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir_all(&input).unwrap();
    write_inputs(&input, Format::Json);
    let whole = tmp.path().join("whole");
    let all = run(&opts(
        &input,
        &whole,
        Some(&tmp.path().join("whole-state")),
        None,
    ))
    .unwrap()
    .summary;
    let expected = outputs(&whole);
    for stop in [1u64, 13, 50, 99] {
        let out = tmp.path().join(format!("out{stop}"));
        let state = tmp.path().join(format!("state{stop}"));
        let mut rounds = 0;
        let last = loop {
            rounds += 1;
            let r = run(&opts(&input, &out, Some(&state), Some(stop))).unwrap();
            if !r.stopped_early {
                break r.summary;
            }
            assert!(rounds < 500, "replay does not make progress");
        };
        assert_eq!(outputs(&out), expected, "stopping every {stop} records");
        // The last piece's summary counts the whole replay's inputs and outputs.
        assert_eq!(
            last.input_records, all.input_records,
            "stopping every {stop}"
        );
        assert_eq!(last.outputs, all.outputs, "stopping every {stop}");
        assert_eq!(last.dead_letters, all.dead_letters);
        assert_eq!(last.claims, all.claims, "stopping every {stop}");
        assert_eq!(last.readmissions, all.readmissions, "stopping every {stop}");
        assert_eq!(last.care_gaps, all.care_gaps, "stopping every {stop}");
        assert_eq!(
            last.duplicates_ignored, all.duplicates_ignored,
            "stopping every {stop}"
        );
        // Once finished, the same state has nothing left to read: said, and nothing rewritten.
        let e = run(&opts(&input, &out, Some(&state), None)).unwrap_err();
        assert!(e.to_string().contains("nothing to replay"), "{e}");
        assert_eq!(outputs(&out), expected);
    }
}

/// A mistyped or empty input directory is refused before anything in the output directory is
/// touched: an earlier replay's outputs stay as they were.
#[test]
fn a_wrong_input_directory_leaves_earlier_outputs_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir_all(&input).unwrap();
    write_inputs(&input, Format::Json);
    let out = tmp.path().join("out");
    run(&opts(&input, &out, None, None)).unwrap();
    let before = outputs(&out);
    assert!(before.iter().any(|(_, b)| !b.is_empty()));
    let missing = run(&opts(&tmp.path().join("ni"), &out, None, None)).unwrap_err();
    assert!(missing.to_string().contains("does not exist"), "{missing}");
    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let none = run(&opts(&empty, &out, None, None)).unwrap_err();
    assert!(none.to_string().contains("no input stream files"), "{none}");
    assert_eq!(outputs(&out), before);
}

#[test]
fn bad_records_go_to_the_dead_letter_file_and_the_rest_flows() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir_all(&input).unwrap();
    write_inputs(&input, Format::Json);
    let path = files::stream_path(&input, InputStream::Claims, Format::Json);
    let mut text = fs::read_to_string(&path).unwrap();
    let good_lines = text.lines().count();
    let mut negative = claim("CNEG", "2024-03-05");
    negative.billed_cents = -5;
    text.push_str("{not json\n");
    text.push_str("{\"event_id\": \"x\"}\n");
    text.push_str(&serde_json::to_string(&negative).unwrap());
    text.push('\n');
    fs::write(&path, text).unwrap();
    let out = tmp.path().join("out");
    let r = run(&opts(&input, &out, None, None)).unwrap();
    assert_eq!(r.summary.dead_letters, 3);
    assert_eq!(r.summary.claims.claims, 40);
    let dl = fs::read_to_string(out.join("claimwatch.dead-letter.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = dl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["error_kind"], "decode");
    assert_eq!(rows[0]["offset"], good_lines as i64);
    assert_eq!(rows[2]["error_kind"], "validation");
    assert!(rows[2]["message"]
        .as_str()
        .unwrap()
        .contains("billed_cents"));
    assert!(
        !rows[2]["message"].as_str().unwrap().contains("M0001"),
        "no member id in the reason"
    );
}

/// A byte-order mark at the start of a JSON-lines file (some editors and exports write one) is
/// not a bad first record.
#[test]
fn a_byte_order_mark_is_not_a_dead_letter() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir_all(&input).unwrap();
    write_inputs(&input, Format::Json);
    let path = files::stream_path(&input, InputStream::Claims, Format::Json);
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(fs::read(&path).unwrap());
    fs::write(&path, bytes).unwrap();
    let r = run(&opts(&input, &tmp.path().join("out"), None, None)).unwrap();
    assert_eq!(r.summary.dead_letters, 0);
    assert_eq!(r.summary.claims.claims, 40);
}

/// On a generated population (duplicates, late records, readmissions, care gaps), a replay
/// stopped and resumed ends with the summary of one uninterrupted run: the counters behind it
/// live in the checkpointed state, not in the process.
#[test]
fn a_resumed_replay_summarises_like_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    claimwatch::generate::write::generate_to_dir(300, 11, &input, Format::Json).unwrap();
    let whole = run(&opts(&input, &tmp.path().join("whole"), None, None))
        .unwrap()
        .summary;
    assert!(whole.duplicates_ignored > 0 && whole.readmissions.index_stays > 0);
    let (out, state) = (tmp.path().join("out"), tmp.path().join("state"));
    let mut pieces = 0;
    let last = loop {
        pieces += 1;
        let r = run(&opts(&input, &out, Some(&state), Some(1_500))).unwrap();
        if !r.stopped_early {
            break r.summary;
        }
    };
    assert!(pieces > 2);
    assert_eq!(last.input_records, whole.input_records);
    assert_eq!(last.outputs, whole.outputs);
    assert_eq!(
        format!("{:#?}", last.claims),
        format!("{:#?}", whole.claims)
    );
    assert_eq!(last.readmissions, whole.readmissions);
    assert_eq!(last.care_gaps, whole.care_gaps);
    assert_eq!(last.duplicates_ignored, whole.duplicates_ignored);
    assert_eq!(last.dead_letters, whole.dead_letters);
}
