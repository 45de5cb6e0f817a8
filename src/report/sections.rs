//! The report's sections: one row of [`SECTIONS`] each, and the bar charts they draw.

use std::collections::BTreeMap;
use std::fmt::Write;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use crate::model::{ClaimStatus, Granularity, RiskTier};

use super::{esc, ratio, topics, Kpis, Outputs, ReportError};

mod analytics;
mod utilization;

/// One section of the page. It is rendered when at least one of its `topics` was in the input;
/// otherwise the page says it is not computed by this version.
pub struct Section {
    /// Anchor id (plain ASCII).
    pub id: &'static str,
    pub title: &'static str,
    pub topics: &'static [&'static str],
    pub render: fn(&Section, &Outputs, &mut String) -> Result<(), ReportError>,
}

/// The sections, in page order. To add one: a row here and its render function.
pub const SECTIONS: &[Section] = &[
    Section {
        id: "kpis",
        title: "Key figures",
        topics: &[topics::CLAIM_LIFECYCLE],
        render: kpi_tiles,
    },
    Section {
        id: "payers",
        title: "Payer denial benchmarks",
        topics: &[topics::PAYER_KPIS],
        render: payer_benchmarks,
    },
    Section {
        id: "risk-tiers",
        title: "Risk tier distribution",
        topics: &[topics::DENIAL_RISK, topics::READMISSION_RISK],
        render: risk_tiers,
    },
    Section {
        id: "readmissions",
        title: "Readmissions by HRRP cohort and diagnosis group",
        topics: &[topics::READMISSIONS],
        render: readmissions,
    },
    Section {
        id: "lifecycle",
        title: "Claim lifecycle status mix and A/R aging",
        topics: &[topics::CLAIM_LIFECYCLE],
        render: lifecycle,
    },
    Section {
        id: "readmission-summary",
        title: "Readmission cost and preventability",
        topics: &[topics::READMISSION_SUMMARY],
        render: analytics::readmission_summary,
    },
    Section {
        id: "intervention-roi",
        title: "Intervention net savings and ROI",
        topics: &[topics::INTERVENTION_ROI],
        render: analytics::intervention_roi,
    },
    Section {
        id: "providers",
        title: "Provider and department performance",
        topics: &[topics::PROVIDER_KPIS],
        render: providers,
    },
    Section {
        id: "high-cost",
        title: "High-cost members",
        topics: &[topics::MEMBER_RISK],
        render: high_cost_members,
    },
    Section {
        id: "care-gaps",
        title: "Care gaps and immunization",
        topics: &[topics::CARE_GAPS],
        render: analytics::care_gaps,
    },
    Section {
        id: "cash-forecast",
        title: "Cash forecast vs actual",
        topics: &[topics::CASH_FORECAST],
        render: cash_forecast,
    },
    Section {
        id: "utilization",
        title: "Utilization forecast vs actual",
        topics: &[topics::UTILIZATION_FORECAST],
        render: utilization::utilization,
    },
];

const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const RED: RGBColor = RGBColor(214, 39, 40);

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

fn dollars(cents: i64) -> String {
    let neg = cents < 0;
    let whole = (cents.unsigned_abs() + 50) / 100;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    format!("{}${out}", if neg { "-" } else { "" })
}

fn chart_err(chart: &str) -> impl Fn(String) -> ReportError + '_ {
    move |message| ReportError::Chart {
        chart: chart.to_owned(),
        message,
    }
}

/// A bar chart: one bar per label, `axis` on the value axis, each bar coloured by
/// `colors[i % len]`. Vertical bars when the labels fit under them, else horizontal bars with the
/// labels on the left (rotated labels do not place well in plotters' SVG output).
fn bar_svg(
    caption: &str,
    labels: &[String],
    values: &[f64],
    axis: &str,
    colors: &[RGBColor],
    size: (u32, u32),
) -> Result<String, ReportError> {
    let err = chart_err(caption);
    let n = labels.len().max(1);
    let top = values.iter().copied().fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u32;
    // About 7 pixels per character at 12 px; a vertical bar's slot must hold its label.
    let slot = size.0.saturating_sub(90) / n as u32;
    let horizontal = longest * 7 + 8 > slot;
    let bar = |i: usize| colors[i % colors.len()].filled();
    let label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut builder = ChartBuilder::on(&root);
        builder.caption(caption, ("sans-serif", 17)).margin(12);
        if horizontal {
            let mut chart = builder
                .x_label_area_size(40)
                .y_label_area_size(longest * 7 + 16)
                .build_cartesian_2d(0f64..top, (0..n - 1).into_segmented())
                .map_err(|e| err(e.to_string()))?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .light_line_style(WHITE.mix(0.0))
                .y_labels(n)
                .y_label_style(("sans-serif", 12))
                // Top to bottom in label order.
                .y_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(j) if *j < n => {
                        label(&SegmentValue::CenterOf(n - 1 - j))
                    }
                    _ => String::new(),
                })
                .x_desc(axis)
                .draw()
                .map_err(|e| err(e.to_string()))?;
            chart
                .draw_series(values.iter().enumerate().map(|(i, v)| {
                    let mut r = Rectangle::new(
                        [
                            (0.0, SegmentValue::Exact(n - 1 - i)),
                            (*v, SegmentValue::Exact(n - i)),
                        ],
                        bar(i),
                    );
                    r.set_margin(3, 3, 0, 0);
                    r
                }))
                .map_err(|e| err(e.to_string()))?;
        } else {
            let mut chart = builder
                .x_label_area_size(36)
                .y_label_area_size(64)
                .build_cartesian_2d((0..n - 1).into_segmented(), 0f64..top)
                .map_err(|e| err(e.to_string()))?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .light_line_style(WHITE.mix(0.0))
                .x_labels(n)
                .x_label_style(("sans-serif", 12))
                .x_label_formatter(&label)
                .y_desc(axis)
                .draw()
                .map_err(|e| err(e.to_string()))?;
            chart
                .draw_series(values.iter().enumerate().map(|(i, v)| {
                    let mut r = Rectangle::new(
                        [
                            (SegmentValue::Exact(i), 0.0),
                            (SegmentValue::Exact(i + 1), *v),
                        ],
                        bar(i),
                    );
                    r.set_margin(0, 0, 6, 6);
                    r
                }))
                .map_err(|e| err(e.to_string()))?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(buf)
}

