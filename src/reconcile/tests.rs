//! Every rule of the lifecycle, with hand-made fixtures, and order independence as a property.

use proptest::prelude::*;

use super::*;
use crate::model::fixtures::{ack, claim, d, remit, t};
use crate::model::AdjustmentGroup::{CO, OA, PR};
use crate::model::{ClaimFrequency, ClaimSubmitted};

fn reconciler() -> Reconciler {
    Reconciler::new(RefData::shared(), &CoreConfig::default())
}

/// Applies inputs in order, returning the final state and every update emitted.
fn run(inputs: &[ClaimInput<'_>]) -> (ClaimState, Vec<ClaimLifecycleUpdate>) {
    let r = reconciler();
    let mut state = ClaimState::default();
    let mut out = ClaimOutputs::default();
    for i in inputs {
        r.apply(&mut state, "C1", *i, &mut out);
    }
    let updates = out
        .events
        .into_iter()
        .map(|e| match e {
            OutputEvent::ClaimLifecycle(u) => *u,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    (state, updates)
}

/// Applies inputs in order, returning the reconciler, the state and the outputs, to go on with.
fn applied(inputs: &[ClaimInput<'_>]) -> (Reconciler, ClaimState, ClaimOutputs) {
    let r = reconciler();
    let mut state = ClaimState::default();
    let mut out = ClaimOutputs::default();
    for i in inputs {
        r.apply(&mut state, "C1", *i, &mut out);
    }
    (r, state, out)
}

fn last(inputs: &[ClaimInput<'_>]) -> ClaimLifecycleUpdate {
    run(inputs).1.pop().expect("at least one update")
}

#[test]
fn submission_alone_is_submitted() {
    let c = claim("C1", "2024-03-01");
    let u = last(&[ClaimInput::Submitted(&c)]);
    assert_eq!(u.status, ClaimStatus::Submitted);
    assert_eq!(u.version, 1);
    assert_eq!(u.output_id, "C1:1");
    assert_eq!(u.billed_cents, 100_000);
    assert_eq!(u.expected_cents, Some(60_000));
    assert_eq!(u.member_id.as_deref(), Some("M0001"));
    assert_eq!(u.first_pass_paid, None);
}

#[test]
fn a1_is_received_not_accepted_and_a2_is_accepted() {
    let c = claim("C1", "2024-03-01");
    let a1 = ack("C1", "2024-03-02", "A1", "19");
    let a2 = ack("C1", "2024-03-03", "A2", "20");
    assert_eq!(
        last(&[ClaimInput::Submitted(&c), ClaimInput::Ack(&a1)]).status,
        ClaimStatus::Received
    );
    let u = last(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Ack(&a1),
        ClaimInput::Ack(&a2),
    ]);
    assert_eq!(u.status, ClaimStatus::Accepted);
    assert_eq!(u.days_to_ack, Some(1));
    assert_eq!(u.ack_status.as_deref(), Some("A2:20"));
    assert_eq!(u.payer_claim_control_number.as_deref(), Some("PCNC1"));
}

#[test]
fn a_receipt_arriving_after_the_acceptance_does_not_undo_it() {
    let c = claim("C1", "2024-03-01");
    let a2 = ack("C1", "2024-03-02", "A2", "20");
    // The clearinghouse's receipt of the same day (or a later one) processed after the payer's
    // acceptance.
    for day in ["2024-03-02", "2024-03-04"] {
        let mut a1 = ack("C1", day, "A1", "19");
        a1.event_time = a2.event_time + 3_600_000 + t(day) - t("2024-03-02");
        let (_, updates) = run(&[
            ClaimInput::Submitted(&c),
            ClaimInput::Ack(&a2),
            ClaimInput::Ack(&a1),
        ]);
        let u = updates.last().unwrap();
        assert_eq!(u.status, ClaimStatus::Accepted, "receipt on {day}");
        assert_eq!(u.ack_status.as_deref(), Some("A2:20"));
        assert!(
            updates.iter().all(|u| u.status != ClaimStatus::Received),
            "never back to RECEIVED"
        );
    }
}

#[test]
fn rejection_codes_reject_and_r_codes_request_information() {
    let c = claim("C1", "2024-03-01");
    for cat in ["A3", "A6", "A7", "A8"] {
        let a = ack("C1", "2024-03-02", cat, "21");
        let u = last(&[ClaimInput::Submitted(&c), ClaimInput::Ack(&a)]);
        assert_eq!(u.status, ClaimStatus::Rejected, "{cat}");
        assert_eq!(u.first_pass_paid, Some(false));
    }
    let r = ack("C1", "2024-03-02", "R3", "21");
    assert_eq!(
        last(&[ClaimInput::Submitted(&c), ClaimInput::Ack(&r)]).status,
        ClaimStatus::InfoRequested
    );
    let p = ack("C1", "2024-03-02", "P1", "20");
    assert_eq!(
        last(&[ClaimInput::Submitted(&c), ClaimInput::Ack(&p)]).status,
        ClaimStatus::Pending
    );
}

#[test]
fn paid_in_full_with_contractual_and_patient_share() {
    let c = claim("C1", "2024-03-01");
    let a = ack("C1", "2024-03-02", "A2", "20");
    let rm = remit(
        "C1",
        "2024-03-25",
        "1",
        50_000,
        &[(CO, "45", 40_000), (PR, "2", 10_000)],
    );
    let u = last(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Ack(&a),
        ClaimInput::Remit(&rm),
    ]);
    assert_eq!(u.status, ClaimStatus::Paid);
    assert_eq!(u.paid_to_date_cents, 50_000);
    assert_eq!(u.patient_responsibility_cents, 10_000);
    assert_eq!(u.variance_cents, Some(0));
    assert_eq!(u.days_to_first_payment, Some(24));
    assert_eq!(u.days_to_final, Some(24));
    assert_eq!(u.first_pass_paid, Some(true));
    assert_eq!(u.denial_category, None);
    assert_eq!(u.carc_codes, vec!["CO-45".to_string(), "PR-2".to_string()]);
    let groups: Vec<_> = u
        .adjustments_by_group
        .iter()
        .map(|a| (a.code.as_str(), a.amount_cents))
        .collect();
    assert_eq!(groups, vec![("CO", 40_000), ("PR", 10_000)]);
}

#[test]
fn denial_comes_from_cas_not_clp02() {
    let c = claim("C1", "2024-03-01");
    // Processed as primary (CLP02 1), nothing paid, CO-197: denied for authorization.
    let rm = remit("C1", "2024-03-25", "1", 0, &[(CO, "197", 100_000)]);
    let u = last(&[ClaimInput::Submitted(&c), ClaimInput::Remit(&rm)]);
    assert_eq!(u.status, ClaimStatus::Denied);
    assert_eq!(u.denial_category.as_deref(), Some("AUTHORIZATION"));
    assert_eq!(u.first_pass_paid, Some(false));
    assert_eq!(u.days_to_first_payment, None);
    // Processed as primary, nothing paid, all deductible: not a denial.
    let rm = remit(
        "C1",
        "2024-03-25",
        "1",
        0,
        &[(CO, "45", 40_000), (PR, "1", 60_000)],
    );
    assert_eq!(
        last(&[ClaimInput::Submitted(&c), ClaimInput::Remit(&rm)]).status,
        ClaimStatus::Paid
    );
    // CLP02 4 with no denial CARC is still denied.
    let rm = remit("C1", "2024-03-25", "4", 0, &[(OA, "23", 100_000)]);
    assert_eq!(
        last(&[ClaimInput::Submitted(&c), ClaimInput::Remit(&rm)]).status,
        ClaimStatus::Denied
    );
}

#[test]
fn nothing_paid_but_deductible_applied_with_a_denied_line_is_partial_not_denied() {
    let c = claim("C1", "2024-03-01");
    let rm = remit(
        "C1",
        "2024-03-25",
        "1",
        0,
        &[(CO, "45", 20_000), (PR, "1", 50_000), (CO, "50", 30_000)],
    );
    assert_eq!(
        last(&[ClaimInput::Submitted(&c), ClaimInput::Remit(&rm)]).status,
        ClaimStatus::PartiallyPaid
    );
    let r = reconciler();
    let (state, _) = run(&[ClaimInput::Submitted(&c), ClaimInput::Remit(&rm)]);
    assert!(!r.first_adjudication_denied(&state));
}

#[test]
fn partial_payment_when_part_is_denied() {
    let c = claim("C1", "2024-03-01");
    let rm = remit(
        "C1",
        "2024-03-25",
        "1",
        30_000,
        &[(CO, "45", 20_000), (CO, "50", 50_000)],
    );
    let u = last(&[ClaimInput::Submitted(&c), ClaimInput::Remit(&rm)]);
    assert_eq!(u.status, ClaimStatus::PartiallyPaid);
    assert_eq!(u.denial_category.as_deref(), Some("MEDICAL_NECESSITY"));
    assert_eq!(u.variance_cents, Some(30_000 - 60_000));
}

#[test]
fn reversal_retracts_and_readjudication_restores() {
    let c = claim("C1", "2024-03-01");
    let paid = remit(
        "C1",
        "2024-03-25",
        "1",
        50_000,
        &[(CO, "45", 40_000), (PR, "2", 10_000)],
    );
    let rev = remit(
        "C1",
        "2024-04-05",
        "22",
        -50_000,
        &[(CO, "45", -40_000), (PR, "2", -10_000)],
    );
    let u = last(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Remit(&paid),
        ClaimInput::Remit(&rev),
    ]);
    assert_eq!(u.status, ClaimStatus::Reversed);
    assert_eq!(u.paid_to_date_cents, 0);
    let again = remit(
        "C1",
        "2024-04-06",
        "1",
        45_000,
        &[(CO, "45", 45_000), (PR, "2", 10_000)],
    );
    let u = last(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Remit(&paid),
        ClaimInput::Remit(&rev),
        ClaimInput::Remit(&again),
    ]);
    assert_eq!(u.status, ClaimStatus::Paid);
    assert_eq!(u.paid_to_date_cents, 45_000);
    assert_eq!(u.remit_count, 3);
}

#[test]
fn replacement_supersedes_and_makes_old_acks_stale() {
    let c = claim("C1", "2024-03-01");
    let rej = ack("C1", "2024-03-02", "A7", "21");
    let mut rep: ClaimSubmitted = claim("C1", "2024-03-05");
    rep.event_id = "clm-C1-2".into();
    rep.frequency = ClaimFrequency::Replacement;
    rep.billed_cents = 90_000;
    let u = last(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Ack(&rej),
        ClaimInput::Submitted(&rep),
    ]);
    assert_eq!(u.status, ClaimStatus::Submitted);
    assert_eq!(u.billed_cents, 90_000);
    assert_eq!(u.submission_count, 2);
    let acc = ack("C1", "2024-03-06", "A2", "20");
    let rm = remit(
        "C1",
        "2024-03-30",
        "1",
        50_000,
        &[(CO, "45", 30_000), (PR, "2", 10_000)],
    );
    let u = last(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Ack(&rej),
        ClaimInput::Submitted(&rep),
        ClaimInput::Ack(&acc),
        ClaimInput::Remit(&rm),
    ]);
    assert_eq!(u.status, ClaimStatus::Paid);
    assert_eq!(
        u.first_pass_paid,
        Some(false),
        "rejected first: not first-pass"
    );
}

