//! Cash forecast on a generated population: the streamed actual receipts equal a brute-force
//! sum of the 835 payments per payer and ISO week (and in total), every completed week after
//! the warm-up has a frozen forecast, and the forecast error over the generated data is reported
//! and stays within a documented bound.

#[path = "support/fixture_dir.rs"]
mod fixture_dir;
#[path = "support/replayed.rs"]
mod replayed;
use replayed::Fixture;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use claimwatch::cashflow::{iso_week, week_start};
use claimwatch::config::CoreConfig;
use claimwatch::generate::{generate, GenerateConfig, Generated};
use claimwatch::model::CashForecast;

fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        Fixture::replay(
            3000,
            11,
            CoreConfig {
                partitions: 4,
                ..CoreConfig::default()
            },
        )
    })
}

fn records(path: &Path) -> Vec<CashForecast> {
    replayed::lines(path)
}

/// The latest record per key.
fn latest(f: &Fixture) -> BTreeMap<String, CashForecast> {
    records(&f.dir.path().join("out/claimwatch.cash-forecast.jsonl"))
        .into_iter()
        .map(|r| (r.forecast_key.clone(), r))
        .collect()
}

/// Brute force: the 835 payments (distinct by event id) per payer of their claim and ISO week
/// of their payment date, and how many there are.
fn batch_receipts(g: &Generated) -> BTreeMap<String, (i64, i64)> {
    let payer: BTreeMap<&str, &str> = g
        .claims
        .iter()
        .map(|c| (c.claim_id.as_str(), c.payer_id.as_str()))
        .collect();
    let mut seen = BTreeSet::new();
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for r in &g.remits {
        // A secondary or tertiary payer's 835 is not the claim's (primary) payer's cash.
        if !seen.insert(r.event_id.as_str()) || is_secondary(&r.claim_status) {
            continue;
        }
        let p = payer[r.claim_id.as_str()];
        let e = out
            .entry(format!("{p}:{}", iso_week(week_start(r.payment_date))))
            .or_default();
        e.0 += r.paid_cents;
        e.1 += 1;
    }
    out
}

/// CLP02 2, 3, 20, 21: processed as secondary or tertiary.
fn is_secondary(clp02: &str) -> bool {
    matches!(clp02, "2" | "3" | "20" | "21")
}

#[test]
fn actual_receipts_equal_the_835_payments_per_payer_and_week() {
    let f = fixture();
    let latest = latest(f);
    let batch = batch_receipts(&f.g);
    assert!(
        batch.len() > 20,
        "payer weeks with payments: {}",
        batch.len()
    );
    let total_batch: i64 = batch.values().map(|v| v.0).sum();
    let total_streamed: i64 = latest.values().map(|r| r.actual_cents).sum();
    let remits: i64 =
        f.g.remits
            .iter()
            .filter(|r| !is_secondary(&r.claim_status))
            .map(|r| (r.event_id.as_str(), r.paid_cents))
            .collect::<BTreeMap<_, _>>()
            .values()
            .sum();
    assert_eq!(total_batch, remits);
    assert_eq!(
        total_streamed, remits,
        "summed actual receipts = summed 835 payments"
    );
    assert!(
        f.g.remits.iter().any(|r| r.paid_cents < 0),
        "reversals exercised"
    );
    assert!(
        f.g.remits.iter().any(|r| is_secondary(&r.claim_status)),
        "secondary payers exercised"
    );
    for (key, (cents, n)) in &batch {
        let r = latest
            .get(key)
            .unwrap_or_else(|| panic!("no record for a payer week with payments"));
        assert_eq!((r.actual_cents, r.receipts), (*cents, *n), "{}", r.iso_week);
    }
    for (key, r) in &latest {
        if !batch.contains_key(key) {
            assert_eq!((r.actual_cents, r.receipts), (0, 0));
        }
        assert_eq!(r.output_id, format!("{key}:{}", r.version));
        assert_eq!(r.forward.len(), 8);
    }
}

#[test]
fn every_version_of_a_key_is_emitted_once_in_order() {
    let f = fixture();
    let all = records(&f.dir.path().join("out/claimwatch.cash-forecast.jsonl"));
    let mut versions: BTreeMap<&str, i64> = BTreeMap::new();
    for r in &all {
        let v = versions.entry(r.forecast_key.as_str()).or_default();
        assert_eq!(r.version, *v + 1, "versions increase by one");
        *v = r.version;
        if let (Some(fc), Some(err)) = (r.forecast_cents, r.error_cents) {
            assert_eq!(err, r.actual_cents - fc);
        }
    }
}

