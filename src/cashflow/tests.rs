use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::*;
use crate::config::{CashForecastConfig, CoreConfig};
use crate::core::{Engine, Partition};
use crate::model::fixtures::{claim, d, remit, t};
use crate::model::{AdjustmentGroup::CO, InputEvent, DAY_MS};
use crate::refdata::RefData;
use crate::state::PartitionStore;

fn hist(entries: &[(i32, i64)]) -> Vec<i64> {
    let mut h = Vec::new();
    for (day, n) in entries {
        dist::add(&mut h, *day, *n);
    }
    h
}

#[test]
fn iso_weeks_start_on_monday_and_use_the_iso_year() {
    // 2024-01-01 is a Monday.
    assert_eq!(week_start(d("2024-01-01")), d("2024-01-01"));
    assert_eq!(week_start(d("2024-01-07")), d("2024-01-01"));
    assert_eq!(week_start(d("2024-01-08")), d("2024-01-08"));
    assert_eq!(week_start(d("1970-01-01")), d("1969-12-29"));
    assert_eq!(iso_week(d("2024-01-01")), "2024-W01");
    assert_eq!(iso_week(d("2024-03-01")), "2024-W09");
    // A Friday that belongs to the last ISO week of the previous year.
    assert_eq!(iso_week(d("2021-01-01")), "2020-W53");
    assert_eq!(iso_week(d("2024-12-30")), "2025-W01");
}

#[test]
fn placement_truncates_the_distribution_at_the_claims_age() {
    // Paid after 10 days once, 20 days once, 30 days twice.
    let h = hist(&[(10, 1), (20, 1), (30, 2)]);
    assert_eq!(dist::total(&h), 4);
    assert_eq!(dist::median(&h), Some(25.0));
    // A new claim (age 0) of $100 expected paid: 1/4 on day 10, 1/4 on day 20, 2/4 on day 30.
    let p = dist::place(&h, [(0, 10_000.0)], 0, 0, 40);
    assert!((p.by_day[10] - 2_500.0).abs() < 1e-9);
    assert!((p.by_day[20] - 2_500.0).abs() < 1e-9);
    assert!((p.by_day[30] - 5_000.0).abs() < 1e-9);
    assert_eq!(p.stale, 0.0);
    // The same claim 15 days old: day 10 is behind it, so 1/3 on day 20 and 2/3 on day 30.
    let p = dist::place(&h, [(0, 9_000.0)], 15, 15, 40);
    assert!((p.by_day[20 - 15] - 3_000.0).abs() < 1e-9);
    assert!((p.by_day[30 - 15] - 6_000.0).abs() < 1e-9);
    assert!((p.sum(15, 15, 40) - 9_000.0).abs() < 1e-9);
    // Exactly 20 days old: it can still be paid today (day 20).
    let p = dist::place(&h, [(0, 9_000.0)], 20, 20, 40);
    assert!((p.by_day[0] - 3_000.0).abs() < 1e-9);
    // Older than every observed payment: stale, placed nowhere.
    let p = dist::place(&h, [(0, 9_000.0)], 31, 31, 60);
    assert_eq!(p.stale, 9_000.0);
    assert_eq!(p.sum(31, 31, 60), 0.0);
    // Days outside the range and the overflow bucket (> 120 days) count as outside.
    let h = hist(&[(3, 1), (200, 1)]);
    let p = dist::place(&h, [(0, 1_000.0)], 0, 0, 2);
    assert_eq!(p.sum(0, 0, 2), 0.0);
    assert!((p.outside - 1_000.0).abs() < 1e-9);
    // No paid claim yet: everything is stale.
    let p = dist::place(&[], [(0, 1_000.0)], 0, 0, 7);
    assert_eq!(p.stale, 1_000.0);
}

