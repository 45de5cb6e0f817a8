//! Window life cycle (grace, corrections, retention), drift and alerts, driven through the core.

use std::collections::BTreeMap;

use crate::config::CoreConfig;
use crate::core::{Engine, Partition};
use crate::model::fixtures::t;
use crate::model::{
    AmountByCode, FactKind, FactOutcome, Granularity, MonitorRule, OutputEvent, PayerCategory,
    PayerFact, PayerKpi, PayerMonitorAlert, Rekeyed, DAY_MS,
};
use crate::refdata::RefData;
use crate::state::{PartitionStore, StateDb};

const HOUR: i64 = 3_600_000;

/// UTC midnight of a date (`t` is noon).
fn midnight(date: &str) -> i64 {
    t(date).div_euclid(DAY_MS) * DAY_MS
}

fn engine() -> Engine {
    Engine::new(CoreConfig::default(), RefData::shared())
}

fn adjudicated(payer: &str, at: i64, outcome: FactOutcome, category: Option<&str>) -> PayerFact {
    let denied = outcome == FactOutcome::Denied;
    PayerFact {
        payer_id: payer.into(),
        payer_category: PayerCategory::Commercial,
        event_time: at,
        kind: FactKind::Adjudicated,
        outcome: Some(outcome),
        first_adjudication: true,
        first_pass_paid: !denied,
        paid_cents: if denied { 0 } else { 10_000 },
        denied_cents: if denied { 10_000 } else { 0 },
        denial_category: category.map(str::to_owned),
        denied_by_category: category
            .map(|c| {
                vec![AmountByCode {
                    code: c.into(),
                    amount_cents: 10_000,
                }]
            })
            .unwrap_or_default(),
        days_to_payment: (!denied).then_some(20),
        source_partition: 0,
    }
}

fn kpis(out: &[OutputEvent], g: Granularity) -> Vec<PayerKpi> {
    out.iter()
        .filter_map(|o| match o {
            OutputEvent::PayerKpi(k) if k.granularity == g => Some(k.clone()),
            _ => None,
        })
        .collect()
}

