//! Fitting a model from matured training examples (`claimwatch train`).
//!
//! 1. **History rule, then time-based split**: examples scored less than `min_history_days`
//!    after the earliest scoring time in the store (the start of the observed data) are left out
//!    and counted (`TrainingInfo::short_history_excluded`): their look-back features count a
//!    history cut short by the start of the data. The rest, sorted by scoring time: the earlier
//!    `train_fraction` trains, the later part evaluates (what a deployed model faces: the future).
//! 2. **Encoding**: numeric features standardized with training means and deviations;
//!    categorical ones one-hot over the `category_cap` most frequent training levels (each seen at
//!    least `min_level_count` times) plus an `other` slot, then standardized too.
//! 3. **Fit**: L2-regularised logistic regression (`linfa-logistic`, L-BFGS). Class imbalance:
//!    positives are repeated `round(negatives / positives)` times (capped), so the minority class
//!    weighs as much as the majority in the fit.
//! 4. **Calibration**: the resampled fit over-predicts by construction, so Platt scaling (a 1-D
//!    logistic regression of the label on the raw logit) maps it back. By default it is fitted
//!    on the whole training window (in-sample). `calibration_fraction > 0` fits it on the latest
//!    slice of the training window instead, scored out of sample by a first fit on the rest
//!    (`calibration_out_of_sample`) or by the shipped fit; the shipped coefficients are always
//!    fitted on the whole window. The evaluation window is never used. Measured on the 100k
//!    population's readmission examples (`score::tests::fit_from_examples_file`), neither variant
//!    beat the in-sample fit's ECE (0.0337): out of sample 0.0405 (20 % slice), recent slice
//!    in-sample 0.0367 (20 %) / 0.0322 (10 %); the evaluation window is over-predicted at every
//!    level, a shift between the windows (prior-utilisation features count a history that
//!    starts with the simulation), not an in-sample artefact. (That was the one-year population,
//!    3,493 evaluation stays, bootstrap 95 % interval of the ECE 0.026-0.046.) The shipped
//!    models are trained on three simulated years (`generate --members 100000 --seed 42 --days
//!    1095`) with the history rule (step 1): readmission ECE 0.0105 on 7,167 evaluation stays
//!    (0.0136 without the rule), AUC 0.7327 vs oracle 0.7655 on the oracle's subset (0.957x);
//!    seed 7: ECE 0.0202 (0.0239 without), 0.966x. Most of the gain is the longer population;
//!    the rule's share is within the bootstrap spread (README, *Risk scoring*).
//!    Expected calibration error (10 equal-width bins) is reported on the evaluation set before
//!    and after. The correction is folded into the coefficients.
//! 5. **Evaluation**: AUC-ROC, AUC-PR, ECE, precision/recall at the HIGH threshold, top-decile
//!    lift; baselines (LACE, HOSPITAL; payer base rate) and the oracle AUC of the generator's
//!    true probabilities on the same examples when the truth is given.

use std::collections::{BTreeMap, HashMap};

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};

use super::model::{
    round6, Calibration, CategoricalSpec, FeatureReference, LogisticModel, Metrics, ModelKind,
    NumericSpec, ReliabilityBin, TrainingInfo, MODEL_FORMAT,
};
use super::TrainingExample;

/// Fitting options; the defaults are what the shipped models were trained with.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    pub train_fraction: f64,
    /// Latest share of the training window the Platt calibration is fitted on (0: the whole
    /// window, in-sample: the default, see the module doc for why).
    pub calibration_fraction: f64,
    /// Score the calibration slice with a fit that did not see it (true) or with the shipped
    /// fit on the whole training window (false: in-sample, but the latest data).
    pub calibration_out_of_sample: bool,
    /// L2 penalty (linfa's `alpha`) on the standardized coefficients.
    pub l2_alpha: f64,
    pub category_cap: usize,
    pub min_level_count: usize,
    /// Upper bound on how often a positive is repeated.
    pub max_oversampling: u32,
    pub max_iterations: u64,
    /// (medium, high) tier thresholds used for precision/recall.
    pub thresholds: (f64, f64),
    pub source: String,
    /// Days of observed history an example needs before its scoring time to be used for
    /// training or evaluation (`None`: [`default_min_history_days`] of the model kind). Measured
    /// from the earliest scoring time among the examples given (the start of the data).
    pub min_history_days: Option<u32>,
}

