//! The evaluation report of `claimwatch train` as one self-contained HTML page per model:
//! metric table, ROC curve (model, baselines and, with the generator's truth, the oracle),
//! reliability plot and the driver (coefficient) table. Charts are inline SVG drawn with
//! `plotters`' SVG backend; no JavaScript, no external file, so the page can be mailed or
//! attached to a ticket as it is.

use std::fmt::Write;

use plotters::prelude::*;

use super::model::LogisticModel;
use super::train::{auc, Evaluation};

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            _ => o.push(c),
        }
    }
    o
}

/// ROC curve points (false positive rate, true positive rate), ties grouped, at most ~400
/// points (enough for a 480-pixel chart).
pub fn roc_points(scores: &[f64], labels: &[bool]) -> Vec<(f64, f64)> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
    let pos = labels.iter().filter(|l| **l).count().max(1) as f64;
    let neg = (labels.len() as f64 - labels.iter().filter(|l| **l).count() as f64).max(1.0);
    let mut pts = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0.0, 0.0);
    let step = (idx.len() / 400).max(1);
    let mut i = 0;
    let mut since = 0;
    while i < idx.len() {
        let s = scores[idx[i]];
        while i < idx.len() && scores[idx[i]] == s {
            if labels[idx[i]] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
            since += 1;
        }
        if since >= step || i == idx.len() {
            pts.push((fp / neg, tp / pos));
            since = 0;
        }
    }
    pts
}

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

type Curve = (String, Vec<(f64, f64)>);

fn roc_svg(curves: &[Curve]) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (520, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption("ROC curve (evaluation set)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("false positive rate")
            .y_desc("true positive rate")
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                BLACK.mix(0.3).stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
        for (i, (name, pts)) in curves.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.4))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(buf)
}

fn reliability_svg(m: &LogisticModel) -> Result<String, String> {
    let bins = &m.calibration.bins;
    let top = bins
        .iter()
        .map(|b| b.mean_predicted.max(b.observed_rate))
        .fold(0.1f64, f64::max);
    let top = ((top * 10.0).ceil() / 10.0).min(1.0);
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (520, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Reliability (evaluation set)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..top, 0f64..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("mean predicted probability")
            .y_desc("observed rate")
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (top, top)],
                BLACK.mix(0.3).stroke_width(1),
            ))
            .map_err(|e| e.to_string())?
            .label("perfect calibration")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.mix(0.3)));
        let pts: Vec<(f64, f64)> = bins
            .iter()
            .map(|b| (b.mean_predicted, b.observed_rate))
            .collect();
        let c = COLORS[0];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(format!("model (ECE {:.4})", m.calibration.ece_after))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        // Marker area grows with the bin's share of the examples.
        let total = bins.iter().map(|b| b.count).sum::<u64>().max(1) as f64;
        chart
            .draw_series(bins.iter().map(|b| {
                let r = 3.0 + 9.0 * (b.count as f64 / total).sqrt();
                Circle::new((b.mean_predicted, b.observed_rate), r as i32, c.filled())
            }))
            .map_err(|e| e.to_string())?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.4))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(buf)
}

/// A header row.
fn head(s: &mut String, cells: &[&str]) {
    s.push_str("<tr>");
    for c in cells {
        let _ = write!(s, "<th>{}</th>", esc(c));
    }
    s.push_str("</tr>\n");
}

/// A row: a header cell, then values.
fn row(s: &mut String, name: &str, cells: &[String]) {
    let _ = write!(s, "<tr><th>{}</th>", esc(name));
    for c in cells {
        let _ = write!(s, "<td>{}</td>", esc(c));
    }
    s.push_str("</tr>\n");
}

fn top_decile_lift(probs: &[f64], labels: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]).then(a.cmp(b)));
    let k = (probs.len() / 10).max(1).min(idx.len());
    let top = idx[..k].iter().filter(|i| labels[**i]).count() as f64 / k as f64;
    let all = labels.iter().filter(|l| **l).count() as f64 / labels.len().max(1) as f64;
    if all > 0.0 {
        top / all
    } else {
        0.0
    }
}

