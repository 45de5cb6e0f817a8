//! Utilization forecast vs actual (`claimwatch.utilization-forecast`): rolling accuracy per
//! measure and horizon, the next weeks' forecast per facility, and weekly forecast-vs-actual
//! charts of the busiest facilities.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::{chart_err, head, pct, row, tile, Section, BLUE, GREEN, ORANGE, RED};
use crate::model::UtilizationForecast;
use crate::report::{Outputs, ReportError};

/// Facilities charted.
const TOP_FACILITIES: usize = 3;

/// The measure a service line carries: ED visits on `EMERGENCY`, admissions elsewhere (the
/// other measure is structurally 0 there and would flatter the accuracy).
fn relevant(r: &UtilizationForecast, measure: &str) -> bool {
    (measure == "ED_VISITS") == (r.service_line == "EMERGENCY")
}

#[derive(Default)]
struct Acc {
    n: u64,
    in80: u64,
    in95: u64,
    abs: f64,
    actual: i64,
}

#[derive(Default, Clone)]
struct FacWeek {
    label: String,
    admissions: i64,
    ed_visits: i64,
    /// Sums of the 1-week-ahead forecasts of the facility's keys (None: no key had one).
    fc_admissions: Option<f64>,
    fc_ed_visits: Option<f64>,
}

