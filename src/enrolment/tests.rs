use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::codec::{AvroCodec, SchemaKind};
use crate::config::CoreConfig;
use crate::core::{partition_for, Engine, Partition};
use crate::model::fixtures::{ack, claim, d, enrollment, remit, t};
use crate::model::start_of_day as start_of;
use crate::model::{validate, AdjustmentGroup::CO, InputEvent, MaintenanceType::*};
use crate::refdata::RefData;
use crate::state::{PartitionStore, StateDb};

fn paid(member: &str, claim: &str, service: &str, cents: i64, at: &str) -> MemberPaid {
    MemberPaid {
        member_id: member.into(),
        claim_id: claim.into(),
        service_date: d(service),
        paid_cents: cents,
        event_time: t(at),
    }
}

/// Applies records to one member and returns the sums the facts built.
fn run(records: &[Either]) -> (EnrolmentState, PmpmAgg) {
    let (mut st, mut agg, mut out) = (EnrolmentState::default(), PmpmAgg::default(), Vec::new());
    for r in records {
        match r {
            Either::E(e) => {
                if apply_enrollment(&mut st, e) {
                    refresh(&mut st, e.event_time, &mut out);
                }
            }
            Either::P(p) => {
                if apply_paid(&mut st, p) == PaidOutcome::Applied {
                    refresh(&mut st, p.event_time, &mut out);
                }
            }
        }
    }
    for r in &out {
        if let Rekeyed::Pmpm(f) = r {
            agg.add(f);
        }
    }
    (st, agg)
}

#[derive(Clone)]
enum Either {
    E(MemberEnrollment),
    P(MemberPaid),
}

fn mm(agg: &PmpmAgg, month: i32) -> i64 {
    agg.month_rows(month)
        .last()
        .filter(|r| r.0 == month)
        .map_or(0, |r| r.1)
}

#[test]
fn months_and_days() {
    assert_eq!(month_of(d("2024-02-29")), 202_402);
    assert_eq!(next_month(202_412), 202_501);
    assert_eq!(prev_month(202_501), 202_412);
    assert_eq!(day_in_month(202_402, 15), d("2024-02-15"));
    assert_eq!(format_month(202_403), "2024-03");
}

#[test]
fn a_member_month_needs_coverage_on_the_15th() {
    let e = enrollment(
        "M1",
        "S1",
        Add,
        "2024-01-16",
        Some("2024-04-14"),
        "2024-01-01",
    );
    let (_, agg) = run(&[Either::E(e)]);
    // Jan 16 misses Jan 15; Apr 14 misses Apr 15: February and March only.
    assert_eq!(mm(&agg, 202_401), 0);
    assert_eq!(mm(&agg, 202_402), 1);
    assert_eq!(mm(&agg, 202_403), 1);
    assert_eq!(mm(&agg, 202_404), 0);
    let e = enrollment(
        "M1",
        "S1",
        Add,
        "2024-01-15",
        Some("2024-04-15"),
        "2024-01-01",
    );
    let (_, agg) = run(&[Either::E(e)]);
    assert_eq!((1..=4).map(|m| mm(&agg, 202_400 + m)).sum::<i64>(), 4);
    // Overlapping spans count a member once per month.
    let a = enrollment(
        "M1",
        "S1",
        Add,
        "2024-01-01",
        Some("2024-06-30"),
        "2024-01-01",
    );
    let b = enrollment("M1", "S2", Add, "2024-03-01", None, "2024-01-02");
    let (st, agg) = run(&[Either::E(a), Either::E(b)]);
    assert_eq!(st.coverage(), vec![(d("2024-01-01"), None)]);
    assert_eq!(mm(&agg, 202_405), 1);
    assert_eq!(mm(&agg, 202_612), 1, "open-ended");
}

#[test]
fn a_terminate_before_its_add_still_ends_the_span() {
    let add = enrollment(
        "M1",
        "S1",
        Add,
        "2024-01-01",
        Some("2024-12-31"),
        "2023-12-01",
    );
    let term = enrollment(
        "M1",
        "S1",
        Terminate,
        "2024-01-01",
        Some("2024-03-31"),
        "2024-03-10",
    );
    let in_order = run(&[Either::E(add.clone()), Either::E(term.clone())]);
    let reversed = run(&[Either::E(term), Either::E(add)]);
    assert_eq!(in_order.1, reversed.1);
    assert_eq!(
        in_order.0.coverage(),
        vec![(d("2024-01-01"), Some(d("2024-03-31")))]
    );
    assert_eq!(reversed.0.coverage(), in_order.0.coverage());
    assert_eq!(mm(&in_order.1, 202_403), 1);
    assert_eq!(mm(&in_order.1, 202_404), 0);
}

