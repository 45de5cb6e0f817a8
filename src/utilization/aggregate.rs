//! Utilization flow: sums [`UtilizationFact`]s into weekly counts per `<facility>|<service line>`
//! (the `utilization` table), closes weeks on the flow's watermark, forecasts the weeks after
//! each closed week and emits `claimwatch.utilization-forecast`.
//!
//! Table keys: `<facility>|<service line>` (one [`UtilEntry`] each) and `flow` (the latest fact
//! time from each source partition; it cannot clash: keys hold a `|`). The flow's time is the
//! minimum over the source (member) partitions of the latest fact time from each, as for the payer
//! monitors: until every source partition has sent a fact no week closes, because in Kafka a fast
//! partition's facts can arrive months of event time before a slow one's. Its watermark is that
//! minus `lateness_hours`. Weeks run Monday to Sunday (ISO weeks, UTC days); a week closes when the
//! watermark reaches the Monday after it. At the end of a replay ([`finish`]) the flow's time is
//! the latest fact time of any source.
//!
//! When the flow's time moves to a later day, every key closes the weeks the watermark passed,
//! oldest first: each closed week is marked for emission and, with at least
//! `min_history_weeks` of closed history, forecasts the `horizon_weeks` weeks after it (stored
//! in those weeks, to be compared when they close). Then every key emits its closed weeks marked
//! for emission: version 1 at closing, version + 1 after a late fact changed the week's counts.
//! Facts are counted whatever their arrival order, so a week's counts equal a direct count of the
//! encounters; the forecasts are made from the counts known when the week closed and are not
//! revised by later facts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::facts::split_key;
use super::forecast::{self, Prediction};
use super::Utilization;
use crate::cashflow::{iso_week, week_start};
use crate::model::{
    day_of, EpochDay, EpochMillis, OutputEvent, UtilizationAccuracy, UtilizationCheck,
    UtilizationFact, UtilizationForecast, UtilizationWeekForecast,
};
use crate::state::Table;

/// The key holding the utilization flow's time.
pub const FLOW_KEY: &str = "flow";

/// The measures, in record order.
pub const MEASURES: [&str; 2] = ["ADMISSIONS", "ED_VISITS"];

/// A forecast made for a week `horizon` weeks before it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Made {
    pub horizon: u32,
    /// One per measure ([`MEASURES`] order).
    pub predictions: [Prediction; 2],
}

/// One week of a key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WeekRec {
    /// Counts per measure ([`MEASURES`] order).
    pub counts: [i64; 2],
    /// The forecasts made for this week, by horizon.
    pub made: Vec<Made>,
    /// Closed weeks the forecast made at this week's close used (0: none made).
    pub history_weeks: u32,
    /// Emissions so far.
    pub version: i64,
    /// Changed (or closed) since its last emission.
    pub dirty: bool,
}

/// One entry of the `utilization` table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UtilEntry {
    /// Weeks by Monday.
    pub weeks: BTreeMap<EpochDay, WeekRec>,
    /// The first week the key had a fact for (its history starts there).
    pub first_week: Option<EpochDay>,
    /// Monday of the last closed week.
    pub closed_through: Option<EpochDay>,
    /// Facts dropped because their week had left state.
    pub dropped_facts: i64,
    /// The latest fact time from each source partition (the `flow` key only; `i64::MIN` for a
    /// source not heard from yet).
    pub sources: Vec<EpochMillis>,
}

/// The flow's time: the minimum over the `partitions` source partitions of the latest fact time
/// from each; `None` until every source has sent a fact (in Kafka a fast partition's facts can
/// arrive months of event time before a slow one's first).
pub fn flow_time(sources: &[EpochMillis], partitions: u32) -> Option<EpochMillis> {
    if sources.len() < partitions as usize || partitions == 0 {
        return None;
    }
    let min = sources[..partitions as usize].iter().copied().min()?;
    (min != i64::MIN).then_some(min)
}