/// The history rule's default per model: the longest feature look-back. Readmission counts prior
/// admissions and ED visits over 365 days (and Charlson over the stays kept in state, the
/// 365-day member look-back); denial's rolling rates span 30 days of matured outcomes.
pub fn default_min_history_days(kind: ModelKind) -> u32 {
    match kind {
        ModelKind::Readmission => 365,
        ModelKind::Denial => DENIAL_MIN_HISTORY_DAYS,
    }
}

/// Denial's default history rule (see [`default_min_history_days`]): none. Its rates are shrunk
/// to a prior while counts are small, and 60 days changed nothing measurable on the shipped
/// population (AUC 0.6689 vs 0.6688, ECE 0.0019 vs 0.0023; README, *Risk scoring*).
pub const DENIAL_MIN_HISTORY_DAYS: u32 = 0;

/// The examples of one kind in scoring order, after the history rule, split in time.
struct Split<'a> {
    train: Vec<&'a TrainingExample>,
    eval: Vec<&'a TrainingExample>,
    min_history_days: u32,
    history_start_ms: i64,
    excluded: u64,
}

/// Sorts `kind`'s examples by scoring time, drops those scored less than the minimum history
/// after the earliest scoring time of `examples` (any kind), and splits the rest in time.
fn split<'a>(kind: ModelKind, examples: &'a [TrainingExample], opts: &TrainOptions) -> Split<'a> {
    let min_history_days = opts
        .min_history_days
        .unwrap_or_else(|| default_min_history_days(kind));
    let history_start_ms = examples.iter().map(|e| e.scored_at).min().unwrap_or(0);
    let cut = history_start_ms + i64::from(min_history_days) * crate::model::DAY_MS;
    let mut rows: Vec<&TrainingExample> = examples.iter().filter(|e| e.kind == kind).collect();
    let all = rows.len();
    rows.retain(|e| e.scored_at >= cut);
    let excluded = (all - rows.len()) as u64;
    rows.sort_by(|a, b| (a.scored_at, &a.id).cmp(&(b.scored_at, &b.id)));
    let n_train = ((rows.len() as f64) * opts.train_fraction).round() as usize;
    let eval = rows.split_off(n_train.min(rows.len()));
    Split {
        train: rows,
        eval,
        min_history_days,
        history_start_ms,
        excluded,
    }
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            train_fraction: 0.7,
            calibration_fraction: 0.0,
            calibration_out_of_sample: true,
            l2_alpha: 5.0,
            category_cap: 12,
            min_level_count: 30,
            max_oversampling: 10,
            max_iterations: 300,
            thresholds: (0.15, 0.30),
            source: String::new(),
            min_history_days: None,
        }
    }
}