#[test]
fn a_replaced_or_cancelled_span_gives_way_whatever_the_order() {
    let add = enrollment("M1", "S1", Add, "2024-01-01", None, "2023-12-01");
    let change = enrollment("M1", "S1", Change, "2024-02-01", None, "2024-01-20");
    let cancel = enrollment("M1", "S1", Cancel, "2024-02-01", None, "2024-02-05");
    let p = paid("M1", "C1", "2024-01-10", 5_000, "2024-02-20");
    let recs = [
        Either::E(add.clone()),
        Either::E(change.clone()),
        Either::P(p.clone()),
    ];
    let (st, agg) = run(&recs);
    assert_eq!(st.coverage(), vec![(d("2024-02-01"), None)]);
    // The January claim is now outside eligibility.
    assert_eq!(
        agg.months
            .get(&202_401)
            .map(|m| (m.eligible_paid_cents, m.unenrolled_paid_cents)),
        Some((0, 5_000))
    );
    let (st2, agg2) = run(&[
        Either::P(p.clone()),
        Either::E(change.clone()),
        Either::E(add.clone()),
    ]);
    assert_eq!(
        (st2.coverage(), agg2.months.clone()),
        (st.coverage(), agg.months.clone())
    );
    // A cancel wins over the older add that arrives after it.
    let (st3, agg3) = run(&[
        Either::E(cancel),
        Either::E(add),
        Either::E(change),
        Either::P(p),
    ]);
    assert!(st3.coverage().is_empty());
    assert_eq!(mm(&agg3, 202_403), 0);
    assert_eq!(
        agg3.months.get(&202_401).map(|m| m.unenrolled_paid_cents),
        Some(5_000)
    );
}

#[test]
fn duplicates_and_older_paid_amounts_change_nothing() {
    let add = enrollment("M1", "S1", Add, "2024-01-01", None, "2023-12-01");
    let mut st = EnrolmentState::default();
    assert!(apply_enrollment(&mut st, &add));
    assert!(!apply_enrollment(&mut st, &add));
    let first = paid("M1", "C1", "2024-01-10", 5_000, "2024-02-20");
    assert_eq!(apply_paid(&mut st, &first), PaidOutcome::Applied);
    assert_eq!(apply_paid(&mut st, &first), PaidOutcome::Unchanged);
    assert_eq!(
        apply_paid(
            &mut st,
            &paid("M1", "C1", "2024-01-10", 9_000, "2024-02-10")
        ),
        PaidOutcome::Unchanged
    );
    assert_eq!(
        apply_paid(&mut st, &paid("M1", "C1", "2024-01-10", 0, "2024-03-01")),
        PaidOutcome::Applied,
        "reversal"
    );
    assert_eq!(st.claims[0].paid_cents, 0);
}

/// Brute force over 2023-2025 (see [`brute_in`]).
fn brute(records: &[Either]) -> BTreeMap<i32, (i64, i64, i64)> {
    brute_in(records, 202_301, 202_512)
}

/// Brute force: member months (months `from..=to`) and paid amounts per month straight from the
/// records.
fn brute_in(records: &[Either], from: i32, to: i32) -> BTreeMap<i32, (i64, i64, i64)> {
    let mut spans: BTreeMap<(String, String), &MemberEnrollment> = BTreeMap::new();
    let mut claims: BTreeMap<(String, String), &MemberPaid> = BTreeMap::new();
    for r in records {
        match r {
            Either::E(e) => {
                let k = (e.member_id.clone(), e.span_id.clone());
                let newer = spans
                    .get(&k)
                    .is_none_or(|o| (e.event_time, &e.event_id) > (o.event_time, &o.event_id));
                if newer {
                    spans.insert(k, e);
                }
            }
            Either::P(p) => {
                let k = (p.member_id.clone(), p.claim_id.clone());
                if claims.get(&k).is_none_or(|o| p.event_time >= o.event_time) {
                    claims.insert(k, p);
                }
            }
        }
    }
    let covers = |member: &str, day: EpochDay| {
        spans.iter().any(|((m, _), e)| {
            m == member
                && e.maintenance_type != Cancel
                && e.coverage_start_date <= day
                && e.coverage_end_date.is_none_or(|x| day <= x)
        })
    };
    let members: std::collections::BTreeSet<&str> = spans.keys().map(|(m, _)| m.as_str()).collect();
    let mut out: BTreeMap<i32, (i64, i64, i64)> = BTreeMap::new();
    let mut m = from;
    while m <= to {
        let n = members
            .iter()
            .filter(|x| covers(x, day_in_month(m, MEMBER_MONTH_DAY)))
            .count() as i64;
        if n > 0 {
            out.entry(m).or_default().0 = n;
        }
        m = next_month(m);
    }
    for ((member, _), p) in &claims {
        let e = out.entry(month_of(p.service_date)).or_default();
        if covers(member, p.service_date) {
            e.1 += p.paid_cents;
        } else {
            e.2 += p.paid_cents;
        }
    }
    out.retain(|_, v| *v != (0, 0, 0));
    out
}

