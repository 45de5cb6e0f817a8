//! Identity of X12 events (content, not envelope) and money elements that cannot
//! be read (refused, never 0).
//!
//! An 835 claim payment, a 277CA claim status and an 837 claim get an event id
//! derived from their content: re-sent identical content (another file, interchange
//! or transaction set) keeps its id and the core drops it as a repeat; changed
//! content under the same control numbers gets a new id.

use std::collections::{HashMap, HashSet};

use claimwatch::generate::write::{write_population_x12, X12_FILES};
use claimwatch::generate::{generate, GenerateConfig};
use claimwatch::model::{InputEvent, Remittance};
use claimwatch::x12::{parse, ParseOutput};

const ISA: &str = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260121*1400*^*00501*000000007*0*P*:~";

/// One interchange of one group holding the given transaction sets (bodies
/// without ST/SE), numbered 0001, 0002, ...
fn interchange(isa: &str, ctrl: &str, set: &str, version: &str, sets: &[&[&str]]) -> String {
    let gs = match set {
        "835" => "HP",
        "277" => "HN",
        _ => "HC",
    };
    let mut out = vec![
        isa.replace("000000007", ctrl),
        format!("GS*{gs}*SENDER*RECEIVER*20260121*1400*7*X*{version}~"),
    ];
    for (i, body) in sets.iter().enumerate() {
        let st = format!("{:04}", i + 1);
        out.push(format!("ST*{set}*{st}~"));
        out.extend(body.iter().map(|s| format!("{s}~")));
        out.push(format!("SE*{}*{st}~", body.len() + 2));
    }
    out.push(format!("GE*{}*7~", sets.len()));
    out.push(format!("IEA*1*{ctrl}~"));
    out.join("")
}

fn x835(ctrl: &str, sets: &[&[&str]]) -> String {
    interchange(ISA, ctrl, "835", "005010X221A1", sets)
}

fn remits(o: &ParseOutput) -> Vec<&Remittance> {
    o.events
        .iter()
        .filter_map(|e| match e {
            InputEvent::Remit(r) => Some(r),
            _ => None,
        })
        .collect()
}

const PAYMENT: &[&str] = &[
    "BPR*I*945*C*ACH************20260121",
    "TRN*1*7170066655*1935665544",
    "N1*PR*RUSHMORE LIFE*XV*P1",
    "LX*1",
    "CLP*5554555444*1*800*450*300*12*94060555410000",
    "CAS*CO*A2*50",
    "SVC*HC:99211*800*500",
    "DTM*472*20260110",
    "CAS*PR*1*300",
    "CLP*8765432112*1*1200*495*600*12*94077799230000",
    "CAS*CO*A2*55",
    "SVC*HC:93555*1200*550",
    "CAS*PR*1*600",
    "CAS*CO*45*50",
];

fn changed(body: &[&str], from: &str, to: &str) -> Vec<String> {
    let out: Vec<String> = body.iter().map(|s| s.replacen(from, to, 1)).collect();
    assert_ne!(out, body, "{from} not found");
    out
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_resent_identical_payment_keeps_its_id() {
    let a = parse(x835("000000007", &[PAYMENT]).as_bytes(), "a");
    let a = remits(&a);
    assert_eq!(a.len(), 2);
    assert!(a[0].event_id.starts_with("835:7170066655:5554555444:"));
    assert_ne!(a[0].event_id, a[1].event_id);

    // Re-sent: another interchange, other separators, CR/LF, in its own second ST
    // after an unrelated set: the same ids.
    let other = changed(PAYMENT, "5554555444*1*800", "1111111111*1*800");
    let resent = interchange(
        ISA,
        "000000099",
        "835",
        "005010X221A1",
        &[&strs(&other), PAYMENT],
    )
    .replace('~', "~\r\n")
    .replace('*', "|")
    .replace("|^|", "|!|")
    .replace("|:~", "|>~")
    .replace("HC:", "HC>");
    let b = parse(resent.as_bytes(), "b");
    assert!(b.errors.is_empty(), "{:?}", b.errors);
    let b = remits(&b);
    assert_eq!(b.len(), 4);
    assert_eq!(b[2].event_id, a[0].event_id);
    assert_eq!(b[3].event_id, a[1].event_id);
    assert_ne!(b[0].event_id, a[0].event_id);

    // The same set twice in one interchange (a duplicate ST): one identity.
    let twice = parse(x835("000000008", &[PAYMENT, PAYMENT]).as_bytes(), "t");
    let ids: HashSet<&str> = remits(&twice).iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids.len(), 2);
}