#[test]
fn weeks_sum_the_days_placed_in_them() {
    // Two claims submitted on a Monday (week W) and on the Wednesday: paid after 7 or 9 days
    // with equal weight. As of the Wednesday: claim 1 (age 2) -> days 7 and 9 = W+1 Monday and
    // W+1 Wednesday; claim 2 (age 0) -> days 9 and 11 from Wednesday = W+1 Friday, W+2 Sunday...
    let monday = d("2024-03-04");
    let h = hist(&[(7, 1), (9, 1)]);
    let mut p = CashPayer {
        days: h,
        ..CashPayer::default()
    };
    p.open.insert(
        monday,
        OpenDay {
            claims: 1,
            expected_cents: 10_000,
            scored_paid_cents: 8_000,
            ..OpenDay::default()
        },
    );
    p.open.insert(
        monday + 2,
        OpenDay {
            claims: 1,
            expected_cents: 5_000,
            unscored_claims: 1,
            unscored_expected_cents: 5_000,
            ..OpenDay::default()
        },
    );
    // Unscored claims use the payer's payment rate: 3 paid of 4 adjudicated.
    p.adjudicated = 4;
    p.paid = 3;
    let placed = forecast(&p, monday + 2, monday, monday + 21);
    // Claim 1: 4,000 on day 7 (W+1 Mon) and 4,000 on day 9 (W+1 Wed).
    // Claim 2: 3,750 x 1/2 on day 2+7 = 9 (W+1 Wed) and on day 2+9 = 11 (W+1 Fri).
    assert_eq!(placed.sum(monday, monday, monday + 7), 0.0);
    assert!((placed.sum(monday, monday + 7, monday + 14) - 11_750.0).abs() < 1e-9);
    assert!((placed.by_day[9] - 5_875.0).abs() < 1e-9);
    let f = CashForecaster::new(&CashForecastConfig {
        horizon_weeks: 3,
        ..CashForecastConfig::default()
    });
    p.flow_day = Some(monday + 2);
    let fwd = f.forward(&p);
    assert_eq!(
        fwd.iter().map(|w| w.expected_cents).collect::<Vec<_>>(),
        vec![0, 11_750, 0]
    );
    assert_eq!(fwd[1].iso_week, "2024-W11");
}

fn fact(sign: i32, day: EpochDay) -> CashFact {
    CashFact {
        sign,
        event_time: start_of_day(day) + DAY_MS / 2,
        payer_id: "P1".into(),
        payer_category: PayerCategory::Commercial,
        open_submitted_date: None,
        open_expected_cents: 0,
        open_paid_probability_micros: None,
        adjudicated_paid: None,
        days_to_payment: None,
        receipts: Vec::new(),
        source_partition: 0,
        paid_expected_cents: 0,
    }
}

fn open_fact(day: EpochDay, submitted: EpochDay, cents: i64, p: Option<i64>) -> CashFact {
    CashFact {
        open_submitted_date: Some(submitted),
        open_expected_cents: cents,
        open_paid_probability_micros: p,
        ..fact(1, day)
    }
}

fn paid_fact(day: EpochDay, days: i32, receipts: &[(EpochDay, i64)]) -> CashFact {
    CashFact {
        adjudicated_paid: Some(true),
        days_to_payment: Some(days),
        receipts: receipts
            .iter()
            .map(|(d, c)| CashReceipt {
                payment_date: *d,
                paid_cents: *c,
            })
            .collect(),
        ..fact(1, day)
    }
}

fn take_back(f: &CashFact, day: EpochDay) -> CashFact {
    CashFact {
        sign: -1,
        event_time: start_of_day(day) + DAY_MS / 2,
        ..f.clone()
    }
}

fn records(out: &[OutputEvent]) -> Vec<CashForecast> {
    out.iter()
        .filter_map(|o| match o {
            OutputEvent::CashForecast(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_week_is_forecast_at_its_start_and_corrected_by_late_receipts() {
    let f = CashForecaster::new(&CashForecastConfig::default());
    let mut p = CashPayer::default();
    let mut out = Vec::new();
    let w0 = d("2024-03-04");
    // History: paid claims took 7 days (x3) and 14 days (x1).
    for i in 0..3 {
        f.apply(&mut p, &paid_fact(w0 - 20 + i, 7, &[]), &mut out);
    }
    f.apply(&mut p, &paid_fact(w0 - 10, 14, &[]), &mut out);
    // An open claim submitted on w0 - 3 (Friday), $1,000 expected, 80 % likely paid.
    let open = open_fact(w0 - 3, w0 - 3, 100_000, Some(800_000));
    f.apply(&mut p, &open, &mut out);
    out.clear();
    // The first fact of week w0 freezes its forecast: the claim is 3 days old, so days 7 and 14
    // remain with weights 3:1: 600.00 on w0 + 4 (in the week), 200.00 on w0 + 11 (next week).
    let paid = paid_fact(w0 + 4, 7, &[(w0 + 4, 55_000)]);
    f.apply(&mut p, &take_back(&open, w0 + 4), &mut out);
    f.apply(&mut p, &paid, &mut out);
    // Earlier weeks with a frozen forecast (of nothing) complete; w0 does not yet.
    assert!(records(&out).iter().all(|r| r.iso_week != "2024-W10"));
    out.clear();
    assert_eq!(p.weeks[&w0].forecast, Some((60_000, 1)));
    // The next week's first fact completes w0: version 1, error = 550 - 600.
    f.apply(&mut p, &fact(1, w0 + 8), &mut out);
    let r = records(&out);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].forecast_key, "P1:2024-W10");
    assert_eq!(r[0].output_id, "P1:2024-W10:1");
    assert_eq!(
        (r[0].forecast_cents, r[0].actual_cents, r[0].error_cents),
        (Some(60_000), 55_000, Some(-5_000))
    );
    assert!((r[0].abs_pct_error.unwrap() - 5_000.0 / 55_000.0).abs() < 1e-12);
    assert!(r[0].complete);
    assert_eq!(r[0].forward.len(), 8);
    // A late 835 dated in w0 (a second payment of the claim) corrects it at the next day.
    out.clear();
    let both = paid_fact(w0 + 9, 7, &[(w0 + 4, 55_000), (w0 + 5, 1_000)]);
    f.apply(&mut p, &take_back(&paid, w0 + 9), &mut out);
    f.apply(&mut p, &both, &mut out);
    assert!(records(&out).iter().all(|r| r.iso_week != "2024-W10"));
    f.apply(&mut p, &fact(1, w0 + 10), &mut out);
    let r: Vec<_> = records(&out)
        .into_iter()
        .filter(|r| r.iso_week == "2024-W10")
        .collect();
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].version, r[0].actual_cents, r[0].receipts),
        (2, 56_000, 2)
    );
    // The end of a replay emits the week in progress, incomplete.
    out.clear();
    f.flush(&mut p, &mut out);
    let r = records(&out);
    assert!(r.iter().all(|r| !r.complete && r.iso_week == "2024-W11"));
}