#[test]
fn void_ends_the_claim() {
    let c = claim("C1", "2024-03-01");
    let mut void = claim("C1", "2024-03-04");
    void.event_id = "clm-C1-void".into();
    void.frequency = ClaimFrequency::Void;
    assert_eq!(
        last(&[ClaimInput::Submitted(&c), ClaimInput::Submitted(&void)]).status,
        ClaimStatus::Voided
    );
}

#[test]
fn ack_and_remit_before_the_claim_and_duplicates_change_nothing() {
    let c = claim("C1", "2024-03-01");
    let a = ack("C1", "2024-03-02", "A2", "20");
    let rm = remit(
        "C1",
        "2024-03-25",
        "1",
        50_000,
        &[(CO, "45", 40_000), (PR, "2", 10_000)],
    );
    let (_, early) = run(&[ClaimInput::Remit(&rm)]);
    assert_eq!(early[0].alerts, vec![ClaimAlert::SubmissionMissing]);
    assert_eq!(early[0].status, ClaimStatus::Paid);
    let (state, updates) = run(&[
        ClaimInput::Ack(&a),
        ClaimInput::Remit(&rm),
        ClaimInput::Remit(&rm),
        ClaimInput::Submitted(&c),
        ClaimInput::Submitted(&c),
        ClaimInput::Ack(&a),
    ]);
    assert_eq!(updates.len(), 3, "duplicates emit nothing");
    assert_eq!(state.remits.len(), 1);
    let u = updates.last().unwrap();
    assert_eq!(u.status, ClaimStatus::Paid);
    assert!(u.alerts.is_empty());
}

