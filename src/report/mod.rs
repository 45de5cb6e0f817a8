//! The executive report (`claimwatch report`, issue 8): one self-contained HTML page over the
//! outputs of a `claimwatch replay` directory: KPI tiles, payer denial benchmarks, risk tier
//! distributions, readmissions by HRRP cohort and diagnosis group, lifecycle status mix and A/R
//! aging, and one section per population-analytics topic.
//!
//! - [`load::load_dir`] folds each topic's JSON-lines file to its latest record per key
//!   ([`Outputs`]).
//! - [`render`] is a pure function from [`Outputs`] to the HTML string: inline CSS, inline SVG
//!   charts drawn with `plotters` (as `score::html` draws the model report), no JavaScript, no
//!   external file. Aggregates only: no member, claim or encounter id is written; all text from
//!   the data is escaped.
//! - Sections are rows of [`SECTIONS`]: a title, the topics it reads and a render function. A
//!   section whose topics are all absent from the input says so ("not computed by this
//!   version") instead of showing numbers. Adding a section for a new topic is one row and one
//!   function.

pub mod kafka;
pub mod load;
mod sections;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde::Deserialize;

use crate::model::{
    ClaimStatus, DenialRiskScore, EpochDay, EpochMillis, PayerKpi, PayerMonitorAlert,
    ReadmissionEvent, ReadmissionRiskScore,
};

pub use load::{load_dir, split_output_id, LoadError};
pub use sections::{Section, SECTIONS};

/// The output topics the report reads (file `<topic>.jsonl` in the input directory).
pub mod topics {
    pub const CLAIM_LIFECYCLE: &str = "claimwatch.claim-lifecycle";
    pub const READMISSIONS: &str = "claimwatch.readmissions";
    pub const DEAD_LETTER: &str = "claimwatch.dead-letter";
    pub const DENIAL_RISK: &str = "claimwatch.denial-risk";
    pub const READMISSION_RISK: &str = "claimwatch.readmission-risk";
    pub const HIGH_RISK_ALERTS: &str = "claimwatch.alerts.high-risk-discharge";
    pub const PAYER_KPIS: &str = "claimwatch.payer-kpis";
    pub const PAYER_ALERTS: &str = "claimwatch.alerts.payer-monitor";
    pub const READMISSION_SUMMARY: &str = "claimwatch.readmission-summary";
    pub const INTERVENTION_ROI: &str = "claimwatch.intervention-roi";
    pub const CARE_GAPS: &str = "claimwatch.care-gaps";
    pub const PROVIDER_KPIS: &str = "claimwatch.provider-kpis";
    pub const MEMBER_RISK: &str = "claimwatch.member-risk";
    pub const CASH_FORECAST: &str = "claimwatch.cash-forecast";
    pub const UTILIZATION_FORECAST: &str = "claimwatch.utilization-forecast";
    /// Population-analytics topics (issue 8) read generically (as JSON) until they have a typed
    /// section of their own.
    pub const ANALYTICS: &[&str] = &[
        READMISSION_SUMMARY,
        INTERVENTION_ROI,
        CARE_GAPS,
        PROVIDER_KPIS,
        MEMBER_RISK,
        CASH_FORECAST,
        UTILIZATION_FORECAST,
    ];
}

/// What the report keeps of one claim: its latest lifecycle update's figures (no ids but the
/// payer's) plus what its history says.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimView {
    pub status: ClaimStatus,
    pub payer_id: Option<String>,
    pub submitted_date: Option<EpochDay>,
    pub billed_cents: i64,
    pub expected_cents: Option<i64>,
    pub paid_cents: i64,
    pub remit_count: i32,
    pub first_pass_paid: Option<bool>,
    pub days_to_first_payment: Option<i32>,
    /// Status right after the first remittance was applied.
    pub first_adjudication: Option<ClaimStatus>,
    pub ever_rejected: bool,
    pub acknowledged: bool,
    pub denial_category: Option<String>,
    /// Denial-category adjustments (positive amounts) of the latest version, cents: what the
    /// claim's effective adjudication denies now. 0 unless the latest status is DENIED or
    /// PARTIALLY_PAID (a claim later paid in full, reversed, voided or forwarded denies nothing).
    pub denied_cents: i64,
}