/// The watermark of a flow time.
pub fn watermark(cfg: &Utilization, flow_time: EpochMillis) -> EpochMillis {
    flow_time.saturating_sub(i64::from(cfg.lateness_hours) * 3_600_000)
}

/// Monday of the last week a watermark has closed.
pub fn last_closed_week(watermark: EpochMillis) -> EpochDay {
    week_start(day_of(watermark)) - 7
}

/// The first week kept in state when `last` is the last closed week.
fn oldest_kept(cfg: &Utilization, last: EpochDay) -> EpochDay {
    last - 7 * (cfg.history_weeks.max(cfg.accuracy_weeks) as EpochDay - 1)
}

/// Applies one fact (from one of `partitions` source partitions), then, when it moves the flow's
/// time to a later day, closes and emits.
pub fn apply(
    table: &mut Table<UtilEntry>,
    cfg: &Utilization,
    partitions: u32,
    fact: &UtilizationFact,
    out: &mut Vec<OutputEvent>,
) {
    let (before, after) = table.update(FLOW_KEY, |e| {
        let before = flow_time(&e.sources, partitions);
        if e.sources.len() < partitions as usize {
            e.sources.resize(partitions as usize, i64::MIN);
        }
        if let Some(s) = usize::try_from(fact.source_partition)
            .ok()
            .and_then(|i| e.sources.get_mut(i))
        {
            *s = (*s).max(fact.event_time);
        }
        (before, flow_time(&e.sources, partitions))
    });
    let week = week_start(fact.day);
    let sign = i64::from(fact.sign.signum());
    table.update(&fact.key, |e| {
        if e.closed_through.is_some_and(|c| week < oldest_kept(cfg, c)) {
            e.dropped_facts += 1;
            return;
        }
        e.first_week = Some(e.first_week.map_or(week, |f| f.min(week)));
        let w = e.weeks.entry(week).or_default();
        w.counts[0] += sign * fact.admissions;
        w.counts[1] += sign * fact.ed_visits;
        if e.closed_through.is_some_and(|c| week <= c) {
            w.dirty = true;
        }
    });
    if let Some(t) = after {
        if before.is_none_or(|b| day_of(t) > day_of(b)) {
            advance(table, cfg, t, out);
        }
    }
}

fn sorted_keys(table: &Table<UtilEntry>) -> Vec<String> {
    let mut keys: Vec<String> = table.keys().into_iter().filter(|k| k != FLOW_KEY).collect();
    keys.sort();
    keys
}

/// Closes every key's weeks up to the watermark of `flow`, then emits the weeks marked.
pub fn advance(
    table: &mut Table<UtilEntry>,
    cfg: &Utilization,
    flow: EpochMillis,
    out: &mut Vec<OutputEvent>,
) {
    let wm = watermark(cfg, flow);
    let last = last_closed_week(wm);
    for key in sorted_keys(table) {
        table.update(&key, |e| {
            close_through(e, cfg, last);
            emit(&key, e, cfg, wm, out);
        });
    }
}

/// A quiet stream (every input of the service at its end, for now) or the end of a replay: emits
/// every closed week changed since its last emission (late facts applied since the flow's last
/// day). Closes nothing the watermark has not passed: in the service a slow partition's facts
/// may still be on their way.
pub fn flush(
    table: &mut Table<UtilEntry>,
    cfg: &Utilization,
    partitions: u32,
    out: &mut Vec<OutputEvent>,
) {
    let Some(sources) = table.get(FLOW_KEY).map(|e| e.sources.clone()) else {
        return;
    };
    if let Some(t) = flow_time(&sources, partitions) {
        advance(table, cfg, t, out);
    }
}

/// The latest fact time this partition's flow has seen from any source (see [`finish`]).
pub fn latest_fact(table: &Table<UtilEntry>) -> Option<EpochMillis> {
    table
        .get(FLOW_KEY)
        .and_then(|e| e.sources.iter().copied().max())
        .filter(|t| *t != i64::MIN)
}