#[test]
fn timers_flag_missing_ack_and_remit_and_clear_on_arrival() {
    let r = reconciler();
    let c = claim("C1", "2024-03-01");
    let mut state = ClaimState::default();
    let mut out = ClaimOutputs::default();
    r.apply(&mut state, "C1", ClaimInput::Submitted(&c), &mut out);
    let (due, timer) = r.next_timer(&state);
    assert_eq!(timer, ClaimTimer::MissingAck);
    assert_eq!(due, t("2024-03-01") + 5 * DAY_MS);
    assert!(r.fire_timer(&mut state, "C1", timer, due, &mut out));
    let (due2, timer2) = r.next_timer(&state);
    assert_eq!(timer2, ClaimTimer::MissingRemit);
    assert_eq!(due2, t("2024-03-01") + 45 * DAY_MS);
    let a = ack("C1", "2024-03-08", "A2", "20");
    r.apply(&mut state, "C1", ClaimInput::Ack(&a), &mut out);
    assert!(r.fire_timer(&mut state, "C1", timer2, due2, &mut out));
    let updates: Vec<_> = out
        .events
        .iter()
        .map(|e| match e {
            OutputEvent::ClaimLifecycle(u) => (**u).clone(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(updates[1].alerts, vec![ClaimAlert::MissingAck]);
    assert_eq!(updates[1].cause, UpdateCause::Timer);
    assert!(updates[2].alerts.is_empty(), "ack clears MISSING_ACK");
    assert_eq!(updates[3].alerts, vec![ClaimAlert::MissingRemit]);
    // After the remit, only the retention timer is left.
    let rm = remit("C1", "2024-04-20", "1", 50_000, &[(CO, "45", 50_000)]);
    r.apply(&mut state, "C1", ClaimInput::Remit(&rm), &mut out);
    let (exp, timer3) = r.next_timer(&state);
    assert_eq!(timer3, ClaimTimer::Expire);
    assert_eq!(exp, t("2024-04-20") + 120 * DAY_MS);
    assert!(!r.fire_timer(&mut state, "C1", timer3, exp, &mut out));
}

#[test]
fn encounter_cost_goes_to_the_member_flow_once_per_change() {
    let r = reconciler();
    let mut c = claim("C1", "2024-03-01");
    c.encounter_id = Some("E1".into());
    let rm = remit("C1", "2024-03-25", "1", 50_000, &[(CO, "45", 50_000)]);
    let mut state = ClaimState::default();
    let mut out = ClaimOutputs::default();
    let costs = |out: &ClaimOutputs| -> Vec<crate::model::EncounterCost> {
        out.costs
            .iter()
            .filter_map(|r| match r {
                Rekeyed::Cost(c) => Some(c.clone()),
                Rekeyed::Payer(_)
                | Rekeyed::Population(_)
                | Rekeyed::Vaccine(_)
                | Rekeyed::Cash(_)
                | Rekeyed::Provider(_)
                | Rekeyed::MemberPaid(_)
                | Rekeyed::Pmpm(_)
                | Rekeyed::Utilization(_) => None,
            })
            .collect()
    };
    r.apply(&mut state, "C1", ClaimInput::Submitted(&c), &mut out);
    assert!(costs(&out).is_empty());
    r.apply(&mut state, "C1", ClaimInput::Remit(&rm), &mut out);
    let costs = costs(&out);
    assert_eq!(costs.len(), 1);
    assert_eq!(costs[0].paid_cents, 50_000);
    assert_eq!(costs[0].encounter_id, "E1");
}

fn facts(out: &ClaimOutputs) -> Vec<PayerFact> {
    out.costs
        .iter()
        .filter_map(|r| match r {
            Rekeyed::Payer(f) => Some(f.clone()),
            Rekeyed::Cost(_)
            | Rekeyed::Population(_)
            | Rekeyed::Vaccine(_)
            | Rekeyed::Cash(_)
            | Rekeyed::Provider(_)
            | Rekeyed::MemberPaid(_)
            | Rekeyed::Pmpm(_)
            | Rekeyed::Utilization(_) => None,
        })
        .collect()
}

#[test]
fn payer_facts_follow_the_lifecycle_once_the_payer_is_known() {
    let r = reconciler();
    let c = claim("C1", "2024-03-01");
    let a = ack("C1", "2024-03-02", "A2", "20");
    let denied = remit("C1", "2024-03-20", "1", 0, &[(CO, "197", 60_000)]);
    // The 277CA and the 835 arrive before the claim: nothing is reported without a payer.
    let mut state = ClaimState::default();
    let mut out = ClaimOutputs::default();
    r.apply(&mut state, "C1", ClaimInput::Ack(&a), &mut out);
    r.apply(&mut state, "C1", ClaimInput::Remit(&denied), &mut out);
    assert!(facts(&out).is_empty());
    r.apply(&mut state, "C1", ClaimInput::Submitted(&c), &mut out);
    let f = facts(&out);
    let kinds: Vec<_> = f.iter().map(|f| (f.kind, f.event_time)).collect();
    assert_eq!(
        kinds,
        vec![
            (FactKind::Submitted, c.event_time),
            (FactKind::Accepted, a.event_time),
            (FactKind::Adjudicated, c.event_time),
        ]
    );
    let adj = &f[2];
    assert_eq!(adj.outcome, Some(FactOutcome::Denied));
    assert!(adj.first_adjudication && !adj.first_pass_paid);
    assert_eq!(adj.denied_cents, 60_000);
    assert_eq!(adj.denial_category.as_deref(), Some("AUTHORIZATION"));
    assert_eq!(adj.payer_id, c.payer_id);

    // A paid re-adjudication after appeal is an adjudication, but not a first one.
    out.costs.clear();
    let paid = remit("C1", "2024-04-20", "1", 60_000, &[]);
    r.apply(&mut state, "C1", ClaimInput::Remit(&paid), &mut out);
    let f = facts(&out);
    assert_eq!(f.len(), 1, "{f:?}");
    // The first 835's CO-197 stays in force beside the new payment: partially paid.
    assert_eq!(f[0].outcome, Some(FactOutcome::PartiallyPaid));
    assert!(!f[0].first_adjudication && !f[0].first_pass_paid);
    assert_eq!(f[0].days_to_payment, Some(50));
    // A duplicate changes nothing.
    out.costs.clear();
    r.apply(&mut state, "C1", ClaimInput::Remit(&paid), &mut out);
    assert!(facts(&out).is_empty());
}

#[test]
fn first_pass_paid_claim_is_one_submitted_accepted_and_first_pass_adjudication() {
    let r = reconciler();
    let c = claim("C1", "2024-03-01");
    let a1 = ack("C1", "2024-03-02", "A1", "19");
    let a2 = ack("C1", "2024-03-03", "A2", "20");
    let rm = remit("C1", "2024-03-25", "1", 50_000, &[(CO, "45", 10_000)]);
    let mut state = ClaimState::default();
    let mut out = ClaimOutputs::default();
    for i in [
        ClaimInput::Submitted(&c),
        ClaimInput::Ack(&a1),
        ClaimInput::Ack(&a2),
        ClaimInput::Remit(&rm),
    ] {
        r.apply(&mut state, "C1", i, &mut out);
    }
    let f = facts(&out);
    let kinds: Vec<_> = f.iter().map(|f| f.kind).collect();
    // A1 (received) is not an acceptance.
    assert_eq!(
        kinds,
        vec![
            FactKind::Submitted,
            FactKind::Accepted,
            FactKind::Adjudicated
        ]
    );
    assert!(f[2].first_adjudication && f[2].first_pass_paid);
    assert_eq!(f[2].paid_cents, 50_000);
    assert_eq!(f[2].denied_cents, 0, "CO-45 is contractual, not a denial");
    assert_eq!(f[2].days_to_payment, Some(24));
}

#[test]
fn state_round_trips_through_bincode() {
    let c = claim("C1", "2024-03-01");
    let rm = remit(
        "C1",
        "2024-03-25",
        "1",
        50_000,
        &[(CO, "45", 40_000), (PR, "2", 10_000)],
    );
    let (state, _) = run(&[ClaimInput::Submitted(&c), ClaimInput::Remit(&rm)]);
    let bytes = bincode::serde::encode_to_vec(&state, bincode::config::standard()).unwrap();
    let (back, _): (ClaimState, _) =
        bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
    assert_eq!(back, state);
    let _ = d("2024-01-01");
}

/// A pool of records of one claim, covering every kind of event.
fn pool() -> (Vec<ClaimSubmitted>, Vec<ClaimAck>, Vec<Remittance>) {
    let c = claim("C1", "2024-03-01");
    let mut rep = claim("C1", "2024-03-05");
    rep.event_id = "clm-C1-2".into();
    rep.frequency = ClaimFrequency::Replacement;
    rep.billed_cents = 90_000;
    let acks = vec![
        ack("C1", "2024-03-02", "A1", "19"),
        ack("C1", "2024-03-03", "A7", "21"),
        ack("C1", "2024-03-06", "A2", "20"),
        ack("C1", "2024-03-07", "R3", "21"),
    ];
    let remits = vec![
        remit("C1", "2024-03-25", "1", 0, &[(CO, "16", 100_000)]),
        remit(
            "C1",
            "2024-04-02",
            "1",
            50_000,
            &[(CO, "45", 30_000), (PR, "2", 10_000)],
        ),
        remit(
            "C1",
            "2024-04-10",
            "22",
            -50_000,
            &[(CO, "45", -30_000), (PR, "2", -10_000)],
        ),
        remit(
            "C1",
            "2024-04-12",
            "1",
            48_000,
            &[(CO, "45", 32_000), (PR, "2", 10_000)],
        ),
        remit("C1", "2024-04-20", "2", 5_000, &[(OA, "23", 5_000)]),
    ];
    (vec![c, rep], acks, remits)
}

proptest! {
    #![proptest_config(proptest::test_runner::Config { failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"))), ..proptest::test_runner::Config::default() })]
    /// Whatever the arrival order (and with duplicates), the final state's view is the same.
    #[test]
    fn final_view_is_independent_of_arrival_order(
        order in Just((0..11usize).collect::<Vec<_>>()).prop_shuffle(),
        subset in proptest::collection::vec(any::<bool>(), 11),
        dup in 0..11usize,
    ) {
        let (subs, acks, remits) = pool();
        let all: Vec<ClaimInput<'_>> = subs.iter().map(ClaimInput::Submitted)
            .chain(acks.iter().map(ClaimInput::Ack))
            .chain(remits.iter().map(ClaimInput::Remit))
            .collect();
        let chosen: Vec<usize> = (0..11).filter(|i| subset[*i]).collect();
        prop_assume!(!chosen.is_empty());
        let sorted: Vec<ClaimInput<'_>> = chosen.iter().map(|i| all[*i]).collect();
        let mut shuffled: Vec<ClaimInput<'_>> = order.iter().filter(|i| subset[**i]).map(|i| all[*i]).collect();
        shuffled.push(all[chosen[dup % chosen.len()]]);
        let r = reconciler();
        let (a, _) = run(&sorted);
        let (b, _) = run(&shuffled);
        prop_assert_eq!(r.view(&a, "C1"), r.view(&b, "C1"));
    }
}

/// A denial, then an appeal: a replacement adjudicated and paid in full.
fn appeal_inputs() -> (ClaimSubmitted, Remittance, ClaimSubmitted, Remittance) {
    let c = claim("C1", "2024-03-01");
    let denied = remit("C1", "2024-03-25", "1", 0, &[(CO, "197", 100_000)]);
    let mut rep: ClaimSubmitted = claim("C1", "2024-04-10");
    rep.event_id = "clm-C1-2".into();
    rep.frequency = ClaimFrequency::Replacement;
    let mut paid = remit(
        "C1",
        "2024-05-02",
        "1",
        50_000,
        &[(CO, "45", 40_000), (PR, "2", 10_000)],
    );
    paid.event_id = "rmt-C1-2".into();
    // The 835 gives the replacement's frequency code (CLP09 = 7).
    paid.frequency = Some("7".into());
    (c, denied, rep, paid)
}

#[test]
fn an_appeal_paid_in_full_is_paid_without_the_first_denial() {
    let (c, denied, rep, paid) = appeal_inputs();
    let u = last(&[ClaimInput::Submitted(&c), ClaimInput::Remit(&denied)]);
    assert_eq!(u.status, ClaimStatus::Denied);
    assert_eq!(u.denial_category.as_deref(), Some("AUTHORIZATION"));
    // Resubmitted, not adjudicated yet: the denial stands.
    let u = last(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Remit(&denied),
        ClaimInput::Submitted(&rep),
    ]);
    assert_eq!(u.status, ClaimStatus::Denied);
    let (_, updates) = run(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Remit(&denied),
        ClaimInput::Submitted(&rep),
        ClaimInput::Remit(&paid),
    ]);
    let u = updates.last().unwrap();
    assert_eq!(u.status, ClaimStatus::Paid, "not PARTIALLY_PAID");
    assert_eq!(u.previous_status, Some(ClaimStatus::Denied));
    assert_eq!(u.denial_category, None);
    assert!(
        u.adjustments_by_category
            .iter()
            .all(|a| a.code != "AUTHORIZATION"),
        "the first adjudication's denial is superseded: {:?}",
        u.adjustments_by_category
    );
    assert_eq!(u.carc_codes, vec!["CO-45", "PR-2"]);
    assert_eq!(u.paid_to_date_cents, 50_000);
    assert_eq!(u.first_pass_paid, Some(false));
    assert_eq!(u.remit_count, 2);
}

#[test]
fn the_paid_appeal_reports_no_denied_dollars_to_the_payer_flow() {
    let (c, denied, rep, paid) = appeal_inputs();
    let (r, mut state, mut out) = applied(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Remit(&denied),
        ClaimInput::Submitted(&rep),
    ]);
    out.costs.clear();
    r.apply(&mut state, "C1", ClaimInput::Remit(&paid), &mut out);
    let adjudicated: Vec<PayerFact> = facts(&out)
        .into_iter()
        .filter(|f| f.kind == FactKind::Adjudicated)
        .collect();
    assert_eq!(adjudicated.len(), 1);
    let f = &adjudicated[0];
    assert_eq!(f.outcome, Some(FactOutcome::Paid));
    assert!(!f.first_adjudication);
    assert_eq!(f.denied_cents, 0, "the first denial was counted already");
    assert!(f.denied_by_category.is_empty());
}