fn head(s: &mut String, cells: &[&str]) {
    s.push_str("<tr>");
    for c in cells {
        let _ = write!(s, "<th>{}</th>", esc(c));
    }
    s.push_str("</tr>\n");
}

fn row(s: &mut String, name: &str, cells: &[String]) {
    let _ = write!(s, "<tr><th>{}</th>", esc(name));
    for c in cells {
        let _ = write!(s, "<td>{}</td>", esc(c));
    }
    s.push_str("</tr>\n");
}

fn tile(s: &mut String, value: &str, label: &str) {
    let _ = writeln!(
        s,
        "<div class=\"tile\"><div class=\"v\">{}</div><div class=\"l\">{}</div></div>",
        esc(value),
        esc(label)
    );
}

fn kpi_tiles(_: &Section, o: &Outputs, s: &mut String) -> Result<(), ReportError> {
    let k = Kpis::compute(o);
    s.push_str("<div class=\"tiles\">\n");
    tile(s, &k.claims.to_string(), "claims");
    tile(s, &pct(k.initial_denial_rate), "initial denial rate");
    tile(s, &pct(k.final_denial_rate), "final denial rate");
    tile(s, &pct(k.first_pass_yield), "first-pass yield");
    tile(
        s,
        &pct(k.front_door_rejection_rate),
        "front-door rejection rate",
    );
    tile(
        s,
        &dollars(k.denied_cents),
        "denied dollars, every adjudication incl. later overturned (payer KPI daily windows)",
    );
    tile(s, &dollars(k.paid_cents), "paid to date");
    match (k.readmission_rate, k.index_stays) {
        (Some(r), Some(n)) => tile(
            s,
            &pct(r),
            &format!("30-day unplanned readmission rate ({n} index stays)"),
        ),
        _ => tile(s, "-", "readmission rate (needs replay-summary.json)"),
    }
    tile(
        s,
        &k.unplanned_readmissions.to_string(),
        "unplanned readmissions",
    );
    tile(
        s,
        &k.high_risk_discharges.to_string(),
        "high-risk discharges (readmission risk HIGH)",
    );
    tile(
        s,
        &k.high_risk_alerts.to_string(),
        "high-risk discharge alerts",
    );
    tile(s, &k.payer_alerts.to_string(), "payer monitor alerts");
    s.push_str("</div>\n");
    let _ = writeln!(
        s,
        "<p class=\"note\">Rates over the {} adjudicated claims (initial: the first 835's outcome; final: the latest state). \
         Readmission rate: unplanned readmissions / index stays from the replay summary. {} dead-lettered input records.</p>",
        k.adjudicated, o.dead_letters
    );
    Ok(())
}

/// One payer's figures over its daily KPI windows.
#[derive(Default)]
struct PayerRow {
    category: String,
    adjudicated: i64,
    denied: i64,
    first_adjudicated: i64,
    first_pass_paid: i64,
    denied_cents: i64,
    paid_cents: i64,
    /// (window median days to payment, paid adjudications in the window).
    medians: Vec<(f64, i64)>,
}

/// The paid-weighted median of the windows' medians.
fn weighted_median(v: &mut [(f64, i64)]) -> Option<f64> {
    let total: i64 = v.iter().map(|(_, w)| *w).sum();
    if total <= 0 {
        return None;
    }
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut acc = 0;
    for (m, w) in v.iter() {
        acc += w;
        if acc * 2 >= total {
            return Some(*m);
        }
    }
    v.last().map(|(m, _)| *m)
}