/// Random records for a few members: adds, changes, terminations, cancels, paid amounts with
/// reversals; distinct event times per claim.
fn random_records(rng: &mut ChaCha8Rng) -> Vec<Either> {
    let mut v = Vec::new();
    for m in 0..12 {
        let member = format!("M{m}");
        for s in 0..rng.gen_range(0..3) {
            let span = format!("S{s}");
            for k in 0..rng.gen_range(1..4) {
                let start = d("2024-01-01") + rng.gen_range(0..300);
                let end = rng.gen_bool(0.6).then(|| start + rng.gen_range(0..300));
                let kind = match rng.gen_range(0..10) {
                    0 => Cancel,
                    1..=2 if end.is_some() => Terminate,
                    3..=4 => Change,
                    _ => Add,
                };
                let mut e = enrollment(&member, &span, kind, "2024-01-01", None, "2023-12-01");
                e.event_id = format!("e-{member}-{span}-{k}");
                e.event_time = t("2023-12-01") + rng.gen_range(0..400) * 86_400_000;
                e.coverage_start_date = start;
                e.coverage_end_date = end;
                v.push(Either::E(e));
            }
        }
        for c in 0..rng.gen_range(0..5) {
            let claim = format!("C{m}-{c}");
            let service = d("2024-01-01") + rng.gen_range(0..400);
            let mut at = t("2024-01-01") + i64::from(service - d("2024-01-01")) * 86_400_000;
            for _ in 0..rng.gen_range(1..3) {
                at += rng.gen_range(1..60) * 86_400_000;
                v.push(Either::P(MemberPaid {
                    member_id: member.clone(),
                    claim_id: claim.clone(),
                    service_date: service,
                    paid_cents: rng.gen_range(0..200_000),
                    event_time: at,
                }));
            }
        }
    }
    v
}

/// Applies records per member in their order and returns the facts the members sent.
fn member_facts(records: &[Either]) -> Vec<Rekeyed> {
    let mut states: BTreeMap<String, EnrolmentState> = BTreeMap::new();
    let mut facts = Vec::new();
    for r in records {
        let (member, at) = match r {
            Either::E(e) => (e.member_id.clone(), e.event_time),
            Either::P(p) => (p.member_id.clone(), p.event_time),
        };
        let st = states.entry(member).or_default();
        let changed = match r {
            Either::E(e) => apply_enrollment(st, e),
            Either::P(p) => apply_paid(st, p) == PaidOutcome::Applied,
        };
        if changed {
            refresh(st, at, &mut facts);
        }
    }
    facts
}

#[test]
fn the_sums_equal_a_brute_force_count_in_any_arrival_order() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for _ in 0..30 {
        let records = random_records(&mut rng);
        let expected = brute(&records);
        for _ in 0..4 {
            let mut shuffled = records.clone();
            shuffled.shuffle(&mut rng);
            // Per member, in arrival order; the facts of all members in a random order too.
            let mut facts = member_facts(&shuffled);
            facts.shuffle(&mut rng);
            let mut agg = PmpmAgg::default();
            for f in &facts {
                if let Rekeyed::Pmpm(f) = f {
                    agg.add(f);
                }
            }
            let got: BTreeMap<i32, (i64, i64, i64)> = agg
                .month_rows(202_512)
                .into_iter()
                .map(|(m, mm, e, u)| (m, (mm, e, u)))
                .filter(|(_, v)| *v != (0, 0, 0))
                .collect();
            assert_eq!(got, expected);
        }
    }
}

/// The month sums as (member months, eligible, unenrolled) per month through `until`, zero
/// months left out: what [`brute_in`] gives.
fn sums(agg: &PmpmAgg, until: i32) -> BTreeMap<i32, (i64, i64, i64)> {
    agg.month_rows(until)
        .into_iter()
        .map(|(m, mm, e, u)| (m, (mm, e, u)))
        .filter(|(_, v)| *v != (0, 0, 0))
        .collect()
}

/// Eight years of one member's monthly claims in event-time order: a month closes 24 months
/// before the month of the latest paid amount, its claims leave the state and the sums keep
/// them; a reversal for a closed month is dropped, one for an open month is applied; an
/// enrolment record, whatever its time, closes nothing.
#[test]
fn closed_months_leave_the_member_and_stay_in_the_sums() {
    let mut records = vec![Either::E(enrollment(
        "M1",
        "S1",
        Add,
        "2015-01-01",
        None,
        "2014-12-01",
    ))];
    let mut m = 201_501;
    let mut k = 0;
    while m <= 202_212 {
        records.push(Either::P(MemberPaid {
            member_id: "M1".into(),
            claim_id: format!("C{k}"),
            service_date: day_in_month(m, 10),
            paid_cents: 10_000 + k,
            event_time: start_of(day_in_month(m, 10) + 30),
        }));
        m = next_month(m);
        k += 1;
    }
    let mut st = EnrolmentState::default();
    let mut facts = Vec::new();
    let mut most = 0;
    for r in &records {
        match r {
            Either::E(e) => {
                assert!(apply_enrollment(&mut st, e));
                refresh(&mut st, e.event_time, &mut facts);
            }
            Either::P(p) => {
                assert_eq!(apply_paid(&mut st, p), PaidOutcome::Applied);
                refresh(&mut st, p.event_time, &mut facts);
            }
        }
        // What the member holds as sent is what it would send now.
        assert_eq!(contribution(&st), st.sent);
        most = most.max(st.claims.len());
    }
    // The clock is in January 2023 (December's claim paid on the 9th): January 2021 and before
    // are closed. A month's claim is paid in the next month, so 23 open months hold claims.
    assert_eq!(st.closed_through(), Some(202_101));
    assert_eq!(most, 23, "the open months' claims, at most");
    assert_eq!(st.claims.len(), 23);
    assert!(st
        .claims
        .iter()
        .all(|c| month_of(c.service_date) >= 202_102));
    let mut agg = PmpmAgg::default();
    for f in &facts {
        if let Rekeyed::Pmpm(f) = f {
            agg.add(f);
        }
    }
    assert_eq!(sums(&agg, 202_212), brute_in(&records, 201_501, 202_212));

    // A reversal of a claim of a closed month: dropped, nothing sent.
    let late = paid("M1", "C0", "2015-01-10", 0, "2023-01-20");
    let before = st.clone();
    assert_eq!(apply_paid(&mut st, &late), PaidOutcome::Closed);
    assert_eq!(st, before);
    // Of an open month: applied and taken back from the sums.
    let open = paid("M1", "C95", "2022-12-10", 0, "2023-01-20");
    assert_eq!(apply_paid(&mut st, &open), PaidOutcome::Applied);
    let mut more = Vec::new();
    assert!(refresh(&mut st, open.event_time, &mut more));
    for f in &more {
        if let Rekeyed::Pmpm(f) = f {
            agg.add(f);
        }
    }
    let after = sums(&agg, 202_212);
    assert_eq!(after[&202_212], (1, 0, 0));
    assert_eq!(
        after[&201_501],
        (1, 10_000, 0),
        "the closed month as it stood"
    );

    // An enrolment record sent in 2030 does not move the paid clock.
    let export = enrollment("M1", "S2", Add, "2023-06-01", None, "2030-01-01");
    assert!(apply_enrollment(&mut st, &export));
    refresh(&mut st, export.event_time, &mut more);
    assert_eq!(st.closed_through(), Some(202_101));
}

