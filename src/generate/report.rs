//! The calibration report: each generated rate next to the target it was tuned for.

use serde::Serialize;

use super::{GenerateConfig, MemberOutput};
use crate::model::{EncounterEventType, DAY_MS};

/// Counts kept while generating (what the streams alone cannot tell).
#[derive(Clone, Debug, Default)]
pub(crate) struct Counters {
    pub claims: u64,
    pub rejected: u64,
    pub adjudicated: u64,
    pub denied: u64,
    pub partial: u64,
    pub reversals: u64,
    pub replacements: u64,
    pub appeals: u64,
    pub duplicates: u64,
    pub missing_acks: u64,
    pub missing_remits: u64,
    pub late_claim_exports: u64,
    pub documentation_gaps: u64,
    pub secondary: u64,
    pub ack_days: Vec<i32>,
    pub pay_days: Vec<i32>,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.claims += o.claims;
        self.rejected += o.rejected;
        self.adjudicated += o.adjudicated;
        self.denied += o.denied;
        self.partial += o.partial;
        self.reversals += o.reversals;
        self.replacements += o.replacements;
        self.appeals += o.appeals;
        self.duplicates += o.duplicates;
        self.missing_acks += o.missing_acks;
        self.missing_remits += o.missing_remits;
        self.late_claim_exports += o.late_claim_exports;
        self.documentation_gaps += o.documentation_gaps;
        self.secondary += o.secondary;
        self.ack_days.extend(&o.ack_days);
        self.pay_days.extend(&o.pay_days);
    }
}

/// One row: what was measured, the target, and what was achieved.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CalibrationRow {
    pub metric: String,
    pub target: String,
    pub achieved: f64,
    /// Whether `achieved` lies in the target band (rows without a band are informational).
    pub in_band: Option<bool>,
}

/// Target vs achieved for the generated population.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CalibrationReport {
    pub rows: Vec<CalibrationRow>,
}