#[test]
fn an_unanswered_appeal_raises_missing_remit_from_the_resubmission() {
    let (c, denied, rep, paid) = appeal_inputs();
    let (r, mut state, mut out) = applied(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Remit(&denied),
        ClaimInput::Submitted(&rep),
    ]);
    let pending = r.pending_timers(&state);
    assert!(
        pending.contains(&(t("2024-04-10") + 45 * DAY_MS, ClaimTimer::MissingRemit)),
        "{pending:?}"
    );
    out.events.clear();
    let due = t("2024-04-10") + 45 * DAY_MS;
    assert!(r.fire_timer(&mut state, "C1", ClaimTimer::MissingRemit, due, &mut out));
    let u = match out.events.pop() {
        Some(OutputEvent::ClaimLifecycle(u)) => *u,
        other => panic!("{other:?}"),
    };
    assert_eq!(u.status, ClaimStatus::Denied, "the denial stands meanwhile");
    assert!(
        u.alerts.contains(&ClaimAlert::MissingRemit),
        "{:?}",
        u.alerts
    );
    // The appeal's answer clears it.
    r.apply(&mut state, "C1", ClaimInput::Remit(&paid), &mut out);
    let u = match out.events.pop() {
        Some(OutputEvent::ClaimLifecycle(u)) => *u,
        other => panic!("{other:?}"),
    };
    assert_eq!(u.status, ClaimStatus::Paid);
    assert!(!u.alerts.contains(&ClaimAlert::MissingRemit));
    assert_eq!(r.next_timer(&state).1, ClaimTimer::Expire);
}

