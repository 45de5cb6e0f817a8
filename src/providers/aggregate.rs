//! Provider flow: sums [`ProviderFact`]s into per-key daily buckets (the `provider_kpis` table)
//! and emits `claimwatch.provider-kpis`.
//!
//! Table keys: `provider:<id>`, `department:<name>` (one [`ProviderEntry`] each: daily buckets
//! of signed sums, the version and fingerprint of the last emission) and `flow` (the flow's
//! day). The flow's day is the largest event-time day of the facts the partition has applied;
//! when it moves to a later day every key's windows are recomputed, and the keys whose window sums
//! changed are emitted (stamped with the start of the day after). Buckets older than the longest
//! window are dropped, and a fact for such a day is ignored (it is in no window).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stats::{self, round4};
use super::ProviderKpis;
use crate::model::{
    day_of, start_of_day, EpochDay, EpochMillis, OutputEvent, ProviderCounts, ProviderFact,
    ProviderKpi, ProviderWindow,
};
use crate::state::Table;

/// The key holding the provider flow's day.
pub const FLOW_KEY: &str = "flow";

/// One entry of the `provider_kpis` table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderEntry {
    /// Signed sums per day (days whose sums are all zero are not kept).
    pub buckets: BTreeMap<EpochDay, ProviderCounts>,
    /// Emissions so far.
    pub version: i64,
    /// Fingerprint of the windows last emitted.
    pub emitted: u64,
    /// The provider flow's day (the `flow` key only).
    pub flow_day: i64,
}

/// Applies one fact. When it opens a later day of the flow, the keys are emitted first.
pub fn apply(
    table: &mut Table<ProviderEntry>,
    cfg: &ProviderKpis,
    fact: &ProviderFact,
    out: &mut Vec<OutputEvent>,
) {
    let day = i64::from(day_of(fact.event_time));
    let flow = table.get(FLOW_KEY).map(|e| e.flow_day);
    let flow_day = match flow {
        Some(d) if day <= d => d,
        _ => {
            flush(table, cfg, out);
            table.update(FLOW_KEY, |e| e.flow_day = day);
            prune(table, cfg, day);
            day
        }
    };
    if i64::from(fact.day) < oldest_kept(cfg, flow_day) {
        return;
    }
    let sign = i64::from(fact.sign);
    table.update(&fact.key, |e| {
        let b = e.buckets.entry(fact.day).or_default();
        b.add(&fact.counts, sign);
        if b.is_zero() {
            e.buckets.remove(&fact.day);
        }
    });
}

fn oldest_kept(cfg: &ProviderKpis, flow_day: i64) -> i64 {
    flow_day - i64::from(cfg.longest()) + 1
}

/// Drops the buckets no window can reach any more.
fn prune(table: &mut Table<ProviderEntry>, cfg: &ProviderKpis, flow_day: i64) {
    let oldest = oldest_kept(cfg, flow_day);
    for key in sorted_keys(table) {
        let stale = table
            .get(&key)
            .and_then(|e| e.buckets.keys().next().copied())
            .is_some_and(|d| i64::from(d) < oldest);
        if stale {
            table.update(&key, |e| e.buckets.retain(|d, _| i64::from(*d) >= oldest));
        }
    }
}

fn sorted_keys(table: &Table<ProviderEntry>) -> Vec<String> {
    let mut keys: Vec<String> = table.keys().into_iter().filter(|k| k != FLOW_KEY).collect();
    keys.sort();
    keys
}

/// Emits every key whose window sums differ from its last emission, as of the flow's day.
pub fn flush(table: &mut Table<ProviderEntry>, cfg: &ProviderKpis, out: &mut Vec<OutputEvent>) {
    let Some(flow_day) = table.get(FLOW_KEY).map(|e| e.flow_day) else {
        return;
    };
    let last_day = flow_day as EpochDay;
    let event_time = start_of_day(last_day + 1);
    for key in sorted_keys(table) {
        let kpi = table.update(&key, |e| {
            // Emitted when a window's sums changed (not merely because the windows moved on a
            // day with nothing entering or leaving them).
            let sums: Vec<ProviderCounts> = cfg
                .windows
                .iter()
                .map(|&w| sum_window(&e.buckets, w, last_day))
                .collect();
            let fp = crate::state::fingerprint(&sums);
            if e.version > 0 && fp == e.emitted {
                return None;
            }
            if e.version == 0 && sums.iter().all(ProviderCounts::is_zero) {
                return None; // nothing in any window yet
            }
            e.version += 1;
            e.emitted = fp;
            let windows = cfg
                .windows
                .iter()
                .zip(&sums)
                .map(|(&w, c)| window_of(c, w, last_day, cfg.min_expected))
                .collect();
            Some(record(&key, e.version, event_time, windows))
        });
        if let Some(k) = kpi {
            out.push(OutputEvent::ProviderKpi(k));
        }
    }
}

