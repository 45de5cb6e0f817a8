//! Provider flow: sums [`ProviderFact`]s into per-key daily buckets (the `provider_kpis` table)
//! and emits `claimwatch.provider-kpis`.
//!
//! Table keys: `provider:<id>`, `department:<name>` (one [`ProviderEntry`] each: daily buckets
//! of signed sums, the version and fingerprint of the last emission) and `flow` (the flow's
//! day and the latest fact time of each source partition).
//!
//! **The flow's day** follows a watermark: the minimum over the source partitions of the latest
//! event time of their facts (each partition sends its facts in event-time order), once every
//! source has been heard from, like the payer monitors. In Kafka the member and claim partitions
//! run at different speeds (a backlog, a restore, a slow consumer), so the latest fact alone would
//! run ahead of a slow partition's facts; those would then land after their day was emitted, or
//! be dropped as older than every window. When the watermark enters a later day, every key's
//! windows are recomputed as of the day before it (all its facts are in) and the keys whose
//! window sums changed are emitted, stamped with the start of the day after. Buckets older than
//! the longest window are dropped, and a fact for such a day is ignored (it is in no window).
//! Facts without a source (`source_partition` -1: written by hand or by an older version) move
//! the flow by their own time. A fact that arrives after its day was emitted (it travelled
//! through another partition first, like a paid amount) is counted in the next emission, and a
//! quiet stream in the service re-emits the last day's changed keys ([`refresh`]). The end of a
//! replay closes the flow up to its latest fact ([`close`]); a quiet stream does not move the
//! flow, since a slow partition may still send.

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
    /// The provider flow's day, once its watermark is known (the `flow` key only).
    pub flow_day: Option<i64>,
    /// Latest fact event time per source partition, `i64::MIN` before its first (the `flow` key
    /// only).
    pub sources: Vec<EpochMillis>,
    /// Latest fact event time of any source (the `flow` key only).
    pub latest: Option<EpochMillis>,
    /// The day the last emission pass was as of (the `flow` key only).
    pub emitted_day: Option<i64>,
}

/// Applies one fact from one of `partitions` source partitions. When the flow's watermark enters
/// a later day, the keys are emitted first.
pub fn apply(
    table: &mut Table<ProviderEntry>,
    cfg: &ProviderKpis,
    fact: &ProviderFact,
    partitions: u32,
    out: &mut Vec<OutputEvent>,
) {
    let watermark = table.update(FLOW_KEY, |e| note_source(e, fact, partitions));
    if let Some(w) = watermark {
        advance(table, cfg, i64::from(day_of(w)), out);
    }
    let flow_day = table.get(FLOW_KEY).and_then(|e| e.flow_day);
    if flow_day.is_some_and(|d| i64::from(fact.day) < oldest_kept(cfg, d)) {
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

/// Notes the fact's time under its source; returns the flow's watermark when it is known.
fn note_source(e: &mut ProviderEntry, fact: &ProviderFact, partitions: u32) -> Option<EpochMillis> {
    e.latest = Some(e.latest.map_or(fact.event_time, |t| t.max(fact.event_time)));
    let n = partitions as usize;
    if e.sources.len() != n {
        e.sources.resize(n, i64::MIN);
    }
    match usize::try_from(fact.source_partition)
        .ok()
        .and_then(|i| e.sources.get_mut(i))
    {
        Some(s) => {
            *s = (*s).max(fact.event_time);
            let min = e.sources.iter().copied().min().unwrap_or(i64::MIN);
            (min != i64::MIN).then_some(min)
        }
        None => Some(fact.event_time),
    }
}

/// Moves the flow to `day` if later: emits every key as of the day before, then drops buckets
/// no window reaches.
fn advance(
    table: &mut Table<ProviderEntry>,
    cfg: &ProviderKpis,
    day: i64,
    out: &mut Vec<OutputEvent>,
) {
    let flow = table.get(FLOW_KEY).and_then(|e| e.flow_day);
    if flow.is_some_and(|f| day <= f) {
        return;
    }
    if let Some(f) = flow {
        flush_at(table, cfg, f, out);
        table.update(FLOW_KEY, |e| e.emitted_day = Some(f));
    }
    table.update(FLOW_KEY, |e| e.flow_day = Some(day));
    prune(table, cfg, day);
}

/// The end of the input (replay): the flow moves to the day of its latest fact, emitting the
/// day before, then emits as of that day.
pub fn close(table: &mut Table<ProviderEntry>, cfg: &ProviderKpis, out: &mut Vec<OutputEvent>) {
    let Some(latest) = table.get(FLOW_KEY).and_then(|e| e.latest) else {
        return;
    };
    let day = i64::from(day_of(latest));
    advance(table, cfg, day, out);
    flush_at(table, cfg, day, out);
    table.update(FLOW_KEY, |e| e.emitted_day = Some(day));
}

/// A quiet stream in the service: re-emits, as of the day of the last emission pass, the keys
/// whose figures changed since (facts that arrived after their day was emitted, e.g. a paid
/// amount that travelled through another partition first). The flow's day does not move.
pub fn refresh(table: &mut Table<ProviderEntry>, cfg: &ProviderKpis, out: &mut Vec<OutputEvent>) {
    if let Some(day) = table.get(FLOW_KEY).and_then(|e| e.emitted_day) {
        flush_at(table, cfg, day, out);
    }
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
    if let Some(flow_day) = table.get(FLOW_KEY).and_then(|e| e.flow_day) {
        flush_at(table, cfg, flow_day, out);
    }
}

/// Emits every key whose window sums as of `day` differ from its last emission.
fn flush_at(
    table: &mut Table<ProviderEntry>,
    cfg: &ProviderKpis,
    day: i64,
    out: &mut Vec<OutputEvent>,
) {
    let last_day = day as EpochDay;
    let event_time = start_of_day(last_day + 1);
    for key in sorted_keys(table) {
        // Read first: most keys do not change on a given day, and an update would mark them
        // dirty (a state write and a changelog record at the next checkpoint) for nothing.
        let changed = table.get(&key).and_then(|e| {
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
            Some((sums, fp))
        });
        let Some((sums, fp)) = changed else {
            continue;
        };
        let version = table.update(&key, |e| {
            e.version += 1;
            e.emitted = fp;
            e.version
        });
        let windows = cfg
            .windows
            .iter()
            .zip(&sums)
            .map(|(&w, c)| window_of(c, w, last_day, cfg.min_expected))
            .collect();
        out.push(OutputEvent::ProviderKpi(record(
            &key, version, event_time, windows,
        )));
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