/// What a feature means, stored in the artifact so another source can be mapped onto it.
fn doc_of(name: &str) -> &'static str {
    match name {
        "log_billed_dollars" => "natural log of the billed amount in dollars (min 1)",
        "service_lines" => "number of service lines on the claim",
        "diagnosis_codes" => "number of ICD-10-CM codes on the claim",
        "prior_auth_present" => "1 when a prior authorization reference is present",
        "no_attachment_where_usual" => "no supporting documentation sent (no 837 PWK, or PWK02 AA only): share of the same service's submissions (claim type, place of service, main procedure code with modifiers; 30 days, to the previous day) that sent one; 0 when sent",
        "no_auth_where_usual" => "no prior auth: share of the code family's submissions (30 days, to the previous day) carrying one; 0 when present",
        "replacement" => "1 for a replacement claim (frequency 7)",
        "payer_denial_rate_30d" => "payer's denial-or-rejection rate over matured claims of the last 30 days to the previous day, shrunk to the overall rate",
        "payer_rejection_rate_30d" => "payer's front-door rejection rate, same window and shrinkage",
        "provider_denial_rate_30d" => "rendering provider's denial-or-rejection rate, same window and shrinkage",
        "code_family_denial_rate_30d" => "code family's denial-or-rejection rate, same window and shrinkage",
        "payer" => "payer id",
        "payer_category" => "payer line of business (MEDICARE, MEDICAID, COMMERCIAL, ...)",
        "code_family" => "CPT family (first 3 characters, largest line) or INST[-ER][-OR] for institutional claims",
        "place_of_service" => "place of service / facility type code",
        "department" => "billing department / service line",
        "claim_type" => "PROFESSIONAL or INSTITUTIONAL",
        "age_years" => "age in whole years at discharge",
        "female" => "1 when recorded sex is female",
        "charlson_index" => "Charlson index (Quan 2005 ICD-10 codes, original weights) over diagnoses recorded up to discharge, capped at 12",
        "length_of_stay_days" => "discharge date minus admission date, capped at 30",
        "acute_admission" => "1 for an emergency, urgent or trauma admission",
        "prior_admissions_6m" => "inpatient admissions in the 182 days before this admission",
        "prior_admissions_12m" => "inpatient admissions in the 365 days before this admission",
        "ed_visits_6m" => "emergency visits in the 182 days before this admission",
        "ed_visits_12m" => "emergency visits in the 365 days before this admission",
        "low_hemoglobin" => "1 when the last haemoglobin before discharge is below 12 g/dL",
        "low_sodium" => "1 when the last sodium before discharge is below 135 mmol/L",
        "labs_missing" => "1 when haemoglobin or sodium at discharge is unknown",
        "cancer_history" => "1 when any malignancy appears in the diagnoses up to discharge",
        "procedure_during_stay" => "1 when any ICD-10-PCS procedure was performed",
        "age_75_plus" => "1 when aged 75 or over",
        "discharge_disposition" => "UB-04 discharge status code (FL 17)",
        "hrrp_cohort" => "HRRP condition cohort (AMI, HF, PNEUMONIA, COPD, CABG, THA_TKA) or NONE",
        _ => "",
    }
}

/// The encoding learned from the training slice.
struct Encoder {
    means: Vec<f64>,
    stds: Vec<f64>,
    levels: Vec<Vec<String>>,
    /// Column offset of each categorical feature's first slot.
    offsets: Vec<usize>,
    width: usize,
}

impl Encoder {
    fn learn(kind: ModelKind, rows: &[&TrainingExample], opts: &TrainOptions) -> Self {
        let nn = kind.numeric_names().len();
        let nc = kind.categorical_names().len();
        let mut levels = Vec::with_capacity(nc);
        for j in 0..nc {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for r in rows {
                *counts
                    .entry(r.features.categorical[j].as_str())
                    .or_default() += 1;
            }
            let mut by: Vec<(&str, usize)> = counts.into_iter().collect();
            by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            levels.push(
                by.into_iter()
                    .filter(|(_, n)| *n >= opts.min_level_count)
                    .take(opts.category_cap)
                    .map(|(l, _)| l.to_owned())
                    .collect::<Vec<_>>(),
            );
        }
        let mut offsets = Vec::with_capacity(nc);
        let mut width = nn;
        for l in &levels {
            offsets.push(width);
            width += l.len() + 1;
        }
        let mut e = Self {
            means: vec![0.0; width],
            stds: vec![1.0; width],
            levels,
            offsets,
            width,
        };
        let raw: Vec<Vec<f64>> = rows.iter().map(|r| e.raw_row(r)).collect();
        let n = raw.len().max(1) as f64;
        for c in 0..width {
            let mean = raw.iter().map(|r| r[c]).sum::<f64>() / n;
            let var = raw.iter().map(|r| (r[c] - mean).powi(2)).sum::<f64>() / n;
            e.means[c] = mean;
            // One-hot slots are centred but not scaled: scaling a rare level by its tiny standard
            // deviation would give one record a huge standardized value (and the fit a huge
            // contribution from a handful of examples).
            e.stds[c] = if c >= nn || var.sqrt() <= 1e-9 {
                1.0
            } else {
                var.sqrt()
            };
        }
        e
    }

    fn raw_row(&self, r: &TrainingExample) -> Vec<f64> {
        let mut row = vec![0.0; self.width];
        let nn = self.offsets.first().copied().unwrap_or(self.width);
        row[..nn].copy_from_slice(&r.features.numeric[..nn]);
        for (j, levels) in self.levels.iter().enumerate() {
            let v = &r.features.categorical[j];
            let slot = levels.iter().position(|l| l == v).unwrap_or(levels.len());
            row[self.offsets[j] + slot] = 1.0;
        }
        row
    }

