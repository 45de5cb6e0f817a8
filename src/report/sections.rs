//! The report's sections: one row of [`SECTIONS`] each, and the bar charts they draw.

use std::collections::BTreeMap;
use std::fmt::Write;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::model::{ClaimStatus, Granularity, RiskTier};

use super::{esc, exact, topics, Kpis, Outputs, ReportError};

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

/// A share as a percent with one decimal, rounded once from `x` (pass the exact ratio, not one
/// already rounded).
fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

/// The day of an event time, `YYYY-MM-DD`.
fn day(t: crate::model::EpochMillis) -> String {
    crate::model::format_day(crate::model::day_of(t))
}

/// The span a section's figures cover, under its heading.
fn period_line(s: &mut String, text: &str) {
    let _ = writeln!(s, "<p class=\"period\">{}</p>", esc(text));
}

fn dollars(cents: i64) -> String {
    let whole = (cents.unsigned_abs() + 50) / 100;
    format!(
        "{}${}",
        if cents < 0 { "-" } else { "" },
        thousands(whole as i64)
    )
}

fn chart_err(chart: &str) -> impl Fn(String) -> ReportError + '_ {
    move |message| ReportError::Chart {
        chart: chart.to_owned(),
        message,
    }
}

/// What a bar chart's values are, read from its axis description: a percent when it has `%`,
/// dollars when it has `$` or `dollars`, else a count (integer ticks, no decimals).
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Count,
    Percent,
    Dollars,
}

impl Kind {
    fn of(axis: &str) -> Self {
        if axis.contains('%') {
            Kind::Percent
        } else if axis.contains('$') || axis.contains("dollars") {
            Kind::Dollars
        } else {
            Kind::Count
        }
    }

    /// The value printed at the end of a bar.
    fn value(self, v: f64) -> String {
        match self {
            Kind::Count => thousands(v.round() as i64),
            Kind::Percent => format!("{v:.1} %"),
            Kind::Dollars => dollars((v * 100.0).round() as i64),
        }
    }

    /// An axis tick.
    fn tick(self, v: f64) -> String {
        match self {
            Kind::Percent if v.fract().abs() > 1e-9 => format!("{v:.1}"),
            Kind::Dollars | Kind::Percent => thousands(v.round() as i64),
            Kind::Count => thousands(v.round() as i64),
        }
    }
}

/// An integer with thousands separators.
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    format!("{}{out}", if n < 0 { "-" } else { "" })
}