/// The report page of a fitted model and its evaluation scores.
pub fn render(m: &LogisticModel, ev: &Evaluation) -> Result<String, String> {
    let me = &m.metrics;
    let mut curves: Vec<Curve> = vec![(
        format!("model (AUC {:.3})", me.auc_roc),
        roc_points(&ev.probs, &ev.labels),
    )];
    for (name, scores) in &ev.baselines {
        curves.push((
            format!("{name} (AUC {:.3})", auc(scores, &ev.labels)),
            roc_points(scores, &ev.labels),
        ));
    }
    if !ev.truth_subset.is_empty() {
        let t: Vec<f64> = ev.truth_subset.iter().map(|c| c.0).collect();
        let l: Vec<bool> = ev.truth_subset.iter().map(|c| c.2).collect();
        curves.push((
            format!("oracle: true probabilities (AUC {:.3})", auc(&t, &l)),
            roc_points(&t, &l),
        ));
    }
    let roc = roc_svg(&curves)?;
    let rel = reliability_svg(m)?;

    let mut s = String::with_capacity(64 * 1024);
    let title = format!("claimwatch {} model {}", m.kind.as_str(), m.version);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n\
<style>\nbody{{font-family:sans-serif;margin:2em;max-width:1150px;color:#222}}\n\
table{{border-collapse:collapse;margin:1em 0}}th,td{{border:1px solid #ccc;padding:4px 10px;text-align:right}}\n\
th{{background:#f4f4f4;text-align:left}}td.l{{text-align:left}}.charts{{display:flex;flex-wrap:wrap;gap:16px}}\n\
.pos{{color:#b22}}.neg{{color:#262}}small{{color:#666}}\n</style>\n</head>\n<body>\n",
        esc(&title)
    );
    let _ = writeln!(s, "<h1>{}</h1>", esc(&title));
    let day = |ms: i64| crate::model::format_day(crate::model::day_of(ms));
    let t = &m.training;
    let _ = writeln!(
        s,
        "<p>Trained on {} matured examples ({} positive) scored {} to {}; evaluated on the later {} \
         ({} positive) scored {} to {}. Source: <code>{}</code>.</p>",
        t.train_examples,
        t.train_positives,
        day(t.train_window_ms.0),
        day(t.train_window_ms.1),
        me.examples,
        me.positives,
        day(t.eval_window_ms.0),
        day(t.eval_window_ms.1),
        esc(&t.source)
    );
    if t.min_history_days > 0 || t.short_history_excluded > 0 {
        let _ = writeln!(
            s,
            "<p>History rule: examples need {} days of observed history (from {}); {} scored \
             earlier were left out.</p>",
            t.min_history_days,
            day(t.history_start_ms),
            t.short_history_excluded
        );
    }

    // Metric table: the model, each baseline, the oracle.
    s.push_str("<h2>Metrics</h2>\n<table>\n");
    head(
        &mut s,
        &[
            "score",
            "AUC-ROC",
            "AUC-PR",
            "ECE",
            &format!("precision at HIGH ≥ {:.2}", m.thresholds.1),
            "recall at HIGH",
            "top-decile lift",
        ],
    );
    row(
        &mut s,
        "model",
        &[
            format!("{:.4}", me.auc_roc),
            format!("{:.4}", me.auc_pr),
            format!("{:.4}", me.ece),
            format!("{:.3}", me.precision_at_high),
            format!("{:.3}", me.recall_at_high),
            format!("{:.2}", me.top_decile_lift),
        ],
    );
    for (name, scores) in &ev.baselines {
        row(
            &mut s,
            name,
            &[
                format!("{:.4}", auc(scores, &ev.labels)),
                format!("{:.4}", super::train::auc_pr(scores, &ev.labels)),
                "-".into(),
                "-".into(),
                "-".into(),
                format!("{:.2}", top_decile_lift(scores, &ev.labels)),
            ],
        );
    }
    if !ev.truth_subset.is_empty() {
        let tr: Vec<f64> = ev.truth_subset.iter().map(|c| c.0).collect();
        let mo: Vec<f64> = ev.truth_subset.iter().map(|c| c.1).collect();
        let l: Vec<bool> = ev.truth_subset.iter().map(|c| c.2).collect();
        let (oracle_ece, _) = super::train::ece(&tr, &l);
        row(
            &mut s,
            "oracle (true probabilities)",
            &[
                format!("{:.4}", auc(&tr, &l)),
                format!("{:.4}", super::train::auc_pr(&tr, &l)),
                format!("{oracle_ece:.4}"),
                "-".into(),
                "-".into(),
                format!("{:.2}", top_decile_lift(&tr, &l)),
            ],
        );
        let ratio = auc(&mo, &l) / auc(&tr, &l).max(1e-9);
        s.push_str("</table>\n");
        let _ = writeln!(
            s,
            "<p>On the {} examples the generator's truth covers: model AUC {:.4} = <b>{:.3} &times; oracle</b>.</p>",
            l.len(),
            auc(&mo, &l),
            ratio
        );
    } else {
        s.push_str("</table>\n");
    }
    let _ = writeln!(
        s,
        "<p><small>Calibration: {} (slope {:.3}, offset {:.3}); ECE before {:.4}, after {:.4}.</small></p>",
        esc(&m.calibration.method),
        m.calibration.slope,
        m.calibration.offset,
        m.calibration.ece_before,
        m.calibration.ece_after
    );

    s.push_str("<h2>ROC curve and reliability</h2>\n<div class=\"charts\">\n");
    s.push_str(&roc);
    s.push('\n');
    s.push_str(&rel);
    s.push_str("\n</div>\n");

    // Reliability bins as numbers too.
    s.push_str("<h3>Reliability bins</h3>\n<table>\n");
    head(&mut s, &["bin", "examples", "mean predicted", "observed"]);
    for b in &m.calibration.bins {
        row(
            &mut s,
            &format!("{:.1}-{:.1}", b.lower, b.upper),
            &[
                b.count.to_string(),
                format!("{:.4}", b.mean_predicted),
                format!("{:.4}", b.observed_rate),
            ],
        );
    }
    s.push_str("</table>\n");

    // Drivers: numeric coefficients per standard deviation, then categorical levels.
    s.push_str("<h2>Drivers</h2>\n<p>Contribution to the log-odds of the calibrated model: numeric features per \
                standard deviation above the training mean; categorical levels against the average record. \
                Positive raises risk.</p>\n<table>\n<tr><th>feature</th><th>contribution</th><th>training mean</th>\
                <th>std</th><th class=\"l\">meaning</th></tr>\n");
    let mut numeric: Vec<_> = m.numeric.iter().collect();
    numeric.sort_by(|a, b| b.coefficient.abs().total_cmp(&a.coefficient.abs()));
    for n in numeric {
        let _ = writeln!(
            s,
            "<tr><th>{}</th><td class=\"{}\">{:+.4}</td><td>{:.3}</td><td>{:.3}</td><td class=\"l\">{}</td></tr>",
            esc(&n.name),
            if n.coefficient >= 0.0 { "pos" } else { "neg" },
            n.coefficient,
            n.mean,
            n.std,
            esc(&n.doc)
        );
    }
    s.push_str(
        "</table>\n<table>\n<tr><th>categorical feature = level</th><th>contribution</th></tr>\n",
    );
    for c in &m.categorical {
        let other = "other".to_owned();
        for (l, v) in c
            .levels
            .iter()
            .chain(std::iter::once(&other))
            .zip(&c.level_contributions)
        {
            let _ = writeln!(
                s,
                "<tr><th>{}={}</th><td class=\"{}\">{:+.4}</td></tr>",
                esc(&c.name),
                esc(l),
                if *v >= 0.0 { "pos" } else { "neg" },
                v
            );
        }
    }
    s.push_str("</table>\n</body>\n</html>\n");
    Ok(s)
}
