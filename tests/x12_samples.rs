//! Sample files: every file in ../shared/x12-samples parses; concrete values read
//! by hand from the fixtures copied into tests/fixtures/x12.

use claimwatch::model::{parse_day, AdjustmentGroup, InputEvent};
use claimwatch::x12::{parse, ParseOutput};

fn fixture(p: &str) -> ParseOutput {
    let path = format!("{}/tests/fixtures/x12/{p}", env!("CARGO_MANIFEST_DIR"));
    parse(&std::fs::read(&path).unwrap(), p)
}

fn remits(o: &ParseOutput) -> Vec<&claimwatch::model::Remittance> {
    o.events
        .iter()
        .filter_map(|e| match e {
            InputEvent::Remit(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "maps") {
                walk(&p, out);
            }
        } else {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if !name.contains("LICENSE") && !name.ends_with(".md") && !name.ends_with(".xml") {
                out.push(p);
            }
        }
    }
}

#[test]
fn every_shared_sample_parses() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/x12-samples");
    let mut files = Vec::new();
    walk(&root, &mut files);
    if files.is_empty() {
        eprintln!("../shared/x12-samples not present; skipping");
        return;
    }
    for f in files {
        let b = std::fs::read(&f).unwrap();
        let o = parse(&b, &f.to_string_lossy());
        let name = f.to_string_lossy();
        assert!(o.interchanges >= 1, "{name}: no interchange");
        if name.contains("fail_no_IEA") {
            assert!(o.findings.iter().any(|e| e.code == "missing_iea"), "{name}");
        }
        assert!(o.errors.is_empty(), "{name}: {:?}", o.errors);
        let is_4010 = name.contains("pyx12");
        if (name.ends_with(".835") || name.contains("835-example")) && !is_4010 {
            assert!(!remits(&o).is_empty(), "{name}: no remittance");
        }
        if name.contains("837") {
            assert!(
                o.events.iter().any(|e| matches!(e, InputEvent::Claim(_))),
                "{name}: no claim"
            );
        }
    }
}

#[test]
fn chs_835_values() {
    let o = fixture("chs-cds-aiml/test.835");
    let r = remits(&o);
    assert_eq!(r.len(), 1);
    let c = r[0];
    // Content identity: trace, claim id, 16 hex digits of the loop's hash.
    let (head, hash) = c.event_id.rsplit_once(':').unwrap();
    assert_eq!(head, "835:CHK12345:PATIENTACCOUNT01");
    assert!(hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(c.claim_id, "PATIENTACCOUNT01");
    assert_eq!(c.claim_status, "1");
    assert_eq!(c.charge_cents, 200_000);
    assert_eq!(c.paid_cents, 150_050);
    assert_eq!(c.patient_responsibility_cents, 49_950);
    assert_eq!(c.claim_filing_indicator.as_deref(), Some("15"));
    assert_eq!(c.payer_claim_control_number.as_deref(), Some("CLAIM12345"));
    assert_eq!(c.facility_code.as_deref(), Some("11"));
    assert_eq!(c.frequency.as_deref(), Some("1"));
    assert_eq!(c.payer_id, "FAKE PAYER INC");
    assert_eq!(c.payment_trace.as_deref(), Some("CHK12345"));
    assert_eq!(c.payment_date, parse_day("20260121").unwrap());
    assert_eq!(c.adjustments.len(), 1);
    assert_eq!(c.adjustments[0].group, AdjustmentGroup::PR);
    assert_eq!(c.adjustments[0].reason, "2");
    assert_eq!(c.adjustments[0].amount_cents, 49_950);
    assert_eq!(c.lines.len(), 2);
    assert_eq!(c.lines[0].procedure_code, "99214");
    assert_eq!(c.lines[0].charge_cents, 120_000);
    assert_eq!(c.lines[0].paid_cents, 80_000);
    assert_eq!(c.lines[0].units, Some(1.0));
    assert_eq!(c.lines[0].service_date, parse_day("20260115"));
    assert_eq!(c.lines[1].adjustments[0].group, AdjustmentGroup::CO);
    assert_eq!(c.lines[1].adjustments[0].reason, "45");
    assert_eq!(c.lines[1].adjustments[0].amount_cents, 9_950);
    // Lines balance; the claim does not (claim CAS PR2 499.50 plus line CAS 499.50).
    assert!(!c.findings.iter().any(|f| f.starts_with("line_balance")));
    assert!(c
        .findings
        .iter()
        .any(|f| f == "claim_balance: CLP03-CAS 1001.00 != CLP04 1500.50"));
    // The sample's SE01 says 17 for 16 segments.
    assert!(o
        .findings
        .iter()
        .any(|f| f.code == "se01_count" && f.interchange == "000000001"));
}

#[test]
fn tigershark_835_plb_and_separators() {
    let o = fixture("tigershark/835-example.txt");
    let r = remits(&o);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].charge_cents, 20_002);
    assert_eq!(r[1].charge_cents, 2_327_656);
    assert_eq!(r[1].paid_cents, 1_200_065);
    assert_eq!(o.plb.len(), 1);
    assert_eq!(o.plb[0].reason, "WO");
    assert_eq!(o.plb[0].amount_cents, -36_119);
    assert_eq!(o.plb[0].provider_id, "743238060");
    assert!(o.findings.iter().any(|f| f.code == "transaction_balance"));
    assert!(r[0]
        .findings
        .iter()
        .any(|f| f.starts_with("transaction_balance: BPR02 12345.67")));
}