/// Random records of six years, arriving out of order by up to 180 days: the sums equal the
/// brute-force count (no paid amount comes late enough to meet a closed month), while each
/// member keeps only its open months' claims.
#[test]
fn late_records_within_the_run_out_give_the_brute_force_sums() {
    let mut rng = ChaCha8Rng::seed_from_u64(24);
    for _ in 0..20 {
        let mut records = Vec::new();
        for m in 0..6 {
            let member = format!("M{m}");
            for s in 0..rng.gen_range(1..3) {
                let start = d("2016-01-01") + rng.gen_range(0..800);
                let end = rng.gen_bool(0.5).then(|| start + rng.gen_range(200..1500));
                let mut e = enrollment(
                    &member,
                    &format!("S{s}"),
                    Add,
                    "2016-01-01",
                    None,
                    "2015-12-01",
                );
                e.event_time = start_of(start - 30);
                e.coverage_start_date = start;
                e.coverage_end_date = end;
                records.push(Either::E(e));
            }
            for c in 0..rng.gen_range(20..60) {
                let service = d("2016-01-01") + rng.gen_range(0..2190);
                let mut at = start_of(service + rng.gen_range(5..60));
                for _ in 0..rng.gen_range(1..3) {
                    records.push(Either::P(MemberPaid {
                        member_id: member.clone(),
                        claim_id: format!("C{m}-{c}"),
                        service_date: service,
                        paid_cents: rng.gen_range(0..200_000),
                        event_time: at,
                    }));
                    at += rng.gen_range(30..340) * 86_400_000;
                }
            }
        }
        // Arrival: event time plus up to 180 days of delay.
        let mut arrival: Vec<(i64, Either)> = records
            .iter()
            .map(|r| {
                let at = match r {
                    Either::E(e) => e.event_time,
                    Either::P(p) => p.event_time,
                };
                (at + rng.gen_range(0..180) * 86_400_000, r.clone())
            })
            .collect();
        arrival.sort_by_key(|(at, _)| *at);
        let mut states: BTreeMap<String, EnrolmentState> = BTreeMap::new();
        let mut agg = PmpmAgg::default();
        for (_, r) in &arrival {
            let mut out = Vec::new();
            let (member, at) = match r {
                Either::E(e) => (&e.member_id, e.event_time),
                Either::P(p) => (&p.member_id, p.event_time),
            };
            let st = states.entry(member.clone()).or_default();
            let applied = match r {
                Either::E(e) => apply_enrollment(st, e),
                Either::P(p) => {
                    let outcome = apply_paid(st, p);
                    assert_ne!(outcome, PaidOutcome::Closed);
                    outcome == PaidOutcome::Applied
                }
            };
            if applied {
                refresh(st, at, &mut out);
            }
            for f in &out {
                if let Rekeyed::Pmpm(f) = f {
                    agg.add(f);
                }
            }
            let closed = st.closed_through().unwrap_or(0);
            assert!(st.claims.iter().all(|c| month_of(c.service_date) > closed));
        }
        assert_eq!(sums(&agg, 202_312), brute_in(&records, 201_501, 202_312));
        let claims: std::collections::BTreeSet<&str> = records
            .iter()
            .filter_map(|r| match r {
                Either::P(p) => Some(p.claim_id.as_str()),
                Either::E(_) => None,
            })
            .collect();
        let held: usize = states.values().map(|st| st.claims.len()).sum();
        assert!(
            held < claims.len() / 2,
            "closed months left: {held} of {}",
            claims.len()
        );
    }
}