#[test]
fn changed_content_under_the_same_envelope_gets_a_new_id() {
    let a = parse(x835("000000907", &[PAYMENT]).as_bytes(), "a");
    let a = remits(&a);
    for (from, to) in [
        ("*800*450*", "*800*150*"),                   // CLP04
        ("CAS*CO*A2*50", "CAS*CO*A2*51"),             // claim CAS amount
        ("DTM*472*20260110", "DTM*472*20260111"),     // line date
        ("*12*94060555410000", "*12*94060555410001"), // CLP07
    ] {
        let b = changed(PAYMENT, from, to);
        let b = parse(x835("000000907", &[&strs(&b)]).as_bytes(), "b");
        let b = remits(&b);
        assert_eq!(b.len(), 2);
        assert_ne!(b[0].event_id, a[0].event_id, "{from} -> {to}");
        // The other claim payment of the set did not change.
        assert_eq!(b[1].event_id, a[1].event_id, "{from} -> {to}");
    }
    // Another check/EFT (TRN02) or another payer: another payment.
    for (from, to) in [("TRN*1*7170066655", "TRN*1*7170066656"), ("XV*P1", "XV*P2")] {
        let b = changed(PAYMENT, from, to);
        let b = parse(x835("000000907", &[&strs(&b)]).as_bytes(), "b");
        let b = remits(&b);
        assert_ne!(b[0].event_id, a[0].event_id, "{from} -> {to}");
        assert_ne!(b[1].event_id, a[1].event_id, "{from} -> {to}");
    }
}

#[test]
fn the_public_sample_with_one_amount_changed_is_not_a_duplicate() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/x12-samples/linuxforhealth-x12/835_005010X221A1/managed-care.835");
    let Ok(a) = std::fs::read_to_string(&p) else {
        eprintln!("{} not present; skipping", p.display());
        return;
    };
    let b = a.replacen("*800.00*450.00*", "*800.00*150.00*", 1);
    assert_ne!(a, b);
    let (oa, ob) = (parse(a.as_bytes(), "a"), parse(b.as_bytes(), "b"));
    let (ra, rb) = (remits(&oa), remits(&ob));
    assert_eq!((ra.len(), rb.len()), (2, 2));
    assert_ne!(ra[0].event_id, rb[0].event_id);
    assert_eq!(ra[1].event_id, rb[1].event_id);
    // The id carries no member id or name (NM1*QC).
    assert!(!ra[0].event_id.contains("33344555510"));
    assert!(ra.iter().all(|r| r.event_id.len() <= 80));
}

#[test]
fn a_reversal_is_not_a_repeat_of_the_payment_it_retracts() {
    let reversal = [
        "BPR*I*-450*C*ACH************20260121",
        "TRN*1*7170066655*1935665544",
        "N1*PR*RUSHMORE LIFE*XV*P1",
        "CLP*5554555444*22*-800*-450*-300*12*94060555410000",
    ];
    let a = parse(x835("000000007", &[PAYMENT]).as_bytes(), "a");
    let b = parse(x835("000000008", &[&reversal]).as_bytes(), "b");
    assert_ne!(remits(&a)[0].event_id, remits(&b)[0].event_id);
}

#[test]
fn an_unreadable_clp04_refuses_the_claim_payment_instead_of_paying_0() {
    let body = changed(PAYMENT, "*800*450*", "*800*12O.50*");
    let o = parse(x835("000000007", &[&strs(&body)]).as_bytes(), "bad");
    let r = remits(&o);
    // Only the other claim payment of the set is emitted.
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].claim_id, "8765432112");
    assert_eq!(o.errors.len(), 1, "{:?}", o.errors);
    let e = &o.errors[0];
    assert_eq!(e.code, "bad_amount");
    assert!(e.message.contains("CLP04"), "{}", e.message);
    assert!(e.message.contains("12O.50"), "{}", e.message);
    assert!(
        !e.message.contains("5554555444"),
        "claim id in {}",
        e.message
    );
    // Located at the CLP segment (ISA=1, GS=2, ST=3, BPR..LX=4..7, CLP=8) and
    // carrying the transaction set for the dead-letter output.
    assert_eq!(e.segment, 8);
    let raw =
        String::from_utf8_lossy(e.raw(x835("000000007", &[&strs(&body)]).as_bytes())).into_owned();
    assert!(
        raw.starts_with("ST*835*0001~") && raw.ends_with("SE*16*0001"),
        "{raw}"
    );
    // The transaction balance cannot be checked against an unreadable CLP04.
    assert!(o.findings.iter().all(|f| f.code != "transaction_balance"));
}