#[test]
fn an_appeal_whose_remittances_come_first_is_paid_by_its_835_frequency() {
    let (c, denied, rep, mut paid) = appeal_inputs();
    paid.frequency = Some("7".into());
    // Both 835s before any submission: the CLP09 = 7 adjudication supersedes the denial.
    let (_, updates) = run(&[
        ClaimInput::Remit(&denied),
        ClaimInput::Remit(&paid),
        ClaimInput::Submitted(&c),
        ClaimInput::Submitted(&rep),
    ]);
    let statuses: Vec<ClaimStatus> = updates.iter().map(|u| u.status).collect();
    assert!(
        !statuses.contains(&ClaimStatus::PartiallyPaid),
        "never partially paid on the way: {statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&ClaimStatus::Paid));
    assert_eq!(updates.last().unwrap().denial_category, None);
    // Without the frequency code, the dates decide once the replacement is known.
    let (_, denied, rep, mut paid) = appeal_inputs();
    paid.frequency = None;
    let u = last(&[
        ClaimInput::Remit(&denied),
        ClaimInput::Remit(&paid),
        ClaimInput::Submitted(&c),
        ClaimInput::Submitted(&rep),
    ]);
    assert_eq!(u.status, ClaimStatus::Paid);
}

#[test]
fn a_paid_appeal_reversed_is_reversed_not_back_at_the_first_denial() {
    let (c, denied, rep, mut paid) = appeal_inputs();
    paid.frequency = Some("7".into());
    paid.payer_claim_control_number = Some("PCN2".into());
    let mut rev = remit("C1", "2024-06-01", "22", -50_000, &[(CO, "45", -40_000)]);
    rev.payer_claim_control_number = Some("PCN2".into());
    rev.frequency = Some("7".into());
    let u = last(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Remit(&denied),
        ClaimInput::Submitted(&rep),
        ClaimInput::Remit(&paid),
        ClaimInput::Remit(&rev),
    ]);
    assert_eq!(u.status, ClaimStatus::Reversed);
    assert_eq!(u.denial_category, None);
    assert_eq!(u.paid_to_date_cents, 0);
}