/// Applies `facts` to a fresh aggregate; returns it with the forecast as of `at`.
fn aggregate(facts: &[CashFact], at: EpochDay) -> (CashPayer, Vec<i64>) {
    let f = CashForecaster::new(&CashForecastConfig::default());
    let mut p = CashPayer::default();
    let mut out = Vec::new();
    for fact in facts {
        f.apply(&mut p, fact, &mut out);
    }
    let placed = forecast(&p, at, at, at + 140);
    let cents = placed.by_day.iter().map(|c| c.round() as i64).collect();
    (p, cents)
}

#[test]
fn the_aggregate_does_not_depend_on_the_order_of_the_facts() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let base = d("2024-01-01");
    let mut facts = Vec::new();
    for _ in 0..400 {
        let submitted = base + rng.gen_range(0..60);
        let cents = rng.gen_range(1_000..500_000);
        let score = rng.gen_bool(0.8).then(|| rng.gen_range(0..=1_000_000));
        let open = open_fact(submitted, submitted, cents, score);
        facts.push(open.clone());
        if rng.gen_bool(0.7) {
            // Adjudicated later: the open content is taken back.
            let days = rng.gen_range(5..50);
            let paid_on = submitted + days;
            facts.push(take_back(&open, paid_on));
            let mut closed = paid_fact(paid_on, days, &[(paid_on, cents * 9 / 10)]);
            if rng.gen_bool(0.2) {
                closed.adjudicated_paid = Some(false);
                closed.days_to_payment = None;
                closed.receipts.clear();
            }
            facts.push(closed);
        }
    }
    let at = base + 70;
    let (want, want_cents) = aggregate(&facts, at);
    for _ in 0..5 {
        facts.shuffle(&mut rng);
        let (got, got_cents) = aggregate(&facts, at);
        assert_eq!(got.days, want.days);
        assert_eq!((got.adjudicated, got.paid), (want.adjudicated, want.paid));
        assert_eq!(got.open, want.open);
        let sums = |p: &CashPayer| -> Vec<(EpochDay, i64, i64)> {
            p.weeks
                .iter()
                .map(|(w, e)| (*w, e.actual_cents, e.receipts))
                .collect()
        };
        assert_eq!(sums(&got), sums(&want));
        assert_eq!(got_cents, want_cents);
    }
    assert!(want.open.values().map(|o| o.claims).sum::<i64>() > 50);
    assert!(want_cents.iter().sum::<i64>() > 0);
}

