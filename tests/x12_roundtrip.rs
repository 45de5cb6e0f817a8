//! parse(write(events)) == events for proptest-generated remittances and acks,
//! modulo what X12 cannot carry (see `src/x12/write.rs`): event_id/event_time are
//! regenerated and 835 findings are recomputed. The strategies produce *valid*
//! events (`model::validate`): the parser dead-letters invalid ones by design.

use claimwatch::model::{
    Adjustment, AdjustmentGroup, ClaimAck, ClaimAttachment, ClaimFrequency, ClaimLine,
    ClaimStatusCode, ClaimSubmitted, ClaimType, InputEvent, PayerCategory, Remittance,
    ServiceLinePayment,
};
use claimwatch::x12::{parse, write_277ca, write_835, write_837};
use proptest::prelude::*;

fn id() -> impl Strategy<Value = String> {
    "[A-Z0-9]{1,10}"
}
fn opt_id() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(id())
}
fn cents() -> impl Strategy<Value = i64> {
    -10_000_000_000i64..10_000_000_000
}
fn adj() -> impl Strategy<Value = Adjustment> {
    (
        prop::sample::select(AdjustmentGroup::ALL.to_vec()),
        "[A-Z0-9]{1,3}",
        cents(),
        proptest::option::of(0u16..999),
    )
        .prop_map(|(group, reason, amount_cents, q)| Adjustment {
            group,
            reason,
            amount_cents,
            quantity: q.map(f64::from),
        })
}
fn line() -> impl Strategy<Value = ServiceLinePayment> {
    (
        "[A-Z0-9]{1,5}",
        prop::collection::vec("[A-Z0-9]{2}", 0..4),
        opt_id(),
        (cents(), cents()),
        proptest::option::of(0u16..500),
        proptest::option::of(0i32..40_000),
        prop::collection::vec(adj(), 0..3),
        prop::collection::vec("[A-Z0-9]{1,5}", 0..3),
    )
        .prop_map(
            |(p, modifiers, revenue_code, (c, pd), u, d, adjustments, remarks)| {
                ServiceLinePayment {
                    procedure_code: p,
                    modifiers,
                    revenue_code,
                    charge_cents: c,
                    paid_cents: pd,
                    units: u.map(|u| f64::from(u) / 4.0),
                    service_date: d,
                    adjustments,
                    remarks,
                }
            },
        )
}
fn remit() -> impl Strategy<Value = Remittance> {
    (
        (
            id(),
            id(),
            prop::sample::select(vec!["1", "2", "3", "4", "19", "22"]),
        ),
        (cents(), cents(), cents()),
        (opt_id(), opt_id(), opt_id(), opt_id(), opt_id()),
        prop::collection::vec(adj(), 0..7),
        prop::collection::vec("[A-Z0-9]{1,5}", 0..7),
        prop::collection::vec(line(), 0..4),
        (0i32..40_000, opt_id()),
    )
        .prop_map(
            |(
                (cid, payer, st),
                (c, p, pr),
                (f, pcn, fac, fr, drg),
                adjustments,
                remarks,
                lines,
                (pd, tr),
            )| {
                Remittance {
                    event_id: String::new(),
                    event_time: 0,
                    claim_id: cid,
                    payer_id: payer,
                    payer_claim_control_number: pcn,
                    claim_status: st.to_string(),
                    // Only reversals (22) may carry negative amounts.
                    charge_cents: if st == "22" { c } else { c.abs() },
                    paid_cents: if st == "22" { p } else { p.abs() },
                    patient_responsibility_cents: pr,
                    claim_filing_indicator: f,
                    facility_code: fac,
                    frequency: fr,
                    drg,
                    adjustments,
                    remarks,
                    lines,
                    payment_date: pd,
                    payment_trace: tr,
                    findings: Vec::new(),
                }
            },
        )
}
fn ack() -> impl Strategy<Value = ClaimAck> {
    (
        id(),
        (opt_id(), opt_id(), opt_id()),
        0i32..40_000,
        prop::collection::vec(("A[0-9]", "[0-9]{1,3}", opt_id()), 1..4),
        proptest::option::of(cents()),
    )
        .prop_map(|(cid, (payer, pcn, tr), d, st, billed)| {
            let statuses: Vec<ClaimStatusCode> = st
                .into_iter()
                .map(|(category, code, entity)| ClaimStatusCode {
                    category,
                    code,
                    entity,
                })
                .collect();
            ClaimAck {
                event_id: String::new(),
                event_time: 0,
                claim_id: cid,
                payer_id: payer,
                payer_claim_control_number: pcn,
                clearinghouse_trace: tr,
                ack_date: d,
                billed_cents: if statuses.is_empty() { None } else { billed },
                statuses,
            }
        })
}