    fn matrix(&self, rows: &[&TrainingExample]) -> Array2<f64> {
        let mut x = Array2::zeros((rows.len(), self.width));
        for (i, r) in rows.iter().enumerate() {
            for (c, v) in self.raw_row(r).into_iter().enumerate() {
                x[[i, c]] = (v - self.means[c]) / self.stds[c];
            }
        }
        x
    }
}

fn fit_lr(
    x: Array2<f64>,
    y: Array1<bool>,
    alpha: f64,
    iters: u64,
) -> Result<(f64, Vec<f64>), String> {
    let ds = Dataset::new(x, y);
    let m = LogisticRegression::default()
        .alpha(alpha)
        .max_iterations(iters)
        .fit(&ds)
        .map_err(|e| format!("logistic fit: {e}"))?;
    let sign = if m.labels().pos.class { 1.0 } else { -1.0 };
    Ok((
        sign * m.intercept(),
        m.params().iter().map(|p| sign * p).collect(),
    ))
}

/// Area under the ROC curve (Mann-Whitney, ties counted half).
pub fn auc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in &idx[i..=j] {
            if labels[*k] {
                rank_sum += avg;
            }
        }
        i = j + 1;
    }
    let pos = labels.iter().filter(|l| **l).count() as f64;
    let neg = labels.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.5;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Average precision (area under the precision-recall curve, step-wise).
pub fn auc_pr(scores: &[f64], labels: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b)));
    let pos = labels.iter().filter(|l| **l).count() as f64;
    if pos == 0.0 {
        return 0.0;
    }
    let (mut tp, mut ap) = (0.0, 0.0);
    for (n, i) in idx.iter().enumerate() {
        if labels[*i] {
            tp += 1.0;
            ap += tp / (n + 1) as f64;
        }
    }
    ap / pos
}

/// Expected calibration error over 10 equal-width bins, and the reliability bins.
pub fn ece(probs: &[f64], labels: &[bool]) -> (f64, Vec<ReliabilityBin>) {
    let mut bins = Vec::new();
    let mut total = 0.0;
    for b in 0..10 {
        let (lo, hi) = (b as f64 / 10.0, (b + 1) as f64 / 10.0);
        let members: Vec<usize> = (0..probs.len())
            .filter(|i| probs[*i] >= lo && (probs[*i] < hi || (b == 9 && probs[*i] <= hi)))
            .collect();
        if members.is_empty() {
            continue;
        }
        let n = members.len() as f64;
        let mean_p = members.iter().map(|i| probs[*i]).sum::<f64>() / n;
        let rate = members.iter().filter(|i| labels[**i]).count() as f64 / n;
        total += n * (mean_p - rate).abs();
        bins.push(ReliabilityBin {
            lower: lo,
            upper: hi,
            count: members.len() as u64,
            mean_predicted: round6(mean_p),
            observed_rate: round6(rate),
        });
    }
    (total / probs.len().max(1) as f64, bins)
}

fn precision_recall_at(probs: &[f64], labels: &[bool], t: f64) -> (f64, f64) {
    let flagged = probs.iter().filter(|p| **p >= t).count() as f64;
    let tp = probs
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p >= t && **l)
        .count() as f64;
    let pos = labels.iter().filter(|l| **l).count() as f64;
    (
        if flagged > 0.0 { tp / flagged } else { 0.0 },
        if pos > 0.0 { tp / pos } else { 0.0 },
    )
}

fn top_decile_lift(probs: &[f64], labels: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]).then(a.cmp(b)));
    let k = (probs.len() / 10).max(1);
    let top = idx[..k.min(idx.len())]
        .iter()
        .filter(|i| labels[**i])
        .count() as f64
        / k as f64;
    let all = labels.iter().filter(|l| **l).count() as f64 / labels.len().max(1) as f64;
    if all > 0.0 {
        top / all
    } else {
        0.0
    }
}