/// A topic read as JSON: its latest record per key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FoldedTopic {
    /// Lines in the file (all versions).
    pub lines: u64,
    pub records: BTreeMap<String, serde_json::Value>,
    /// First and last `event_time` over every line (all versions), when the records carry one.
    pub event_range: Option<(EpochMillis, EpochMillis)>,
}

/// The parts of `replay-summary.json` the report shows (figures computed from the replay's final
/// state, which the output topics alone do not carry: index stays and matured cohorts).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct SummaryView {
    #[serde(default)]
    pub input_records: BTreeMap<String, u64>,
    #[serde(default)]
    pub readmissions: SummaryReadmissions,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct SummaryReadmissions {
    pub index_stays: u64,
    pub matured_index_stays: u64,
    pub unplanned_readmissions: u64,
    pub planned_readmissions: u64,
    pub readmission_rate: f64,
    /// Cohort → (matured index stays, unplanned readmissions).
    #[serde(default)]
    pub by_hrrp_cohort: BTreeMap<String, (u64, u64)>,
}

/// The folded outputs of one run.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// Topics whose file was present.
    pub present: BTreeSet<String>,
    pub claims: Vec<ClaimView>,
    /// Latest lifecycle event time: the "as of" of the A/R aging.
    pub as_of: Option<EpochMillis>,
    /// First and last event time over the event-driven outputs (claim lifecycle, risk scores,
    /// readmissions, care gaps): the data period of the page.
    pub period: Option<(EpochMillis, EpochMillis)>,
    /// Every version of every department's provider KPI record, oldest first (the section picks
    /// the version whose window ends at a common date).
    pub department_history: BTreeMap<String, Vec<crate::model::ProviderKpi>>,
    /// Current (not retracted) readmissions.
    pub readmissions: Vec<ReadmissionEvent>,
    /// Latest score per claim.
    pub denial_risk: Vec<DenialRiskScore>,
    /// One score per stay.
    pub readmission_risk: Vec<ReadmissionRiskScore>,
    pub high_risk_alerts: u64,
    /// Latest version per payer window.
    pub payer_kpis: Vec<PayerKpi>,
    pub payer_alerts: Vec<PayerMonitorAlert>,
    pub dead_letters: u64,
    /// Analytics topics present, read as JSON.
    pub analytics: BTreeMap<String, FoldedTopic>,
    pub summary: Option<SummaryView>,
}

/// The headline figures of the KPI tiles.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Kpis {
    pub claims: u64,
    pub adjudicated: u64,
    /// The counts behind the rates, so that the page rounds once from the exact ratio: claims
    /// first denied, finally denied, with a first-pass outcome and paid on it, acknowledged and
    /// rejected at the front door.
    pub initial_denied: u64,
    pub final_denied: u64,
    pub first_pass_outcomes: u64,
    pub first_pass_paid: u64,
    pub acknowledged: u64,
    pub front_door_rejected: u64,
    /// Share of adjudicated claims whose first adjudication was a denial.
    pub initial_denial_rate: f64,
    /// Share of adjudicated claims denied in their latest state.
    pub final_denial_rate: f64,
    /// Paid on the first pass / claims with a first-pass outcome.
    pub first_pass_yield: f64,
    /// Share of acknowledged claims rejected at the front door at least once.
    pub front_door_rejection_rate: f64,
    pub paid_cents: i64,
    /// Denial-category adjustments over the daily payer KPI windows, cents: every adjudication
    /// counts (a claim denied twice counts twice, a denial later overturned still counts).
    pub denied_cents: i64,
    /// Denial-category adjustments of the claims' latest state ([`ClaimView::denied_cents`]),
    /// and how many claims carry some. A claim's denial is capped at its billed amount: the
    /// adjudications in force of a primary and a secondary payer can add up past it (an
    /// appeal's adjudication supersedes the earlier ones, see `reconcile`).
    pub denied_current_cents: i64,
    pub denied_current_claims: u64,
    /// Claims whose denial adjustments exceeded their billed amount (capped).
    pub denied_capped_claims: u64,
    /// Of those claims, the expected (contracted) payment not received: sum of
    /// max(expected - paid, 0), cents. Comparable with the paid amounts (billed charges are not).
    pub denied_expected_unpaid_cents: i64,
    /// Current unplanned readmissions on the readmissions topic.
    pub unplanned_readmissions: u64,
    /// Index stays and rate from the replay summary, when there is one.
    pub index_stays: Option<u64>,
    pub readmission_rate: Option<f64>,
    /// Stays scored HIGH for readmission risk.
    pub high_risk_discharges: u64,
    pub high_risk_alerts: u64,
    pub payer_alerts: u64,
}

