//! Dedicated layouts of the population-analytics topics: readmission cost and preventability,
//! intervention ROI, care-gap programme tracking. Each reads the latest record per key as its
//! typed output; a record this version cannot read (another version's fields) is counted and the
//! section falls back to the field-by-field table for it, so a mixed-version input still renders.

use std::collections::BTreeMap;
use std::fmt::Write;

use plotters::prelude::RGBColor;
use serde::de::DeserializeOwned;

use super::{
    bar_svg, dollars, generic_aggregate, head, pct, row, tile, Section, BLUE, GREEN, ORANGE, RED,
};
use crate::enrolment::PMPM_MIN_SHARE_OF_MEDIAN;
use crate::model::{CareGapAction, CareGapEvent, InterventionRoi, ReadmissionSummary, RiskTier};
use crate::report::{esc, FoldedTopic, Outputs, ReportError};

/// The records of `topic` that decode as `T`, and how many did not.
fn typed<T: DeserializeOwned>(f: &FoldedTopic) -> (Vec<T>, usize) {
    let mut ok = Vec::with_capacity(f.records.len());
    let mut bad = 0;
    for v in f.records.values() {
        match serde_json::from_value::<T>(v.clone()) {
            Ok(t) => ok.push(t),
            Err(_) => bad += 1,
        }
    }
    (ok, bad)
}

/// Renders the typed layout, or the generic table when no record of the topic decodes.
fn with_records<T: DeserializeOwned>(
    sec: &Section,
    o: &Outputs,
    s: &mut String,
    layout: impl FnOnce(&[T], &mut String) -> Result<(), ReportError>,
) -> Result<(), ReportError> {
    let Some(f) = o.analytics.get(sec.topics[0]) else {
        return Ok(());
    };
    let (records, bad) = typed::<T>(f);
    if records.is_empty() {
        return generic_aggregate(sec, o, s);
    }
    layout(&records, s)?;
    if bad > 0 {
        let _ = writeln!(
            s,
            "<p class=\"note\">{bad} of {} current records of <code>{}</code> are of a version this report cannot read and are left out.</p>",
            f.records.len(),
            esc(sec.topics[0])
        );
    }
    Ok(())
}

fn tier(t: RiskTier) -> &'static str {
    match t {
        RiskTier::Low => "LOW",
        RiskTier::Medium => "MEDIUM",
        RiskTier::High => "HIGH",
    }
}

/// `n / d` unrounded for counts carried as `i64` (0 when `d` is not positive).
fn exact_i(n: i64, d: i64) -> f64 {
    crate::report::exact(n.max(0) as u64, d.max(0) as u64)
}

fn opt_ratio(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite())
        .map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