/// The scores of the evaluation slice, kept for the charts of the HTML report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evaluation {
    pub labels: Vec<bool>,
    /// The model's calibrated probabilities.
    pub probs: Vec<f64>,
    /// Baseline scores on the same examples (LACE and HOSPITAL points; payer base rate).
    pub baselines: Vec<(String, Vec<f64>)>,
    /// On the examples the generator's truth covers: (true probability, model probability, label).
    pub truth_subset: Vec<(f64, f64, bool)>,
}

/// The training window's distribution of each feature (see [`FeatureReference`]): numeric
/// features over their deduplicated training deciles, categorical ones over the model's kept
/// levels plus `other`.
fn reference_of(model: &LogisticModel, train: &[&TrainingExample]) -> Vec<FeatureReference> {
    let n = train.len().max(1) as f64;
    let mut out = Vec::with_capacity(model.numeric.len() + model.categorical.len());
    for (i, spec) in model.numeric.iter().enumerate() {
        let mut v: Vec<f64> = train.iter().map(|r| r.features.numeric[i]).collect();
        v.sort_by(f64::total_cmp);
        let lowest = v.first().copied().unwrap_or(0.0);
        let mut edges: Vec<f64> = (1..10)
            .filter_map(|q| v.get(q * v.len() / 10).copied())
            .filter(|e| *e > lowest && e.is_finite())
            .collect();
        edges.dedup();
        let mut r = FeatureReference {
            name: spec.name.clone(),
            edges,
            shares: Vec::new(),
        };
        let mut counts = vec![0u64; r.edges.len() + 1];
        for x in &v {
            counts[r.numeric_bin(*x)] += 1;
        }
        r.shares = counts.iter().map(|c| round6(*c as f64 / n)).collect();
        out.push(r);
    }
    for (j, spec) in model.categorical.iter().enumerate() {
        let mut counts = vec![0u64; spec.levels.len() + 1];
        for r in train {
            counts[model.category_slot(j, &r.features.categorical[j])] += 1;
        }
        out.push(FeatureReference {
            name: spec.name.clone(),
            edges: Vec::new(),
            shares: counts.iter().map(|c| round6(*c as f64 / n)).collect(),
        });
    }
    out
}

/// Fits a model of `kind` on `examples`; `truth` maps example ids to the generator's true
/// probability (for the oracle AUC).
pub fn fit(
    kind: ModelKind,
    examples: &[TrainingExample],
    truth: Option<&HashMap<String, f64>>,
    opts: &TrainOptions,
) -> Result<LogisticModel, String> {
    fit_evaluated(kind, examples, truth, opts).map(|(m, _)| m)
}