/// `n / d` rounded to 4 decimals as `replay-summary.json` rounds, 0 when `d` is 0. For
/// comparing with the summary only: the page shows [`exact`] ratios, rounded once when printed
/// (a ratio rounded here and again to one decimal of a percent can land a tenth off:
/// 123 / 1528 = 8.0497 % became 0.0805 and then 8.1 %).
pub fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        (n as f64 / d as f64 * 10_000.0).round() / 10_000.0
    }
}

/// `n / d` unrounded, 0 when `d` is 0.
pub fn exact(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

impl Kpis {
    pub fn compute(o: &Outputs) -> Self {
        let mut k = Kpis {
            claims: o.claims.len() as u64,
            ..Default::default()
        };
        let (mut init, mut fin, mut acked, mut rej, mut fp, mut fp_all) = (0, 0, 0, 0, 0, 0);
        for c in &o.claims {
            k.paid_cents += c.paid_cents;
            if c.denied_cents > 0 {
                k.denied_current_cents += c.denied_cents.min(c.billed_cents.max(0));
                k.denied_current_claims += 1;
                k.denied_capped_claims += u64::from(c.denied_cents > c.billed_cents);
                k.denied_expected_unpaid_cents +=
                    c.expected_cents.map_or(0, |e| (e - c.paid_cents).max(0));
            }
            if c.remit_count > 0 {
                k.adjudicated += 1;
                init += u64::from(c.first_adjudication == Some(ClaimStatus::Denied));
                fin += u64::from(c.status == ClaimStatus::Denied);
            }
            if c.acknowledged {
                acked += 1;
                rej += u64::from(c.ever_rejected);
            }
            if let Some(p) = c.first_pass_paid {
                fp_all += 1;
                fp += u64::from(p);
            }
        }
        (k.initial_denied, k.final_denied) = (init, fin);
        (k.first_pass_paid, k.first_pass_outcomes) = (fp, fp_all);
        (k.front_door_rejected, k.acknowledged) = (rej, acked);
        k.initial_denial_rate = ratio(init, k.adjudicated);
        k.final_denial_rate = ratio(fin, k.adjudicated);
        k.front_door_rejection_rate = ratio(rej, acked);
        k.first_pass_yield = ratio(fp, fp_all);
        k.denied_cents = o
            .payer_kpis
            .iter()
            .filter(|w| w.granularity == crate::model::Granularity::Daily)
            .map(|w| w.denied_cents)
            .sum();
        k.unplanned_readmissions = o.readmissions.iter().filter(|r| !r.planned).count() as u64;
        if let Some(s) = &o.summary {
            k.index_stays = Some(s.readmissions.index_stays);
            k.readmission_rate = Some(s.readmissions.readmission_rate);
        }
        k.high_risk_discharges = o
            .readmission_risk
            .iter()
            .filter(|r| r.tier == crate::model::RiskTier::High)
            .count() as u64;
        k.high_risk_alerts = o.high_risk_alerts;
        k.payer_alerts = o.payer_alerts.len() as u64;
        k
    }
}

/// Why the page could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("chart {chart}: {message}")]
    Chart { chart: String, message: String },
}

/// Escapes text for HTML (element content and attribute values).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

