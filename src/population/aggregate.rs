//! Population flow: sums [`StayOutcome`] facts into the `population` table and emits
//! `claimwatch.readmission-summary` and `claimwatch.intervention-roi`.
//!
//! Table keys: `all`, `dx:<group>`, `cohort:<cohort>` (emitted as summaries), `t:<TIER>:<group>`
//! (tier × diagnosis group, for the ROI; not emitted), `roi:<intervention id>` (the ROI records'
//! version and last content), `flow` (the flow's day).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::roi::{self, tier_from, tier_name, RoiInputs};
use crate::config::Intervention;
use crate::enrolment::{PmpmAgg, PmpmWindow};
use crate::model::{
    day_of, start_of_day, EpochMillis, OutputEvent, PopulationKpis, ReadmissionSummary, StayOutcome,
};
use crate::state::Table;

/// The key holding the population flow's day.
pub const FLOW_KEY: &str = "flow";

/// Sums of the facts of one group (all integers: exact whatever the order).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupAgg {
    pub index_stays: i64,
    pub readmissions: i64,
    pub planned: i64,
    pub preventable: i64,
    pub readmission_paid_cents: i64,
    pub readmissions_with_paid: i64,
    pub preventable_paid_cents: i64,
    pub los_days: i64,
    pub index_paid_cents: i64,
    pub index_with_paid: i64,
    pub probability_micros: i64,
}

impl GroupAgg {
    /// Adds a fact (its sign decides add or take back).
    pub fn add(&mut self, f: &StayOutcome) {
        let s = i64::from(f.sign);
        let b = |x: bool| i64::from(x) * s;
        self.index_stays += s;
        self.readmissions += b(f.readmitted);
        self.planned += b(f.planned);
        self.preventable += b(f.preventable);
        // Paid claims only: a denied readmission claim ($0 paid so far) is no cost observation,
        // and counting it would pull the average cost per readmission (and the ROI's savings)
        // down. Its retraction (the same fact, sign -1) skips it alike.
        if let Some(p) = f.readmission_paid_cents.filter(|p| *p > 0) {
            self.readmission_paid_cents += s * p;
            self.readmissions_with_paid += s;
            if f.preventable {
                self.preventable_paid_cents += s * p;
            }
        }
        self.los_days += s * i64::from(f.los_days);
        if let Some(p) = f.index_paid_cents {
            self.index_paid_cents += s * p;
            self.index_with_paid += s;
        }
        self.probability_micros += s * f.probability_micros;
    }
}

/// One entry of the `population` table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PopEntry {
    pub agg: GroupAgg,
    /// Emissions so far (summary or ROI keys).
    pub version: i64,
    /// Changed since the last emission.
    pub dirty: bool,
    /// Fingerprint of the content last emitted.
    pub emitted: u64,
    /// The population flow's day (the `flow` key only).
    pub flow_day: i64,
}

fn is_summary(key: &str) -> bool {
    key == "all" || key.starts_with("dx:") || key.starts_with("cohort:")
}

/// The keys a fact adds to.
fn keys_of(f: &StayOutcome) -> Vec<String> {
    let mut keys = vec!["all".to_owned(), format!("dx:{}", f.dx_group)];
    if let Some(c) = &f.hrrp_cohort {
        keys.push(format!("cohort:{c}"));
    }
    keys.push(format!("t:{}:{}", tier_name(f.tier), f.dx_group));
    keys
}

/// Applies one fact. When it opens a later day of the flow, the groups changed before it are
/// emitted first.
pub fn apply(
    table: &mut Table<PopEntry>,
    dirty: &mut BTreeSet<String>,
    interventions: &[Intervention],
    pmpm: Option<&PmpmAgg>,
    fact: &StayOutcome,
    out: &mut Vec<OutputEvent>,
) {
    let day = i64::from(day_of(fact.event_time));
    let flow = table.get(FLOW_KEY).map(|e| e.flow_day);
    if flow.is_none_or(|d| day > d) {
        flush(table, dirty, interventions, pmpm, out);
        table.update(FLOW_KEY, |e| e.flow_day = day);
    }
    for key in keys_of(fact) {
        table.update(&key, |e| {
            e.agg.add(fact);
            e.dirty = true;
        });
        dirty.insert(key);
    }
}

/// Marks the `all` group changed (its PMPM figures changed: `enrolment` module).
pub fn mark_all(table: &mut Table<PopEntry>, dirty: &mut BTreeSet<String>) {
    table.update("all", |e| e.dirty = true);
    dirty.insert("all".to_owned());
}