/// [`fit`], also returning the evaluation slice's scores (for the HTML report's charts).
pub fn fit_evaluated(
    kind: ModelKind,
    examples: &[TrainingExample],
    truth: Option<&HashMap<String, f64>>,
    opts: &TrainOptions,
) -> Result<(LogisticModel, Evaluation), String> {
    let sp = split(kind, examples, opts);
    let (train, eval) = (&sp.train[..], &sp.eval[..]);
    let pos = train.iter().filter(|r| r.label).count();
    if train.len() < 50 || pos < 5 || pos == train.len() || eval.is_empty() {
        return Err(format!(
            "{}: not enough matured examples ({} train, {pos} positive, {} eval; {} scored \
             within {} days of the data's start excluded)",
            kind.as_str(),
            train.len(),
            eval.len(),
            sp.excluded,
            sp.min_history_days
        ));
    }
    // Calibration is fitted out of sample: a first fit on the earlier part of the training
    // window scores the latest slice (held out of that fit), and Platt scaling is fitted on those
    // scores. The coefficients shipped are then refitted on the whole training window (the latest
    // examples carry the most member history; leaving them out cost the readmission model 0.03
    // AUC) and take that calibration. Without a usable slice (too small, one class), the
    // calibration falls back to the training window itself.
    let n_fit = ((train.len() as f64) * (1.0 - opts.calibration_fraction)).round() as usize;
    let (fit_part, cal_part) = train.split_at(n_fit.clamp(1, train.len()));
    let cal_pos = cal_part.iter().filter(|r| r.label).count();
    let fit_pos = fit_part.iter().filter(|r| r.label).count();
    let held_out =
        cal_pos >= 5 && cal_pos < cal_part.len() && fit_pos >= 5 && fit_pos < fit_part.len();
    let enc = Encoder::learn(kind, train, opts);
    let neg = train.len() - pos;
    let k = ((neg as f64 / pos as f64).round() as u32).clamp(1, opts.max_oversampling);
    let fit_on = |rows: &[&TrainingExample]| -> Result<(f64, Vec<f64>), String> {
        let mut fit_rows: Vec<&TrainingExample> = Vec::with_capacity(rows.len() * 2);
        for r in rows.iter() {
            let times = if r.label { k } else { 1 };
            for _ in 0..times {
                fit_rows.push(r);
            }
        }
        let x = enc.matrix(&fit_rows);
        let y: Array1<bool> = fit_rows.iter().map(|r| r.label).collect();
        fit_lr(x, y, opts.l2_alpha, opts.max_iterations)
    };
    let logits = |b0: f64, w: &[f64], x: &Array2<f64>| -> Vec<f64> {
        x.outer_iter()
            .map(|row| b0 + row.iter().zip(w).map(|(a, b)| a * b).sum::<f64>())
            .collect()
    };
    let (b0, w) = fit_on(train)?;
    let cal_part = if held_out { cal_part } else { train };
    let zt = if held_out && opts.calibration_out_of_sample {
        let (b0f, wf) = fit_on(fit_part)?;
        logits(b0f, &wf, &enc.matrix(cal_part))
    } else {
        logits(b0, &w, &enc.matrix(cal_part))
    };
    let raw_logit = |x: &Array2<f64>| logits(b0, &w, x);
    // Platt scaling on the calibration slice's out-of-sample scores (original class balance).
    let zmat = Array2::from_shape_vec((zt.len(), 1), zt).map_err(|e| e.to_string())?;
    let yt: Array1<bool> = cal_part.iter().map(|r| r.label).collect();
    let (pb, pa) = fit_lr(zmat, yt, 1e-3, 200)?;
    let (a, b) = (pa[0], pb);

    // Fold the calibration into the coefficients.
    let coef: Vec<f64> = w.iter().map(|c| a * c).collect();
    let intercept = a * b0 + b;
    let numeric: Vec<NumericSpec> = kind
        .numeric_names()
        .iter()
        .enumerate()
        .map(|(i, name)| NumericSpec {
            name: (*name).to_owned(),
            doc: doc_of(name).to_owned(),
            mean: enc.means[i],
            std: enc.stds[i],
            coefficient: coef[i],
        })
        .collect();
    let categorical: Vec<CategoricalSpec> = kind
        .categorical_names()
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let off = enc.offsets[j];
            let slots = enc.levels[j].len() + 1;
            // A record with value in slot k: sum over slots s of coef_s * (1[s = k] - mean_s) / std_s.
            let base: f64 = (0..slots)
                .map(|s| -coef[off + s] * enc.means[off + s] / enc.stds[off + s])
                .sum();
            CategoricalSpec {
                name: (*name).to_owned(),
                doc: doc_of(name).to_owned(),
                levels: enc.levels[j].clone(),
                level_contributions: (0..slots)
                    .map(|k| base + coef[off + k] / enc.stds[off + k])
                    .collect(),
            }
        })
        .collect();

    let mut model = LogisticModel {
        format: MODEL_FORMAT,
        kind,
        version: String::new(),
        intercept,
        numeric,
        categorical,
        calibration: Calibration {
            method: "platt".into(),
            calibration_examples: cal_part.len() as u64,
            slope: a,
            offset: b,
            ece_before: 0.0,
            ece_after: 0.0,
            bins: Vec::new(),
        },
        thresholds: opts.thresholds,
        training: TrainingInfo {
            train_window_ms: (train[0].scored_at, train[train.len() - 1].scored_at),
            eval_window_ms: (eval[0].scored_at, eval[eval.len() - 1].scored_at),
            train_examples: train.len() as u64,
            train_positives: pos as u64,
            positive_oversampling: k,
            l2_alpha: opts.l2_alpha,
            category_cap: opts.category_cap,
            source: opts.source.clone(),
            min_history_days: sp.min_history_days,
            history_start_ms: sp.history_start_ms,
            short_history_excluded: sp.excluded,
        },
        metrics: Metrics::default(),
        reference: Vec::new(),
    };
    model.reference = reference_of(&model, train);

    // Evaluation on the later slice.
    let labels: Vec<bool> = eval.iter().map(|r| r.label).collect();
    let probs: Vec<f64> = eval
        .iter()
        .map(|r| model.score(&r.features).probability)
        .collect();
    let xe = enc.matrix(eval);
    let raw_p: Vec<f64> = raw_logit(&xe)
        .iter()
        .map(|z| super::features::sigmoid(*z))
        .collect();
    let (ece_before, _) = ece(&raw_p, &labels);
    let (ece_after, bins) = ece(&probs, &labels);
    model.calibration.ece_before = round6(ece_before);
    model.calibration.ece_after = round6(ece_after);
    model.calibration.bins = bins;
    let (precision, recall) = precision_recall_at(&probs, &labels, opts.thresholds.1);
    let mut baselines = Vec::new();
    let mut evaluation = Evaluation::default();
    match kind {
        ModelKind::Readmission => {
            let lace: Vec<f64> = eval
                .iter()
                .map(|r| f64::from(r.lace_points.unwrap_or(0)))
                .collect();
            let hosp: Vec<f64> = eval
                .iter()
                .map(|r| f64::from(r.hospital_points.unwrap_or(0)))
                .collect();
            baselines.push(("lace_auc".to_owned(), round6(auc(&lace, &labels))));
            baselines.push(("hospital_auc".to_owned(), round6(auc(&hosp, &labels))));
            evaluation.baselines.push(("LACE".to_owned(), lace));
            evaluation.baselines.push(("HOSPITAL".to_owned(), hosp));
        }
        ModelKind::Denial => {
            let base: Vec<f64> = eval.iter().map(|r| r.baseline_probability).collect();
            baselines.push((
                "payer_base_rate_auc".to_owned(),
                round6(auc(&base, &labels)),
            ));
            evaluation
                .baselines
                .push(("payer base rate".to_owned(), base));
        }
    }
    let mut oracle_auc = None;
    if let Some(truth) = truth {
        // Only examples the truth speaks about (denial: first submissions, not replacements).
        let covered: Vec<(f64, f64, bool)> = eval
            .iter()
            .zip(&probs)
            .filter(|(r, _)| kind == ModelKind::Readmission || r.features.numeric[5] == 0.0)
            .filter_map(|(r, p)| truth.get(&r.id).map(|t| (*t, *p, r.label)))
            .collect();
        if !covered.is_empty() {
            let l: Vec<bool> = covered.iter().map(|c| c.2).collect();
            let t: Vec<f64> = covered.iter().map(|c| c.0).collect();
            let m: Vec<f64> = covered.iter().map(|c| c.1).collect();
            oracle_auc = Some(round6(auc(&t, &l)));
            baselines.push(("model_auc_on_truth_subset".to_owned(), round6(auc(&m, &l))));
            baselines.push(("truth_subset_examples".to_owned(), covered.len() as f64));
            evaluation.truth_subset = covered;
        }
    }
    model.metrics = Metrics {
        examples: eval.len() as u64,
        positives: labels.iter().filter(|l| **l).count() as u64,
        auc_roc: round6(auc(&probs, &labels)),
        auc_pr: round6(auc_pr(&probs, &labels)),
        ece: round6(ece_after),
        precision_at_high: round6(precision),
        recall_at_high: round6(recall),
        top_decile_lift: round6(top_decile_lift(&probs, &labels)),
        oracle_auc,
        baselines,
    };
    let day = crate::model::format_day(crate::model::day_of(model.training.train_window_ms.1))
        .replace('-', "");
    let hash = crate::state::fingerprint(&format!("{:?}{:?}", model.intercept, model.numeric));
    model.version = format!("{}-lr-{day}-{:08x}", kind.as_str(), hash as u32);
    evaluation.labels = labels;
    evaluation.probs = probs;
    Ok((model, evaluation))
}