fn alerts(out: &[OutputEvent]) -> Vec<PayerMonitorAlert> {
    out.iter()
        .filter_map(|o| match o {
            OutputEvent::PayerMonitorAlert(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

fn feed(p: &mut Partition, e: &Engine, f: PayerFact, out: &mut Vec<OutputEvent>) {
    p.apply_rekeyed(e, &Rekeyed::Payer(f), out);
}

#[test]
fn late_fact_within_grace_changes_the_window_without_a_correction() {
    let e = engine();
    let mut p = Partition::open(0, PartitionStore::hot_only(0), &e).unwrap();
    let mut out = Vec::new();
    let day = midnight("2024-03-01");
    feed(
        &mut p,
        &e,
        adjudicated("P1", day + 10 * HOUR, FactOutcome::Paid, None),
        &mut out,
    );
    // The day ends; within the 48 h grace a fact for it arrives.
    p.advance_payer_flow_to(&e, day + DAY_MS + 5 * HOUR, &mut out);
    assert!(kpis(&out, Granularity::Daily).is_empty());
    feed(
        &mut p,
        &e,
        adjudicated(
            "P1",
            day + 11 * HOUR,
            FactOutcome::Denied,
            Some("AUTHORIZATION"),
        ),
        &mut out,
    );
    p.advance_payer_flow_to(&e, day + 3 * DAY_MS + HOUR, &mut out);
    let daily = kpis(&out, Granularity::Daily);
    assert_eq!(daily.len(), 1, "{daily:?}");
    let k = &daily[0];
    assert_eq!((k.version, k.adjudicated, k.denied, k.paid), (1, 2, 1, 1));
    assert_eq!(k.output_id, format!("P1:DAILY:{day}:1"));
    assert_eq!(k.denial_rate, 0.5);
    assert_eq!(k.first_pass_yield, 0.5);
    assert_eq!(k.median_days_to_payment, Some(20.0));
    assert_eq!(k.top_denial_categories[0].code, "AUTHORIZATION");
    assert_eq!(k.late_facts, 0);
    // The 11:00 fact came 16 h after its hour closed: past the 2 h hourly grace, so the 11:00
    // window was emitted as version 1 at once (it did not exist before), the 10:00 one at 12:00.
    let hourly = kpis(&out, Granularity::Hourly);
    assert_eq!(hourly.len(), 2);
    assert!(hourly.iter().all(|k| k.version == 1 && k.adjudicated == 1));
}

#[test]
fn very_late_fact_emits_exactly_one_correction_and_too_late_is_dropped() {
    let e = engine();
    let mut p = Partition::open(0, PartitionStore::hot_only(0), &e).unwrap();
    let mut out = Vec::new();
    let day = midnight("2024-03-01");
    feed(
        &mut p,
        &e,
        adjudicated("P1", day + HOUR, FactOutcome::Paid, None),
        &mut out,
    );
    p.advance_payer_flow_to(&e, day + 10 * DAY_MS, &mut out);
    assert_eq!(kpis(&out, Granularity::Daily).len(), 1);
    out.clear();
    feed(
        &mut p,
        &e,
        adjudicated("P1", day + 2 * HOUR, FactOutcome::Denied, Some("CODING")),
        &mut out,
    );
    let daily = kpis(&out, Granularity::Daily);
    assert_eq!(daily.len(), 1);
    assert_eq!(
        (daily[0].version, daily[0].denied, daily[0].late_facts),
        (2, 1, 1)
    );
    assert_eq!(daily[0].output_id, format!("P1:DAILY:{day}:2"));
    // The hourly window of 01:00 was emitted long ago: a correction too; 02:00 is new.
    let hourly = kpis(&out, Granularity::Hourly);
    assert_eq!(hourly.len(), 1);
    assert_eq!(hourly[0].version, 1);

    // Past the 35-day retention the windows are gone and the fact is dropped and counted.
    out.clear();
    p.advance_payer_flow_to(&e, day + 40 * DAY_MS, &mut out);
    assert!(p.windows().is_empty());
    feed(
        &mut p,
        &e,
        adjudicated("P1", day + 3 * HOUR, FactOutcome::Paid, None),
        &mut out,
    );
    assert!(out.is_empty());
    assert!(p.windows().is_empty());
    let dropped = p.stats().monitor_facts_dropped;
    assert_eq!(dropped[0][PayerCategory::Commercial as usize], 1);
    assert_eq!(dropped[1][PayerCategory::Commercial as usize], 1);
}

/// The end of a replay's input closes the windows whose grace has not passed; a fact that reaches
/// one later (a replay resumed on more input) is a correction at once, not lost to its timer.
#[test]
fn closing_at_the_end_emits_open_windows_and_a_later_fact_corrects_them() {
    let e = engine();
    let mut p = Partition::open(0, PartitionStore::hot_only(0), &e).unwrap();
    let mut out = Vec::new();
    let day = midnight("2024-03-01");
    feed(
        &mut p,
        &e,
        adjudicated("P1", day + 10 * HOUR, FactOutcome::Paid, None),
        &mut out,
    );
    feed(
        &mut p,
        &e,
        adjudicated(
            "P1",
            day + 10 * HOUR + 60_000,
            FactOutcome::Denied,
            Some("CODING"),
        ),
        &mut out,
    );
    assert!(out.is_empty(), "nothing has passed its grace");
    p.close_payer_windows(&e, &mut out);
    let daily = kpis(&out, Granularity::Daily);
    let hourly = kpis(&out, Granularity::Hourly);
    assert_eq!(daily.len(), 1, "{out:?}");
    assert_eq!(hourly.len(), 1);
    assert_eq!(
        (daily[0].version, daily[0].adjudicated, daily[0].denied),
        (1, 2, 1)
    );
    assert_eq!(daily[0].output_id, format!("P1:DAILY:{day}:1"));
    // Closing again emits nothing.
    out.clear();
    p.close_payer_windows(&e, &mut out);
    assert!(out.is_empty());
    // A later fact of the same day, within its grace: version 2 at once.
    feed(
        &mut p,
        &e,
        adjudicated("P1", day + 11 * HOUR, FactOutcome::Paid, None),
        &mut out,
    );
    let daily = kpis(&out, Granularity::Daily);
    assert_eq!(daily.len(), 1, "{out:?}");
    assert_eq!(
        (daily[0].version, daily[0].adjudicated, daily[0].late_facts),
        (2, 3, 1)
    );
    // Its hour had not been closed: it waits for its grace as usual.
    assert!(kpis(&out, Granularity::Hourly).is_empty());
    out.clear();
    p.advance_payer_flow_to(&e, day + 3 * DAY_MS, &mut out);
    let hourly = kpis(&out, Granularity::Hourly);
    assert_eq!(hourly.len(), 1, "the 11:00 window closes on its timer");
    assert!(
        kpis(&out, Granularity::Daily).is_empty(),
        "no third version"
    );
}

/// 28 normal days of 100 adjudications with ~10 % denials spread over two categories, then `last`.
fn history(p: &mut Partition, e: &Engine, payer: &str, start: i64, out: &mut Vec<OutputEvent>) {
    for d in 0..28 {
        for i in 0..100 {
            let at = start + d * DAY_MS + i * 60_000;
            let f = match i % 10 {
                0 if d % 2 == 0 => adjudicated(payer, at, FactOutcome::Denied, Some("CODING")),
                0 => adjudicated(payer, at, FactOutcome::Denied, Some("AUTHORIZATION")),
                _ => adjudicated(payer, at, FactOutcome::Paid, None),
            };
            feed(p, e, f, out);
        }
    }
}

#[test]
fn a_denial_spike_raises_the_z_score_and_one_alert_and_a_normal_day_does_not() {
    let e = engine();
    let mut p = Partition::open(0, PartitionStore::hot_only(0), &e).unwrap();
    let mut out = Vec::new();
    let start = midnight("2024-03-01");
    history(&mut p, &e, "SPIKE", start, &mut out);
    history(&mut p, &e, "CALM", start, &mut out);
    let day = start + 28 * DAY_MS;
    for i in 0..100 {
        let at = day + i * 60_000;
        // SPIKE: 40 % denied, all for medical necessity. CALM: its usual 10 %.
        let spike = if i % 10 < 4 {
            adjudicated("SPIKE", at, FactOutcome::Denied, Some("MEDICAL_NECESSITY"))
        } else {
            adjudicated("SPIKE", at, FactOutcome::Paid, None)
        };
        feed(&mut p, &e, spike, &mut out);
        let calm = if i % 10 == 0 {
            adjudicated("CALM", at, FactOutcome::Denied, Some("CODING"))
        } else {
            adjudicated("CALM", at, FactOutcome::Paid, None)
        };
        feed(&mut p, &e, calm, &mut out);
    }
    out.clear();
    p.advance_payer_flow_to(&e, day + 4 * DAY_MS, &mut out);
    let daily = kpis(&out, Granularity::Daily);
    let of = |payer: &str| {
        daily
            .iter()
            .find(|k| k.payer_id == payer && k.window_start == day)
            .unwrap()
            .clone()
    };
    let (spike, calm) = (of("SPIKE"), of("CALM"));
    assert_eq!(spike.baseline_windows, 28);
    assert!((spike.baseline_denial_rate.unwrap() - 0.1).abs() < 1e-9);
    assert!(spike.denial_rate_z.unwrap() > 9.0, "{spike:?}");
    assert!(spike.carc_mix_p_value.unwrap() < 1e-6, "{spike:?}");
    assert!(calm.denial_rate_z.unwrap().abs() < 1e-9, "{calm:?}");
    assert!(
        calm.carc_mix_p_value.is_none(),
        "10 denials is under min_mix_denials"
    );
    let raised = alerts(&out);
    let rules: Vec<(&str, MonitorRule)> = raised
        .iter()
        .map(|a| (a.payer_id.as_str(), a.rule))
        .collect();
    // SPIKE's first-pass yield is 60 %, with 100 first adjudications: that fires too.
    assert_eq!(
        rules,
        vec![
            ("SPIKE", MonitorRule::FirstPassYieldLow),
            ("SPIKE", MonitorRule::DenialRateSpike),
            ("SPIKE", MonitorRule::CarcMixShift),
        ]
    );
    assert_eq!(
        raised[1].output_id,
        format!("SPIKE:DAILY:{day}:DENIAL_RATE_SPIKE")
    );
    // A correction of the window re-evaluates but does not alert again.
    out.clear();
    feed(
        &mut p,
        &e,
        adjudicated(
            "SPIKE",
            day + HOUR,
            FactOutcome::Denied,
            Some("MEDICAL_NECESSITY"),
        ),
        &mut out,
    );
    assert_eq!(kpis(&out, Granularity::Daily)[0].version, 2);
    assert!(alerts(&out).is_empty());
}

#[test]
fn windows_survive_checkpoint_and_restart_and_close_the_same() {
    let e = engine();
    let db = StateDb::temporary().unwrap();
    let day = midnight("2024-03-01");
    let mut out = Vec::new();
    let reference = {
        let mut p = Partition::open(1, PartitionStore::hot_only(1), &e).unwrap();
        feed(
            &mut p,
            &e,
            adjudicated("P1", day + HOUR, FactOutcome::Paid, None),
            &mut out,
        );
        feed(
            &mut p,
            &e,
            adjudicated("P1", day + 2 * HOUR, FactOutcome::Denied, Some("CODING")),
            &mut out,
        );
        p.advance_payer_flow_to(&e, day + 5 * DAY_MS, &mut out);
        std::mem::take(&mut out)
    };
    {
        let mut p = Partition::open(1, db.partition(1).unwrap(), &e).unwrap();
        feed(
            &mut p,
            &e,
            adjudicated("P1", day + HOUR, FactOutcome::Paid, None),
            &mut out,
        );
        feed(
            &mut p,
            &e,
            adjudicated("P1", day + 2 * HOUR, FactOutcome::Denied, Some("CODING")),
            &mut out,
        );
        p.checkpoint(&BTreeMap::new()).unwrap();
    }
    let mut p = Partition::open(1, db.partition(1).unwrap(), &e).unwrap();
    assert_eq!(p.windows().len(), 3, "two hourly windows and one daily");
    assert_eq!(p.pending_timers(), 3, "a close timer per window");
    p.advance_payer_flow_to(&e, day + 5 * DAY_MS, &mut out);
    assert_eq!(out, reference);
}

#[test]
fn current_kpi_of_an_open_window_is_what_its_emission_carries() {
    let e = engine();
    let mut p = Partition::open(0, PartitionStore::hot_only(0), &e).unwrap();
    let mut out = Vec::new();
    let start = midnight("2024-03-01");
    history(&mut p, &e, "SPIKE", start, &mut out);
    let day = start + 28 * DAY_MS;
    for i in 0..100 {
        let at = day + i * 60_000;
        let f = if i % 10 < 4 {
            adjudicated("SPIKE", at, FactOutcome::Denied, Some("MEDICAL_NECESSITY"))
        } else {
            adjudicated("SPIKE", at, FactOutcome::Paid, None)
        };
        feed(&mut p, &e, f, &mut out);
    }
    let mut key = String::new();
    crate::monitor::window_key(&mut key, "SPIKE", Granularity::Daily, day);
    let mut hourly_key = String::new();
    crate::monitor::window_key(&mut hourly_key, "SPIKE", Granularity::Hourly, day);
    // Open: version 0, drift against the 28 days before it, from the table and its read view.
    let open = e.monitor.current_kpi(p.windows(), &key).unwrap();
    assert_eq!(open.version, 0);
    assert_eq!(open.baseline_windows, 28);
    assert!(open.denial_rate_z.unwrap() > 9.0, "{open:?}");
    let view = p.windows().view();
    assert_eq!(e.monitor.current_kpi(&*view, &key).as_ref(), Some(&open));
    let open_hourly = e.monitor.current_kpi(&*view, &hourly_key).unwrap();
    assert_eq!(open_hourly.baseline_windows, 0);
    assert_eq!(open_hourly.denial_rate_z, None);

    out.clear();
    p.advance_payer_flow_to(&e, day + 4 * DAY_MS, &mut out);
    let emitted = kpis(&out, Granularity::Daily)
        .into_iter()
        .find(|k| k.window_start == day)
        .unwrap();
    // The emission is the open window's KPI at version 1.
    assert_eq!(
        PayerKpi {
            version: 1,
            output_id: format!("SPIKE:DAILY:{day}:1"),
            ..open
        },
        emitted
    );
    // Emitted: the current KPI is the last emission.
    assert_eq!(e.monitor.current_kpi(&*view, &key), Some(emitted));
    let emitted_hourly = kpis(&out, Granularity::Hourly)
        .into_iter()
        .find(|k| k.window_start == day)
        .unwrap();
    assert_eq!(
        e.monitor.current_kpi(&*view, &hourly_key),
        Some(emitted_hourly)
    );
    assert_eq!(e.monitor.current_kpi(&*view, "SPIKE|D|0"), None);
}