/// A primary payer paying 80 % and a secondary (Medigap, CLP02 2) paying the coinsurance.
fn primary_and_secondary() -> (ClaimSubmitted, Remittance, Remittance) {
    let mut c = claim("C1", "2024-03-01");
    c.expected_cents = Some(50_000);
    let primary = remit(
        "C1",
        "2024-03-25",
        "1",
        40_000,
        &[(CO, "45", 50_000), (PR, "2", 10_000)],
    );
    let mut secondary = remit("C1", "2024-04-05", "2", 10_000, &[(OA, "23", 90_000)]);
    secondary.payer_claim_control_number = Some("SEC1".into());
    secondary.patient_responsibility_cents = 0;
    (c, primary, secondary)
}

#[test]
fn a_secondary_payment_of_the_coinsurance_is_no_longer_the_patients_share() {
    let (c, primary, secondary) = primary_and_secondary();
    let u = last(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Remit(&primary),
        ClaimInput::Remit(&secondary),
    ]);
    assert_eq!(u.status, ClaimStatus::Paid);
    assert_eq!(u.paid_to_date_cents, 50_000);
    assert_eq!(u.patient_responsibility_cents, 0);
    assert_eq!(
        u.variance_cents,
        Some(0),
        "paid as expected, not over by the coinsurance"
    );
    // OA-23 restates the primary's adjudication: listed, not added to the amounts.
    assert!(u.carc_codes.contains(&"OA-23".to_owned()));
    assert!(
        u.adjustments_by_group.iter().all(|a| a.code != "OA"),
        "{:?}",
        u.adjustments_by_group
    );
}

