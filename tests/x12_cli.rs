//! `claimwatch x12 parse` end to end through the binary: its output replays with
//! `claimwatch replay`; a malformed transaction set goes to the dead-letter file
//! with file, ISA13 and segment position while the good ones in the same file flow.

use std::path::Path;
use std::process::Command;

use claimwatch::codec::Format;
use claimwatch::generate::write::{write_population, write_population_x12, X12_FILES};
use claimwatch::generate::{generate, GenerateConfig};
use claimwatch::model::DeadLetter;

fn claimwatch(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_claimwatch"))
        .args(args)
        .output()
        .expect("run claimwatch");
    assert!(
        out.status.success(),
        "claimwatch {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

#[test]
fn generated_x12_parses_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let g = generate(&GenerateConfig {
        members: 120,
        seed: 11,
        ..GenerateConfig::default()
    });
    write_population_x12(&g, d).unwrap();
    let files: Vec<String> = X12_FILES
        .iter()
        .map(|f| d.join(f).to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["x12", "parse"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--out", d.to_str().unwrap()]);
    let stdout = claimwatch(&args);
    assert!(stdout.contains("0 dead letters"), "{stdout}");

    assert_eq!(lines(&d.join("ehr.claims.jsonl")), g.claims.len());
    assert_eq!(lines(&d.join("x12.277ca.jsonl")), g.acks.len());
    assert_eq!(lines(&d.join("x12.835.jsonl")), g.remits.len());
    assert_eq!(lines(&d.join("x12.dead-letter.jsonl")), 0);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("remits.835.findings.json")).unwrap())
            .unwrap();
    assert_eq!(report["events"]["x12.835"], g.remits.len());
    assert_eq!(report["errors"].as_array().unwrap().len(), 0);

    let rep = dir.path().join("replay");
    claimwatch(&[
        "replay",
        "--input",
        d.to_str().unwrap(),
        "--out",
        rep.to_str().unwrap(),
    ]);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rep.join("replay-summary.json")).unwrap()).unwrap();
    assert_eq!(summary["input_records"]["ehr.claims"], g.claims.len());
    assert_eq!(summary["input_records"]["x12.277ca"], g.acks.len());
    assert_eq!(summary["input_records"]["x12.835"], g.remits.len());
    assert_eq!(
        summary["input_records"]["ehr.encounters"],
        g.encounters.len()
    );
    assert_eq!(summary["dead_letters"], 0);
    assert!(lines(&rep.join("claimwatch.claim-lifecycle.jsonl")) > 0);

    // The same population as JSON lines replays to the same repeats and paid
    // amounts: the X12 ids come from the content, so the generator's duplicate
    // claims and remittances are ignored through X12 as they are in JSON.
    let json = dir.path().join("json");
    write_population(&g, &json, Format::Json).unwrap();
    let rep_json = dir.path().join("replay-json");
    claimwatch(&[
        "replay",
        "--input",
        json.to_str().unwrap(),
        "--out",
        rep_json.to_str().unwrap(),
    ]);
    let from_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rep_json.join("replay-summary.json")).unwrap())
            .unwrap();
    assert_eq!(
        summary["duplicates_ignored"],
        from_json["duplicates_ignored"]
    );
    assert_eq!(
        summary["claims"]["paid_cents"],
        from_json["claims"]["paid_cents"]
    );
    assert_eq!(
        summary["claims"]["by_status"],
        from_json["claims"]["by_status"]
    );
}

const ISA: &str = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260121*1400*^*00501*000000042*0*P*:~\n";