/// Forecast error over the completed payer weeks that have a forecast, after an 8-week warm-up
/// (the payers' days-to-payment histograms fill during the first weeks), ending before the last
/// 8 weeks of the data (whose claims' payments fall after the data ends). Compared with a naive
/// forecast: the payer's actual receipts of the week before.
#[test]
fn forecast_error_is_reported_and_bounded() {
    let f = fixture();
    let latest = latest(f);
    let first = latest.values().map(|r| r.week_start).min().unwrap();
    let last = latest.values().map(|r| r.week_start).max().unwrap();
    let by_payer_week: BTreeMap<(&str, i32), i64> = latest
        .values()
        .map(|r| ((r.payer_id.as_str(), r.week_start), r.actual_cents))
        .collect();
    let (mut abs_err, mut naive_err, mut actual, mut forecast, mut weeks, mut receipts) =
        (0i64, 0i64, 0i64, 0i64, 0i64, 0i64);
    let mut per_week: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for r in latest.values() {
        if !r.complete || r.week_start < first + 56 || r.week_start > last - 56 {
            continue;
        }
        let Some(fc) = r.forecast_cents else {
            continue;
        };
        assert!(r.error_cents.is_some());
        weeks += 1;
        receipts += r.receipts;
        abs_err += (r.actual_cents - fc).abs();
        let before = by_payer_week
            .get(&(r.payer_id.as_str(), r.week_start - 7))
            .copied()
            .unwrap_or(0);
        naive_err += (r.actual_cents - before).abs();
        actual += r.actual_cents;
        forecast += fc;
        let e = per_week.entry(r.week_start).or_default();
        e.0 += fc;
        e.1 += r.actual_cents;
    }
    assert!(weeks > 100, "payer weeks measured: {weeks}");
    let wape = abs_err as f64 / actual as f64;
    let naive = naive_err as f64 / actual as f64;
    let bias = forecast as f64 / actual as f64;
    let all_payers: f64 = per_week
        .values()
        .map(|(fc, a)| (a - fc).abs() as f64)
        .sum::<f64>()
        / per_week.values().map(|(_, a)| *a as f64).sum::<f64>();
    println!(
        "cash forecast over {weeks} payer weeks ({:.1} payments per payer week): WAPE {:.1} % \
         (naive last-week forecast {:.1} %), forecast/actual {:.3}, WAPE of the all-payer weekly \
         totals over {} weeks {:.1} %",
        receipts as f64 / weeks as f64,
        wape * 100.0,
        naive * 100.0,
        bias,
        per_week.len(),
        all_payers * 100.0
    );
    // Documented bounds (README "Cash forecast"), measured on this population (seed 11, 3,000
    // members): WAPE 58.2 % per payer week (a handful of payments each: mostly the noise of which
    // week a payment lands in), forecast/actual 0.85, all-payer weekly totals 26 %. The bounds
    // leave room for generator changes, not for a broken placement or a lost week.
    assert!(wape < 0.75, "WAPE {wape}");
    assert!(
        wape < naive,
        "WAPE {wape} not better than last week's actual {naive}"
    );
    // Below 1 by construction: cash from claims not open at a week's start (a submission that
    // arrives after its 835, an appeal paid in the week) is in `actual` only (0.852 measured).
    assert!((0.8..1.15).contains(&bias), "forecast/actual {bias}");
    assert!(all_payers < 0.40, "all-payer WAPE {all_payers}");
}

/// The core's cost of the cash forecast: events/s through 4 hot-only partitions (replay's
/// routing, no file I/O) on 3,000 generated members, with `cash_forecast.enabled` on and off,
/// alternating, median of 3 runs each. A measurement, not a check: run it in release,
/// `cargo test --release --test cash_forecast -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_core_cost_with_and_without_cash_forecast() {
    use claimwatch::core::{partition_for, Engine, Partition};
    use claimwatch::model::InputEvent;
    use claimwatch::refdata::RefData;
    use claimwatch::state::PartitionStore;
    let g = generate(&GenerateConfig {
        members: 3000,
        seed: 7,
        ..GenerateConfig::default()
    });
    let mut all: Vec<(i64, u8, usize, InputEvent)> = Vec::new();
    all.extend(
        g.claims
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, e)| (e.event_time, 0, i, InputEvent::Claim(e))),
    );
    all.extend(
        g.encounters
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, e)| (e.event_time, 1, i, InputEvent::Encounter(e))),
    );
    all.extend(
        g.acks
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, e)| (e.event_time, 2, i, InputEvent::Ack(e))),
    );
    all.extend(
        g.remits
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, e)| (e.event_time, 3, i, InputEvent::Remit(e))),
    );
    all.sort_by_key(|(t, s, i, _)| (*t, *s, *i));
    let events: Vec<InputEvent> = all.into_iter().map(|(_, _, _, e)| e).collect();
    let run = |enabled: bool| -> f64 {
        let mut config = CoreConfig {
            partitions: 4,
            ..CoreConfig::default()
        };
        config.cash_forecast.enabled = enabled;
        let engine = Engine::new(config, RefData::shared());
        let mut parts: Vec<Partition> = (0..4)
            .map(|id| Partition::open(id, PartitionStore::hot_only(id), &engine).unwrap())
            .collect();
        let (mut out, mut costs) = (Vec::new(), Vec::new());
        let start = std::time::Instant::now();
        for (offset, e) in events.iter().enumerate() {
            let p = partition_for(e.key(), 4) as usize;
            parts[p].apply(
                &engine,
                e,
                e.stream().name(),
                offset as i64,
                &mut out,
                &mut costs,
            );
            claimwatch::replay::route_rekeyed(&engine, &mut parts, &mut costs, &mut out);
            out.clear();
        }
        for p in &mut parts {
            p.flush_cash(&engine, &mut out);
        }
        events.len() as f64 / start.elapsed().as_secs_f64()
    };
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        off.push(run(false));
        on.push(run(true));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (on, off) = (median(&mut on), median(&mut off));
    println!(
        "{} events: without cash forecast {off:.0} events/s, with {on:.0} events/s ({:+.1} %)",
        events.len(),
        (on / off - 1.0) * 100.0
    );
}