/// Emits every changed group whose content differs from its last emission, then the ROI records
/// whose figures changed. Stamped with the start of the day after the flow's day. The `all`
/// group carries the PMPM figures of `pmpm` (`enrolment` module).
pub fn flush(
    table: &mut Table<PopEntry>,
    dirty: &mut BTreeSet<String>,
    interventions: &[Intervention],
    pmpm: Option<&PmpmAgg>,
    out: &mut Vec<OutputEvent>,
) {
    if dirty.is_empty() {
        return;
    }
    let Some(flow_day) = table.get(FLOW_KEY).map(|e| e.flow_day) else {
        dirty.clear();
        return;
    };
    let event_time = start_of_day(flow_day as i32 + 1);
    let window = pmpm.and_then(PmpmAgg::window);
    let pmpm_fp = window.as_ref().map_or(0, PmpmWindow::fingerprint);
    for key in std::mem::take(dirty) {
        let summary = table.update(&key, |e| {
            e.dirty = false;
            if !is_summary(&key) {
                return None;
            }
            let mut fp = crate::state::fingerprint(&e.agg);
            if key == "all" && pmpm_fp != 0 {
                fp = crate::state::fingerprint(&(fp, pmpm_fp));
            }
            if e.version > 0 && fp == e.emitted {
                return None;
            }
            e.version += 1;
            e.emitted = fp;
            let mut s = summary(&key, e.version, event_time, &e.agg);
            if let (Some(k), Some(w)) = (s.kpis.as_mut(), window.as_ref()) {
                w.fill(k);
            }
            Some(s)
        });
        if let Some(s) = summary {
            out.push(OutputEvent::ReadmissionSummary(s));
        }
    }
    let inputs = roi_inputs(table);
    for iv in interventions {
        let key = format!("roi:{}", iv.key());
        let mut r = roi::compute(iv, &inputs, event_time, 0);
        let fp = roi_fingerprint(&r);
        let version = table.update(&key, |e| {
            if e.version > 0 && e.emitted == fp {
                return None;
            }
            e.version += 1;
            e.emitted = fp;
            Some(e.version)
        });
        if let Some(v) = version {
            r.version = v;
            r.output_id = format!("{}:{v}", r.intervention_id);
            out.push(OutputEvent::InterventionRoi(r));
        }
    }
}

fn roi_fingerprint(r: &crate::model::InterventionRoi) -> u64 {
    let text = serde_json::to_string(&(&r.cutoffs, &r.name, &r.source)).unwrap_or_default();
    crate::state::fingerprint(&text)
}

/// The ROI's inputs from the table, in key order.
pub fn roi_inputs(table: &Table<PopEntry>) -> RoiInputs {
    let mut inputs = RoiInputs::default();
    for e in table.iter() {
        let key = e.key();
        if let Some(rest) = key.strip_prefix("t:") {
            if let Some((tier, dx)) = rest.split_once(':') {
                if let Some(tier) = tier_from(tier) {
                    inputs.cells.insert(
                        (tier, dx.to_owned()),
                        (e.value().agg.index_stays, e.value().agg.probability_micros),
                    );
                }
            }
        } else if let Some(dx) = key.strip_prefix("dx:") {
            let a = &e.value().agg;
            inputs.paid_by_dx.insert(
                dx.to_owned(),
                (a.readmission_paid_cents, a.readmissions_with_paid),
            );
        }
    }
    inputs
}

fn ratio(a: i64, b: i64) -> f64 {
    if b > 0 {
        ((a as f64 / b as f64) * 1e6).round() / 1e6
    } else {
        0.0
    }
}

/// The summary record of a group.
pub fn summary(
    key: &str,
    version: i64,
    event_time: EpochMillis,
    a: &GroupAgg,
) -> ReadmissionSummary {
    let expected = a.probability_micros as f64 / 1e6;
    ReadmissionSummary {
        output_id: format!("{key}:{version}"),
        group: key.to_owned(),
        version,
        event_time,
        index_stays: a.index_stays,
        readmissions: a.readmissions,
        readmission_rate: ratio(a.readmissions, a.index_stays),
        planned_readmissions: a.planned,
        preventable_readmissions: a.preventable,
        readmission_paid_cents: a.readmission_paid_cents,
        readmissions_with_paid: a.readmissions_with_paid,
        preventable_paid_cents: a.preventable_paid_cents,
        average_los_days: ratio(a.los_days, a.index_stays),
        index_paid_cents: a.index_paid_cents,
        expected_readmissions: (expected * 1e4).round() / 1e4,
        kpis: (key == "all").then(|| PopulationKpis {
            readmission_rate: ratio(a.readmissions, a.index_stays),
            preventable_share: ratio(a.preventable, a.readmissions),
            preventable_readmission_spend_cents: a.preventable_paid_cents,
            average_los_days: ratio(a.los_days, a.index_stays),
            observed_to_expected: (a.probability_micros > 0)
                .then(|| ((a.readmissions as f64 / expected) * 1e4).round() / 1e4),
            cost_pmpm_cents: None,
            member_months: None,
            pmpm_paid_cents: None,
            paid_without_eligibility_cents: None,
            pmpm_first_month: None,
            pmpm_last_month: None,
            pmpm_months: None,
        }),
    }
}

/// Rebuilds the set of changed keys from the table (after a restore).
pub fn dirty_keys(table: &Table<PopEntry>) -> BTreeSet<String> {
    table
        .iter()
        .filter(|e| e.value().dirty)
        .map(|e| e.key().clone())
        .collect()
}