#[test]
fn every_required_amount_refuses_and_optional_quantities_are_absent() {
    for (from, to, element) in [
        ("*800*450*300*", "*8OO*450*300*", "CLP03"),
        ("*800*450*300*", "*800*450*3,00*", "CLP05"),
        ("CAS*CO*A2*50", "CAS*CO*A2*5O", "CAS03"),
        ("CAS*PR*1*300", "CAS*PR*1*300*1*45*x", "CAS06"),
        ("SVC*HC:99211*800*500", "SVC*HC:99211*$800*500", "SVC02"),
        ("SVC*HC:99211*800*500", "SVC*HC:99211*800*", "SVC03"),
    ] {
        let body = changed(PAYMENT, from, to);
        let o = parse(x835("000000007", &[&strs(&body)]).as_bytes(), "bad");
        assert_eq!(remits(&o).len(), 1, "{element}");
        assert_eq!(o.errors.len(), 1, "{element}: {:?}", o.errors);
        assert_eq!(o.errors[0].code, "bad_amount");
        assert!(
            o.errors[0].message.contains(element),
            "{}",
            o.errors[0].message
        );
    }
    // Unreadable quantities (CAS04, SVC05): findings, absent, the payment flows.
    let body = changed(PAYMENT, "SVC*HC:99211*800*500", "SVC*HC:99211*800*500**1O");
    let body = changed(&strs(&body), "CAS*CO*A2*50", "CAS*CO*A2*50*two");
    let o = parse(x835("000000007", &[&strs(&body)]).as_bytes(), "q");
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    let r = remits(&o);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].paid_cents, 45_000);
    assert_eq!(r[0].lines[0].units, None);
    assert_eq!(r[0].adjustments[0].quantity, None);
    assert_eq!(
        o.findings
            .iter()
            .filter(|f| f.code == "bad_quantity")
            .count(),
        2
    );
    assert!(r[0].findings.iter().any(|f| f.starts_with("bad_quantity")));
}

#[test]
fn unreadable_bpr02_and_plb_amounts_are_findings_not_zero() {
    let mut body = changed(PAYMENT, "BPR*I*945*", "BPR*I*94S*");
    let o = parse(x835("000000007", &[&strs(&body)]).as_bytes(), "bpr");
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(remits(&o).len(), 2);
    assert!(o.findings.iter().any(|f| f.code == "bad_amount"));
    // Not checked against 0 (which would flag every claim).
    assert!(o.findings.iter().all(|f| f.code != "transaction_balance"));
    assert!(remits(&o).iter().all(|r| r
        .findings
        .iter()
        .all(|f| !f.starts_with("transaction_balance"))));

    body = PAYMENT.iter().map(|s| s.to_string()).collect();
    body[0] = "BPR*I*935*C*ACH************20260121".into();
    body.push("PLB*1234567890*20261231*WO:REF1*10*L6*X".into());
    let o = parse(x835("000000007", &[&strs(&body)]).as_bytes(), "plb");
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(o.plb.len(), 1);
    assert_eq!(o.plb[0].amount_cents, 1_000);
    assert!(o
        .findings
        .iter()
        .any(|f| f.code == "bad_amount" && f.message.contains("PLB06")));
    assert!(o.findings.iter().all(|f| f.code != "transaction_balance"));
}

const ISA277: &str = ISA;