fn share(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

fn percentile(v: &[i32], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    f64::from(s[((s.len() - 1) as f64 * p).round() as usize])
}

impl CalibrationReport {
    pub(crate) fn compute(cfg: &GenerateConfig, all: &MemberOutput) -> Self {
        let c = &all.counters;
        let mut rows = Vec::new();
        let mut row = |metric: &str, target: &str, achieved: f64, band: Option<(f64, f64)>| {
            rows.push(CalibrationRow {
                metric: metric.to_owned(),
                target: target.to_owned(),
                achieved: (achieved * 10_000.0).round() / 10_000.0,
                in_band: band.map(|(lo, hi)| (lo..=hi).contains(&achieved)),
            });
        };
        row("members", "as requested", cfg.members as f64, None);
        row("claims (first submissions)", "-", c.claims as f64, None);
        row(
            "front-door rejection rate (277CA A3/A7)",
            "a few % (2-5 %)",
            share(c.rejected, c.claims),
            Some((0.01, 0.06)),
        );
        row(
            "initial denial rate (adjudicated, full denial)",
            "10-15 %",
            share(c.denied, c.adjudicated),
            Some((0.10, 0.15)),
        );
        row(
            "partial payments (one line denied)",
            "a few %",
            share(c.partial, c.adjudicated),
            None,
        );
        row(
            "median days to first 277CA",
            "1-3",
            percentile(&c.ack_days, 0.5),
            Some((1.0, 3.0)),
        );
        row(
            "median days to payment",
            "14-45",
            percentile(&c.pay_days, 0.5),
            Some((14.0, 45.0)),
        );
        row(
            "p10 days to payment",
            "-",
            percentile(&c.pay_days, 0.1),
            None,
        );
        row(
            "p90 days to payment",
            "-",
            percentile(&c.pay_days, 0.9),
            None,
        );
        row(
            "reversals (CLP02 22) per paid claim",
            "~1.5 %",
            share(c.reversals, c.adjudicated),
            None,
        );
        row(
            "replacement submissions per claim",
            "-",
            share(c.replacements, c.claims),
            None,
        );
        row(
            "appeals (replacement after denial) per denial",
            "~45 %",
            share(c.appeals, c.denied),
            None,
        );
        row("secondary payer remittances", "-", c.secondary as f64, None);
        row("duplicate records", "~0.5 %", c.duplicates as f64, None);
        row(
            "claims with no 277CA",
            "~1.5 %",
            share(c.missing_acks, c.claims),
            None,
        );
        row(
            "claims with no 835",
            "~1 %",
            share(c.missing_remits, c.claims),
            None,
        );
        row(
            "claim exports arriving late (after ack/remit)",
            "~2 %",
            share(c.late_claim_exports, c.claims),
            None,
        );
        row(
            "claims sent without the documentation they need (no PWK or PWK AA)",
            "-",
            share(c.documentation_gaps, c.claims),
            None,
        );
        let discharges: Vec<_> = all
            .encounters
            .iter()
            .filter(|e| {
                e.event_type == EncounterEventType::Discharge
                    && e.encounter_class == crate::model::EncounterClass::Inpatient
            })
            .collect();
        let n = discharges.len() as u64;
        let disp = |code: &str| {
            discharges
                .iter()
                .filter(|e| e.discharge_disposition.as_deref() == Some(code))
                .count() as u64
        };
        row("inpatient discharges", "-", n as f64, None);
        row(
            "transfers to another acute hospital (02)",
            "3-5 %",
            share(disp("02"), n),
            Some((0.02, 0.06)),
        );
        row(
            "deaths in hospital (20)",
            "~2 %",
            share(disp("20"), n),
            Some((0.005, 0.04)),
        );
        row(
            "left against medical advice (07)",
            "1-2 %",
            share(disp("07"), n),
            Some((0.005, 0.03)),
        );
        let planned = discharges
            .iter()
            .filter(|e| {
                e.principal_dx == "Z5111"
                    || e.procedures
                        .iter()
                        .any(|p| p == "0TY00Z0" || p == "0270046")
            })
            .count() as u64;
        row(
            "planned stays (chemo, transplant, staged PCI)",
            "a few %",
            share(planned, n),
            None,
        );
        let late = discharges
            .iter()
            .filter(|e| {
                e.event_time - e.discharge_date.map_or(0, |d| i64::from(d) * DAY_MS) > 2 * DAY_MS
            })
            .count() as u64;
        row(
            "discharge records exported late (> 2 days)",
            "~5 %",
            share(late, n),
            None,
        );
        let truth = &all.truth.readmissions;
        let readmitted = truth.iter().filter(|t| t.readmitted).count() as u64;
        row("eligible index stays", "-", truth.len() as f64, None);
        row(
            "30-day unplanned readmission rate (truth)",
            "14-20 %",
            share(readmitted, truth.len() as u64),
            Some((0.14, 0.20)),
        );
        let mean_p = truth.iter().map(|t| t.probability).sum::<f64>() / truth.len().max(1) as f64;
        row("mean true readmission probability", "= rate", mean_p, None);
        let d = &all.truth.denials;
        let mean_d = d.iter().map(|t| t.probability).sum::<f64>() / d.len().max(1) as f64;
        row(
            "mean true rejection-or-denial probability",
            "-",
            mean_d,
            None,
        );
        Self { rows }
    }

    /// A table for humans.
    pub fn render(&self) -> String {
        let mut out = format!("{:<52} {:>18} {:>12}\n", "metric", "target", "achieved");
        for r in &self.rows {
            let flag = match r.in_band {
                Some(true) => "  ok",
                Some(false) => "  OUT OF BAND",
                None => "",
            };
            let value = if r.achieved.fract() == 0.0 && r.achieved.abs() >= 1.0 {
                format!("{:.0}", r.achieved)
            } else if r.achieved < 1.0 {
                format!("{:.2} %", r.achieved * 100.0)
            } else {
                format!("{:.1}", r.achieved)
            };
            out.push_str(&format!(
                "{:<52} {:>18} {:>12}{flag}\n",
                r.metric, r.target, value
            ));
        }
        out
    }
}