const CSS: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1180px;color:#222;padding:0 1em}\n\
h1{margin-bottom:.2em}h2{border-bottom:2px solid #1f77b4;padding-bottom:.2em;margin-top:1.8em}\n\
.sub{color:#555;margin-top:0}\n\
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:12px;margin:1em 0}\n\
.tile{background:#f3f7fb;border:1px solid #cfdeea;border-radius:8px;padding:10px 14px}\n\
.tile .v{font-size:1.7em;font-weight:bold;color:#1f4e79}.tile .l{font-size:.85em;color:#444}\n\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}td,tr>th:first-child{white-space:nowrap}\n\
th{background:#f4f4f4;text-align:left}td.l{text-align:left}td.w{text-align:left;white-space:normal}\n\
.charts{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}\n\
.na{color:#8a5a00;background:#fff7e6;border:1px solid #f0d9a8;border-radius:6px;padding:8px 12px}\n\
nav a{margin-right:1em}small,.note{color:#666}\n\
.period{color:#1f4e79;font-size:.9em;margin:-.4em 0 .6em 0}\n\
table.compact{font-size:.88em}table.compact th,table.compact td{padding:3px 7px}\n\
dl.terms{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;font-size:.9em;color:#444}dl.terms dt{font-weight:bold}dl.terms dd{margin:0}\n";

/// The terms the page uses, defined once (each section's notes say more).
const TERMS: &[(&str, &str)] = &[
    ("FPY", "first-pass yield: claims paid on their first adjudication, with no earlier rejection or denial"),
    ("front-door rejection", "the payer's acknowledgement (277CA) refused the claim before adjudication"),
    ("adjudication", "one 835 remittance decision on a claim; a resubmitted claim can be adjudicated several times"),
    ("HRRP", "CMS Hospital Readmissions Reduction Program: its condition cohorts (AMI, HF, pneumonia, COPD, CABG, hip/knee replacement)"),
    ("CCSR", "AHRQ Clinical Classifications Software Refined: diagnosis groups by body system (CIR circulatory, RSP respiratory, ...)"),
    ("LOS", "length of stay of an inpatient stay, days"),
    ("PMPM", "paid per member per month: paid amount / member months of enrolment"),
    ("O/E", "observed / expected readmissions; expected = sum of the calibrated risk probabilities"),
    ("ROI", "return on investment: net savings / programme cost"),
    ("tiers", "LOW / MEDIUM / HIGH bands of a model's calibrated probability"),
    ("WAPE", "weighted absolute percentage error: sum |actual - forecast| / sum actual"),
];

/// The page for `o`. Pure: the same outputs give the same bytes.
pub fn render(o: &Outputs) -> Result<String, ReportError> {
    let mut s = String::with_capacity(256 * 1024);
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    s.push_str("<title>claimwatch executive report</title>\n<style>\n");
    s.push_str(CSS);
    s.push_str("</style>\n</head>\n<body>\n<h1>claimwatch executive report</h1>\n");
    let day = |t: EpochMillis| crate::model::format_day(crate::model::day_of(t));
    let period = match o.period {
        Some((a, b)) => format!("Data period {} to {} (event time)", day(a), day(b)),
        None => "Data period unknown (no event-driven output)".into(),
    };
    let inputs: u64 = o
        .summary
        .as_ref()
        .map(|s| s.input_records.values().sum())
        .unwrap_or(0);
    s.push_str(&format!(
        "<p class=\"sub\"><strong>{}</strong> &middot; {} input records &middot; {} output topics read &middot; aggregates only (no member or claim identifiers)</p>\n",
        esc(&period),
        if inputs > 0 { inputs.to_string() } else { "-".into() },
        o.present.len()
    ));
    s.push_str("<nav>");
    for sec in SECTIONS {
        s.push_str(&format!("<a href=\"#{}\">{}</a>", sec.id, esc(sec.title)));
    }
    s.push_str("</nav>\n<dl class=\"terms\">\n");
    for (t, d) in TERMS {
        let _ = writeln!(s, "<dt>{}</dt><dd>{}</dd>", esc(t), esc(d));
    }
    s.push_str("</dl>\n");
    for sec in SECTIONS {
        s.push_str(&format!(
            "<section id=\"{}\">\n<h2>{}</h2>\n",
            sec.id,
            esc(sec.title)
        ));
        if sec.topics.iter().any(|t| o.present.contains(*t)) {
            (sec.render)(sec, o, &mut s)?;
        } else {
            let names: Vec<String> = sec
                .topics
                .iter()
                .map(|t| format!("<code>{}</code>", esc(t)))
                .collect();
            s.push_str(&format!(
                "<p class=\"na\">Not computed by this version: the input has no {} output.</p>\n",
                names.join(" or ")
            ));
        }
        s.push_str("</section>\n");
    }
    s.push_str("</body>\n</html>\n");
    Ok(s)
}