/// What the runtime sends, one coalesced fact per batch, sums to what every fact would: the
/// same month sums and the same flow time, for random batch boundaries.
#[test]
fn coalesced_batches_of_facts_give_the_same_sums() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    assert_eq!(coalesce(std::iter::empty()), None);
    for _ in 0..30 {
        let records = random_records(&mut rng);
        let facts: Vec<PmpmFact> = member_facts(&records)
            .into_iter()
            .filter_map(|f| match f {
                Rekeyed::Pmpm(f) => Some(f),
                _ => None,
            })
            .collect();
        let mut each = PmpmAgg::default();
        for f in &facts {
            each.add(f);
        }
        let mut batched = PmpmAgg::default();
        let mut rest = facts.as_slice();
        let mut sent = 0;
        while !rest.is_empty() {
            let n = rng.gen_range(1..=rest.len().min(40));
            let one = coalesce(&rest[..n]).expect("a non-empty batch gives a fact");
            assert_eq!(one.sign, 1);
            assert!(one.member_months.iter().all(|d| d.delta != 0));
            batched.add(&one);
            rest = &rest[n..];
            sent += 1;
        }
        assert_eq!(batched, each);
        assert!(sent <= facts.len());
    }
}

#[test]
fn the_window_is_twelve_months_to_the_last_month_with_data() {
    let mut agg = PmpmAgg::default();
    let fact = PmpmFact {
        sign: 1,
        event_time: t("2025-02-10"),
        member_months: vec![
            MonthDelta {
                month: 202_301,
                delta: 2,
            },
            MonthDelta {
                month: 202_501,
                delta: -2,
            },
        ],
        paid: vec![
            MonthPaid {
                month: 202_312,
                eligible_paid_cents: 1_000,
                unenrolled_paid_cents: 7,
            },
            MonthPaid {
                month: 202_412,
                eligible_paid_cents: 3_000,
                unenrolled_paid_cents: 0,
            },
        ],
    };
    apply_fact(&mut agg, &fact);
    let w = agg.window().unwrap();
    assert_eq!(w.months.first().unwrap().month, "2024-01");
    assert_eq!(w.months.last().unwrap().month, "2024-12");
    assert_eq!(w.member_months, 24);
    assert_eq!(w.paid_cents, 3_000);
    assert_eq!(w.paid_without_eligibility_cents, 0);
    let mut k = crate::population::aggregate::summary("all", 1, 0, &Default::default())
        .kpis
        .unwrap();
    w.fill(&mut k);
    assert_eq!(k.cost_pmpm_cents, Some(125));
    assert_eq!(k.pmpm_first_month.as_deref(), Some("2024-01"));
    // Taking the fact back empties the sums.
    apply_fact(&mut agg, &PmpmFact { sign: -1, ..fact });
    assert!(agg.months.is_empty());
    assert_eq!(agg.window(), None);
}

/// One fact: `members` enrolled from `from` (open-ended unless `to`), `paid` cents in each of
/// the listed months, stamped `at`.
fn fact(members: i64, from: i32, to: Option<i32>, paid: &[i32], at: &str) -> PmpmFact {
    let mut member_months = vec![MonthDelta {
        month: from,
        delta: members,
    }];
    if let Some(to) = to {
        member_months.push(MonthDelta {
            month: to,
            delta: -members,
        });
    }
    PmpmFact {
        sign: 1,
        event_time: t(at),
        member_months,
        paid: paid
            .iter()
            .map(|m| MonthPaid {
                month: *m,
                eligible_paid_cents: 10_000,
                unenrolled_paid_cents: 0,
            })
            .collect(),
    }
}

const MONTHS_2024: [i32; 12] = [
    202_401, 202_402, 202_403, 202_404, 202_405, 202_406, 202_407, 202_408, 202_409, 202_410,
    202_411, 202_412,
];

#[test]
fn an_eligibility_record_stamped_later_does_not_move_the_window() {
    // Open-ended spans; claims paid for service in 2024.
    let mut agg = PmpmAgg::default();
    apply_fact(
        &mut agg,
        &fact(1_000, 202_401, None, &MONTHS_2024, "2025-01-20"),
    );
    let before = agg.window().unwrap();
    assert_eq!(before.months.last().unwrap().month, "2024-12");
    // An eligibility file exported in September 2025 (a change of one member's details): its
    // time is the export's, not a month the claims have reached.
    apply_fact(&mut agg, &fact(0, 202_401, None, &[], "2025-09-01"));
    let after = agg.window().unwrap();
    assert_eq!(after.months.first().unwrap().month, "2024-01");
    assert_eq!(after.months.last().unwrap().month, "2024-12");
    assert_eq!(after, before);
    assert_eq!(after.member_months, 12_000);
}

#[test]
fn an_edge_month_with_a_handful_of_members_does_not_end_the_window() {
    // 1,000 members through 2024, 5 of them (a late discharge) covered into January 2025, with
    // a claim paid there: the window stays on the 12 full months.
    let mut agg = PmpmAgg::default();
    apply_fact(
        &mut agg,
        &fact(995, 202_401, Some(202_501), &MONTHS_2024, "2025-02-10"),
    );
    apply_fact(
        &mut agg,
        &fact(5, 202_401, Some(202_502), &[202_501], "2025-02-10"),
    );
    let w = agg.window().unwrap();
    assert_eq!(w.months.first().unwrap().month, "2024-01");
    assert_eq!(w.months.last().unwrap().month, "2024-12");
    assert_eq!(w.member_months, 12_000);
    assert_eq!(w.paid_cents, 12 * 10_000);
}