#[test]
fn the_primary_reversed_with_a_secondary_in_force_is_reversed() {
    let (c, primary, secondary) = primary_and_secondary();
    let rev = remit(
        "C1",
        "2024-04-20",
        "22",
        -40_000,
        &[(CO, "45", -50_000), (PR, "2", -10_000)],
    );
    let u = last(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Remit(&primary),
        ClaimInput::Remit(&secondary),
        ClaimInput::Remit(&rev),
    ]);
    assert_eq!(u.status, ClaimStatus::Reversed);
    // A secondary's 835 alone, with no primary received, still stands for the claim.
    let (c, _, secondary) = primary_and_secondary();
    let u = last(&[ClaimInput::Submitted(&c), ClaimInput::Remit(&secondary)]);
    assert_eq!(u.status, ClaimStatus::Paid);
}

#[test]
fn a_secondary_reversing_itself_without_a_primary_stays_paid() {
    let (c, _, secondary) = primary_and_secondary();
    let mut rev = remit("C1", "2024-04-10", "22", -10_000, &[(OA, "23", -90_000)]);
    rev.payer_claim_control_number = Some("SEC1".into());
    let mut again = remit("C1", "2024-04-12", "2", 9_000, &[(OA, "23", 90_000)]);
    again.payer_claim_control_number = Some("SEC1".into());
    let u = last(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Remit(&secondary),
        ClaimInput::Remit(&rev),
        ClaimInput::Remit(&again),
    ]);
    assert_eq!(u.status, ClaimStatus::Paid, "no primary was reversed");
    assert_eq!(u.paid_to_date_cents, 9_000);
}

#[test]
fn a_reversal_without_a_control_number_retracts_the_primary_of_its_amount() {
    let (c, mut primary, mut secondary) = primary_and_secondary();
    primary.payer_claim_control_number = None;
    secondary.payer_claim_control_number = None;
    let mut rev = remit("C1", "2024-04-20", "22", -40_000, &[(CO, "45", -50_000)]);
    rev.payer_claim_control_number = None;
    let u = last(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Remit(&primary),
        ClaimInput::Remit(&secondary),
        ClaimInput::Remit(&rev),
    ]);
    assert_eq!(u.status, ClaimStatus::Reversed);
}

#[test]
fn a_rejections_resubmission_receipt_is_received() {
    let c = claim("C1", "2024-03-10");
    let rej = ack("C1", "2024-03-11", "A3", "21");
    let mut rep: ClaimSubmitted = claim("C1", "2024-03-11");
    rep.event_id = "clm-C1-2".into();
    rep.frequency = ClaimFrequency::Replacement;
    rep.event_time = rej.event_time + 3_600_000;
    let mut a1 = ack("C1", "2024-03-12", "A1", "19");
    a1.event_id = "ack-C1-a1".into();
    let u = last(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Ack(&rej),
        ClaimInput::Submitted(&rep),
        ClaimInput::Ack(&a1),
    ]);
    assert_eq!(u.status, ClaimStatus::Received);
}

#[test]
fn two_primary_835s_of_one_replacement_add_up() {
    let (c, denied, rep, _) = appeal_inputs();
    let mut part_a = remit("C1", "2024-05-02", "1", 0, &[(CO, "50", 40_000)]);
    part_a.frequency = Some("7".into());
    part_a.payer_claim_control_number = Some("PCN-A".into());
    let mut part_b = remit("C1", "2024-05-03", "1", 50_000, &[(CO, "45", 10_000)]);
    part_b.frequency = Some("7".into());
    part_b.payer_claim_control_number = Some("PCN-B".into());
    let u = last(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Remit(&denied),
        ClaimInput::Submitted(&rep),
        ClaimInput::Remit(&part_a),
        ClaimInput::Remit(&part_b),
    ]);
    assert_eq!(u.status, ClaimStatus::PartiallyPaid);
    assert_eq!(u.denial_category.as_deref(), Some("MEDICAL_NECESSITY"));
    assert!(
        u.carc_codes.iter().all(|c| c != "CO-197"),
        "{:?}",
        u.carc_codes
    );
}