#[test]
fn managed_care_impossible_bpr16() {
    let o = fixture("linuxforhealth-x12/managed-care.835");
    let r = remits(&o);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].charge_cents, 80_000);
    assert_eq!(r[0].paid_cents, 45_000);
    assert_eq!(r[0].adjustments[0].reason, "A2");
    assert!(o
        .findings
        .iter()
        .any(|f| f.code == "bad_date" && f.message.contains("20002316")));
}

#[test]
fn imsweb_277ca_values() {
    let o = fixture("imsweb/x12_277CA_accepted.txt");
    assert!(o.errors.is_empty());
    let acks: Vec<_> = o
        .events
        .iter()
        .filter_map(|e| match e {
            InputEvent::Ack(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(acks.len(), 1);
    let a = acks[0];
    assert_eq!(a.claim_id, "5781");
    assert_eq!(a.payer_id.as_deref(), Some("141797357"));
    assert_eq!(
        a.payer_claim_control_number.as_deref(),
        Some("1107000000014420")
    );
    assert_eq!(a.statuses.len(), 1);
    assert_eq!(a.statuses[0].category, "A2");
    assert_eq!(a.statuses[0].code, "20");
    assert_eq!(a.billed_cents, Some(12_500));
    assert_eq!(a.ack_date, parse_day("20110311").unwrap());
}

/// Every transaction set of the interchange closed with its SE and its events flowed: the missing
/// IEA is a located finding, not a dead letter that would repeat them (a truncated interchange,
/// which loses a set, is an error: `x12_edge`).
#[test]
fn no_iea_with_every_set_complete_is_a_located_finding() {
    let o = fixture("pyx12/fail_no_IEA.source.x12");
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    let f = o.findings.iter().find(|e| e.code == "missing_iea").unwrap();
    assert_eq!(f.interchange, "000010121");
    assert!(f.segment > 0);
    assert!(f.message.contains("000010121"));
}

#[test]
fn mult_isa_envelopes() {
    let o = fixture("pyx12/mult_isa.source.x12");
    assert!(o.interchanges >= 2);
    assert!(o.errors.is_empty(), "{:?}", o.errors);
}

#[test]
fn demo_837p_values() {
    let o = fixture("linuxforhealth-x12/demo.example1.837");
    let c = o
        .events
        .iter()
        .find_map(|e| match e {
            InputEvent::Claim(c) => Some(c),
            _ => None,
        })
        .unwrap();
    assert_eq!(c.claim_id, "26463774");
    assert_eq!(c.billed_cents, 10_000);
    assert_eq!(c.member_id, "JS00111223333");
    assert_eq!(c.payer_id, "999996666");
    assert_eq!(c.provider_id, "1912301953");
    assert_eq!(c.place_of_service.as_deref(), Some("11"));
    assert_eq!(
        c.diagnosis_codes,
        vec!["0340".to_string(), "V7389".to_string()]
    );
    assert_eq!(c.lines.len(), 4);
    assert_eq!(c.lines[0].procedure_code, "99213");
    assert_eq!(c.lines[0].charge_cents, 4_000);
    assert_eq!(c.service_date, parse_day("20061003").unwrap());
    assert_eq!(c.department, "UNKNOWN");
    assert_eq!(c.expected_cents, None);
}

/// Reads a file of `../shared/x12-samples` directly (None when the folder is absent).
fn shared(p: &str) -> Option<ParseOutput> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/x12-samples")
        .join(p);
    let Ok(b) = std::fs::read(&path) else {
        eprintln!("{} not present; skipping", path.display());
        return None;
    };
    Some(parse(&b, p))
}

fn claims(o: &ParseOutput) -> Vec<&claimwatch::model::ClaimSubmitted> {
    o.events
        .iter()
        .filter_map(|e| match e {
            InputEvent::Claim(c) => Some(c),
            _ => None,
        })
        .collect()
}

fn acks(o: &ParseOutput) -> Vec<&claimwatch::model::ClaimAck> {
    o.events
        .iter()
        .filter_map(|e| match e {
            InputEvent::Ack(a) => Some(a),
            _ => None,
        })
        .collect()
}

#[test]
fn medicare_part_a_plb_balances() {
    let Some(o) = shared("linuxforhealth-x12/835_005010X221A1/medicare-part-a.835") else {
        return;
    };
    assert!(
        o.errors.is_empty() && o.findings.is_empty(),
        "{:?}",
        o.findings
    );
    let r = remits(&o);
    assert_eq!(r.len(), 2);
    // CLP*666123*1*211366.97*138018.40**MA*1999999444444*11*1 / CAS*CO*45*73348.57
    assert_eq!(r[0].claim_id, "666123");
    assert_eq!(r[0].charge_cents, 21_136_697);
    assert_eq!(r[0].paid_cents, 13_801_840);
    assert_eq!(r[0].claim_filing_indicator.as_deref(), Some("MA"));
    assert_eq!(
        r[0].payer_claim_control_number.as_deref(),
        Some("1999999444444")
    );
    assert_eq!(r[0].adjustments[0].group, AdjustmentGroup::CO);
    assert_eq!(r[0].adjustments[0].reason, "45");
    assert_eq!(r[0].adjustments[0].amount_cents, 7_334_857);
    // No N104 on N1*PR: the payer id is REF*2U.
    assert_eq!(r[0].payer_id, "999");
    assert_eq!(r[0].payment_trace.as_deref(), Some("12345"));
    assert_eq!(r[0].payment_date, parse_day("20020913").unwrap());
    // CLP*777777*1*15000.00*11980.33**MB*1999999444445*13*1 / MOA***MA02
    assert_eq!(r[1].facility_code.as_deref(), Some("13"));
    assert_eq!(r[1].remarks, vec!["MA02".to_string()]);
    assert!(
        r.iter().all(|c| c.findings.is_empty()),
        "{:?}",
        r[1].findings
    );
    // PLB*6543210903*20021231*CV:CP*-1.27: BPR02 150000.00 = 138018.40 + 11980.33 + 1.27.
    assert_eq!(o.plb.len(), 1);
    assert_eq!(o.plb[0].provider_id, "6543210903");
    assert_eq!(o.plb[0].reason, "CV");
    assert_eq!(o.plb[0].reference.as_deref(), Some("CP"));
    assert_eq!(o.plb[0].amount_cents, -127);
    assert_eq!(o.plb[0].fiscal_period_date, parse_day("20021231"));
}

#[test]
fn pyx12_denied_claim_line_cas_and_lq() {
    let Some(o) = shared("pyx12/835_mult_loops.txt") else {
        return;
    };
    assert!(
        o.errors.is_empty() && o.findings.is_empty(),
        "{:?}",
        o.findings
    );
    let r = remits(&o);
    assert_eq!(r.len(), 1);
    let c = r[0];
    assert_eq!(c.claim_id, "2005555A");
    assert_eq!(c.claim_status, "4");
    assert_eq!(c.charge_cents, 91_539);
    assert_eq!(c.paid_cents, 0);
    assert_eq!(c.payer_id, "PAYER");
    assert!(c.adjustments.is_empty());
    assert_eq!(c.lines.len(), 3);
    let l0 = &c.lines[0];
    assert_eq!(l0.procedure_code, "T1005");
    assert_eq!(l0.charge_cents, 50_004);
    assert_eq!(l0.units, Some(68.0));
    assert_eq!(l0.service_date, parse_day("20031129"));
    assert_eq!(l0.adjustments[0].group, AdjustmentGroup::CO);
    assert_eq!(l0.adjustments[0].reason, "16");
    assert_eq!(l0.remarks, vec!["N14".to_string()]);
    assert_eq!(c.lines[1].adjustments[0].group, AdjustmentGroup::OA);
    assert_eq!(c.lines[1].adjustments[0].reason, "A7");
    assert_eq!(c.lines[2].adjustments[0].amount_cents, 28_755);
    // Every level balances; the only findings are the code-set warnings for A7, a
    // CARC that is no longer in the published list (refdata/data/carc.csv).
    assert_eq!(
        c.findings,
        vec!["unknown_carc: OA-A7 is not in the CARC table".to_string(); 2]
    );
}

#[test]
fn pyx12_reversal_and_transaction_imbalance() {
    let Some(o) = shared("pyx12/835id.source.x12") else {
        return;
    };
    let r = remits(&o);
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].claim_status, "22");
    assert!(r[0].is_reversal());
    assert_eq!(r[0].charge_cents, -31_000);
    assert_eq!(r[0].paid_cents, -21_000);
    assert_eq!(r[1].claim_status, "1");
    assert_eq!(r[1].paid_cents, 20_000);
    assert_eq!(r[2].paid_cents, -50_025);
    assert_eq!(o.plb.len(), 3);
    assert_eq!(
        o.plb.iter().map(|p| p.amount_cents).sum::<i64>(),
        -100_810 + 2_421 + 595
    );
    // SOURCES.md: this sample does not balance at the transaction level.
    assert!(o.findings.iter().any(|f| f.code == "transaction_balance"));
}