fn payer_benchmarks(_: &Section, o: &Outputs, s: &mut String) -> Result<(), ReportError> {
    let mut rows: BTreeMap<&str, PayerRow> = BTreeMap::new();
    for w in o
        .payer_kpis
        .iter()
        .filter(|w| w.granularity == Granularity::Daily)
    {
        let r = rows.entry(&w.payer_id).or_default();
        r.category = w.payer_category.as_str().to_owned();
        r.adjudicated += w.adjudicated;
        r.denied += w.denied;
        r.first_adjudicated += w.first_adjudicated;
        r.first_pass_paid += w.first_pass_paid;
        r.denied_cents += w.denied_cents;
        r.paid_cents += w.paid_cents;
        if let Some(m) = w.median_days_to_payment {
            r.medians.push((m, w.paid));
        }
    }
    if rows.is_empty() {
        s.push_str("<p class=\"na\">No daily payer KPI window has closed yet.</p>\n");
        return Ok(());
    }
    s.push_str("<table>\n");
    head(
        s,
        &[
            "payer",
            "category",
            "adjudicated",
            "denial rate",
            "first-pass yield",
            "denied dollars",
            "paid dollars",
            "median days to payment",
        ],
    );
    let (mut labels, mut rates, mut fpys) = (Vec::new(), Vec::new(), Vec::new());
    for (payer, r) in rows.iter_mut() {
        let dr = ratio(r.denied as u64, r.adjudicated.max(0) as u64);
        let fpy = ratio(r.first_pass_paid as u64, r.first_adjudicated.max(0) as u64);
        let med = weighted_median(&mut r.medians);
        row(
            s,
            payer,
            &[
                r.category.clone(),
                r.adjudicated.to_string(),
                pct(dr),
                pct(fpy),
                dollars(r.denied_cents),
                dollars(r.paid_cents),
                med.map_or("-".into(), |m| format!("{m:.0}")),
            ],
        );
        labels.push((*payer).to_owned());
        rates.push(dr * 100.0);
        fpys.push(fpy * 100.0);
    }
    s.push_str("</table>\n");
    s.push_str(
        "<p class=\"note\">Sums over the latest version of every daily window. Median days to payment: \
         the median of the daily windows' medians, weighted by their paid adjudications.</p>\n",
    );
    s.push_str("<div class=\"charts\">\n");
    s.push_str(&bar_svg(
        "Denial rate by payer (%)",
        &labels,
        &rates,
        "denied / adjudicated, %",
        &[RED],
        (560, 360),
    )?);
    s.push_str(&bar_svg(
        "First-pass yield by payer (%)",
        &labels,
        &fpys,
        "paid on first pass, %",
        &[GREEN],
        (560, 360),
    )?);
    s.push_str("\n</div>\n");
    if !o.payer_alerts.is_empty() {
        let mut by_rule: BTreeMap<&str, u64> = BTreeMap::new();
        for a in &o.payer_alerts {
            *by_rule.entry(a.rule.as_str()).or_default() += 1;
        }
        s.push_str("<table>\n");
        head(s, &["payer monitor alert rule", "alerts"]);
        for (rule, n) in by_rule {
            row(s, rule, &[n.to_string()]);
        }
        s.push_str("</table>\n");
    }
    Ok(())
}

fn tier_counts(tiers: impl Iterator<Item = (RiskTier, f64)>) -> [(u64, f64); 3] {
    let mut out = [(0u64, 0f64); 3];
    for (t, p) in tiers {
        let i = match t {
            RiskTier::Low => 0,
            RiskTier::Medium => 1,
            RiskTier::High => 2,
        };
        out[i].0 += 1;
        out[i].1 += p;
    }
    out
}

fn risk_tiers(_: &Section, o: &Outputs, s: &mut String) -> Result<(), ReportError> {
    let denial = tier_counts(o.denial_risk.iter().map(|r| (r.tier, r.probability)));
    let readm = tier_counts(o.readmission_risk.iter().map(|r| (r.tier, r.probability)));
    let names = ["LOW", "MEDIUM", "HIGH"];
    let labels: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    s.push_str("<table>\n");
    head(
        s,
        &[
            "tier",
            "claims (denial risk)",
            "mean denial probability",
            "stays (readmission risk)",
            "mean readmission probability",
        ],
    );
    let mean = |(n, sum): (u64, f64)| {
        if n == 0 {
            "-".to_owned()
        } else {
            format!("{:.3}", sum / n as f64)
        }
    };
    for i in 0..3 {
        row(
            s,
            names[i],
            &[
                denial[i].0.to_string(),
                mean(denial[i]),
                readm[i].0.to_string(),
                mean(readm[i]),
            ],
        );
    }
    s.push_str("</table>\n<div class=\"charts\">\n");
    let colors = [GREEN, ORANGE, RED];
    if o.present.contains(topics::DENIAL_RISK) {
        s.push_str(&bar_svg(
            "Denial-risk tiers (claims, latest score)",
            &labels,
            &denial.map(|d| d.0 as f64),
            "claims",
            &colors,
            (420, 320),
        )?);
    }
    if o.present.contains(topics::READMISSION_RISK) {
        s.push_str(&bar_svg(
            "Readmission-risk tiers (discharges)",
            &labels,
            &readm.map(|d| d.0 as f64),
            "discharges",
            &colors,
            (420, 320),
        )?);
    }
    s.push_str("\n</div>\n");
    Ok(())
}