/// A bar chart: one bar per label, `axis` on the value axis, each bar coloured by
/// `colors[i % len]`, its value printed at its end (so that a bar too small to see, 40 against
/// 12,995, still reads). Vertical bars when the labels fit under them, else horizontal bars with
/// the labels on the left (rotated labels do not place well in plotters' SVG output).
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
    let kind = Kind::of(axis);
    let max = values.iter().copied().fold(0.0f64, f64::max);
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u32;
    // About 7 pixels per character at 12 px; a vertical bar's slot must hold its label.
    let slot = size.0.saturating_sub(90) / n as u32;
    let horizontal = longest * 7 + 8 > slot;
    // Room past the longest bar for its value.
    let top = if max > 0.0 {
        max * if horizontal { 1.3 } else { 1.15 }
    } else {
        1.0
    };
    // Counts get integer ticks: no more ticks than whole units.
    let ticks = match kind {
        Kind::Count => (top.floor() as usize).clamp(1, 10),
        _ => 10,
    };
    // A bar with a value is at least this long, so that it shows (its printed value is exact).
    let visible = |v: f64| if v > 0.0 { v.max(top * 0.006) } else { v };
    let value_style = TextStyle::from(("sans-serif", 11).into_font()).color(&BLACK);
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
                .x_labels(ticks)
                .x_label_formatter(&|v| kind.tick(*v))
                .x_desc(axis)
                .draw()
                .map_err(|e| err(e.to_string()))?;
            chart
                .draw_series(values.iter().enumerate().map(|(i, v)| {
                    let mut r = Rectangle::new(
                        [
                            (0.0, SegmentValue::Exact(n - 1 - i)),
                            (visible(*v), SegmentValue::Exact(n - i)),
                        ],
                        bar(i),
                    );
                    r.set_margin(3, 3, 0, 0);
                    r
                }))
                .map_err(|e| err(e.to_string()))?;
            let style = value_style.pos(Pos::new(HPos::Left, VPos::Center));
            chart
                .draw_series(values.iter().enumerate().map(|(i, v)| {
                    Text::new(
                        format!(" {}", kind.value(*v)),
                        (visible(*v), SegmentValue::CenterOf(n - 1 - i)),
                        style.clone(),
                    )
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
                .y_labels(ticks)
                .y_label_formatter(&|v| kind.tick(*v))
                .y_desc(axis)
                .draw()
                .map_err(|e| err(e.to_string()))?;
            chart
                .draw_series(values.iter().enumerate().map(|(i, v)| {
                    let mut r = Rectangle::new(
                        [
                            (SegmentValue::Exact(i), 0.0),
                            (SegmentValue::Exact(i + 1), visible(*v)),
                        ],
                        bar(i),
                    );
                    r.set_margin(0, 0, 6, 6);
                    r
                }))
                .map_err(|e| err(e.to_string()))?;
            let style = value_style.pos(Pos::new(HPos::Center, VPos::Bottom));
            chart
                .draw_series(values.iter().enumerate().map(|(i, v)| {
                    Text::new(
                        kind.value(*v),
                        (SegmentValue::CenterOf(i), visible(*v)),
                        style.clone(),
                    )
                }))
                .map_err(|e| err(e.to_string()))?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(buf)
}

/// A bar chart as the sections draw it, for the tests.
#[cfg(test)]
pub(super) fn bar_svg_for_test(labels: &[String], values: &[f64], axis: &str) -> String {
    bar_svg("test", labels, values, axis, &[BLUE], (420, 320)).unwrap()
}

/// The PMPM months kept and left out, for the tests.
#[cfg(test)]
pub(super) fn pmpm_months_for_test(
    months: &[crate::model::PmpmMonth],
) -> (
    Vec<&crate::model::PmpmMonth>,
    Vec<&crate::model::PmpmMonth>,
    f64,
) {
    analytics::pmpm_months(months)
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
    if let Some((a, b)) = o.period {
        period_line(
            s,
            &format!(
                "claims submitted or adjudicated {} to {}; each claim as of its latest update",
                day(a),
                day(b)
            ),
        );
    }
    s.push_str("<div class=\"tiles\">\n");
    tile(s, &k.claims.to_string(), "claims");
    tile(
        s,
        &pct(exact(k.initial_denied, k.adjudicated)),
        "initial denial rate",
    );
    tile(
        s,
        &pct(exact(k.final_denied, k.adjudicated)),
        "final denial rate",
    );
    tile(
        s,
        &pct(exact(k.first_pass_paid, k.first_pass_outcomes)),
        "first-pass yield (FPY)",
    );
    tile(
        s,
        &pct(exact(k.front_door_rejected, k.acknowledged)),
        "front-door rejection rate",
    );
    tile(s, &dollars(k.paid_cents), "paid to date");
    tile(
        s,
        &dollars(k.denied_expected_unpaid_cents),
        &format!(
            "denied now, at expected payment: expected - paid of the {} claims whose latest status is DENIED or PARTIALLY_PAID",
            k.denied_current_claims
        ),
    );
    tile(
        s,
        &dollars(k.denied_current_cents),
        "denied now, at billed charges: those claims' denial adjustments in their latest version",
    );
    match (&o.summary, k.index_stays) {
        (Some(sm), Some(n)) => tile(
            s,
            &pct(exact(sm.readmissions.unplanned_readmissions, n)),
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
         FPY (first-pass yield): claims paid on their first adjudication with no earlier rejection or denial, of the claims with a first outcome. \
         Front-door rejection: the payer's clearinghouse acknowledgement (277CA) refused the claim before adjudication, of the acknowledged claims. \
         Denied now: the denial-category adjustments (authorization, eligibility, medical necessity, ...; not contractual or patient share) \
         of each claim's latest adjudication, so a denial later overturned or paid on resubmission no longer counts; \
         adjustments are billed charges, so compare the expected-payment figure, not them, with paid to date \
         (a claim's denial is capped at its billed amount, which the adjudications in force of more than one payer can exceed: {} claims capped). \
         All denial adjustments, incl. overturned (every adjudication of every claim, from the payer KPI daily windows): {}. \
         Readmission rate: unplanned readmissions / index stays from the replay summary. {} dead-lettered input records.</p>",
        k.adjudicated,
        k.denied_capped_claims,
        dollars(k.denied_cents),
        o.dead_letters
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
    let (first, last) = o
        .payer_kpis
        .iter()
        .filter(|w| w.granularity == Granularity::Daily)
        .fold((i64::MAX, i64::MIN), |(a, b), w| {
            (a.min(w.window_start), b.max(w.window_end))
        });
    period_line(
        s,
        &format!(
            "daily windows {} to {} (window start to the last window's end)",
            day(first),
            day(last - 1)
        ),
    );
    s.push_str("<table>\n");
    head(
        s,
        &[
            "payer",
            "category",
            "adjudications",
            "denied per adjudication",
            "first-pass yield (first adjudications)",
            "denial adjustments",
            "paid dollars",
            "median days to payment",
        ],
    );
    let (mut labels, mut rates, mut fpys) = (Vec::new(), Vec::new(), Vec::new());
    let mut total = PayerRow::default();
    let n = |x: i64| x.max(0) as u64;
    for (payer, r) in rows.iter_mut() {
        let dr = exact(n(r.denied), n(r.adjudicated));
        let fpy = exact(n(r.first_pass_paid), n(r.first_adjudicated));
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
        total.adjudicated += r.adjudicated;
        total.denied += r.denied;
        total.first_adjudicated += r.first_adjudicated;
        total.first_pass_paid += r.first_pass_paid;
        total.denied_cents += r.denied_cents;
        total.paid_cents += r.paid_cents;
        total.medians.extend(r.medians.iter().copied());
    }
    let med = weighted_median(&mut total.medians);
    row(
        s,
        "all payers",
        &[
            String::new(),
            total.adjudicated.to_string(),
            pct(exact(n(total.denied), n(total.adjudicated))),
            pct(exact(n(total.first_pass_paid), n(total.first_adjudicated))),
            dollars(total.denied_cents),
            dollars(total.paid_cents),
            med.map_or("-".into(), |m| format!("{m:.0}")),
        ],
    );
    s.push_str("</table>\n");
    let k = Kpis::compute(o);
    let _ = writeln!(
        s,
        "<p class=\"note\">Per adjudication, not per claim: every 835 adjudication of a claim counts (a claim \
         denied, resubmitted and denied again is two denied adjudications), so the denial rate here and its \
         denial adjustments (billed charges, incl. denials later overturned) are not the claim-level figures of \
         Key figures ({} claims adjudicated, {} final denial rate, {} denied now at billed charges). Sums over the latest version of every daily window; paid dollars: the \
         claim's paid to date at each adjudication (near, not equal to, Key figures' paid to date). \
         First-pass yield: paid on the claim's first adjudication, of the first adjudications. Median days to \
         payment: the median of the daily windows' medians, weighted by their paid adjudications.</p>",
        k.adjudicated,
        pct(exact(k.final_denied, k.adjudicated)),
        dollars(k.denied_current_cents)
    );
    s.push_str("<div class=\"charts\">\n");
    s.push_str(&bar_svg(
        "Denied per adjudication by payer (%)",
        &labels,
        &rates,
        "denied / adjudications, %",
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
            pct(sum / n as f64)
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
    s.push_str("</table>\n");
    s.push_str(
        "<p class=\"note\">Tiers: the models' risk bands. LOW, MEDIUM and HIGH are cut-offs on the \
         calibrated probability (of a denial for a claim, at its latest submission; of an unplanned \
         30-day readmission for a stay, at discharge); the probabilities are shown as percents.</p>\n",
    );
    s.push_str("<div class=\"charts\">\n");
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
                m.map_or("-".into(), |m| pct(exact(m.1, m.0))),
                a.map_or(0, |a| a.unplanned).to_string(),
                a.map_or(0, |a| a.planned).to_string(),
                dollars(a.map_or(0, |a| a.paid_cents)),
            ],
        );
        if let Some(m) = m {
            labels.push(k.clone());
            rates.push(exact(m.1, m.0) * 100.0);
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
    if let Some(t) = o.as_of {
        period_line(
            s,
            &format!(
                "each claim's latest status; A/R aged as of {} (the latest lifecycle event)",
                day(t)
            ),
        );
    }
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
            &[n.to_string(), pct(exact(*n, total)), dollars(*billed)],
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
    if f.records.is_empty() {
        let _ = writeln!(
            s,
            "<p class=\"na\">Not available: <code>{}</code> has no record{}, so there is no top-N % list, horizon \
             or threshold to show. Members are flagged only once a partition's sketch holds \
             <code>member_risk.min_members</code> members with a stay in the last 12 months (200 by default); with \
             a small population (or more partitions) none reaches it, or the high-cost flow is turned off \
             (<code>member_risk.enabled</code>).</p>",
            esc(sec.topics[0]),
            if f.lines > 0 {
                " current (all retracted)"
            } else {
                ""
            }
        );
        return Ok(());
    }
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
        "paid on stays in the 12 months before their flag (flagged members)",
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
    /// The week holds the last event time of the data, or is later (by the calendar, not by the
    /// records' `complete` flag: a payer whose receipts stop never completes its last week).
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
    // The last day of the data: weeks up to the one holding it are complete by the calendar.
    let last_day = o
        .period
        .map(|(_, b)| crate::model::day_of(b))
        .or_else(|| f.event_range.map(|(_, b)| crate::model::day_of(b)));
    let mut weeks: BTreeMap<i32, CashWeek> = BTreeMap::new();
    for r in &recs {
        let w = weeks.entry(r.week_start).or_default();
        w.label.clone_from(&r.iso_week);
        w.actual += r.actual_cents;
        w.in_progress = match last_day {
            Some(d) => r.week_start + 7 > d,
            None => w.in_progress || !r.complete,
        };
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
    let (abs_err, actual, forecast, total_abs_err) =
        measured.iter().fold((0i64, 0i64, 0i64, 0i64), |a, w| {
            (
                a.0 + w.abs_err,
                a.1 + w.actual_forecast_payers,
                a.2 + w.forecast,
                a.3 + (w.actual_forecast_payers - w.forecast).abs(),
            )
        });
    if let (Some(a), Some(b)) = (measured.first(), measured.last()) {
        period_line(
            s,
            &format!(
                "completed ISO weeks {} to {}{}",
                a.label,
                b.label,
                last_day.map_or(String::new(), |d| format!(
                    "; weeks from the one holding {} on are in progress",
                    crate::model::format_day(d)
                ))
            ),
        );
    }
    s.push_str("<div class=\"tiles\">\n");
    tile(s, &measured.len().to_string(), "weeks with a forecast");
    let wape = |err: i64| {
        if actual != 0 {
            pct(err as f64 / actual as f64)
        } else {
            "-".into()
        }
    };
    tile(s, &wape(abs_err), "payer-week error (WAPE)");
    tile(
        s,
        &wape(total_abs_err),
        "total cash per week error (WAPE, payers summed)",
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
         negative). WAPE (weighted absolute percentage error): the sum of the payers' absolute errors \
         over their actual receipts, completed weeks; the total-cash WAPE sums the payers first, so \
         errors of opposite sign cancel as they do in the cash position. A week is in progress when \
         it holds the last event time of the data, or is later.</p>\n",
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
    // Headroom above the lines for the legend, so that it covers none of them.
    let top = if top > 0.0 { top * 1.35 } else { 1.0 };
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
            .y_label_formatter(&|v| thousands(v.round() as i64))
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
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(buf)
}

/// The last day on which some department gained encounters: a version whose shortest window
/// holds more encounters than the version before it had an encounter discharged since. The
/// provider flow goes on emitting after the encounter feed ends (claim adjudications), over
/// windows that empty of encounters; figures compared across departments are taken at this day.
fn encounter_data_end(
    hist: &BTreeMap<String, Vec<crate::model::ProviderKpi>>,
) -> Option<crate::model::EpochDay> {
    let mut end = None;
    for v in hist.values() {
        let mut prev = 0i64;
        for k in v {
            if let Some(w) = k.windows.iter().min_by_key(|w| w.days) {
                if w.encounters > prev {
                    end = end.max(Some(w.last_day));
                }
                prev = w.encounters;
            }
        }
    }
    end
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
    let data_end = encounter_data_end(&o.department_history);
    // Each department at the common date: its latest version whose window ends on or before the
    // last day with encounters (the versions after it carry claim facts only, over windows
    // emptying of encounters). Without the history, the latest record of each department.
    let depts: Vec<(&crate::model::ProviderKpi, crate::model::ProviderWindow)> = match data_end {
        Some(end) => o
            .department_history
            .values()
            .filter_map(|v| {
                v.iter()
                    .rev()
                    .filter_map(|k| longest(k).map(|w| (k, w)))
                    .find(|(_, w)| w.last_day <= end)
            })
            .collect(),
        None => records
            .iter()
            .filter(|k| k.level == "DEPARTMENT")
            .filter_map(|k| longest(k).map(|w| (k, w)))
            .collect(),
    };
    let Some(days) = depts.first().map(|(_, w)| w.days) else {
        s.push_str("<p class=\"na\">No department record on the topic.</p>\n");
        return Ok(());
    };
    let when = |w: &crate::model::ProviderWindow| {
        format!(
            "{} to {}",
            crate::model::format_day(w.first_day),
            crate::model::format_day(w.last_day)
        )
    };
    match data_end {
        Some(end) => {
            let behind = depts.iter().filter(|(_, w)| w.last_day < end).count();
            period_line(
                s,
                &format!(
                    "{days}-day windows ending {} (the last day with encounters), or earlier where marked *",
                    crate::model::format_day(end)
                ),
            );
            let _ = writeln!(
                s,
                "<p class=\"note\">Each department at the same date: its record whose {days}-day window ends on the last day \
                 any department had an encounter ({}). Later records hold claim adjudications only, over windows that \
                 empty of encounters, and are left out. A department's record is written only on days its figures change, so {} \
                 of the {} rows (marked *) show the window of the department's last change before that day.</p>",
                crate::model::format_day(end),
                behind,
                depts.len()
            );
        }
        None => {
            let _ = writeln!(
                s,
                "<p class=\"note\">Latest record per department; its {days}-day window ends on the day shown, which differs by department.</p>"
            );
        }
    }
    let mark = |w: &crate::model::ProviderWindow| {
        if data_end.is_some_and(|e| w.last_day < e) {
            format!("{} *", when(w))
        } else {
            when(w)
        }
    };
    let n = |x: i64| x.max(0) as u64;
    s.push_str("<h3>Workload and cost</h3>\n<table class=\"compact\">\n");
    head(
        s,
        &[
            "department",
            "window",
            "encounters",
            "per week",
            "inpatient stays",
            "avg LOS (days)",
            "paid / paid encounter",
        ],
    );
    for (k, w) in &depts {
        row(
            s,
            &k.name,
            &[
                mark(w),
                w.encounters.to_string(),
                format!("{:.1}", w.encounters_per_week),
                w.inpatient_stays.to_string(),
                if w.inpatient_stays > 0 {
                    format!("{:.1}", w.average_los_days)
                } else {
                    "-".into()
                },
                w.cost_per_encounter_cents
                    .map_or_else(|| "-".into(), dollars),
            ],
        );
    }
    s.push_str("</table>\n<h3>Readmissions and claims</h3>\n<table class=\"compact\">\n");
    head(
        s,
        &[
            "department",
            "index stays",
            "high-risk share",
            "readmissions",
            "expected",
            "O/E [95 % CI]",
            "flag",
            "denial rate (adjudications)",
            "FPY",
        ],
    );
    for (k, w) in &depts {
        row(
            s,
            &k.name,
            &[
                w.index_stays.to_string(),
                if w.index_stays > 0 {
                    pct(exact(n(w.high_risk_stays), n(w.index_stays)))
                } else {
                    "-".into()
                },
                w.readmissions.to_string(),
                format!("{:.1}", w.expected_readmissions),
                oe_cell(w),
                w.flag.clone().unwrap_or_else(|| "-".into()),
                if w.adjudicated > 0 {
                    pct(exact(n(w.denied), n(w.adjudicated)))
                } else {
                    "-".into()
                },
                if w.first_adjudications > 0 {
                    pct(exact(n(w.first_pass_paid), n(w.first_adjudications)))
                } else {
                    "-".into()
                },
            ],
        );
    }
    s.push_str("</table>\n");
    s.push_str(
        "<p class=\"note\">LOS: length of stay of the inpatient stays. Index stays: inpatient discharges whose 30-day \
         readmission window closed in the window; high-risk share: of those scored HIGH at discharge. O/E: observed / \
         expected readmissions (expected = sum of the calibrated probabilities of those index stays), with its 95 % \
         exact Poisson interval; flagged only when the interval excludes 1 and enough readmissions are expected. \
         Denial rate: denied / adjudications of the department's claims in the window; FPY (first-pass yield): paid \
         on the first adjudication / first adjudications.</p>\n",
    );
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