#[test]
fn a_claim_moved_to_another_member_counts_once() {
    let engine = Engine::new(CoreConfig::default(), RefData::shared());
    let mut parts: Vec<Partition> = (0..2)
        .map(|i| Partition::open(i, PartitionStore::hot_only(i), &engine).unwrap())
        .collect();
    let enrol = |m: &str| {
        (
            InputEvent::Enrollment(enrollment(
                m,
                "S1",
                Add,
                "2024-01-01",
                Some("2024-12-31"),
                "2023-12-01",
            )),
            "ehr.enrollment",
        )
    };
    // Paid under M0001, then replaced with the right member, M0002 (same claim id).
    let mut corrected = claim("C1", "2024-04-02");
    corrected.event_id = "clm-C1-2".into();
    corrected.member_id = "M0002".into();
    corrected.frequency = crate::model::ClaimFrequency::Replacement;
    corrected.service_date = d("2024-03-03");
    corrected.lines[0].service_date = Some(d("2024-03-03"));
    let events = vec![
        enrol("M0001"),
        enrol("M0002"),
        (InputEvent::Claim(claim("C1", "2024-03-05")), "ehr.claims"),
        (
            InputEvent::Remit(remit(
                "C1",
                "2024-03-20",
                "1",
                45_000,
                &[(CO, "45", 55_000)],
            )),
            "x12.835",
        ),
        (InputEvent::Claim(corrected), "ehr.claims"),
    ];
    drive(&engine, &mut parts, &events);
    let agg = pmpm_of(&parts);
    let paid: i64 = agg.months.values().map(|m| m.eligible_paid_cents).sum();
    assert_eq!(paid, 45_000, "the payment counts for M0002 only");
    let owner = partition_for("M0001", 2) as usize;
    let old = parts[owner].enrolment().get("M0001").unwrap();
    assert!(old.claims.iter().all(|c| c.paid_cents == 0), "{old:?}");
}

#[test]
fn invalid_enrolment_records_are_refused() {
    let ok = enrollment(
        "M1",
        "S1",
        Add,
        "2024-01-01",
        Some("2024-12-31"),
        "2023-12-01",
    );
    assert!(validate(&InputEvent::Enrollment(ok.clone())).is_ok());
    let mut bad = ok.clone();
    bad.coverage_end_date = Some(d("2023-12-31"));
    assert!(validate(&InputEvent::Enrollment(bad)).is_err());
    let mut bad = ok.clone();
    bad.member_id = " ".into();
    assert!(validate(&InputEvent::Enrollment(bad)).is_err());
    let mut bad = ok.clone();
    bad.maintenance_type = Terminate;
    bad.coverage_end_date = None;
    assert!(validate(&InputEvent::Enrollment(bad)).is_err());
    let mut bad = ok;
    bad.span_id = String::new();
    assert!(validate(&InputEvent::Enrollment(bad)).is_err());
}

#[test]
fn the_records_round_trip_through_their_schemas() {
    let codec = AvroCodec::new();
    let e = enrollment(
        "M1",
        "S1",
        Terminate,
        "2024-01-01",
        Some("2024-12-31"),
        "2023-12-01",
    );
    let mut buf = Vec::new();
    codec
        .encode_framed(SchemaKind::MemberEnrollment, &e, &mut buf)
        .unwrap();
    let back: MemberEnrollment = codec
        .decode_framed(SchemaKind::MemberEnrollment, &buf)
        .unwrap();
    assert_eq!(back, e);
    let p = paid("M1", "C1", "2024-01-10", 5_000, "2024-02-20");
    buf.clear();
    codec
        .encode_framed(SchemaKind::MemberPaid, &p, &mut buf)
        .unwrap();
    assert_eq!(
        codec
            .decode_framed::<MemberPaid>(SchemaKind::MemberPaid, &buf)
            .unwrap(),
        p
    );
    let f = PmpmFact {
        sign: -1,
        event_time: t("2024-02-20"),
        member_months: vec![MonthDelta {
            month: 202_401,
            delta: 1,
        }],
        paid: vec![MonthPaid {
            month: 202_401,
            eligible_paid_cents: 5,
            unenrolled_paid_cents: 6,
        }],
    };
    buf.clear();
    codec
        .encode_framed(SchemaKind::PmpmFact, &f, &mut buf)
        .unwrap();
    assert_eq!(
        codec
            .decode_framed::<PmpmFact>(SchemaKind::PmpmFact, &buf)
            .unwrap(),
        f
    );
    // JSON, through the input decoder (with validation).
    let mut line = Vec::new();
    crate::codec::json::encode_line(&e, &mut line);
    let decoded =
        crate::runtime::wire::decode_input(&codec, crate::model::InputStream::Enrollment, &line)
            .unwrap();
    assert_eq!(decoded, InputEvent::Enrollment(e.clone()));
    // Avro, framed as the producers send it, through the same decoder; a bad span is refused.
    let event = InputEvent::Enrollment(e.clone());
    buf.clear();
    crate::runtime::wire::encode_input(&codec, &event, crate::codec::Format::Avro, &mut buf)
        .unwrap();
    let decoded =
        crate::runtime::wire::decode_input(&codec, crate::model::InputStream::Enrollment, &buf)
            .unwrap();
    assert_eq!(decoded, event);
    let mut bad = e;
    bad.coverage_end_date = Some(bad.coverage_start_date - 1);
    buf.clear();
    crate::runtime::wire::encode_input(
        &codec,
        &InputEvent::Enrollment(bad),
        crate::codec::Format::Avro,
        &mut buf,
    )
    .unwrap();
    assert!(crate::runtime::wire::decode_input(
        &codec,
        crate::model::InputStream::Enrollment,
        &buf
    )
    .is_err());
}