fn readmissions(_: &Section, o: &Outputs, s: &mut String) -> Result<(), ReportError> {
    // Cohorts: detections on the topic, plus matured index stays from the replay summary.
    #[derive(Default)]
    struct Agg {
        unplanned: u64,
        planned: u64,
        paid_cents: i64,
        days: Vec<i32>,
    }
    let mut cohorts: BTreeMap<String, Agg> = BTreeMap::new();
    let mut groups: BTreeMap<String, Agg> = BTreeMap::new();
    for r in &o.readmissions {
        for (map, key) in [
            (
                &mut cohorts,
                r.hrrp_cohort.clone().unwrap_or_else(|| "(none)".into()),
            ),
            (&mut groups, r.index_dx_group.clone()),
        ] {
            let a = map.entry(key).or_default();
            if r.planned {
                a.planned += 1;
            } else {
                a.unplanned += 1;
                a.paid_cents += r.readmission_paid_cents.unwrap_or(0);
                a.days.push(r.days_between);
            }
        }
    }
    let empty = BTreeMap::new();
    let summary = o
        .summary
        .as_ref()
        .map_or(&empty, |s| &s.readmissions.by_hrrp_cohort);
    s.push_str("<h3>HRRP cohorts</h3>\n<table>\n");
    head(
        s,
        &[
            "cohort",
            "matured index stays",
            "readmitted (matured)",
            "rate",
            "unplanned readmissions",
            "planned",
            "paid on unplanned readmissions",
        ],
    );
    let mut keys: Vec<&String> = cohorts.keys().chain(summary.keys()).collect();
    keys.sort();
    keys.dedup();
    let (mut labels, mut rates) = (Vec::new(), Vec::new());
    for k in keys {
        let a = cohorts.get(k);
        let m = summary.get(k);
        row(
            s,
            k,
            &[
                m.map_or("-".into(), |m| m.0.to_string()),
                m.map_or("-".into(), |m| m.1.to_string()),
                m.map_or("-".into(), |m| pct(ratio(m.1, m.0))),
                a.map_or(0, |a| a.unplanned).to_string(),
                a.map_or(0, |a| a.planned).to_string(),
                dollars(a.map_or(0, |a| a.paid_cents)),
            ],
        );
        if let Some(m) = m {
            labels.push(k.clone());
            rates.push(ratio(m.1, m.0) * 100.0);
        }
    }
    s.push_str("</table>\n<p class=\"note\">Matured index stays and their rate come from the replay summary (30-day window closed); \
                the counts and paid amounts from the current (not retracted) readmissions.</p>\n");
    let mut by_count: Vec<(&String, &Agg)> = groups.iter().collect();
    by_count.sort_by(|a, b| b.1.unplanned.cmp(&a.1.unplanned).then(a.0.cmp(b.0)));
    s.push_str("<h3>By index-stay diagnosis group (CCSR body system)</h3>\n<table>\n");
    head(
        s,
        &[
            "diagnosis group",
            "unplanned readmissions",
            "planned",
            "paid on unplanned readmissions",
            "median days to readmission",
        ],
    );
    for (k, a) in &by_count {
        let mut d = a.days.clone();
        d.sort_unstable();
        row(
            s,
            k,
            &[
                a.unplanned.to_string(),
                a.planned.to_string(),
                dollars(a.paid_cents),
                d.get(d.len() / 2).map_or("-".into(), |m| m.to_string()),
            ],
        );
    }
    s.push_str("</table>\n<div class=\"charts\">\n");
    if !labels.is_empty() {
        s.push_str(&bar_svg(
            "Readmission rate by HRRP cohort (%)",
            &labels,
            &rates,
            "readmitted / matured index stays, %",
            &[BLUE],
            (520, 340),
        )?);
    }
    let top: Vec<&(&String, &Agg)> = by_count.iter().take(10).collect();
    if !top.is_empty() {
        s.push_str(&bar_svg(
            "Unplanned readmissions by diagnosis group (top 10)",
            &top.iter().map(|(k, _)| (*k).clone()).collect::<Vec<_>>(),
            &top.iter()
                .map(|(_, a)| a.unplanned as f64)
                .collect::<Vec<_>>(),
            "readmissions",
            &[ORANGE],
            (620, 400),
        )?);
    }
    s.push_str("\n</div>\n");
    Ok(())
}