#[test]
fn x212_claim_status_levels() {
    let Some(o) = shared("linuxforhealth-x12/277_005010X212/claim-level-status.277") else {
        return;
    };
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    let a = acks(&o);
    assert_eq!(a.len(), 3);
    // HL*4*3*22*0 ... TRN*2*ABCXYZ1 / STC*P3:317*20050913**8513.88 / REF*1K / REF*EJ*SM123456
    assert_eq!(a[0].claim_id, "SM123456");
    assert_eq!(a[0].payer_id.as_deref(), Some("12345"));
    assert_eq!(a[0].statuses[0].category, "P3");
    assert_eq!(a[0].statuses[0].code, "317");
    assert_eq!(a[0].billed_cents, Some(851_388));
    assert_eq!(a[0].ack_date, parse_day("20050913").unwrap());
    assert_eq!(
        a[0].payer_claim_control_number.as_deref(),
        Some("05347006051")
    );
    assert_eq!(a[1].claim_id, "J0234567");
    assert_eq!(a[1].statuses[0].category, "F0");
    assert_eq!(a[1].statuses[0].code, "3");
    // The third claim sits under a dependent (HL 23) of subscriber HL*7 (HL04 = 1).
    assert_eq!(a[2].statuses[0].category, "F2");
    assert_eq!(a[2].statuses[0].entity.as_deref(), Some("QC"));
}