/// `claimwatch.readmission-summary`: population tiles, the HRRP cohorts, the diagnosis groups by
/// preventable spend.
pub(super) fn readmission_summary(
    sec: &Section,
    o: &Outputs,
    s: &mut String,
) -> Result<(), ReportError> {
    with_records::<ReadmissionSummary>(sec, o, s, |records, s| {
        let all = records.iter().find(|r| r.group == "all");
        if let Some(a) = all {
            super::period_line(
                s,
                &format!(
                    "index stays matured (30 days after discharge passed) by {}",
                    super::day(a.event_time)
                ),
            );
            s.push_str("<div class=\"tiles\">\n");
            tile(s, &a.index_stays.to_string(), "matured index stays");
            tile(
                s,
                &pct(exact_i(a.readmissions, a.index_stays)),
                "30-day unplanned readmission rate",
            );
            if let Some(k) = &a.kpis {
                tile(
                    s,
                    &pct(k.preventable_share),
                    "of readmissions potentially preventable",
                );
                tile(
                    s,
                    &dollars(k.preventable_readmission_spend_cents),
                    "paid on preventable readmissions",
                );
                tile(
                    s,
                    &format!("{:.1} d", k.average_los_days),
                    "average LOS of index stays",
                );
                tile(
                    s,
                    &opt_ratio(k.observed_to_expected),
                    "observed / expected readmissions",
                );
                pmpm_tiles(k, s);
            }
            s.push_str("</div>\n");
            if let Some(k) = &a.kpis {
                pmpm_table(k, s);
            }
        }
        let cols = [
            "index stays",
            "unplanned readmissions",
            "rate",
            "expected (model)",
            "O / E",
            "preventable",
            "paid on readmissions",
            "paid on preventable",
            "average LOS",
        ];
        let cells = |r: &ReadmissionSummary| {
            vec![
                r.index_stays.to_string(),
                r.readmissions.to_string(),
                pct(exact_i(r.readmissions, r.index_stays)),
                format!("{:.1}", r.expected_readmissions),
                opt_ratio(
                    (r.expected_readmissions > 0.0)
                        .then(|| r.readmissions as f64 / r.expected_readmissions),
                ),
                r.preventable_readmissions.to_string(),
                dollars(r.readmission_paid_cents),
                dollars(r.preventable_paid_cents),
                format!("{:.1} d", r.average_los_days),
            ]
        };
        let mut cohorts: Vec<&ReadmissionSummary> = records
            .iter()
            .filter(|r| r.group.starts_with("cohort:"))
            .collect();
        cohorts.sort_by(|a, b| a.group.cmp(&b.group));
        if !cohorts.is_empty() {
            s.push_str("<h3>By HRRP cohort</h3>\n<table>\n");
            let mut h = vec!["cohort"];
            h.extend(cols);
            head(s, &h);
            for r in &cohorts {
                row(s, &r.group["cohort:".len()..], &cells(r));
            }
            s.push_str("</table>\n");
        }
        let mut groups: Vec<&ReadmissionSummary> = records
            .iter()
            .filter(|r| r.group.starts_with("dx:"))
            .collect();
        groups.sort_by(|a, b| {
            b.preventable_paid_cents
                .cmp(&a.preventable_paid_cents)
                .then(b.readmissions.cmp(&a.readmissions))
                .then(a.group.cmp(&b.group))
        });
        if !groups.is_empty() {
            s.push_str(
                "<h3>By index-stay diagnosis group (CCSR body system), most preventable spend first</h3>\n<table>\n",
            );
            let mut h = vec!["diagnosis group"];
            h.extend(cols);
            head(s, &h);
            for r in &groups {
                row(s, &r.group["dx:".len()..], &cells(r));
            }
            s.push_str("</table>\n");
            let top: Vec<&&ReadmissionSummary> = groups
                .iter()
                .filter(|r| r.preventable_paid_cents > 0)
                .take(10)
                .collect();
            if !top.is_empty() {
                s.push_str("<div class=\"charts\">\n");
                s.push_str(&bar_svg(
                    "Paid on preventable readmissions by diagnosis group (top 10)",
                    &top.iter()
                        .map(|r| r.group["dx:".len()..].to_owned())
                        .collect::<Vec<_>>(),
                    &top.iter()
                        .map(|r| r.preventable_paid_cents as f64 / 100.0)
                        .collect::<Vec<_>>(),
                    "dollars",
                    &[RED],
                    (680, 420),
                )?);
                s.push_str("\n</div>\n");
            }
        }
        s.push_str(
            "<p class=\"note\">Matured index stays only (30-day window closed). Potentially preventable: an \
             ambulatory-care-sensitive principal diagnosis (AHRQ PQI numerator codes) or the same diagnosis group as the \
             index stay; see README \"Population analytics\". Expected readmissions are the sum of the calibrated \
             probabilities at discharge.</p>\n",
        );
        Ok(())
    })
}