pub fn utilization(_: &Section, o: &Outputs, s: &mut String) -> Result<(), ReportError> {
    let Some(f) = o.analytics.get(super::topics::UTILIZATION_FORECAST) else {
        return Ok(());
    };
    let recs: Vec<UtilizationForecast> = f
        .records
        .values()
        .filter_map(|v| serde_json::from_value(v.clone()).ok())
        .collect();
    if recs.is_empty() {
        s.push_str("<p class=\"na\">No facility week has closed yet.</p>\n");
        return Ok(());
    }
    if let (Some(a), Some(b)) = (
        recs.iter().min_by_key(|r| r.week_start),
        recs.iter().max_by_key(|r| r.week_start),
    ) {
        super::period_line(
            s,
            &format!(
                "closed ISO weeks {} to {}; the next weeks' forecasts as of each line's latest closed week",
                a.iso_week, b.iso_week
            ),
        );
    }
    // Accuracy over the latest version of every key and week.
    let mut acc: BTreeMap<(String, i32), Acc> = BTreeMap::new();
    let mut fac: BTreeMap<&str, BTreeMap<i32, FacWeek>> = BTreeMap::new();
    for r in &recs {
        let w = fac
            .entry(r.facility_id.as_str())
            .or_default()
            .entry(r.week_start)
            .or_default();
        w.label.clone_from(&r.iso_week);
        w.admissions += r.admissions;
        w.ed_visits += r.ed_visits;
        for c in &r.checks {
            if c.horizon_weeks == 1 {
                let slot = if c.measure == "ADMISSIONS" {
                    &mut w.fc_admissions
                } else {
                    &mut w.fc_ed_visits
                };
                *slot = Some(slot.unwrap_or(0.0) + c.forecast);
            }
            if !relevant(r, &c.measure) {
                continue;
            }
            let a = acc.entry((c.measure.clone(), c.horizon_weeks)).or_default();
            a.n += 1;
            a.in80 += u64::from(c.inside80);
            a.in95 += u64::from(c.inside95);
            a.abs += c.error.abs();
            a.actual += c.actual;
        }
    }
    let keys = recs
        .iter()
        .map(|r| r.key.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let wape = |m: &str| {
        acc.get(&(m.to_owned(), 1))
            .filter(|a| a.actual > 0)
            .map_or("-".into(), |a| pct(a.abs / a.actual as f64))
    };
    let (n, i80, i95) = acc
        .values()
        .fold((0, 0, 0), |t, a| (t.0 + a.n, t.1 + a.in80, t.2 + a.in95));
    s.push_str("<div class=\"tiles\">\n");
    tile(s, &keys.to_string(), "facility / service lines");
    tile(s, &wape("ADMISSIONS"), "admissions WAPE, 1 week ahead");
    tile(s, &wape("ED_VISITS"), "ED visits WAPE, 1 week ahead");
    let share = |k: u64| {
        if n > 0 {
            pct(k as f64 / n as f64)
        } else {
            "-".into()
        }
    };
    tile(s, &share(i80), "inside the 80 % interval");
    tile(s, &share(i95), "inside the 95 % interval");
    s.push_str("</div>\n");

    s.push_str("<table>\n");
    head(
        s,
        &[
            "measure, weeks ahead",
            "weeks forecast",
            "actual per week",
            "WAPE",
            "MAE",
            "inside 80 %",
            "inside 95 %",
        ],
    );
    for ((m, h), a) in &acc {
        let nf = a.n.max(1) as f64;
        row(
            s,
            &format!(
                "{} {h}",
                if m == "ADMISSIONS" {
                    "admissions"
                } else {
                    "ED visits"
                }
            ),
            &[
                a.n.to_string(),
                format!("{:.2}", a.actual as f64 / nf),
                if a.actual > 0 {
                    pct(a.abs / a.actual as f64)
                } else {
                    "-".into()
                },
                format!("{:.2}", a.abs / nf),
                pct(a.in80 as f64 / nf),
                pct(a.in95 as f64 / nf),
            ],
        );
    }
    s.push_str("</table>\n");

    // The next weeks per facility: the forecast made at each key's latest closed week, summed
    // over the facility's service lines (means add; intervals do not, so they are per key below).
    let mut latest: BTreeMap<&str, &UtilizationForecast> = BTreeMap::new();
    for r in &recs {
        let e = latest.entry(r.key.as_str()).or_insert(r);
        if r.week_start > e.week_start {
            *e = r;
        }
    }
    let mut next: BTreeMap<&str, BTreeMap<(i32, String), f64>> = BTreeMap::new();
    for r in latest.values() {
        for w in &r.forecast {
            *next
                .entry(r.facility_id.as_str())
                .or_default()
                .entry((w.horizon_weeks, w.measure.clone()))
                .or_default() += w.mean;
        }
    }
    let horizon = latest
        .values()
        .flat_map(|r| r.forecast.iter().map(|w| w.horizon_weeks))
        .max()
        .unwrap_or(0);
    if horizon > 0 {
        s.push_str("<table>\n");
        let mut cols = vec!["facility".to_owned()];
        for h in 1..=horizon {
            cols.push(format!("+{h} wk admissions"));
            cols.push(format!("+{h} wk ED visits"));
        }
        let cols_ref: Vec<&str> = cols.iter().map(String::as_str).collect();
        head(s, &cols_ref);
        for (fid, m) in &next {
            let cells: Vec<String> = (1..=horizon)
                .flat_map(|h| {
                    ["ADMISSIONS", "ED_VISITS"].map(|ms| {
                        m.get(&(h, ms.to_owned()))
                            .map_or("-".into(), |v| format!("{v:.1}"))
                    })
                })
                .collect();
            row(s, fid, &cells);
        }
        s.push_str("</table>\n");
    }
    // The busiest service lines (most admissions and ED visits over every week) and the next week
    // forecast at their latest closed week, with its intervals.
    let mut volume: BTreeMap<&str, i64> = BTreeMap::new();
    for r in &recs {
        *volume.entry(r.key.as_str()).or_default() += r.admissions + r.ed_visits;
    }
    let mut busiest: Vec<&&UtilizationForecast> = latest.values().collect();
    busiest.sort_by_key(|r| (std::cmp::Reverse(volume[r.key.as_str()]), r.key.as_str()));
    s.push_str("<table>\n");
    head(
        s,
        &[
            "facility | service line",
            "latest closed week",
            "actual",
            "next week forecast",
            "80 % interval",
            "95 % interval",
        ],
    );
    for r in busiest.iter().take(8) {
        let m = if r.service_line == "EMERGENCY" {
            "ED_VISITS"
        } else {
            "ADMISSIONS"
        };
        let actual = if m == "ED_VISITS" {
            r.ed_visits
        } else {
            r.admissions
        };
        let f = r
            .forecast
            .iter()
            .find(|w| w.horizon_weeks == 1 && w.measure == m);
        row(
            s,
            &r.key,
            &[
                r.iso_week.clone(),
                match (m, actual) {
                    ("ED_VISITS", 1) => "1 ED visit".to_owned(),
                    ("ED_VISITS", n) => format!("{n} ED visits"),
                    (_, 1) => "1 admission".to_owned(),
                    (_, n) => format!("{n} admissions"),
                },
                f.map_or("-".into(), |w| format!("{:.1}", w.mean)),
                f.map_or("-".into(), |w| format!("{}-{}", w.low80, w.high80)),
                f.map_or("-".into(), |w| format!("{}-{}", w.low95, w.high95)),
            ],
        );
    }
    s.push_str("</table>\n");
    s.push_str(
        "<p class=\"note\">Service line: the encounter's department (ED visits count on \
         EMERGENCY, admissions on the admitting department), by ISO week of the admission or \
         visit date. Forecast: simple exponential smoothing (alpha 0.2 by default) of the last \
         closed weeks, negative-binomial intervals from the smoothing's dispersion. Accuracy \
         over the latest version of every week, each measure on the service lines where it \
         occurs; WAPE = sum |actual - forecast| / sum actual. Small weekly counts make the \
         discrete intervals cover more than their nominal share.</p>\n",
    );
    // Charts: the busiest facilities' weekly admissions and ED visits against the forecasts
    // made a week before.
    let mut top: Vec<(&str, i64)> = fac
        .iter()
        .map(|(f, w)| (*f, w.values().map(|x| x.admissions + x.ed_visits).sum()))
        .collect();
    top.sort_by_key(|(f, n)| (std::cmp::Reverse(*n), *f));
    s.push_str("<div class=\"charts\">\n");
    for (fid, _) in top.into_iter().take(TOP_FACILITIES) {
        let weeks: Vec<FacWeek> = fac[fid].values().cloned().collect();
        s.push_str(&facility_svg(fid, &weeks)?);
    }
    s.push_str("</div>\n");
    Ok(())
}

/// Weekly admissions and ED visits of one facility (solid) and their 1-week-ahead forecasts
/// (thin).
fn facility_svg(facility: &str, weeks: &[FacWeek]) -> Result<String, ReportError> {
    let caption = format!("{facility}: actual vs forecast a week ahead");
    let err = chart_err(&caption);
    let n = weeks.len().max(2);
    let top = weeks
        .iter()
        .map(|w| {
            (w.admissions.max(w.ed_visits) as f64)
                .max(w.fc_admissions.unwrap_or(0.0))
                .max(w.fc_ed_visits.unwrap_or(0.0))
        })
        .fold(0.0f64, f64::max);
    // Headroom above the lines for the legend (four rows), so that it covers none of them.
    let top = if top > 0.0 { top * 1.6 } else { 1.0 };
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (560, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&caption, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0..n - 1, 0f64..top)
            .map_err(|e| err(e.to_string()))?;
        let label = |i: &usize| weeks.get(*i).map(|w| w.label.clone()).unwrap_or_default();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(6)
            .x_label_style(("sans-serif", 11))
            .x_label_formatter(&label)
            .y_labels((top.floor() as usize).clamp(1, 10))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .y_desc("per week")
            .draw()
            .map_err(|e| err(e.to_string()))?;
        type Pick = fn(&FacWeek) -> Option<f64>;
        let series: [(RGBColor, &str, u32, Pick); 4] = [
            (BLUE, "ED visits", 2, |w| Some(w.ed_visits as f64)),
            (GREEN, "ED forecast", 1, |w| w.fc_ed_visits),
            (ORANGE, "admissions", 2, |w| Some(w.admissions as f64)),
            (RED, "admissions forecast", 1, |w| w.fc_admissions),
        ];
        for (color, name, width, pick) in series {
            let points: Vec<(usize, f64)> = weeks
                .iter()
                .enumerate()
                .filter_map(|(i, w)| pick(w).map(|v| (i, v)))
                .collect();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(width)))
                .map_err(|e| err(e.to_string()))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 11))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(buf)
}
