//! Separator edge cases, BOM, CRLF, multiple envelopes, 277CA rejection
//! propagation, 835 reversal.

use claimwatch::model::{InputEvent, Remittance};
use claimwatch::x12::parse;

const ISA: &str = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260121*1400*^*00501*000000007*0*P*:~";

fn remits(b: &[u8]) -> (Vec<Remittance>, claimwatch::x12::ParseOutput) {
    let o = parse(b, "t");
    let r = o
        .events
        .iter()
        .filter_map(|e| match e {
            InputEvent::Remit(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    (r, o)
}

/// The acknowledgments among a parse's events.
fn acks(o: &claimwatch::x12::ParseOutput) -> Vec<&claimwatch::model::ClaimAck> {
    o.events
        .iter()
        .filter_map(|e| match e {
            InputEvent::Ack(a) => Some(a),
            _ => None,
        })
        .collect()
}

fn tx835(isa: &str, ctrl: &str, body: &[&str]) -> String {
    let mut segs = vec![
        isa.to_string(),
        "GS*HP*SENDER*RECEIVER*20260121*1400*7*X*005010X221A1~".to_string(),
        "ST*835*0001~".to_string(),
    ];
    segs.extend(body.iter().map(|s| format!("{s}~")));
    segs.push(format!("SE*{}*0001~", body.len() + 2));
    segs.push("GE*1*7~".to_string());
    segs.push(format!("IEA*1*{ctrl}~"));
    segs.join("")
}

const REVERSAL: &[&str] = &[
    "BPR*I*-100*C*ACH************20260121",
    "TRN*1*T1*1",
    "N1*PR*PAYER*XV*P1",
    "CLP*C1*22*-150*-100*-50*MC*PCN1*11*1",
    "CAS*PR*1*-50",
    "SVC*HC:99213:25:59*-150*-100**1",
    "DTM*472*20260110",
];

#[test]
fn reversal_negative_amounts() {
    let f = tx835(ISA, "000000007", REVERSAL);
    let (r, o) = remits(f.as_bytes());
    assert!(o.findings.is_empty(), "{:?}", o.findings);
    assert_eq!(r.len(), 1);
    let c = &r[0];
    assert!(c.is_reversal());
    assert_eq!(c.claim_status, "22");
    assert_eq!(c.charge_cents, -15_000);
    assert_eq!(c.paid_cents, -10_000);
    assert_eq!(c.adjustments[0].amount_cents, -5_000);
    assert_eq!(c.lines[0].modifiers, vec!["25", "59"]);
    assert_eq!(c.payer_id, "P1");
    assert_eq!(c.event_time, 1_769_004_000_000);
    // line: -150 - 0 != -100 → line finding; claim: -150 - (-50) = -100 balances.
    assert!(c.findings.iter().any(|f| f.starts_with("line_balance")));
    assert!(!c.findings.iter().any(|f| f.starts_with("claim_balance")));
}

#[test]
fn bom_crlf_indentation_multiple_envelopes() {
    let a = tx835(ISA, "000000007", REVERSAL).replace('~', "~\r\n    ");
    let isa2 = ISA.replace("000000007", "000000008");
    let b = tx835(&isa2, "000000008", REVERSAL).replace('~', "~\n");
    let mut f = vec![0xEF, 0xBB, 0xBF];
    f.extend(a.as_bytes());
    f.extend(b.as_bytes());
    let (r, o) = remits(&f);
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert!(o.findings.is_empty(), "{:?}", o.findings);
    assert_eq!(o.interchanges, 2);
    assert_eq!(r.len(), 2);
    // The same claim payment in two interchanges (other control numbers, line
    // breaks, indentation): one identity, so the core keeps it once.
    assert!(r[0].event_id.starts_with("835:T1:C1:"), "{}", r[0].event_id);
    assert_eq!(r[0].event_id, r[1].event_id);
}

#[test]
fn other_separators() {
    // element '|', repetition '!', component '>', terminator '\n'.
    let isa = ISA
        .replace('*', "|")
        .replace("|^|", "|!|")
        .replace(":~", ">\n");
    let f = tx835(&isa, "000000007", REVERSAL)
        .replace('~', "\n")
        .replace('*', "|")
        .replace("HC:99213:25:59", "HC>99213>25>59");
    let (r, o) = remits(f.as_bytes());
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].lines[0].procedure_code, "99213");
    assert_eq!(r[0].lines[0].modifiers, vec!["25", "59"]);
    assert!(r[0].findings.iter().all(|f| !f.starts_with("component")));
}

#[test]
fn wrong_component_separator_in_svc01_is_a_finding() {
    let body: Vec<String> = REVERSAL
        .iter()
        .map(|s| s.replace("HC:99213:25:59", "HC>99213"))
        .collect();
    let body: Vec<&str> = body.iter().map(String::as_str).collect();
    let f = tx835(ISA, "000000007", &body);
    let (r, _) = remits(f.as_bytes());
    assert_eq!(r[0].lines[0].procedure_code, "99213");
    assert!(r[0]
        .findings
        .iter()
        .any(|f| f.starts_with("component_separator")));
}

#[test]
fn envelope_mismatches_are_located_findings_and_missing_se_drops_only_that_set() {
    let good = tx835(ISA, "000000007", REVERSAL).replace("IEA*1*000000007", "IEA*2*000000099");
    let o = parse(good.as_bytes(), "t");
    let codes: Vec<_> = o.findings.iter().map(|f| f.code.as_str()).collect();
    assert!(codes.contains(&"iea02_mismatch"));
    assert!(codes.contains(&"iea01_count"));
    assert_eq!(o.events.len(), 1);

    let broken = tx835(ISA, "000000007", REVERSAL).replace("SE*9*0001~", "");
    let isa2 = ISA.replace("000000007", "000000008");
    let f = format!("{broken}{}", tx835(&isa2, "000000008", REVERSAL));
    let o = parse(f.as_bytes(), "t");
    assert!(o
        .errors
        .iter()
        .any(|e| e.code == "missing_se" && e.interchange == "000000007"));
    assert_eq!(o.events.len(), 1);
    assert!(o.events[0].event_id().starts_with("835:T1:C1:"));
}

#[test]
fn cas_six_triplets() {
    let body = [
        "BPR*I*0*C*ACH************20260121",
        "TRN*1*T1*1",
        "N1*PR*PAYER",
        "CLP*C1*4*21*0**MC",
        "CAS*CO*1*1*1*2*2**3*3**4*4**5*5**6*6",
    ];
    let (r, _) = remits(tx835(ISA, "000000007", &body).as_bytes());
    let a = &r[0].adjustments;
    assert_eq!(a.len(), 6);
    assert_eq!(a[0].quantity, Some(1.0));
    assert_eq!(a[5].reason, "6");
    assert_eq!(a[5].amount_cents, 600);
    assert_eq!(r[0].payer_id, "PAYER");
    assert!(r[0].findings.is_empty(), "{:?}", r[0].findings);
}

#[test]
fn receiver_level_rejection_propagates_to_claims() {
    let f = [
        ISA,
        "GS*HN*S*R*20260121*1400*9*X*005010X214~",
        "ST*277*0001*005010X214~",
        "BHT*0085*08*1*20260121*1400*TH~",
        "HL*1**20*1~",
        "NM1*PR*2*PAYER*****PI*P9~",
        "HL*2*1*21*1~",
        "NM1*41*2*SUB*****46*X~",
        "STC*A3:24:41*20260121*U~",
        "HL*3*2*19*1~",
        "NM1*85*2*PROV*****XX*1~",
        "HL*4*3*PT~",
        "NM1*QC*1*P~",
        "TRN*2*CLAIM-A~",
        "STC*A1:19*20260121*WQ*10.00~",
        "REF*1K*PCN-A~",
        "REF*D9*TRACE-A~",
        "HL*5*3*PT~",
        "TRN*2*CLAIM-B~",
        "SE*18*0001~",
        "GE*1*9~",
        "IEA*1*000000007~",
    ]
    .concat();
    let o = parse(f.as_bytes(), "t");
    // CLAIM-B has no STC of its own (STC is required in 2200D): a located finding.
    assert_eq!(o.findings.len(), 1, "{:?}", o.findings);
    assert_eq!(o.findings[0].code, "missing_stc");
    assert_eq!(o.findings[0].segment, 20);
    let acks = acks(&o);
    assert_eq!(acks.len(), 2);
    assert_eq!(acks[0].claim_id, "CLAIM-A");
    assert_eq!(acks[0].payer_id.as_deref(), Some("P9"));
    assert_eq!(acks[0].clearinghouse_trace.as_deref(), Some("TRACE-A"));
    assert_eq!(acks[0].payer_claim_control_number.as_deref(), Some("PCN-A"));
    assert_eq!(acks[0].billed_cents, Some(1000));
    // The receiver-level rejection comes first: the core reads the first status as primary.
    assert_eq!(acks[0].statuses.len(), 2);
    assert_eq!(acks[0].statuses[0].category, "A3");
    assert_eq!(acks[0].statuses[0].code, "24");
    assert_eq!(acks[0].statuses[0].entity.as_deref(), Some("41"));
    assert_eq!(acks[0].statuses[1].category, "A1");
    assert_eq!(acks[0].statuses[1].code, "19");
    assert_eq!(acks[1].claim_id, "CLAIM-B");
    assert_eq!(acks[1].statuses.len(), 1);
    assert_eq!(acks[1].statuses[0].code, "24");
}

/// Loop 2200D repeats under one patient HL: every claim is its own acknowledgment with its own
/// statuses and references, and a service line of the first does not hide the second's STC.
#[test]
fn two_claims_under_one_patient_are_two_acknowledgments() {
    let f = [
        ISA,
        "GS*HN*S*R*20260121*1400*9*X*005010X214~",
        "ST*277*0001*005010X214~",
        "BHT*0085*08*1*20260121*1400*TH~",
        "HL*1**20*1~",
        "NM1*PR*2*PAYER*****PI*P9~",
        "HL*2*1*21*1~",
        "NM1*41*2*SUB*****46*X~",
        "STC*A6:24:41*20260121*U~",
        "HL*3*2*19*1~",
        "NM1*85*2*PROV*****XX*1~",
        "HL*4*3*PT~",
        "NM1*QC*1*P~",
        "TRN*2*CLAIM-A~",
        "STC*A2:20*20260121*WQ*125~",
        "REF*1K*PCN-A~",
        "SVC*HC:99213*125*0****1~",
        "STC*A2:20*20260121~",
        "TRN*2*CLAIM-B~",
        "STC*A7:21:85*20260122*U*200~",
        "REF*D9*TRACE-B~",
        "SE*20*0001~",
        "GE*1*9~",
        "IEA*1*000000007~",
    ]
    .concat();
    let o = parse(f.as_bytes(), "t");
    assert!(o.findings.is_empty(), "{:?}", o.findings);
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    let acks = acks(&o);
    assert_eq!(acks.len(), 2, "{acks:?}");
    let status = |a: &claimwatch::model::ClaimAck| -> Vec<String> {
        a.statuses
            .iter()
            .map(|s| format!("{}:{}", s.category, s.code))
            .collect()
    };
    assert_eq!(acks[0].claim_id, "CLAIM-A");
    assert_eq!(status(acks[0]), ["A6:24", "A2:20"]);
    assert_eq!(acks[0].payer_claim_control_number.as_deref(), Some("PCN-A"));
    assert_eq!(acks[0].clearinghouse_trace, None);
    assert_eq!(acks[0].billed_cents, Some(12_500));
    // The second claim inherits the same levels' rejection and keeps its own status and date.
    assert_eq!(acks[1].claim_id, "CLAIM-B");
    assert_eq!(status(acks[1]), ["A6:24", "A7:21"]);
    assert_eq!(acks[1].clearinghouse_trace.as_deref(), Some("TRACE-B"));
    assert_eq!(acks[1].payer_claim_control_number, None);
    assert_eq!(acks[1].billed_cents, Some(20_000));
    assert_ne!(acks[0].ack_date, acks[1].ack_date);
    assert_ne!(acks[0].event_id, acks[1].event_id);
    assert_eq!(acks[0].payer_id.as_deref(), Some("P9"));
    assert_eq!(acks[1].payer_id.as_deref(), Some("P9"));
}

/// Dead-letter reasons name a claim by its position among all the set's claims: a refused claim
/// before an invalid one does not shift the count.
#[test]
fn an_invalid_claim_after_a_refused_one_is_named_by_its_own_position() {
    let f = tx835(
        ISA,
        "000000007",
        &[
            "BPR*I*200*C*ACH************20260121",
            "TRN*1*T1*1",
            "N1*PR*PAYER*XV*P1",
            "CLP*C1*1*150*100*50*MC*PCN1*11*1",
            "CAS*CO*45*ABC",
            "CLP**1*150*100*50*MC*PCN2*11*1",
            "CAS*PR*1*50",
            "CLP*C3*1*150*100*50*MC*PCN3*11*1",
            "CAS*PR*1*50",
        ],
    );
    let (r, o) = remits(f.as_bytes());
    assert_eq!(r.len(), 1, "{:?}", o.errors);
    assert_eq!(r[0].claim_id, "C3");
    let messages: Vec<String> = o.errors.iter().map(|e| e.message.clone()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages.iter().any(|m| m.starts_with("claim payment 1 ")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("claim 2 ") && m.contains("claim_id")),
        "{messages:?}"
    );
}

#[test]
fn unknown_and_misplaced_segments_are_located_findings() {
    let body = [
        "BPR*I*80*C*ACH************20260121",
        "TRN*1*T1*1",
        "N1*PR*PAYER*XV*P1",
        "CAS*CO*45*5",
        "ZZZ*1*2",
        "LX*1",
        "CLP*C1*1*100*80*20*MC",
        "CAS*PR*2*20",
        "LQ*HE*N14",
        "HI*ABK:I10",
    ];
    let f = tx835(ISA, "000000007", &body);
    let o = parse(f.as_bytes(), "t");
    let found: Vec<(&str, usize)> = o
        .findings
        .iter()
        .map(|f| (f.code.as_str(), f.segment))
        .collect();
    assert_eq!(
        found,
        vec![
            ("unexpected_segment", 7),  // CAS before any CLP
            ("unknown_segment", 8),     // ZZZ
            ("unexpected_segment", 12), // LQ outside a service line
            ("unknown_segment", 13),    // HI is an 837 segment
        ]
    );
    assert!(o.findings.iter().all(|f| f.interchange == "000000007"));
    assert!(o.findings[1].message.contains("ZZZ"));
    // The claim itself is still parsed and balances.
    let (r, _) = remits(f.as_bytes());
    assert_eq!(r.len(), 1);
    assert!(r[0].findings.is_empty(), "{:?}", r[0].findings);
}

#[test]
fn cob_loop_does_not_leak_into_the_next_claim() {
    let f = [
        ISA,
        "GS*HC*S*R*20260121*1400*9*X*005010X222A2~",
        "ST*837*0001*005010X222A2~",
        "BHT*0019*00*1*20260121*1400*CH~",
        "HL*1**20*1~",
        "NM1*85*2*PROV*****XX*1111111111~",
        "HL*2*1*22*0~",
        "SBR*P*18*******CI~",
        "NM1*IL*1*DOE*JANE****MI*MEMBER1~",
        "NM1*PR*2*PRIMARY*****PI*PAYER-P~",
        "CLM*CLAIM-1*100***11:B:1*Y*A*Y*Y~",
        "HI*ABK:J189~",
        "SBR*S*01*******MB~",
        "NM1*IL*1*DOE*JOHN****MI*OTHER-MEMBER~",
        "NM1*PR*2*SECONDARY*****PI*PAYER-S~",
        "REF*F8*OTHER-PAYER-CLAIM~",
        "LX*1~",
        "SV1*HC:99213*100*UN*1~",
        "DTP*472*D8*20260110~",
        "CLM*CLAIM-2*50***11:B:1*Y*A*Y*Y~",
        "LX*1~",
        "SV1*HC:99212*50*UN*1~",
        "DTP*472*D8*20260111~",
        "SE*22*0001~",
        "GE*1*9~",
        "IEA*1*000000007~",
    ]
    .concat();
    let o = parse(f.as_bytes(), "t");
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert!(o.findings.is_empty(), "{:?}", o.findings);
    let c: Vec<_> = o
        .events
        .iter()
        .filter_map(|e| match e {
            InputEvent::Claim(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(c.len(), 2);
    for c in &c {
        assert_eq!(c.payer_id, "PAYER-P");
        assert_eq!(c.member_id, "MEMBER1");
        assert_eq!(
            c.payer_category,
            claimwatch::model::PayerCategory::Commercial
        );
        assert_eq!(c.original_payer_claim_id, None);
    }
    assert_eq!(c[0].lines.len(), 1);
    assert_eq!(c[0].diagnosis_codes, vec!["J189"]);
    assert_eq!(c[1].lines[0].procedure_code, "99212");
}

#[test]
fn parse_interchange_for_the_raw_topic() {
    use claimwatch::x12::parse_interchange;
    let msg = tx835(ISA, "000000007", REVERSAL);
    let o = parse_interchange(msg.as_bytes(), "x12.raw/0/5");
    assert_eq!(o.events.len(), 1);
    assert!(o.errors.is_empty());

    let o = parse_interchange(b"not x12 at all", "x12.raw/0/6");
    assert!(o.events.is_empty());
    assert_eq!(o.errors.len(), 1);
    assert_eq!(o.errors[0].raw(b"not x12 at all"), b"not x12 at all");

    // Complete but for the IEA: the claim flows and nothing goes to the dead letters (the
    // missing IEA is a finding).
    let no_iea = &msg[..msg.find("IEA*").unwrap()];
    let o = parse_interchange(no_iea.as_bytes(), "x12.raw/0/8");
    assert_eq!(o.events.len(), 1);
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert!(o.findings.iter().any(|f| f.code == "missing_iea"));
    // An interchange without IEA and without any transaction set keeps nothing: a dead letter.
    let bare = b"ISA*00*not really an interchange~";
    let o = parse_interchange(bare, "x12.raw/0/9");
    assert!(o.events.is_empty());
    assert_eq!(o.errors.len(), 1, "{:?}", o.errors);
    assert_eq!(o.errors[0].code, "missing_iea");
    assert_eq!(o.errors[0].raw(bare), bare);

    // Truncated: no SE/GE/IEA. The error's range is the whole interchange.
    let cut = &msg[..msg.find("SE*").unwrap()];
    let o = parse_interchange(cut.as_bytes(), "x12.raw/0/7");
    assert!(o.events.is_empty());
    let codes: Vec<_> = o.errors.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(codes, vec!["missing_se", "missing_iea"]);
    assert_eq!(o.errors[1].raw(cut.as_bytes()), cut.as_bytes());
    assert_eq!(o.errors[0].interchange, "000000007");
}

#[test]
fn receiver_rejection_without_claims_is_a_finding() {
    let f = [
        ISA,
        "GS*HN*S*R*20260121*1400*9*X*005010X214~",
        "ST*277*0001*005010X214~",
        "BHT*0085*08*1*20260121*1400*TH~",
        "HL*1**20*1~",
        "NM1*PR*2*PAYER*****PI*P9~",
        "HL*2*1*21*0~",
        "NM1*41*2*SUB*****46*X~",
        "TRN*2*BATCH1~",
        "STC*A3:24:41*20260121*U~",
        "SE*9*0001~",
        "GE*1*9~",
        "IEA*1*000000007~",
    ]
    .concat();
    let o = parse(f.as_bytes(), "t");
    assert!(o.events.is_empty());
    assert_eq!(o.findings.len(), 1, "{:?}", o.findings);
    assert_eq!(o.findings[0].code, "rejection_without_claims");
    assert!(o.findings[0].message.contains("A3:24"));
}