#[test]
fn x212_receiver_and_provider_level_errors_are_not_claims() {
    let Some(o) = shared("linuxforhealth-x12/277_005010X212/information-receiver-level-status.277")
    else {
        return;
    };
    assert!(o.events.is_empty());
    assert!(o.errors.is_empty());
    let Some(o) = shared("linuxforhealth-x12/277_005010X212/provider-level-status.277") else {
        return;
    };
    let a = acks(&o);
    // Only HL 4 is a claim; the provider-level E0 of HL 5 (no claims under it) is not.
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].claim_id, "SM123456");
    assert_eq!(a[0].statuses.len(), 1);
}

#[test]
fn cob_837_keeps_the_destination_payer_and_subscriber() {
    let Some(o) = shared("linuxforhealth-x12/837_005010X222A2/demo.cob.example4.837") else {
        return;
    };
    assert!(
        o.errors.is_empty() && o.findings.is_empty(),
        "{:?}",
        o.findings
    );
    let c = claims(&o);
    assert_eq!(c.len(), 1);
    // 2000B SBR*S ... MB, 2010BA NM1*IL ... MI*102200221B1, 2010BB NM1*PR*2*MEDICARE*****PI*10234;
    // the 2320/2330 loop (SBR*P ... COMMERCE, NM1*IL ... COM188-404777, NM1*PR ... 59999) is the
    // other payer and must not replace them.
    assert_eq!(c[0].claim_id, "101KEN6055");
    assert_eq!(c[0].payer_id, "10234");
    assert_eq!(c[0].member_id, "102200221B1");
    assert_eq!(
        c[0].payer_category,
        claimwatch::model::PayerCategory::Medicare
    );
    assert_eq!(c[0].billed_cents, 12_000);
    assert_eq!(c[0].diagnosis_codes, vec!["71516", "71906"]);
    assert_eq!(c[0].lines.len(), 1);
    assert_eq!(c[0].lines[0].procedure_code, "99203");
    assert_eq!(c[0].lines[0].modifiers, vec!["25"]);
    assert_eq!(c[0].lines[0].service_date, parse_day("20050119"));
}