fn ack_sets(stc: &str) -> Vec<String> {
    [
        "BHT*0085*08*0001*20260121*0000*TH",
        "HL*1**20*1",
        "NM1*PR*2*PAYER*****PI*P1",
        "HL*2*1*21*1",
        "NM1*41*2*RECEIVER",
        "HL*3*2*19*1",
        "NM1*85*2*PROVIDER",
        "HL*4*3*PT",
        "TRN*2*CLAIM-1",
        stc,
        "REF*1K*ICN1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn acks_and_claims_are_identified_by_content_too() {
    let ack = |ctrl: &str, stc: &str| {
        let b = ack_sets(stc);
        let o = parse(
            interchange(ISA277, ctrl, "277", "005010X214", &[&strs(&b)]).as_bytes(),
            "a",
        );
        assert!(o.errors.is_empty(), "{:?}", o.errors);
        match &o.events[..] {
            [InputEvent::Ack(a)] => a.event_id.clone(),
            e => panic!("{e:?}"),
        }
    };
    let a2 = ack("000000001", "STC*A2:20*20260121*WQ*100");
    assert!(a2.starts_with("277:CLAIM-1:"), "{a2}");
    assert_eq!(a2, ack("000000002", "STC*A2:20*20260121*WQ*100"));
    assert_ne!(a2, ack("000000001", "STC*A3:21*20260121*WQ*100"));
    assert_ne!(a2, ack("000000001", "STC*A2:20*20260122*WQ*100"));

    let claim = |ctrl: &str, clm: &str| {
        let b = [
            "BHT*0019*00*0001*20260121*0000*CH",
            "NM1*41*2*SUBMITTER*****46*S",
            "HL*1**20*1",
            "NM1*85*2*PROVIDER*****XX*1234567893",
            "HL*2*1*22*0",
            "SBR*P*18*******CI",
            "NM1*IL*1*DOE*JOHN****MI*M1",
            "NM1*PR*2*PAYER*****PI*P1",
            clm,
            "DTP*434*D8*20260110",
            "HI*ABK:J189",
            "LX*1",
            "SV1*HC:99213*100*UN*1",
        ];
        let o = parse(
            interchange(ISA, ctrl, "837", "005010X222A2", &[&b]).as_bytes(),
            "c",
        );
        assert!(o.errors.is_empty(), "{:?}", o.errors);
        match &o.events[..] {
            [InputEvent::Claim(c)] => c.event_id.clone(),
            e => panic!("{e:?}"),
        }
    };
    let original = claim("000000001", "CLM*C1*100***11:B:1*Y*A*Y*Y");
    assert!(original.starts_with("837:C1:1:"), "{original}");
    assert_eq!(original, claim("000000005", "CLM*C1*100***11:B:1*Y*A*Y*Y"));
    // A replacement or a void is never a repeat of the original.
    let replacement = claim("000000001", "CLM*C1*100***11:B:7*Y*A*Y*Y");
    assert!(replacement.starts_with("837:C1:7:"), "{replacement}");
    assert_ne!(claim("000000001", "CLM*C1*100***11:B:8*Y*A*Y*Y"), original);
    // An unreadable billed amount refuses the claim.
    let b = [
        "BHT*0019*00*0001*20260121*0000*CH",
        "CLM*C1*1OO***11:B:1*Y*A*Y*Y",
    ];
    let o = parse(
        interchange(ISA, "000000001", "837", "005010X222A2", &[&b]).as_bytes(),
        "c",
    );
    assert!(o.events.is_empty());
    assert_eq!(o.errors.len(), 1);
    assert!(
        o.errors[0].message.contains("CLM02"),
        "{}",
        o.errors[0].message
    );
}

/// Repeats per stream: events whose (claim id, event id) was seen before, which is
/// what the core ignores (it deduplicates a claim's records by event id).
fn repeats<'a>(events: impl Iterator<Item = (&'a str, &'a str)>) -> usize {
    let mut seen = HashSet::new();
    events.filter(|k| !seen.insert(*k)).count()
}

#[test]
fn generated_x12_has_the_same_repeats_as_the_generated_events() {
    let dir = tempfile::tempdir().unwrap();
    let g = generate(&GenerateConfig {
        members: 300,
        seed: 42,
        ..GenerateConfig::default()
    });
    write_population_x12(&g, dir.path()).unwrap();
    let mut parsed: Vec<InputEvent> = Vec::new();
    for f in X12_FILES {
        let o = parse(&std::fs::read(dir.path().join(f)).unwrap(), f);
        assert!(o.errors.is_empty(), "{f}: {:?}", o.errors);
        parsed.extend(o.events);
    }
    let mut x12: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for e in &parsed {
        let (k, c) = match e {
            InputEvent::Claim(c) => ("claims", c.claim_id.as_str()),
            InputEvent::Ack(a) => ("acks", a.claim_id.as_str()),
            InputEvent::Remit(r) => ("remits", r.claim_id.as_str()),
            _ => continue,
        };
        x12.entry(k).or_default().push((c, e.event_id()));
    }
    let json = [
        (
            "claims",
            repeats(
                g.claims
                    .iter()
                    .map(|c| (c.claim_id.as_str(), c.event_id.as_str())),
            ),
        ),
        (
            "acks",
            repeats(
                g.acks
                    .iter()
                    .map(|a| (a.claim_id.as_str(), a.event_id.as_str())),
            ),
        ),
        (
            "remits",
            repeats(
                g.remits
                    .iter()
                    .map(|r| (r.claim_id.as_str(), r.event_id.as_str())),
            ),
        ),
    ];
    let mut total = 0;
    for (k, want) in json {
        let got = repeats(x12.remove(k).unwrap_or_default().into_iter());
        assert_eq!(got, want, "{k}");
        total += want;
    }
    assert!(total > 0, "the population should hold duplicates");
}