fn lifecycle(_: &Section, o: &Outputs, s: &mut String) -> Result<(), ReportError> {
    let mut by_status: BTreeMap<ClaimStatus, (u64, i64)> = BTreeMap::new();
    for c in &o.claims {
        let e = by_status.entry(c.status).or_default();
        e.0 += 1;
        e.1 += c.billed_cents;
    }
    let total = o.claims.len() as u64;
    s.push_str("<table>\n");
    head(s, &["status", "claims", "share", "billed"]);
    for (st, (n, billed)) in &by_status {
        row(
            s,
            st.as_str(),
            &[n.to_string(), pct(ratio(*n, total)), dollars(*billed)],
        );
    }
    s.push_str("</table>\n");
    // A/R aging: open claims by days since submission as of the latest event time, in the
    // buckets of the `claimwatch_revenue_ar_open_claims` gauge.
    let buckets = crate::metrics::labels::AR_BUCKETS;
    let mut aging = [(0u64, 0i64); 5];
    let mut aged = false;
    if let Some(as_of) = o.as_of {
        for c in o.claims.iter().filter(|c| !c.status.is_closed()) {
            if let Some(d) = c.submitted_date {
                let age = super::load::age_days(as_of, d).max(0);
                let i = crate::metrics::labels::ar_bucket_index(age);
                aging[i].0 += 1;
                aging[i].1 += c.expected_cents.unwrap_or(c.billed_cents) - c.paid_cents;
                aged = true;
            }
        }
    }
    let labels: Vec<String> = by_status.keys().map(|k| k.as_str().to_owned()).collect();
    let values: Vec<f64> = by_status.values().map(|v| v.0 as f64).collect();
    s.push_str("<div class=\"charts\">\n");
    s.push_str(&bar_svg(
        "Claims by lifecycle status",
        &labels,
        &values,
        "claims",
        &[BLUE],
        (560, 380),
    )?);
    if aged {
        s.push_str(&bar_svg(
            "A/R aging: open claims by days since submission",
            &buckets.iter().map(|b| (*b).to_owned()).collect::<Vec<_>>(),
            &aging.map(|a| a.0 as f64),
            "open claims",
            &[ORANGE],
            (520, 380),
        )?);
    }
    s.push_str("\n</div>\n");
    if aged {
        s.push_str("<table>\n");
        head(
            s,
            &[
                "days since submission",
                "open claims",
                "outstanding (expected - paid)",
            ],
        );
        for (b, (n, amt)) in buckets.iter().zip(aging) {
            row(s, b, &[n.to_string(), dollars(amt)]);
        }
        s.push_str("</table>\n<p class=\"note\">Open: not paid, denied, rejected, forwarded or voided; aged as of the latest lifecycle event time.</p>\n");
    } else {
        s.push_str(
            "<p class=\"na\">A/R aging not derivable: no open claim with a submission date.</p>\n",
        );
    }
    Ok(())
}

/// Field names never shown by the generic sections (identifiers of members, claims, stays).
fn is_identifier(field: &str) -> bool {
    let f = field.to_ascii_lowercase();
    f == "output_id"
        || [
            "member",
            "claim_id",
            "encounter",
            "patient",
            "pseudonym",
            "name",
        ]
        .iter()
        .any(|w| f.contains(w))
}

fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => format!("{f:.4}"),
            _ => n.to_string(),
        }),
        serde_json::Value::Null => Some("-".into()),
        _ => None,
    }
}

const GENERIC_ROWS: usize = 40;