#[test]
fn institutional_837_two_claims() {
    let Some(o) = shared("linuxforhealth-x12/837_005010X223A3/two-claims-single-provider.837i")
    else {
        return;
    };
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    let c = claims(&o);
    assert_eq!(c.len(), 2);
    assert!(c
        .iter()
        .all(|c| c.claim_type == claimwatch::model::ClaimType::Institutional));
    assert_eq!(c[0].billed_cents, 8_995);
    assert_eq!(c[1].billed_cents, 5_000);
    assert!(c
        .iter()
        .all(|c| c.lines.iter().all(|l| l.revenue_code.is_some())));
}

/// A PWK after a service line is loop 2400 (line documentation): not a claim attachment. Claim
/// level (loop 2300) PWK round-trips in `x12_roundtrip`.
#[test]
fn line_level_pwk_is_not_a_claim_attachment() {
    let Some(o) = shared("linuxforhealth-x12/837_005010X222A2/demo.example7.837") else {
        return;
    };
    let cs = claims(&o);
    assert!(!cs.is_empty());
    assert!(cs.iter().all(|c| c.attachments.is_empty()));
    // Moved before the first service line, the same segment is the claim's.
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/x12-samples/linuxforhealth-x12/837_005010X222A2/demo.example7.837"),
    )
    .unwrap();
    let moved = text
        .replacen("PWK*CT*AA~", "", 1)
        .replacen("HI*BK:496", "PWK*CT*AA~HI*BK:496", 1);
    let o = parse(moved.as_bytes(), "moved");
    let c = claims(&o)
        .into_iter()
        .find(|c| c.claim_id == "R03996273 #01")
        .unwrap()
        .clone();
    assert_eq!(c.attachments.len(), 1);
    assert_eq!(c.attachments[0].report_type, "CT");
    assert_eq!(c.attachments[0].transmission, "AA");
    assert!(!c.attachments[0].delivered());
}