/// A plain-text evaluation report of a fitted model.
pub fn report(m: &LogisticModel) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let me = &m.metrics;
    let _ = writeln!(s, "model {} ({})", m.version, m.kind.as_str());
    let _ = writeln!(
        s,
        "train: {} examples ({} positive), positives x{} then Platt on {} (slope {:.3}, offset {:.3}), L2 alpha {}",
        m.training.train_examples,
        m.training.train_positives,
        m.training.positive_oversampling,
        if m.calibration.calibration_examples >= m.training.train_examples {
            "the training window".to_owned()
        } else {
            format!("its latest {}", m.calibration.calibration_examples)
        },
        m.calibration.slope,
        m.calibration.offset,
        m.training.l2_alpha
    );
    if m.training.min_history_days > 0 || m.training.short_history_excluded > 0 {
        let _ = writeln!(
            s,
            "history rule: examples need {} days of observed history (from {}, the earliest scoring time): {} scored earlier excluded",
            m.training.min_history_days,
            crate::model::format_day(crate::model::day_of(m.training.history_start_ms)),
            m.training.short_history_excluded
        );
    }
    let _ = writeln!(
        s,
        "eval (later {} examples, {} positive): AUC-ROC {:.4}, AUC-PR {:.4}, ECE {:.4} (before Platt {:.4})",
        me.examples, me.positives, me.auc_roc, me.auc_pr, me.ece, m.calibration.ece_before
    );
    let _ = writeln!(
        s,
        "at HIGH >= {:.2}: precision {:.3}, recall {:.3}; top-decile lift {:.2}",
        m.thresholds.1, me.precision_at_high, me.recall_at_high, me.top_decile_lift
    );
    if let Some(o) = me.oracle_auc {
        let _ = writeln!(s, "oracle AUC (true probabilities, same examples): {o:.4}");
    }
    for (name, v) in &me.baselines {
        let _ = writeln!(s, "{name}: {v:.4}");
    }
    let _ = writeln!(s, "reliability (bin: n, mean predicted, observed):");
    for b in &m.calibration.bins {
        let _ = writeln!(
            s,
            "  {:.1}-{:.1}: {:>7} {:.4} {:.4}",
            b.lower, b.upper, b.count, b.mean_predicted, b.observed_rate
        );
    }
    let _ = writeln!(s, "coefficients (per standard deviation, calibrated):");
    for n in &m.numeric {
        let _ = writeln!(s, "  {:<32} {:+.4}", n.name, n.coefficient);
    }
    for c in &m.categorical {
        for (l, v) in c
            .levels
            .iter()
            .chain(std::iter::once(&"other".to_owned()))
            .zip(&c.level_contributions)
        {
            let _ = writeln!(s, "  {:<32} {:+.4}", format!("{}={l}", c.name), v);
        }
    }
    s
}