/// Runs events through partitions like replay (re-keyed records routed to their owners).
fn drive(engine: &Engine, parts: &mut [Partition], events: &[(InputEvent, &str)]) {
    let (mut out, mut costs) = (Vec::new(), Vec::new());
    for (i, (e, source)) in events.iter().enumerate() {
        let p = partition_for(e.key(), parts.len() as u32) as usize;
        parts[p].apply(engine, e, source, i as i64, &mut out, &mut costs);
        crate::replay::route_rekeyed(engine, parts, &mut costs, &mut out);
    }
}

fn pmpm_of(parts: &[Partition]) -> PmpmAgg {
    let p = partition_for(crate::model::POPULATION_KEY, parts.len() as u32) as usize;
    parts[p]
        .pmpm()
        .get(PMPM_KEY)
        .map(|a| a.clone())
        .unwrap_or_default()
}

#[test]
fn paid_claims_reach_the_pmpm_and_state_survives_a_restart() {
    let engine = Engine::new(CoreConfig::default(), RefData::shared());
    let db = StateDb::temporary().unwrap();
    let open = |i: i32| Partition::open(i, db.partition(i).unwrap(), &engine).unwrap();
    let mut parts: Vec<Partition> = (0..2).map(open).collect();
    let c = claim("C1", "2024-03-05"); // member M0001, service 2024-03-03
    let events = vec![
        (
            InputEvent::Enrollment(enrollment(
                "M0001",
                "S1",
                Add,
                "2024-01-01",
                Some("2024-12-31"),
                "2023-12-01",
            )),
            "ehr.enrollment",
        ),
        (InputEvent::Claim(c), "ehr.claims"),
        (
            InputEvent::Ack(ack("C1", "2024-03-06", "A2", "20")),
            "x12.277ca",
        ),
        (
            InputEvent::Remit(remit(
                "C1",
                "2024-03-20",
                "1",
                45_000,
                &[(CO, "45", 55_000)],
            )),
            "x12.835",
        ),
    ];
    drive(&engine, &mut parts, &events);
    let agg = pmpm_of(&parts);
    assert_eq!(
        agg.months.get(&202_403).map(|m| m.eligible_paid_cents),
        Some(45_000)
    );
    let w = agg.window().unwrap();
    assert_eq!(
        (w.member_months, w.paid_cents),
        (3, 45_000),
        "Jan-Mar, flow in March"
    );
    for p in &mut parts {
        p.checkpoint(&BTreeMap::new()).unwrap();
    }
    drop(parts);
    let mut parts: Vec<Partition> = (0..2).map(open).collect();
    assert_eq!(pmpm_of(&parts), agg);
    let owner = partition_for("M0001", 2) as usize;
    assert_eq!(
        parts[owner].enrolment().get("M0001").unwrap().claims.len(),
        1
    );
    // A termination after the restart takes the months back.
    drive(
        &engine,
        &mut parts,
        &[(
            InputEvent::Enrollment(enrollment(
                "M0001",
                "S1",
                Terminate,
                "2024-01-01",
                Some("2024-01-31"),
                "2024-04-01",
            )),
            "ehr.enrollment",
        )],
    );
    let agg = pmpm_of(&parts);
    assert_eq!(
        agg.months.get(&202_403).map(|m| m.unenrolled_paid_cents),
        Some(45_000)
    );
    // The window ends with the last month that has member months: March has none left.
    let w = agg.window().unwrap();
    assert_eq!(w.member_months, 1);
    assert_eq!(w.months.last().unwrap().month, "2024-01");
    assert_eq!((w.paid_cents, w.paid_without_eligibility_cents), (0, 0));
    // Hot-only partitions agree with durable ones.
    let mut hot: Vec<Partition> = (0..2)
        .map(|i| Partition::open(i, PartitionStore::hot_only(i), &engine).unwrap())
        .collect();
    let mut all = events.clone();
    all.push((
        InputEvent::Enrollment(enrollment(
            "M0001",
            "S1",
            Terminate,
            "2024-01-01",
            Some("2024-01-31"),
            "2024-04-01",
        )),
        "ehr.enrollment",
    ));
    drive(&engine, &mut hot, &all);
    assert_eq!(pmpm_of(&hot), agg);
}