/// `claimwatch.intervention-roi`: one row per intervention at its best cut-off, the cut-offs in
/// detail, and the net savings chart.
pub(super) fn intervention_roi(
    sec: &Section,
    o: &Outputs,
    s: &mut String,
) -> Result<(), ReportError> {
    with_records::<InterventionRoi>(sec, o, s, |records, s| {
        let mut rs: Vec<&InterventionRoi> = records.iter().collect();
        rs.sort_by(|a, b| {
            b.best_net_savings_cents
                .cmp(&a.best_net_savings_cents)
                .then(a.intervention_id.cmp(&b.intervention_id))
        });
        s.push_str("<table>\n");
        head(
            s,
            &[
                "intervention",
                "description",
                "cost per member",
                "expected relative reduction",
                "best target",
                "net savings at best target",
                "ROI at best target",
            ],
        );
        for r in &rs {
            let _ = write!(
                s,
                "<tr><th>{}</th><td class=\"w\">{}</td>",
                esc(&r.intervention_id),
                esc(&r.name)
            );
            for c in [
                dollars(r.cost_per_member_cents),
                pct(r.expected_relative_reduction),
                format!("{}+", tier(r.best_min_tier)),
                dollars(r.best_net_savings_cents),
                opt_ratio(r.best_roi),
            ] {
                let _ = write!(s, "<td>{}</td>", esc(&c));
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</table>\n<h3>By target tier</h3>\n<table>\n");
        head(
            s,
            &[
                "intervention",
                "target",
                "members targeted",
                "expected readmissions",
                "expected avoided",
                "gross savings",
                "programme cost",
                "net savings",
                "ROI",
            ],
        );
        for r in &rs {
            for c in &r.cutoffs {
                row(
                    s,
                    &r.intervention_id,
                    &[
                        format!("{}+", tier(c.min_tier)),
                        c.members_targeted.to_string(),
                        format!("{:.1}", c.expected_readmissions),
                        format!("{:.1}", c.expected_avoided),
                        dollars(c.gross_savings_cents),
                        dollars(c.programme_cost_cents),
                        dollars(c.net_savings_cents),
                        opt_ratio(c.roi),
                    ],
                );
            }
        }
        s.push_str("</table>\n<div class=\"charts\">\n");
        let colors: Vec<RGBColor> = rs
            .iter()
            .map(|r| {
                if r.best_net_savings_cents >= 0 {
                    GREEN
                } else {
                    RED
                }
            })
            .collect();
        // Negative net savings are drawn as zero-height bars; the table carries the sign.
        s.push_str(&bar_svg(
            "Net savings at the best target tier",
            &rs.iter()
                .map(|r| r.intervention_id.clone())
                .collect::<Vec<_>>(),
            &rs.iter()
                .map(|r| (r.best_net_savings_cents as f64 / 100.0).max(0.0))
                .collect::<Vec<_>>(),
            "dollars",
            &colors,
            (680, 320),
        )?);
        s.push_str("\n</div>\n<h3>Assumptions</h3>\n<table>\n");
        head(s, &["intervention", "source of cost and effect"]);
        for r in &rs {
            let _ = writeln!(
                s,
                "<tr><th>{}</th><td class=\"w\">{}</td></tr>",
                esc(&r.intervention_id),
                esc(&r.source)
            );
        }
        s.push_str(
            "</table>\n<p class=\"note\">Applied retrospectively to the matured index discharges by tier; avoided \
             readmissions = relative reduction × the calibrated probabilities; savings at the observed paid amount \
             of an unplanned readmission of the stay's diagnosis group. What-if: <code>claimwatch roi</code>.</p>\n",
        );
        Ok(())
    })
}

/// `claimwatch.care-gaps`: programme tracking by vaccine and season and by age band, open gaps by
/// outreach priority. Counts only: no member appears.
pub(super) fn care_gaps(sec: &Section, o: &Outputs, s: &mut String) -> Result<(), ReportError> {
    if let Some((a, b)) = o.analytics.get(sec.topics[0]).and_then(|f| f.event_range) {
        super::period_line(
            s,
            &format!(
                "gap events {} to {}; each gap under its latest action",
                super::day(a),
                super::day(b)
            ),
        );
    }
    with_records::<CareGapEvent>(sec, o, s, |records, s| {
        // Gaps by their current action (every gap starts OPENED).
        #[derive(Default)]
        struct Tally {
            gaps: u64,
            by: [u64; 4],
        }
        impl Tally {
            fn add(&mut self, a: CareGapAction) {
                self.gaps += 1;
                let i = CareGapAction::ALL.iter().position(|x| *x == a).unwrap_or(0);
                self.by[i] += 1;
            }
            fn cells(&self) -> Vec<String> {
                let [open, closed, expired, na] = self.by;
                let eligible = self.gaps - na;
                vec![
                    self.gaps.to_string(),
                    open.to_string(),
                    closed.to_string(),
                    expired.to_string(),
                    na.to_string(),
                    if eligible > 0 {
                        pct(closed as f64 / eligible as f64)
                    } else {
                        "-".into()
                    },
                ]
            }
        }
        let mut by_vaccine: BTreeMap<(String, String), Tally> = BTreeMap::new();
        let mut by_band: BTreeMap<String, Tally> = BTreeMap::new();
        let mut total = Tally::default();
        let mut open_by_priority: BTreeMap<RiskTier, (u64, u64)> = BTreeMap::new();
        for g in records {
            by_vaccine
                .entry((g.vaccine.clone(), g.season.clone()))
                .or_default()
                .add(g.action);
            by_band.entry(g.age_band.clone()).or_default().add(g.action);
            total.add(g.action);
            if g.action == CareGapAction::Opened {
                let e = open_by_priority.entry(g.outreach_priority).or_default();
                e.0 += 1;
                e.1 += u64::from(g.risk_condition_eligible);
            }
        }
        let cols = [
            "gaps opened",
            "open now",
            "closed",
            "expired",
            "not applicable",
            "closure rate",
        ];
        s.push_str("<div class=\"tiles\">\n");
        let c = total.cells();
        tile(s, &c[0], "immunization gaps opened");
        tile(s, &c[1], "open now");
        tile(s, &c[5], "closed (of gaps still applicable)");
        s.push_str("</div>\n<h3>By vaccine and season</h3>\n<table>\n");
        let mut h = vec!["vaccine", "season"];
        h.extend(cols);
        head(s, &h);
        for ((v, season), t) in &by_vaccine {
            let mut cells = vec![season.clone()];
            cells.extend(t.cells());
            row(s, v, &cells);
        }
        s.push_str("</table>\n<h3>By age band</h3>\n<table>\n");
        let mut h = vec!["age band"];
        h.extend(cols);
        head(s, &h);
        for (b, t) in &by_band {
            row(s, b, &t.cells());
        }
        s.push_str("</table>\n");
        if !open_by_priority.is_empty() {
            s.push_str("<h3>Open gaps by outreach priority</h3>\n<table>\n");
            head(
                s,
                &["priority", "open gaps", "eligible through a risk condition"],
            );
            for t in [RiskTier::High, RiskTier::Medium, RiskTier::Low] {
                if let Some((n, risk)) = open_by_priority.get(&t) {
                    row(s, tier(t), &[n.to_string(), risk.to_string()]);
                }
            }
            s.push_str("</table>\n");
        }
        let labels: Vec<String> = by_vaccine
            .keys()
            .map(|(v, season)| format!("{v} {season}"))
            .collect();
        let rates: Vec<f64> = by_vaccine
            .values()
            .map(|t| {
                let eligible = t.gaps - t.by[3];
                if eligible > 0 {
                    t.by[1] as f64 * 100.0 / eligible as f64
                } else {
                    0.0
                }
            })
            .collect();
        if !labels.is_empty() {
            s.push_str("<div class=\"charts\">\n");
            s.push_str(&bar_svg(
                "Closure rate by vaccine and season (%)",
                &labels,
                &rates,
                "closed / applicable gaps, %",
                &[BLUE, ORANGE],
                (680, 340),
            )?);
            s.push_str("\n</div>\n");
        }
        s.push_str(
            "<p class=\"note\">Each gap counted once under its current action. Rules: CDC adult immunization \
             schedule (src/refdata/data/immunization_rules.csv); priority from the member's latest readmission risk \
             or age and conditions. No member is listed here: outreach lists come from the topic. \
             These counts are the topic's and can exceed the care-gap figures of replay-summary.json: the summary \
             counts the gaps still in state at the end, and a member's care-gap state is dropped \
             <code>care_gaps.retention_days</code> (730) days after the member's last event, with its gaps; the \
             topic keeps them (a gap open when its member was dropped stays OPENED here, no longer followed).</p>\n",
        );
        Ok(())
    })
}

/// The months counted in the PMPM and those left out, with the cut-off in member months.
pub(super) fn pmpm_months(
    months: &[crate::model::PmpmMonth],
) -> (
    Vec<&crate::model::PmpmMonth>,
    Vec<&crate::model::PmpmMonth>,
    f64,
) {
    let mut mm: Vec<i64> = months
        .iter()
        .map(|m| m.member_months)
        .filter(|n| *n > 0)
        .collect();
    mm.sort_unstable();
    let cut = crate::enrolment::median(&mm) * PMPM_MIN_SHARE_OF_MEDIAN;
    let (kept, out) = months
        .iter()
        .partition(|m| m.member_months > 0 && m.member_months as f64 >= cut);
    (kept, out, cut)
}

/// The PMPM tiles of the `all` summary (`enrolment` module), when it has member months: over the
/// months with enough member months ([`pmpm_months`]).
fn pmpm_tiles(k: &crate::model::PopulationKpis, s: &mut String) {
    if k.cost_pmpm_cents.is_none() {
        return;
    }
    let (kept, _, _) = pmpm_months(k.pmpm_months.as_deref().unwrap_or(&[]));
    let (cost, member_months, period) = if kept.is_empty() {
        // A record without its months: the window's own figures.
        (
            k.cost_pmpm_cents.unwrap_or(0),
            k.member_months.unwrap_or(0),
            match (&k.pmpm_first_month, &k.pmpm_last_month) {
                (Some(a), Some(b)) => format!(" ({a} to {b})"),
                _ => String::new(),
            },
        )
    } else {
        let paid: i64 = kept.iter().map(|m| m.paid_cents).sum();
        let mm: i64 = kept.iter().map(|m| m.member_months).sum();
        (
            (paid as f64 / mm as f64).round() as i64,
            mm,
            format!(" ({} to {})", kept[0].month, kept[kept.len() - 1].month),
        )
    };
    tile(
        s,
        &dollars(cost),
        &format!("cost per member per month{period}"),
    );
    tile(
        s,
        &member_months.to_string(),
        "member months (enrolled on the 15th)",
    );
    if let Some(out) = k.paid_without_eligibility_cents.filter(|c| *c != 0) {
        tile(s, &dollars(out), "paid without eligibility (not in PMPM)");
    }
}

/// The PMPM by incurred month; months with too few member months marked and not counted.
fn pmpm_table(k: &crate::model::PopulationKpis, s: &mut String) {
    let Some(months) = k.pmpm_months.as_ref().filter(|m| !m.is_empty()) else {
        return;
    };
    let (kept, out, cut) = pmpm_months(months);
    s.push_str("<h3>Cost per member per month by service month</h3>\n");
    if let (Some(a), Some(b)) = (kept.first(), kept.last()) {
        let _ = writeln!(
            s,
            "<p class=\"period\">service months {} to {}{}</p>",
            esc(&a.month),
            esc(&b.month),
            if out.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} month(s) with too few member months left out)",
                    out.len()
                )
            }
        );
    }
    s.push_str("<table>\n");
    head(
        s,
        &[
            "month",
            "member months",
            "paid in eligibility",
            "PMPM",
            "paid without eligibility",
        ],
    );
    for m in months {
        let left_out = out.iter().any(|o| std::ptr::eq(*o, m));
        row(
            s,
            &if left_out {
                format!("{} (left out)", m.month)
            } else {
                m.month.clone()
            },
            &[
                m.member_months.to_string(),
                dollars(m.paid_cents),
                if left_out {
                    "-".into()
                } else {
                    m.cost_pmpm_cents.map_or_else(|| "-".into(), dollars)
                },
                dollars(m.paid_without_eligibility_cents),
            ],
        );
    }
    s.push_str("</table>\n<p class=\"note\">PMPM (paid per member per month): paid to date by the claims' service month / member months (members enrolled on the 15th). The latest months are not complete for claims incurred but not yet paid.");
    if !out.is_empty() {
        let _ = write!(
            s,
            " Left out of the PMPM and its headline: {} (fewer than {:.0} member months, 1 % of the median month; typically a month after the enrolment data ends).",
            esc(&out
                .iter()
                .map(|m| format!("{} with {} member months", m.month, m.member_months))
                .collect::<Vec<_>>()
                .join(", ")),
            cut.ceil()
        );
    }
    s.push_str("</p>\n");
}