fn claim() -> impl Strategy<Value = ClaimSubmitted> {
    (
        (id(), id(), id(), id(), opt_id()),
        (
            prop::sample::select(PayerCategory::ALL.to_vec()),
            prop::sample::select(vec![ClaimType::Professional, ClaimType::Institutional]),
            prop::sample::select(vec![
                ClaimFrequency::Original,
                ClaimFrequency::Replacement,
                ClaimFrequency::Void,
            ]),
        ),
        (
            cents(),
            0i32..40_000,
            proptest::option::of(0i32..40_000),
            0i32..40_000,
        ),
        prop::collection::vec("[A-Z0-9]{3,7}", 0..15),
        prop::collection::vec(
            (
                "[A-Z0-9]{1,5}",
                prop::collection::vec("[A-Z0-9]{2}", 0..4),
                id(),
                0u16..100,
                cents(),
                proptest::option::of(0i32..40_000),
            ),
            0..4,
        ),
        (opt_id(), opt_id(), opt_id(), opt_id()),
        prop::collection::vec(
            (
                prop::sample::select(vec!["09", "OB", "DS", "77", "OZ", "CT"]),
                prop::sample::select(vec!["EL", "AA", "BM", "FX"]),
            ),
            0..3,
        ),
    )
        .prop_map(
            |(
                (cid, member, payer, prov, fac),
                (cat, ty, freq),
                (billed, sd, ed, sub),
                dx,
                lines,
                (drg, pos, pa, orig),
                attachments,
            )| {
                let lines = lines
                    .into_iter()
                    .enumerate()
                    .map(|(i, (p, modifiers, rev, u, c, d))| ClaimLine {
                        line_number: i as i32 + 1,
                        procedure_code: p,
                        modifiers,
                        revenue_code: (ty == ClaimType::Institutional).then_some(rev),
                        units: f64::from(u),
                        charge_cents: c.abs(),
                        service_date: d,
                    })
                    .collect();
                ClaimSubmitted {
                    event_id: String::new(),
                    event_time: 0,
                    claim_id: cid,
                    member_id: member,
                    payer_id: payer,
                    payer_category: cat,
                    provider_id: prov,
                    department: "UNKNOWN".into(),
                    facility_id: fac,
                    encounter_id: None,
                    claim_type: ty,
                    frequency: freq,
                    billed_cents: billed.abs(),
                    expected_cents: None,
                    service_date: sd,
                    service_end_date: ed.map(|e| sd + e % 400),
                    submitted_date: sub,
                    diagnosis_codes: dx,
                    lines,
                    drg,
                    place_of_service: pos,
                    prior_auth_ref: pa,
                    original_payer_claim_id: orig,
                    attachments: attachments
                        .into_iter()
                        .map(|(r, t)| ClaimAttachment {
                            report_type: r.to_owned(),
                            transmission: t.to_owned(),
                        })
                        .collect(),
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn remittances_round_trip(remits in prop::collection::vec(remit(), 1..5)) {
        let bytes = write_835(&remits, 42);
        let out = parse(&bytes, "rt");
        prop_assert!(out.errors.is_empty(), "{:?}", out.errors);
        prop_assert!(out.findings.iter().all(|f| f.code == "transaction_balance"), "{:?}", out.findings);
        let got: Vec<Remittance> = out.events.into_iter().filter_map(|e| match e {
            InputEvent::Remit(mut r) => { r.event_id.clear(); r.event_time = 0; r.findings.clear(); Some(r) }
            _ => None,
        }).collect();
        prop_assert_eq!(got, remits);
    }

    #[test]
    fn acks_round_trip(acks in prop::collection::vec(ack(), 1..5)) {
        let bytes = write_277ca(&acks, 7);
        let out = parse(&bytes, "rt");
        prop_assert!(out.errors.is_empty(), "{:?}", out.errors);
        // Random codes may not be in the reference tables: code-set findings only.
        prop_assert!(
            out.findings.iter().all(|f| f.code == "unknown_status_code" || f.code == "unknown_status_category"),
            "{:?}", out.findings
        );
        let got: Vec<ClaimAck> = out.events.into_iter().filter_map(|e| match e {
            InputEvent::Ack(mut a) => { a.event_id.clear(); a.event_time = 0; Some(a) }
            _ => None,
        }).collect();
        prop_assert_eq!(got, acks);
    }

    #[test]
    fn claims_round_trip(claims in prop::collection::vec(claim(), 1..5)) {
        let bytes = write_837(&claims, 9);
        let out = parse(&bytes, "rt");
        prop_assert!(out.errors.is_empty(), "{:?}", out.errors);
        prop_assert!(out.findings.is_empty(), "{:?}", out.findings);
        let mut got: Vec<ClaimSubmitted> = out.events.into_iter().filter_map(|e| match e {
            InputEvent::Claim(mut c) => { c.event_id.clear(); c.event_time = 0; Some(c) }
            _ => None,
        }).collect();
        // The writer groups professional claims before institutional ones.
        let mut want = claims.clone();
        want.sort_by_key(|c| c.claim_type == ClaimType::Institutional);
        got.sort_by_key(|c| c.claim_type == ClaimType::Institutional);
        prop_assert_eq!(serde_json::to_string(&got).unwrap(), serde_json::to_string(&want).unwrap());
    }
}

/// parse(write(events)) == events for a generated population, modulo what X12
/// cannot carry (listed in `src/x12/write.rs`).
#[test]
fn generated_population_round_trips() {
    use claimwatch::generate::{generate, GenerateConfig};
    let g = generate(&GenerateConfig {
        members: 150,
        seed: 7,
        ..GenerateConfig::default()
    });
    assert!(!g.claims.is_empty() && !g.acks.is_empty() && !g.remits.is_empty());
    let ms10 = |t: i64| t - t.rem_euclid(10);

    let out = parse(&write_835(&g.remits, 1), "gen.835");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let got: Vec<Remittance> = out
        .events
        .into_iter()
        .filter_map(|e| match e {
            InputEvent::Remit(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), g.remits.len());
    for (mut p, w) in got.into_iter().zip(&g.remits) {
        assert_eq!(p.event_time, ms10(w.event_time));
        // The generator's remittances balance and use known codes: no findings.
        assert!(p.findings.is_empty(), "{:?}", p.findings);
        p.event_id = w.event_id.clone();
        p.event_time = w.event_time;
        p.findings = w.findings.clone();
        assert_eq!(&p, w);
    }

    let out = parse(&write_277ca(&g.acks, 1), "gen.277");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(out.findings.is_empty(), "{:?}", out.findings);
    assert_eq!(out.events.len(), g.acks.len());
    for (e, w) in out.events.into_iter().zip(&g.acks) {
        let InputEvent::Ack(mut p) = e else {
            panic!("not an ack")
        };
        assert_eq!(p.event_time, ms10(w.event_time));
        p.event_id = w.event_id.clone();
        p.event_time = w.event_time;
        assert_eq!(&p, w);
    }

    let out = parse(&write_837(&g.claims, 1), "gen.837");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(out.findings.is_empty(), "{:?}", out.findings);
    assert_eq!(out.events.len(), g.claims.len());
    for (e, w) in out.events.into_iter().zip(&g.claims) {
        let InputEvent::Claim(mut p) = e else {
            panic!("not a claim")
        };
        assert_eq!(p.event_time, ms10(w.event_time));
        assert_eq!(p.department, "UNKNOWN");
        assert_eq!(p.expected_cents, None);
        assert_eq!(p.encounter_id, None);
        p.event_id = w.event_id.clone();
        p.event_time = w.event_time;
        p.department = w.department.clone();
        p.expected_cents = w.expected_cents;
        p.encounter_id = w.encounter_id.clone();
        if w.claim_type == ClaimType::Professional {
            for (pl, wl) in p.lines.iter_mut().zip(&w.lines) {
                pl.revenue_code = wl.revenue_code.clone();
            }
        }
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            serde_json::to_string(w).unwrap()
        );
    }
}