/// True probabilities by example id.
pub type Truth = HashMap<String, f64>;

/// Reads a training store file (JSON lines of [`TrainingExample`]).
pub fn read_examples(path: &std::path::Path) -> Result<Vec<TrainingExample>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{}: {e}", path.display())))
        .collect()
}

/// The AUC of another truth probability by example id (e.g. the generator's
/// `probability_before_gap_draw`) on the evaluation examples it covers, with the split and the
/// coverage of [`fit`]'s oracle AUC; `None` when it covers none of them.
pub fn oracle_auc_of(
    kind: ModelKind,
    examples: &[TrainingExample],
    truth: &Truth,
    opts: &TrainOptions,
) -> Option<f64> {
    let eval = split(kind, examples, opts).eval;
    let (t, l): (Vec<f64>, Vec<bool>) = eval
        .iter()
        .filter(|r| kind == ModelKind::Readmission || r.features.numeric[5] == 0.0)
        .filter_map(|r| truth.get(&r.id).map(|t| (*t, r.label)))
        .unzip();
    (!t.is_empty()).then(|| round6(auc(&t, &l)))
}

/// The generator's true probabilities from `truth.json` (denial by claim id, readmission by
/// encounter id), when the input directory has one.
pub fn read_truth(path: &std::path::Path) -> Result<(Truth, Truth), String> {
    read_truth_field(path, "probability")
}

/// As [`read_truth`], another probability field of the truth records (a list without it reads
/// as empty).
pub fn read_truth_field(path: &std::path::Path, field: &str) -> Result<(Truth, Truth), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let collect = |list: &str, key: &str| -> HashMap<String, f64> {
        v[list]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| Some((t[key].as_str()?.to_owned(), t[field].as_f64()?)))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok((
        collect("denials", "claim_id"),
        collect("readmissions", "encounter_id"),
    ))
}