/// An analytics topic of an aggregate kind, shown field by field until it has its own layout.
fn generic_aggregate(sec: &Section, o: &Outputs, s: &mut String) -> Result<(), ReportError> {
    let topic = sec.topics[0];
    let Some(f) = o.analytics.get(topic) else {
        return Ok(());
    };
    let _ = writeln!(
        s,
        "<p class=\"note\">{} records on <code>{}</code>, {} current keys. This version of the report has no dedicated layout for this topic: \
         its latest record per key is shown field by field (identifier fields left out).</p>",
        f.lines,
        esc(topic),
        f.records.len()
    );
    let mut cols: Vec<String> = Vec::new();
    for r in f.records.values().take(20) {
        if let Some(obj) = r.as_object() {
            for (k, v) in obj {
                if !is_identifier(k) && scalar(v).is_some() && !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
    }
    if cols.is_empty() {
        return Ok(());
    }
    s.push_str("<table>\n<tr>");
    for c in &cols {
        let _ = write!(s, "<th>{}</th>", esc(c));
    }
    s.push_str("</tr>\n");
    for r in f.records.values().take(GENERIC_ROWS) {
        s.push_str("<tr>");
        for c in &cols {
            let v = r.get(c).and_then(scalar).unwrap_or_else(|| "-".into());
            let _ = write!(s, "<td class=\"l\">{}</td>", esc(&v));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
    if f.records.len() > GENERIC_ROWS {
        let _ = writeln!(
            s,
            "<p class=\"note\">First {GENERIC_ROWS} of {} keys shown.</p>",
            f.records.len()
        );
    }
    Ok(())
}

/// High-cost members from `claimwatch.member-risk` (latest record per member): how many are
/// flagged now, what they cost and are predicted to cost, and what drives their predictions.
/// No member is listed (the page is for an executive audience).
fn high_cost_members(sec: &Section, o: &Outputs, s: &mut String) -> Result<(), ReportError> {
    let Some(f) = o.analytics.get(sec.topics[0]) else {
        return Ok(());
    };
    let num = |r: &serde_json::Value, k: &str| r.get(k).and_then(serde_json::Value::as_f64);
    let flagged: Vec<&serde_json::Value> = f
        .records
        .values()
        .filter(|r| r.get("action").and_then(|a| a.as_str()) == Some("ENTERED"))
        .collect();
    let latest = f
        .records
        .values()
        .max_by_key(|r| r.get("event_time").and_then(serde_json::Value::as_i64));
    let top = latest.and_then(|r| num(r, "top_percent")).unwrap_or(0.0);
    let horizon = latest.and_then(|r| num(r, "horizon_days")).unwrap_or(0.0);
    let predicted: f64 = flagged
        .iter()
        .filter_map(|r| num(r, "predicted_cents"))
        .sum();
    let paid: f64 = flagged
        .iter()
        .filter_map(|r| num(r, "paid_12m_cents"))
        .sum();
    s.push_str("<div class=\"tiles\">\n");
    tile(
        s,
        &flagged.len().to_string(),
        &format!("members in the top {top} % of predicted cost now"),
    );
    tile(
        s,
        &f.records.len().to_string(),
        "members flagged at some point",
    );
    tile(
        s,
        &dollars(paid as i64),
        "paid in the 12 months before their flag (flagged members)",
    );
    tile(
        s,
        &dollars(predicted as i64),
        &format!("predicted paid, next {horizon:.0} days (flagged members)"),
    );
    if let Some(t) = latest.and_then(|r| num(r, "threshold_cents")) {
        tile(
            s,
            &dollars(t as i64),
            "latest top-N % threshold (predicted cost)",
        );
    }
    s.push_str("</div>\n");
    // What drives the flagged members' predictions: each member's largest driver.
    let mut drivers: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for r in &flagged {
        if let Some(d) = r
            .get("drivers")
            .and_then(|d| d.as_array())
            .and_then(|d| d.first())
        {
            let name = d.get("feature").and_then(scalar).unwrap_or_default();
            let e = drivers.entry(name).or_default();
            e.0 += 1;
            e.1 += num(d, "contribution_dollars").unwrap_or(0.0);
        }
    }
    if !drivers.is_empty() {
        let mut v: Vec<(String, (u64, f64))> = drivers.into_iter().collect();
        v.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
        v.truncate(8);
        let labels: Vec<String> = v.iter().map(|(n, _)| n.replace('_', " ")).collect();
        let counts: Vec<f64> = v.iter().map(|(_, (n, _))| *n as f64).collect();
        s.push_str(&bar_svg(
            "Largest driver of the flagged members' predictions",
            &labels,
            &counts,
            "flagged members",
            &[ORANGE],
            (760, 300),
        )?);
        s.push_str("<table>\n");
        head(
            s,
            &["largest driver", "flagged members", "mean contribution"],
        );
        for (name, (n, sum)) in &v {
            row(
                s,
                &name.replace('_', " "),
                &[n.to_string(), dollars((sum / *n as f64 * 100.0) as i64)],
            );
        }
        s.push_str("</table>\n");
    }
    let _ = writeln!(
        s,
        "<p class=\"note\">From {} records on <code>{}</code>: a member is flagged when the predicted paid amount of \
         the next {horizon:.0} days (ridge regression on 12-month utilisation and chronic conditions) enters the top {top} % \
         of the members with a stay in the last 12 months (threshold per partition, see README <em>High-cost members</em>).</p>",
        f.lines,
        esc(sec.topics[0])
    );
    Ok(())
}

/// One ISO week of the cash forecast, summed over payers.
#[derive(Default)]
struct CashWeek {
    label: String,
    /// Payers with a frozen forecast for the week.
    payers: u32,
    forecast: i64,
    /// Actual receipts of those payers.
    actual_forecast_payers: i64,
    /// Actual receipts of every payer.
    actual: i64,
    /// Sum over payers of |actual - forecast|.
    abs_err: i64,
    /// Some payer's record of the week is of the week in progress.
    in_progress: bool,
}

/// Cash forecast vs actual: per ISO week, the payers' frozen forecasts against their receipts
/// (table and line chart), the error, and the current forward forecast.
fn cash_forecast(_: &Section, o: &Outputs, s: &mut String) -> Result<(), ReportError> {
    let Some(f) = o.analytics.get(topics::CASH_FORECAST) else {
        return Ok(());
    };
    let recs: Vec<crate::model::CashForecast> = f
        .records
        .values()
        .filter_map(|v| serde_json::from_value(v.clone()).ok())
        .collect();
    if recs.is_empty() {
        s.push_str("<p class=\"na\">No payer week has been emitted yet.</p>\n");
        return Ok(());
    }
    let mut weeks: BTreeMap<i32, CashWeek> = BTreeMap::new();
    for r in &recs {
        let w = weeks.entry(r.week_start).or_default();
        w.label.clone_from(&r.iso_week);
        w.actual += r.actual_cents;
        w.in_progress |= !r.complete;
        if let Some(fc) = r.forecast_cents {
            w.payers += 1;
            w.forecast += fc;
            w.actual_forecast_payers += r.actual_cents;
            w.abs_err += (r.actual_cents - fc).abs();
        }
    }
    let measured: Vec<&CashWeek> = weeks
        .values()
        .filter(|w| !w.in_progress && w.payers > 0)
        .collect();
    let (abs_err, actual, forecast) = measured.iter().fold((0i64, 0i64, 0i64), |a, w| {
        (
            a.0 + w.abs_err,
            a.1 + w.actual_forecast_payers,
            a.2 + w.forecast,
        )
    });
    s.push_str("<div class=\"tiles\">\n");
    tile(s, &measured.len().to_string(), "weeks with a forecast");
    tile(
        s,
        &if actual != 0 {
            pct(abs_err as f64 / actual as f64)
        } else {
            "-".into()
        },
        "payer-week error (WAPE)",
    );
    tile(
        s,
        &if actual != 0 {
            format!("{:.2}", forecast as f64 / actual as f64)
        } else {
            "-".into()
        },
        "forecast / actual",
    );
    s.push_str("</div>\n");
    s.push_str("<table>\n");
    head(
        s,
        &[
            "ISO week",
            "payers forecast",
            "forecast",
            "actual (those payers)",
            "error",
            "abs % error",
            "actual (all payers)",
        ],
    );
    let shown: Vec<&CashWeek> = weeks.values().rev().take(16).collect();
    for w in shown.iter().rev() {
        let err = w.actual_forecast_payers - w.forecast;
        let has = w.payers > 0;
        row(
            s,
            &format!(
                "{}{}",
                w.label,
                if w.in_progress { " (in progress)" } else { "" }
            ),
            &[
                w.payers.to_string(),
                if has { dollars(w.forecast) } else { "-".into() },
                if has {
                    dollars(w.actual_forecast_payers)
                } else {
                    "-".into()
                },
                if has { dollars(err) } else { "-".into() },
                if has && w.actual_forecast_payers != 0 {
                    pct(err.unsigned_abs() as f64 / w.actual_forecast_payers.unsigned_abs() as f64)
                } else {
                    "-".into()
                },
                dollars(w.actual),
            ],
        );
    }
    s.push_str("</table>\n");
    s.push_str(
        "<p class=\"note\">The latest version of every payer week (the last 16 weeks shown). \
         Forecast: each payer's expected cash from its open claims (expected amount x probability \
         of payment from the denial model), placed by its observed days-to-payment distribution, \
         frozen at the start of the week. Actual: 835 payments dated in the week (reversals \
         negative). WAPE: the sum of the payers' absolute errors over their actual receipts, \
         completed weeks.</p>\n",
    );
    // The current forward forecast: the latest record of each payer carries it; payers whose
    // latest record is more than a week older than the newest are left out (their forecast is
    // as of another week).
    let mut latest: BTreeMap<&str, &crate::model::CashForecast> = BTreeMap::new();
    for r in &recs {
        let e = latest.entry(r.payer_id.as_str()).or_insert(r);
        if (r.event_time, r.week_start) > (e.event_time, e.week_start) {
            *e = r;
        }
    }
    let newest = latest.values().map(|r| r.event_time).max().unwrap_or(0);
    let mut forward: BTreeMap<i32, (String, i64)> = BTreeMap::new();
    for r in latest
        .values()
        .filter(|r| r.event_time > newest - 7 * crate::model::DAY_MS)
    {
        for w in &r.forward {
            let e = forward.entry(w.week_start).or_default();
            e.0.clone_from(&w.iso_week);
            e.1 += w.expected_cents;
        }
    }
    s.push_str("<div class=\"charts\">\n");
    let series: Vec<(&str, i64, i64)> = weeks
        .values()
        .filter(|w| w.payers > 0)
        .map(|w| (w.label.as_str(), w.forecast, w.actual_forecast_payers))
        .collect();
    s.push_str(&cash_line_svg(&series)?);
    let labels: Vec<String> = forward.values().map(|(l, _)| l.clone()).collect();
    let values: Vec<f64> = forward.values().map(|(_, c)| *c as f64 / 100.0).collect();
    s.push_str(&bar_svg(
        "Forward forecast as of the latest week ($)",
        &labels,
        &values,
        "expected cash, $",
        &[BLUE],
        (560, 360),
    )?);
    s.push_str("</div>\n");
    Ok(())
}

/// Forecast and actual per week (dollars) as two lines.
fn cash_line_svg(series: &[(&str, i64, i64)]) -> Result<String, ReportError> {
    let caption = "Forecast vs actual per ISO week ($)";
    let err = chart_err(caption);
    let n = series.len().max(2);
    let top = series
        .iter()
        .map(|(_, f, a)| (*f).max(*a) as f64 / 100.0)
        .fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (760, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(80)
            .build_cartesian_2d(0..n - 1, 0f64..top)
            .map_err(|e| err(e.to_string()))?;
        let label = |i: &usize| series.get(*i).map(|s| s.0.to_owned()).unwrap_or_default();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(8)
            .x_label_style(("sans-serif", 12))
            .x_label_formatter(&label)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .y_desc("$")
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for (color, name, pick) in [
            (BLUE, "forecast (frozen at week start)", 0usize),
            (ORANGE, "actual", 1usize),
        ] {
            chart
                .draw_series(LineSeries::new(
                    series.iter().enumerate().map(|(i, s)| {
                        let v = if pick == 0 { s.1 } else { s.2 };
                        (i, v as f64 / 100.0)
                    }),
                    color.stroke_width(2),
                ))
                .map_err(|e| err(e.to_string()))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(buf)
}

fn oe_cell(w: &crate::model::ProviderWindow) -> String {
    match (w.observed_to_expected, w.oe_ci_low, w.oe_ci_high) {
        (Some(r), Some(lo), Some(hi)) => format!("{r:.2} [{lo:.2}, {hi:.2}]"),
        _ => "-".into(),
    }
}

/// `claimwatch.provider-kpis`: the departments over the longest window, and the providers whose
/// risk-adjusted readmission ratio is flagged in any window.
fn providers(sec: &Section, o: &Outputs, s: &mut String) -> Result<(), ReportError> {
    let Some(f) = o.analytics.get(sec.topics[0]) else {
        return Ok(());
    };
    let records: Vec<crate::model::ProviderKpi> = f
        .records
        .values()
        .filter_map(|v| serde_json::from_value(v.clone()).ok())
        .collect();
    let longest = |k: &crate::model::ProviderKpi| k.windows.iter().max_by_key(|w| w.days).cloned();
    let depts: Vec<_> = records
        .iter()
        .filter(|k| k.level == "DEPARTMENT")
        .filter_map(|k| longest(k).map(|w| (k, w)))
        .collect();
    let Some(days) = depts.first().map(|(_, w)| w.days) else {
        s.push_str("<p class=\"na\">No department record on the topic.</p>\n");
        return Ok(());
    };
    let _ = writeln!(
        s,
        "<p class=\"note\">Latest record per department, {days}-day window ending on the day \
         shown (the provider flow's day of the partition that owns the key). O/E: observed / \
         expected readmissions (expected = sum of the calibrated probabilities of the index stays \
         matured in the window), with its 95 % exact Poisson interval; flagged only when the \
         interval excludes 1 and enough readmissions are expected.</p>"
    );
    s.push_str("<table>\n");
    head(
        s,
        &[
            "department",
            "window ends",
            "encounters",
            "per week",
            "avg LOS",
            "paid / encounter",
            "high-risk share",
            "index stays",
            "readmissions",
            "expected",
            "O/E [95 % CI]",
            "flag",
            "denial rate",
            "first-pass yield",
        ],
    );
    for (k, w) in &depts {
        row(
            s,
            &k.name,
            &[
                crate::model::format_day(w.last_day),
                w.encounters.to_string(),
                format!("{:.1}", w.encounters_per_week),
                format!("{:.1}", w.average_los_days),
                w.cost_per_encounter_cents
                    .map_or_else(|| "-".into(), dollars),
                pct(w.high_risk_share),
                w.index_stays.to_string(),
                w.readmissions.to_string(),
                format!("{:.1}", w.expected_readmissions),
                oe_cell(w),
                w.flag.clone().unwrap_or_else(|| "-".into()),
                pct(w.denial_rate),
                w.first_pass_yield.map_or_else(|| "-".into(), pct),
            ],
        );
    }
    s.push_str("</table>\n");
    let flagged: Vec<_> = records
        .iter()
        .filter(|k| k.level == "PROVIDER")
        .flat_map(|k| {
            k.windows
                .iter()
                .filter(|w| w.flag.is_some())
                .map(move |w| (k, w))
        })
        .collect();
    let providers = records.iter().filter(|k| k.level == "PROVIDER").count();
    if flagged.is_empty() {
        let _ = writeln!(
            s,
            "<p class=\"note\">No provider flagged: none of the {providers} providers has a window \
             whose O/E interval excludes 1 with enough expected readmissions.</p>"
        );
        return Ok(());
    }
    let _ = writeln!(
        s,
        "<p class=\"note\">Providers flagged ({} of {providers}).</p>",
        flagged.len()
    );
    s.push_str("<table>\n");
    head(
        s,
        &[
            "provider",
            "window (days)",
            "index stays",
            "readmissions",
            "expected",
            "O/E [95 % CI]",
            "flag",
        ],
    );
    for (k, w) in flagged {
        row(
            s,
            &k.name,
            &[
                w.days.to_string(),
                w.index_stays.to_string(),
                w.readmissions.to_string(),
                format!("{:.1}", w.expected_readmissions),
                oe_cell(w),
                w.flag.clone().unwrap_or_default(),
            ],
        );
    }
    s.push_str("</table>\n");
    Ok(())
}