#[test]
fn malformed_transaction_is_dead_lettered_and_the_rest_replays() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Transaction 0001 is good; 0002 has no SE (cut off by the next ST); 0003 is good.
    let good = |st: &str, clp: &str| {
        format!(
            "ST*835*{st}~\nBPR*I*80*C*ACH************20260121~\nTRN*1*T{st}*1~\nN1*PR*PAYER*XV*P1~\nLX*1~\n\
             CLP*{clp}*1*100*80*20*MC*PCN{st}*11*1~\nCAS*PR*2*20~\nSE*8*{st}~\n"
        )
    };
    let file = format!(
        "{ISA}GS*HP*SENDER*RECEIVER*20260121*1400*42*X*005010X221A1~\n{}ST*835*0002~\nBPR*I*0*C*ACH************20260121~\n\
         CLP*BROKEN*1*100*0*0*MC~\n{}GE*3*42~\nIEA*1*000000042~\n",
        good("0001", "GOOD-1"),
        good("0003", "GOOD-3"),
    );
    let input = d.join("mixed.835");
    std::fs::write(&input, &file).unwrap();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/x12-samples");
    let mut files = vec![input.to_string_lossy().into_owned()];
    for f in [
        "chs-cds-aiml/test.835",
        "imsweb/x12_277CA_accepted.txt",
        "linuxforhealth-x12/837_005010X222A2/demo.example1.837",
    ] {
        let p = samples.join(f);
        if p.exists() {
            files.push(p.to_string_lossy().into_owned());
        }
    }
    let out = d.join("parsed");
    let mut args = vec!["x12", "parse"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--out", out.to_str().unwrap()]);
    let stdout = claimwatch(&args);
    assert!(stdout.contains("1 dead letters"), "{stdout}");

    let dl = std::fs::read_to_string(out.join("x12.dead-letter.jsonl")).unwrap();
    let letters: Vec<DeadLetter> = dl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 1);
    let l = &letters[0];
    assert_eq!(l.error_kind, "x12_syntax");
    assert!(l.message.contains("mixed.835"), "{}", l.message);
    assert!(l.message.contains("interchange 000000042"), "{}", l.message);
    assert!(l.message.contains("missing_se"), "{}", l.message);
    // Segment 14 is the ST of 0003, where the missing SE was noticed.
    assert_eq!(l.offset, 14);
    let raw = String::from_utf8(l.payload.clone()).unwrap();
    assert!(raw.starts_with("ST*835*0002~"), "{raw}");
    assert!(raw.contains("CLP*BROKEN"));
    assert!(!raw.contains("GOOD-3"));

    // The good transaction sets of the same file flowed.
    let remits = std::fs::read_to_string(out.join("x12.835.jsonl")).unwrap();
    assert!(remits.contains("\"claim_id\":\"GOOD-1\""));
    assert!(remits.contains("\"claim_id\":\"GOOD-3\""));
    assert!(!remits.contains("BROKEN"));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("mixed.835.findings.json")).unwrap())
            .unwrap();
    assert_eq!(report["events"]["x12.835"], 2);
    assert_eq!(report["errors"][0]["code"], "missing_se");
    assert_eq!(report["errors"][0]["interchange"], "000000042");
    // GE01 says 3 sets, which is right: the broken one is counted too.
    assert!(report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["code"] != "ge01_count"));

    let rep = d.join("replay");
    claimwatch(&[
        "replay",
        "--input",
        out.to_str().unwrap(),
        "--out",
        rep.to_str().unwrap(),
    ]);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rep.join("replay-summary.json")).unwrap()).unwrap();
    let expected_remits = 2 + usize::from(files.len() > 1);
    assert_eq!(summary["input_records"]["x12.835"], expected_remits);
    assert_eq!(summary["dead_letters"], 0);
}

/// Parsing one kind of file at a time into the same directory accumulates the streams: a run
/// replaces only the stream files it gave events for (it emptied the others before), and says
/// which it kept.
#[test]
fn parsing_file_by_file_into_one_directory_keeps_the_other_streams() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let g = generate(&GenerateConfig {
        members: 60,
        seed: 5,
        ..GenerateConfig::default()
    });
    write_population_x12(&g, d).unwrap();
    let out = d.join("parsed");
    let out_s = out.to_str().unwrap();
    for file in X12_FILES {
        let path = d.join(file);
        claimwatch(&["x12", "parse", path.to_str().unwrap(), "--out", out_s]);
    }
    assert_eq!(lines(&out.join("ehr.claims.jsonl")), g.claims.len());
    assert_eq!(lines(&out.join("x12.277ca.jsonl")), g.acks.len());
    assert_eq!(lines(&out.join("x12.835.jsonl")), g.remits.len());
    // Again, the 835 alone: its stream is replaced, the other two kept and named.
    let stdout = claimwatch(&[
        "x12",
        "parse",
        d.join("remits.835").to_str().unwrap(),
        "--out",
        out_s,
    ]);
    assert!(
        stdout.contains("kept") && stdout.contains("ehr.claims.jsonl"),
        "{stdout}"
    );
    assert_eq!(lines(&out.join("ehr.claims.jsonl")), g.claims.len());
    assert_eq!(lines(&out.join("x12.835.jsonl")), g.remits.len());
    assert!(std::fs::read_dir(&out).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".partial")));
}