/// Sums the buckets of the `days` days ending on `last_day`.
pub fn sum_window(
    buckets: &BTreeMap<EpochDay, ProviderCounts>,
    days: u32,
    last_day: EpochDay,
) -> ProviderCounts {
    let first = last_day - days as EpochDay + 1;
    let mut c = ProviderCounts::default();
    for (_, b) in buckets.range(first..=last_day) {
        c.add(b, 1);
    }
    c
}

fn ratio(a: i64, b: i64) -> f64 {
    if b > 0 {
        round6(a as f64 / b as f64)
    } else {
        0.0
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The KPIs of one window.
pub fn window(
    buckets: &BTreeMap<EpochDay, ProviderCounts>,
    days: u32,
    last_day: EpochDay,
    min_expected: f64,
) -> ProviderWindow {
    window_of(
        &sum_window(buckets, days, last_day),
        days,
        last_day,
        min_expected,
    )
}

/// The KPIs of a window's sums.
pub fn window_of(
    c: &ProviderCounts,
    days: u32,
    last_day: EpochDay,
    min_expected: f64,
) -> ProviderWindow {
    let expected = c.expected_micros as f64 / 1e6;
    let oe = stats::observed_to_expected(c.readmissions, expected);
    ProviderWindow {
        days: days as i32,
        first_day: last_day - days as EpochDay + 1,
        last_day,
        encounters: c.encounters,
        encounters_per_week: round4(c.encounters as f64 * 7.0 / f64::from(days)),
        inpatient_stays: c.inpatient_stays,
        average_los_days: ratio(c.inpatient_los_days, c.inpatient_stays),
        paid_encounters: c.paid_encounters,
        paid_cents: c.paid_cents,
        cost_per_encounter_cents: (c.paid_encounters > 0)
            .then(|| (c.paid_cents as f64 / c.paid_encounters as f64).round() as i64),
        index_stays: c.index_stays,
        high_risk_stays: c.high_risk,
        high_risk_share: ratio(c.high_risk, c.index_stays),
        readmissions: c.readmissions,
        readmission_rate: ratio(c.readmissions, c.index_stays),
        expected_readmissions: round4(expected),
        observed_to_expected: oe.map(|r| round4(r.ratio)),
        oe_ci_low: oe.map(|r| round4(r.low)),
        oe_ci_high: oe.map(|r| round4(r.high)),
        readmissions_avoided: round4(expected - c.readmissions as f64),
        flag: oe
            .and_then(|r| stats::flag(&r, min_expected))
            .map(|f| f.as_str().to_owned()),
        adjudicated: c.adjudicated,
        denied: c.denied,
        denial_rate: ratio(c.denied, c.adjudicated),
        first_adjudications: c.first_adjudications,
        first_pass_paid: c.first_pass_paid,
        first_pass_yield: (c.first_adjudications > 0)
            .then(|| ratio(c.first_pass_paid, c.first_adjudications)),
    }
}

/// The record of a key.
pub fn record(
    key: &str,
    version: i64,
    event_time: EpochMillis,
    windows: Vec<ProviderWindow>,
) -> ProviderKpi {
    let (level, name) = match key.split_once(':') {
        Some(("provider", n)) => ("PROVIDER", n),
        Some(("department", n)) => ("DEPARTMENT", n),
        _ => ("OTHER", key),
    };
    ProviderKpi {
        output_id: format!("{key}:{version}"),
        key: key.to_owned(),
        level: level.to_owned(),
        name: name.to_owned(),
        version,
        event_time,
        windows,
    }
}