/// The end of a replay: nothing more is on its way, so the flow's time is `latest`, the latest
/// fact time of any source on any partition ([`latest_fact`] over all of them: one partition's
/// own latest would close its keys' weeks to another day than the others', and the output would
/// depend on the partition count). Closes the weeks up to its watermark and emits every week
/// changed since its last emission.
pub fn finish(
    table: &mut Table<UtilEntry>,
    cfg: &Utilization,
    latest: EpochMillis,
    out: &mut Vec<OutputEvent>,
) {
    advance(table, cfg, latest, out);
}

/// Closes the weeks of a key up to `last` (a Monday), oldest first, and drops the weeks no
/// forecast or accuracy can reach any more.
pub fn close_through(e: &mut UtilEntry, cfg: &Utilization, last: EpochDay) {
    let Some(first) = e.first_week else {
        return;
    };
    let mut w = e.closed_through.map_or(first, |c| c + 7).max(first);
    // A key first seen long after its first week: only the weeks still kept are closed.
    w = w.max(oldest_kept(cfg, last));
    while w <= last {
        close_week(e, cfg, w);
        e.closed_through = Some(w);
        w += 7;
    }
    let oldest = oldest_kept(cfg, last);
    e.weeks.retain(|d, _| *d >= oldest);
}

/// Closes one week: marks it for emission and forecasts the weeks after it.
fn close_week(e: &mut UtilEntry, cfg: &Utilization, week: EpochDay) {
    let first = e.first_week.unwrap_or(week);
    let start = first.max(week - 7 * (cfg.history_weeks as EpochDay - 1));
    let n = ((week - start) / 7 + 1).max(0) as usize;
    let mut history = [Vec::with_capacity(n), Vec::with_capacity(n)];
    for i in 0..n {
        let c = e
            .weeks
            .get(&(start + 7 * i as EpochDay))
            .map_or([0, 0], |w| w.counts);
        history[0].push(c[0]);
        history[1].push(c[1]);
    }
    let used = if n >= cfg.min_history_weeks as usize {
        let fits = [
            forecast::fit(&history[0], cfg.alpha),
            forecast::fit(&history[1], cfg.alpha),
        ];
        if let [Some(a), Some(b)] = fits {
            for h in 1..=cfg.horizon_weeks {
                let made = Made {
                    horizon: h,
                    predictions: [
                        forecast::predict(&a, cfg.alpha, h),
                        forecast::predict(&b, cfg.alpha, h),
                    ],
                };
                let target = e.weeks.entry(week + 7 * h as EpochDay).or_default();
                target.made.retain(|m| m.horizon != h);
                target.made.push(made);
                target.made.sort_by_key(|m| m.horizon);
            }
            n as u32
        } else {
            0
        }
    } else {
        0
    };
    let rec = e.weeks.entry(week).or_default();
    rec.history_weeks = used;
    rec.dirty = true;
}

/// Emits the closed weeks of a key marked for emission.
fn emit(
    key: &str,
    e: &mut UtilEntry,
    cfg: &Utilization,
    event_time: EpochMillis,
    out: &mut Vec<OutputEvent>,
) {
    let Some(closed) = e.closed_through else {
        return;
    };
    let due: Vec<EpochDay> = e
        .weeks
        .range(..=closed)
        .filter(|(_, w)| w.dirty)
        .map(|(d, _)| *d)
        .collect();
    for week in due {
        if let Some(w) = e.weeks.get_mut(&week) {
            w.version += 1;
            w.dirty = false;
        }
        out.push(OutputEvent::UtilizationForecast(record(
            key, e, cfg, week, event_time,
        )));
    }
}