#[test]
fn a_claim_sends_only_the_difference_of_its_content() {
    let engine = Engine::new(CoreConfig::default(), RefData::shared());
    let mut part = Partition::open(0, PartitionStore::hot_only(0), &engine).unwrap();
    let (mut out, mut re) = (Vec::new(), Vec::new());
    let c = claim("C1", "2024-03-01");
    part.apply(
        &engine,
        &InputEvent::Claim(c.clone()),
        "ehr.claims",
        0,
        &mut out,
        &mut re,
    );
    let cash: Vec<CashFact> = re
        .iter()
        .filter_map(|r| match r {
            Rekeyed::Cash(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(cash.len(), 1);
    let score = out
        .iter()
        .find_map(|o| match o {
            OutputEvent::DenialRisk(s) => Some(s.probability),
            _ => None,
        })
        .expect("scored at submission");
    assert_eq!(cash[0].sign, 1);
    assert_eq!(cash[0].open_submitted_date, Some(d("2024-03-01")));
    assert_eq!(cash[0].open_expected_cents, 60_000);
    assert_eq!(
        cash[0].open_paid_probability_micros,
        Some(micros(1.0 - score))
    );
    // The same claim again (a duplicate) sends nothing.
    let mut applied = std::mem::take(&mut re);
    part.apply(
        &engine,
        &InputEvent::Claim(c),
        "ehr.claims",
        1,
        &mut out,
        &mut re,
    );
    assert!(!re.iter().any(|r| matches!(r, Rekeyed::Cash(_))));
    // Paid: the open content is taken back and the paid one added.
    let r = remit("C1", "2024-03-21", "1", 55_000, &[(CO, "45", 45_000)]);
    part.apply(
        &engine,
        &InputEvent::Remit(r),
        "x12.835",
        0,
        &mut out,
        &mut re,
    );
    let cash: Vec<CashFact> = re
        .iter()
        .filter_map(|r| match r {
            Rekeyed::Cash(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(cash.len(), 2);
    assert_eq!((cash[0].sign, cash[0].open_expected_cents), (-1, 60_000));
    assert_eq!(cash[0].event_time, t("2024-03-21"));
    assert_eq!(cash[1].sign, 1);
    assert_eq!(cash[1].open_submitted_date, None);
    assert_eq!(cash[1].adjudicated_paid, Some(true));
    assert_eq!(cash[1].days_to_payment, Some(20));
    assert_eq!(
        cash[1].receipts,
        vec![CashReceipt {
            payment_date: d("2024-03-21"),
            paid_cents: 55_000
        }]
    );
    // The payer flow sums them: nothing open, one receipt.
    applied.append(&mut re);
    for r in &applied {
        part.apply_rekeyed(&engine, r, &mut out);
    }
    let p = part.cash_payers().get("P-ACME").unwrap().clone();
    assert!(p.open.is_empty());
    assert_eq!((p.paid, p.adjudicated, dist::total(&p.days)), (1, 1, 1));
    assert_eq!(p.weeks[&week_start(d("2024-03-21"))].actual_cents, 55_000);
    // A secondary payer's 835 (CLP02 2, a Medigap plan paying the coinsurance) is that payer's
    // cash, not the primary's: the claim's receipts stay the primary's.
    let mut secondary = remit("C1", "2024-04-02", "2", 9_000, &[(CO, "45", 1_000)]);
    secondary.payer_id = "P-MEDIGAP".into();
    secondary.payer_claim_control_number = Some("PCN-2".into());
    part.apply(
        &engine,
        &InputEvent::Remit(secondary),
        "x12.835",
        1,
        &mut out,
        &mut re,
    );
    for r in &re {
        if let Rekeyed::Cash(f) = r {
            assert!(
                f.receipts.iter().all(|r| r.paid_cents == 55_000),
                "{:?}",
                f.receipts
            );
        }
    }
}

#[test]
fn expected_paid_amounts_round_once_per_claim() {
    assert_eq!(expected_paid_cents(100_000, 800_000), 80_000);
    assert_eq!(expected_paid_cents(3, 500_000), 2);
    assert_eq!(expected_paid_cents(1, 499_999), 0);
    assert_eq!(micros(0.25), 250_000);
    assert_eq!(micros(1.5), 1_000_000);
}

#[test]
fn cash_records_fit_their_avro_schemas() {
    use crate::codec::{AvroCodec, Format, SchemaKind};
    let codec = AvroCodec::new();
    let mut paid = paid_fact(d("2024-03-04"), 12, &[(d("2024-03-04"), -5_000)]);
    paid.sign = -1;
    paid.source_partition = 3;
    let open = open_fact(d("2024-03-04"), d("2024-03-01"), 60_000, Some(750_000));
    for f in [paid, open] {
        let mut bytes = Vec::new();
        codec
            .encode_framed(SchemaKind::CashFact, &f, &mut bytes)
            .unwrap();
        let back: CashFact = codec.decode_framed(SchemaKind::CashFact, &bytes).unwrap();
        assert_eq!(back, f);
    }
    let f = CashForecaster::new(&CashForecastConfig::default());
    let mut p = CashPayer::default();
    let mut out = Vec::new();
    let w0 = d("2024-03-04");
    f.apply(&mut p, &paid_fact(w0 - 9, 7, &[(w0 - 9, 1_000)]), &mut out);
    f.apply(&mut p, &open_fact(w0 - 2, w0 - 2, 10_000, None), &mut out);
    f.apply(&mut p, &fact(1, w0 + 8), &mut out);
    f.flush(&mut p, &mut out);
    let recs = records(&out);
    assert!(recs.iter().any(|r| r.forecast_cents.is_some()));
    for (event, r) in out.iter().zip(&recs) {
        for format in [Format::Avro, Format::Json] {
            let mut bytes = Vec::new();
            crate::runtime::wire::encode_output(&codec, event, format, &mut bytes).unwrap();
            let back =
                crate::runtime::wire::decode_output(&codec, "claimwatch.cash-forecast", &bytes)
                    .unwrap();
            assert_eq!(back, OutputEvent::CashForecast(r.clone()));
        }
    }
}

#[test]
fn a_slow_source_partition_holds_the_cash_flow_back() {
    // Two claim partitions send cash facts; partition 0 runs three weeks ahead (a backlog in
    // Kafka). The week of w0 + 7 is frozen only once both have passed its start, so partition 1's
    // claim submitted before it is in the frozen forecast.
    let e = Engine::new(
        CoreConfig {
            partitions: 2,
            ..CoreConfig::default()
        },
        RefData::shared(),
    );
    let mut p = Partition::open(0, PartitionStore::hot_only(0), &e).unwrap();
    let w0 = d("2024-03-04");
    let from = |source: i32, f: CashFact| CashFact {
        source_partition: source,
        ..f
    };
    let mut out = Vec::new();
    // History so that a forecast can be placed: paid claims 7 days after submission.
    for i in 0..5 {
        p.apply_cash(&e, &from(0, paid_fact(w0 - 20 + i, 7, &[])), &mut out);
        p.apply_cash(&e, &from(1, paid_fact(w0 - 20 + i, 7, &[])), &mut out);
    }
    p.apply_cash(&e, &from(0, fact(1, w0 + 21)), &mut out);
    // Partition 1, behind: a claim submitted on w0 + 2, expected to pay in the week of w0 + 7.
    p.apply_cash(
        &e,
        &from(1, open_fact(w0 + 2, w0 + 2, 40_000, Some(1_000_000))),
        &mut out,
    );
    p.apply_cash(&e, &from(1, fact(1, w0 + 8)), &mut out);
    p.apply_cash(&e, &from(1, fact(1, w0 + 22)), &mut out);
    p.close_cash(&e, &mut out);
    let week = records(&out)
        .into_iter()
        .rfind(|r| r.week_start == w0 + 7)
        .expect("the week is emitted");
    assert_eq!(
        week.forecast_open_claims, 1,
        "the slow partition's open claim is in the week's frozen forecast"
    );
    assert!(week.forecast_cents.is_some_and(|c| c > 0), "{week:?}");
}

/// The expected amount is the contract's (the patient's share included) and the receipts are the
/// payer's payment: the forecast is scaled by what the payer paid of its paid claims' expected
/// amounts, so a payer whose patients owe a quarter is not over-forecast by a third.
#[test]
fn the_forecast_is_scaled_by_the_payers_payment_ratio() {
    let at = d("2024-06-03");
    let mut facts = Vec::new();
    for i in 0..10 {
        let mut f = paid_fact(at - 60 + i, 7, &[(at - 53 + i, 7_500)]);
        f.paid_expected_cents = 10_000;
        facts.push(f);
    }
    facts.push(open_fact(at, at, 10_000, Some(1_000_000)));
    let (p, cents) = aggregate(&facts, at);
    assert_eq!(
        (p.paid_expected_cents, p.paid_received_cents),
        (100_000, 75_000)
    );
    assert!((paid_ratio(&p) - 0.75).abs() < 1e-12);
    assert_eq!(cents.iter().sum::<i64>(), 7_500);
    // Taking a paid claim back takes its part of the ratio back too.
    let mut gone = take_back(&facts[0], at);
    gone.paid_expected_cents = 10_000;
    let (p, _) = aggregate(&[facts.clone(), vec![gone]].concat(), at);
    assert_eq!(
        (p.paid_expected_cents, p.paid_received_cents),
        (90_000, 67_500)
    );
    // Without paid claims carrying their expected amount the forecast is not scaled.
    let (_, cents) = aggregate(&[open_fact(at, at, 10_000, Some(1_000_000))], at);
    assert_eq!(paid_ratio(&CashPayer::default()), 1.0);
    assert!(cents.iter().sum::<i64>() <= 10_000);
}