#[test]
fn a_rebill_of_a_paid_claim_is_not_a_new_round() {
    let c = claim("C1", "2024-03-01");
    let paid = remit("C1", "2024-04-15", "1", 50_000, &[(CO, "45", 50_000)]);
    let mut rebill = claim("C1", "2024-04-20");
    rebill.event_id = "clm-C1-rebill".into();
    let (r, state, _) = applied(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Remit(&paid),
        ClaimInput::Submitted(&rebill),
    ]);
    assert_eq!(
        r.next_timer(&state).1,
        ClaimTimer::Expire,
        "no MISSING_ACK / MISSING_REMIT on a paid claim: {:?}",
        r.pending_timers(&state)
    );
}

#[test]
fn an_835_for_the_original_does_not_answer_the_replacement() {
    let c = claim("C1", "2024-03-01");
    let mut rep: ClaimSubmitted = claim("C1", "2024-03-05");
    rep.event_id = "clm-C1-2".into();
    rep.frequency = ClaimFrequency::Replacement;
    // CLP09 = 1: it adjudicates the original, though dated after the replacement.
    let original = remit("C1", "2024-03-20", "1", 50_000, &[(CO, "45", 50_000)]);
    let (r, state, _) = applied(&[
        ClaimInput::Submitted(&c),
        ClaimInput::Submitted(&rep),
        ClaimInput::Remit(&original),
    ]);
    let pending = r.pending_timers(&state);
    assert!(
        pending.contains(&(t("2024-03-05") + 45 * DAY_MS, ClaimTimer::MissingRemit)),
        "the replacement still waits for its 835: {pending:?}"
    );
}

/// An 835 sends a reversal and the corrected claim together (same payment date and time, the
/// reversal first): whatever their ids and arrival order, the reversal retracts the earlier
/// adjudication and the correction stands.
#[test]
fn a_reversal_and_its_correction_in_one_835_leave_the_correction_in_force() {
    let c = claim("C1", "2024-03-01");
    let paid = remit(
        "C1",
        "2024-03-25",
        "1",
        50_000,
        &[(CO, "45", 40_000), (PR, "2", 10_000)],
    );
    for ids in [
        ("a", "b"),
        ("b", "a"),
        ("x1", "y2"),
        ("y2", "x1"),
        ("q", "r"),
        ("r", "q"),
    ] {
        let mut rev = remit(
            "C1",
            "2024-04-05",
            "22",
            -50_000,
            &[(CO, "45", -40_000), (PR, "2", -10_000)],
        );
        rev.event_id = format!("rev-{}", ids.0);
        let mut again = remit(
            "C1",
            "2024-04-05",
            "1",
            45_000,
            &[(CO, "45", 45_000), (PR, "2", 10_000)],
        );
        again.event_id = format!("again-{}", ids.1);
        for order in [[&rev, &again], [&again, &rev]] {
            let u = last(&[
                ClaimInput::Submitted(&c),
                ClaimInput::Remit(&paid),
                ClaimInput::Remit(order[0]),
                ClaimInput::Remit(order[1]),
            ]);
            assert_eq!(u.status, ClaimStatus::Paid, "{ids:?}");
            assert_eq!(u.paid_to_date_cents, 45_000, "{ids:?}");
            let co: i64 = u
                .adjustments_by_group
                .iter()
                .filter(|a| a.code == "CO")
                .map(|a| a.amount_cents)
                .sum();
            assert_eq!(
                co, 45_000,
                "the correction's CO-45, not the original's: {ids:?}"
            );
        }
    }
}

/// CLP02 25 is a predetermination (pricing only, no payment): it does not adjudicate the claim.
/// The status stays as the acknowledgments left it, no adjudication reaches the payer flow, the
/// missing-remit timer still runs, and the real adjudication later is the first one.
#[test]
fn a_predetermination_does_not_adjudicate_the_claim() {
    let r = reconciler();
    let c = claim("C1", "2024-03-01");
    let a = ack("C1", "2024-03-02", "A2", "20");
    let predet = remit(
        "C1",
        "2024-03-10",
        "25",
        0,
        &[(CO, "45", 30_000), (CO, "101", 70_000)],
    );
    let mut state = ClaimState::default();
    let mut out = ClaimOutputs::default();
    r.apply(&mut state, "C1", ClaimInput::Submitted(&c), &mut out);
    r.apply(&mut state, "C1", ClaimInput::Ack(&a), &mut out);
    out.costs.clear();
    r.apply(&mut state, "C1", ClaimInput::Remit(&predet), &mut out);
    let u = r.view(&state, "C1");
    assert_eq!(u.status, ClaimStatus::Accepted);
    assert_eq!(u.paid_to_date_cents, 0);
    assert_eq!(u.variance_cents, None);
    assert!(u.adjustments_by_group.is_empty());
    assert!(facts(&out).is_empty(), "no adjudication fact");
    assert_eq!(r.next_timer(&state).1, ClaimTimer::MissingRemit);
    // A repeat of it is recognised.
    assert!(!r.apply(&mut state, "C1", ClaimInput::Remit(&predet), &mut out));
    // The claim's own adjudication is its first.
    let paid = remit("C1", "2024-04-01", "1", 50_000, &[(CO, "45", 50_000)]);
    r.apply(&mut state, "C1", ClaimInput::Remit(&paid), &mut out);
    let f = facts(&out);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].first_adjudication && f[0].first_pass_paid);
    let u = r.view(&state, "C1");
    assert_eq!(u.status, ClaimStatus::Paid);
    assert_eq!(u.paid_to_date_cents, 50_000);
    assert_eq!(r.next_timer(&state).1, ClaimTimer::Expire);
}