/// The record of a closed week of a key.
pub fn record(
    key: &str,
    e: &UtilEntry,
    cfg: &Utilization,
    week: EpochDay,
    event_time: EpochMillis,
) -> UtilizationForecast {
    let rec = e.weeks.get(&week).cloned().unwrap_or_default();
    let iso = iso_week(week);
    let (facility, service_line) = split_key(key);
    let mut checks = Vec::new();
    for (mi, measure) in MEASURES.iter().enumerate() {
        for m in &rec.made {
            checks.push(check(
                measure,
                week,
                m.horizon,
                &m.predictions[mi],
                rec.counts[mi],
            ));
        }
    }
    let mut forecast = Vec::new();
    for (mi, measure) in MEASURES.iter().enumerate() {
        for h in 1..=cfg.horizon_weeks {
            let target = week + 7 * h as EpochDay;
            let made = e
                .weeks
                .get(&target)
                .and_then(|w| w.made.iter().find(|m| m.horizon == h));
            if let Some(m) = made {
                let p = &m.predictions[mi];
                forecast.push(UtilizationWeekForecast {
                    measure: (*measure).to_owned(),
                    horizon_weeks: h as i32,
                    iso_week: iso_week(target),
                    week_start: target,
                    mean: p.mean,
                    low80: p.low80,
                    high80: p.high80,
                    low95: p.low95,
                    high95: p.high95,
                });
            }
        }
    }
    UtilizationForecast {
        output_id: format!("{key}:{iso}:{}", rec.version),
        key: key.to_owned(),
        facility_id: facility.to_owned(),
        service_line: service_line.to_owned(),
        iso_week: iso,
        week_start: week,
        version: rec.version,
        event_time,
        admissions: rec.counts[0],
        ed_visits: rec.counts[1],
        history_weeks: rec.history_weeks as i32,
        checks,
        forecast,
        accuracy: accuracy(e, cfg, week),
    }
}

fn check(measure: &str, week: EpochDay, h: u32, p: &Prediction, actual: i64) -> UtilizationCheck {
    UtilizationCheck {
        measure: measure.to_owned(),
        horizon_weeks: h as i32,
        made_week_start: week - 7 * h as EpochDay,
        forecast: p.mean,
        low80: p.low80,
        high80: p.high80,
        low95: p.low95,
        high95: p.high95,
        actual,
        error: round4(actual as f64 - p.mean),
        inside80: p.inside80(actual),
        inside95: p.inside95(actual),
    }
}

/// Rolling accuracy per measure and horizon over the closed weeks ending with `week`.
pub fn accuracy(e: &UtilEntry, cfg: &Utilization, week: EpochDay) -> Vec<UtilizationAccuracy> {
    let from = week - 7 * (cfg.accuracy_weeks as EpochDay - 1);
    let mut acc = Vec::new();
    for (mi, measure) in MEASURES.iter().enumerate() {
        for h in 1..=cfg.horizon_weeks {
            let (mut n, mut actual, mut abs, mut in80, mut in95) = (0i64, 0i64, 0.0, 0i64, 0i64);
            for (_, w) in e.weeks.range(from..=week) {
                let Some(m) = w.made.iter().find(|m| m.horizon == h) else {
                    continue;
                };
                let p = &m.predictions[mi];
                let y = w.counts[mi];
                n += 1;
                actual += y;
                abs += (y as f64 - p.mean).abs();
                in80 += i64::from(p.inside80(y));
                in95 += i64::from(p.inside95(y));
            }
            let share = |k: i64| (n > 0).then(|| round4(k as f64 / n as f64));
            acc.push(UtilizationAccuracy {
                measure: (*measure).to_owned(),
                horizon_weeks: h as i32,
                weeks: n,
                actual_total: actual,
                abs_error_total: round4(abs),
                wape: (actual > 0).then(|| round4(abs / actual as f64)),
                mae: (n > 0).then(|| round4(abs / n as f64)),
                coverage80: share(in80),
                coverage95: share(in95),
            });
        }
    }
    acc
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}