#[test]
fn a_departed_member_is_retired_when_its_last_month_closes() {
    let span = |end: Option<&str>, cancel: bool| SpanRec {
        span_id: "S1".into(),
        event_time: t("2024-01-01"),
        event_id: "e".into(),
        maintenance_type: if cancel { Cancel } else { Add },
        payer_id: "P".into(),
        payer_category: PayerCategory::Commercial,
        start: d("2024-01-01"),
        end: end.map(d),
    };
    let mut st = EnrolmentState {
        spans: vec![span(None, false)],
        ..Default::default()
    };
    assert_eq!(retire_at(&st), None, "still covered");
    st.spans = vec![span(Some("2024-06-30"), false)];
    assert_eq!(retire_at(&st), Some(start_of(d("2026-06-01"))));
    // A later claim's service date keeps the member until its month closes too.
    st.claims.push(PaidClaim {
        claim_id: "C1".into(),
        service_date: d("2024-09-10"),
        paid_cents: 100,
        event_time: t("2024-10-01"),
    });
    assert_eq!(retire_at(&st), Some(start_of(d("2026-09-01"))));
    // A cancelled open-ended span is no coverage: dated by its start.
    st.claims.clear();
    st.spans = vec![span(None, true)];
    assert_eq!(retire_at(&st), Some(start_of(d("2026-01-01"))));
    assert!(
        !closed_at(0, d("2000-01-01")),
        "no watermark yet: nothing is closed"
    );
    assert!(closed_at(t("2026-06-01"), d("2024-06-30")));
    assert!(!closed_at(t("2026-05-31"), d("2024-06-30")));
}

/// A member who left: its entry goes once its months closed on the partition's watermark (also
/// after a restart, from the rebuilt timers); the sums keep its contribution; records about its
/// closed months that arrive later are dropped and counted instead of counting it twice; a
/// member who comes back starts again.
#[test]
fn a_departed_member_leaves_the_state_and_is_not_counted_twice() {
    let engine = Engine::new(CoreConfig::default(), RefData::shared());
    let db = StateDb::temporary().unwrap();
    let open = || Partition::open(0, db.partition(0).unwrap(), &engine).unwrap();
    let mut parts = vec![open()];
    let enrol = |m: &str, typ, start: &str, end: Option<&str>, sent: &str| {
        (
            InputEvent::Enrollment(enrollment(m, "S1", typ, start, end, sent)),
            "ehr.enrollment",
        )
    };
    let claim_at = |id: &str, day: &str| (InputEvent::Claim(claim(id, day)), "ehr.claims");
    // M0001 (the fixtures' claims) is covered to 2024-06-30 and has a paid claim served
    // 2024-03-03; M0003 is covered to 2025-12-31; M0004 stays covered.
    drive(
        &engine,
        &mut parts,
        &[
            enrol("M0001", Add, "2024-01-01", Some("2024-06-30"), "2023-12-01"),
            enrol("M0003", Add, "2024-01-01", Some("2025-12-31"), "2023-12-01"),
            enrol("M0004", Add, "2024-01-01", None, "2023-12-01"),
            claim_at("C1", "2024-03-05"),
            (
                InputEvent::Remit(remit("C1", "2024-03-20", "1", 45_000, &[])),
                "x12.835",
            ),
        ],
    );
    let sums = pmpm_of(&parts);
    assert_eq!(
        sums.months.get(&202_403).map(|m| m.eligible_paid_cents),
        Some(45_000)
    );
    // The watermark reaches 2026-06-01: M0001's last month (2024-06) closes.
    drive(&engine, &mut parts, &[claim_at("C2", "2026-05-31")]);
    assert!(parts[0].enrolment().get("M0001").is_some(), "not yet due");
    drive(&engine, &mut parts, &[claim_at("C3", "2026-06-02")]);
    assert!(parts[0].enrolment().get("M0001").is_none(), "retired");
    assert!(parts[0].enrolment().get("M0003").is_some());
    assert!(parts[0].enrolment().get("M0004").is_some());
    assert_eq!(parts[0].stats().enrolment_retired, 1);
    assert_eq!(pmpm_of(&parts), sums, "its contribution stays in the sums");
    // A full eligibility file re-sends the old span, and a reversal of the 2024 claim arrives:
    // both are about closed months of a member no longer in state.
    drive(
        &engine,
        &mut parts,
        &[enrol(
            "M0001",
            Add,
            "2024-01-01",
            Some("2024-06-30"),
            "2026-06-03",
        )],
    );
    parts[0].apply_member_paid(&paid("M0001", "C1", "2024-03-03", 0, "2026-06-04"));
    assert!(parts[0].enrolment().get("M0001").is_none());
    assert_eq!(parts[0].stats().enrolment_dropped, 1);
    assert_eq!(parts[0].stats().pmpm_paid_dropped, 1);
    assert_eq!(pmpm_of(&parts), sums, "not counted twice");
    // The member comes back: a new open span is applied (and keeps it in state).
    drive(
        &engine,
        &mut parts,
        &[enrol("M0001", Add, "2026-07-01", None, "2026-06-05")],
    );
    assert!(parts[0].enrolment().get("M0001").is_some());
    // After a restart the rebuilt timers retire M0003 once its last month (2025-12) closes.
    parts[0].checkpoint(&BTreeMap::new()).unwrap();
    drop(parts);
    let mut parts = vec![open()];
    drive(&engine, &mut parts, &[claim_at("C4", "2027-12-02")]);
    assert!(
        parts[0].enrolment().get("M0003").is_none(),
        "retired after the restart"
    );
    assert!(parts[0].enrolment().get("M0004").is_some(), "still covered");
    assert!(parts[0].enrolment().get("M0001").is_some(), "covered again");
}
