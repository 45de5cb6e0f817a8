//! Training the cost model (`claimwatch train --model cost`) from matured windows.
//!
//! 1. **Examples** ([`build_examples`]): a batch pass over the encounter records and the paid
//!    amounts of their claims (with the event time each amount became known). Every
//!    `cut_every_days` a cut day is taken; every member with a stay admitted in the 365 days to the
//!    cut gives one example: the features as known at the end of the cut day (only records and
//!    paid amounts with an event time up to then: what the stream sees), and as label the final
//!    paid amount of the stays admitted in the `horizon_days` after the cut. A cut is *matured*
//!    when `horizon_days + payment_lag_days` have passed before the last input event, so the
//!    label's claims have been paid; unmatured cuts are not used.
//! 2. **Time-based split**: the earlier `train_fraction` of the examples by cut day trains (whole
//!    cut days, never split), the later ones evaluate.
//! 3. **Fit**: ridge regression (`linfa-elasticnet` with `l1_ratio` 0, coordinate descent) of the
//!    label in dollars on the standardized features.
//! 4. **Evaluation** on the later slice: R², MAE, top-decile capture, against the naive baseline
//!    (the paid amount of the last `horizon_days` before the cut carried forward).
//!
//! Caveat: consecutive cuts overlap (a training label's period overlaps the evaluation features'
//! look-back); the split is by time, so no evaluation label is ever seen in training only when the
//! evaluation cuts start `horizon_days` after the last training cut, which the defaults do not
//! enforce.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use linfa::prelude::*;
use linfa_elasticnet::ElasticNet;
use ndarray::{Array1, Array2};

use super::features::{cost_features, doc_of, paid_between, COST_NUMERIC, LOOKBACK_DAYS};
use super::model::{CostFeatureSpec, CostMetrics, CostModel, CostTrainingInfo, COST_MODEL_FORMAT};
use crate::model::{
    day_of, format_day, start_of_day, Encounter, EpochDay, EpochMillis, InputEvent,
};
use crate::readmit::StayRec;
use crate::refdata::RefData;

/// Options of example building and fitting; the defaults trained the shipped model.
#[derive(Clone, Debug, PartialEq)]
pub struct CostTrainOptions {
    pub horizon_days: i32,
    pub cut_every_days: i32,
    /// Days of history before the first cut (so features see a full year).
    pub warmup_days: i32,
    /// Days after the horizon during which the label's claims are still being paid.
    pub payment_lag_days: i32,
    pub train_fraction: f64,
    pub ridge_penalty: f64,
    pub source: String,
}

impl Default for CostTrainOptions {
    fn default() -> Self {
        Self {
            // Half a year: the period care management plans outreach for.
            horizon_days: 182,
            cut_every_days: 28,
            warmup_days: LOOKBACK_DAYS,
            // DOMAIN.md: payment 14-45 days after submission, plus billing delay.
            payment_lag_days: 60,
            train_fraction: 0.7,
            ridge_penalty: 0.01,
            source: String::new(),
        }
    }
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum CostTrainError {
    #[error("reading {path}: {message}")]
    Read { path: String, message: String },
    #[error("not enough matured examples: {train} train, {eval} eval (need 100 and 1; a longer input, e.g. `generate --days 730`)")]
    TooFew { train: usize, eval: usize },
    #[error("ridge fit: {0}")]
    Fit(String),
}

/// The paid amount of an encounter's claim as known from `event_time` on.
#[derive(Clone, Debug, PartialEq)]
pub struct CostObservation {
    pub member_id: String,
    pub encounter_id: String,
    pub paid_cents: i64,
    pub event_time: EpochMillis,
}

/// One matured window (no member id: examples are not identifying).
#[derive(Clone, Debug, PartialEq)]
pub struct CostExample {
    pub cut: EpochDay,
    pub features: [f64; COST_NUMERIC.len()],
    /// Final paid amount of the stays admitted in `(cut, cut + horizon]`, cents.
    pub label_cents: i64,
    /// Paid amount known at the cut of the stays admitted in `(cut - horizon, cut]`, cents.
    pub baseline_cents: i64,
}

/// The winning record of each encounter among `records` (sorted by event time) up to `until`.
fn stays_until(records: &[&Encounter], until: EpochMillis) -> Vec<StayRec> {
    let mut by_id: BTreeMap<&str, StayRec> = BTreeMap::new();
    for e in records.iter().take_while(|e| e.event_time < until) {
        let r = StayRec::from_event(e);
        match by_id.get(e.encounter_id.as_str()) {
            Some(old) if old.winner >= r.winner => {}
            _ => {
                by_id.insert(e.encounter_id.as_str(), r);
            }
        }
    }
    by_id.into_values().collect()
}

fn costs_until(costs: &[&CostObservation], until: EpochMillis) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for c in costs.iter().take_while(|c| c.event_time < until) {
        m.insert(c.encounter_id.clone(), c.paid_cents);
    }
    m
}

/// The cut days of an input whose events span `first..=last` (days).
pub fn cut_days(first: EpochDay, last: EpochDay, opts: &CostTrainOptions) -> Vec<EpochDay> {
    let mut cuts = Vec::new();
    let mut c = first + opts.warmup_days;
    while c + opts.horizon_days + opts.payment_lag_days <= last {
        cuts.push(c);
        c += opts.cut_every_days;
    }
    cuts
}

/// Builds the matured examples (see the module doc), ordered by cut day then member.
pub fn build_examples(
    refdata: &RefData,
    encounters: &[Encounter],
    costs: &[CostObservation],
    cuts: &[EpochDay],
    horizon_days: i32,
) -> Vec<CostExample> {
    let mut members: BTreeMap<&str, (Vec<&Encounter>, Vec<&CostObservation>)> = BTreeMap::new();
    for e in encounters {
        members.entry(e.member_id.as_str()).or_default().0.push(e);
    }
    for c in costs {
        if let Some(m) = members.get_mut(c.member_id.as_str()) {
            m.1.push(c);
        }
    }
    let mut out: Vec<(EpochDay, usize, CostExample)> = Vec::new();
    for (mi, (records, paid)) in members.values_mut().enumerate() {
        records.sort_by_key(|e| e.event_time);
        paid.sort_by_key(|c| c.event_time);
        let final_stays = stays_until(records, i64::MAX);
        let final_costs = costs_until(paid, i64::MAX);
        for &cut in cuts {
            let until = start_of_day(cut + 1);
            let stays = stays_until(records, until);
            if !stays
                .iter()
                .any(|s| !s.cancelled && s.admit_date <= cut && s.admit_date > cut - LOOKBACK_DAYS)
            {
                continue;
            }
            let known = costs_until(paid, until);
            let features = cost_features(refdata, &stays, |e| known.get(e).copied(), cut);
            out.push((
                cut,
                mi,
                CostExample {
                    cut,
                    features,
                    label_cents: paid_between(&final_stays, &final_costs, cut, cut + horizon_days),
                    baseline_cents: paid_between(&stays, &known, cut - horizon_days, cut),
                },
            ));
        }
    }
    out.sort_by_key(|(cut, mi, _)| (*cut, *mi));
    out.into_iter().map(|(_, _, e)| e).collect()
}

/// R², mean absolute error and top-decile capture of `pred` against `actual` (dollars).
pub fn regression_metrics(pred: &[f64], actual: &[f64]) -> (f64, f64, f64) {
    let n = actual.len().max(1) as f64;
    let mean = actual.iter().sum::<f64>() / n;
    let ss_tot: f64 = actual.iter().map(|a| (a - mean).powi(2)).sum();
    let ss_res: f64 = pred.iter().zip(actual).map(|(p, a)| (a - p).powi(2)).sum();
    let mae = pred
        .iter()
        .zip(actual)
        .map(|(p, a)| (a - p).abs())
        .sum::<f64>()
        / n;
    let r2 = if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else {
        0.0
    };
    (r2, mae, top_decile_capture(pred, actual))
}

/// Share of the total actual amount on the 10 % (at least one) with the highest `score` (ties by
/// position).
pub fn top_decile_capture(score: &[f64], actual: &[f64]) -> f64 {
    let total: f64 = actual.iter().sum();
    if total <= 0.0 || actual.is_empty() {
        return 0.0;
    }
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|a, b| score[*b].total_cmp(&score[*a]).then(a.cmp(b)));
    let k = actual.len().div_ceil(10);
    idx[..k].iter().map(|i| actual[*i]).sum::<f64>() / total
}

fn r6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Fits and evaluates a cost model on `examples` (ordered by cut day).
pub fn fit(examples: &[CostExample], opts: &CostTrainOptions) -> Result<CostModel, CostTrainError> {
    let target = ((examples.len() as f64) * opts.train_fraction).round() as usize;
    // Move the split to the next cut boundary: a cut day is wholly train or wholly eval.
    let mut split = target.min(examples.len());
    while split > 0 && split < examples.len() && examples[split].cut == examples[split - 1].cut {
        split += 1;
    }
    let (train, eval) = examples.split_at(split);
    if train.len() < 100 || eval.is_empty() {
        return Err(CostTrainError::TooFew {
            train: train.len(),
            eval: eval.len(),
        });
    }
    let nf = COST_NUMERIC.len();
    let n = train.len() as f64;
    let mut means = vec![0.0; nf];
    let mut stds = vec![1.0; nf];
    for j in 0..nf {
        let m = train.iter().map(|e| e.features[j]).sum::<f64>() / n;
        let v = train
            .iter()
            .map(|e| (e.features[j] - m).powi(2))
            .sum::<f64>()
            / n;
        means[j] = m;
        stds[j] = if v.sqrt() > 1e-9 { v.sqrt() } else { 1.0 };
    }
    let mut x = Array2::<f64>::zeros((train.len(), nf));
    for (i, e) in train.iter().enumerate() {
        for j in 0..nf {
            x[[i, j]] = (e.features[j] - means[j]) / stds[j];
        }
    }
    let y: Array1<f64> = train.iter().map(|e| e.label_cents as f64 / 100.0).collect();
    let fitted = ElasticNet::ridge()
        .penalty(opts.ridge_penalty)
        .max_iterations(5000)
        .fit(&Dataset::new(x, y))
        .map_err(|e| CostTrainError::Fit(e.to_string()))?;
    let coef = fitted.hyperplane();
    let mut model = CostModel {
        format: COST_MODEL_FORMAT,
        version: String::new(),
        horizon_days: opts.horizon_days,
        intercept: r6(fitted.intercept()),
        features: (0..nf)
            .map(|j| CostFeatureSpec {
                name: COST_NUMERIC[j].to_owned(),
                doc: doc_of(COST_NUMERIC[j]).to_owned(),
                mean: r6(means[j]),
                std: r6(stds[j]),
                coefficient: r6(coef[j]),
            })
            .collect(),
        metrics: CostMetrics::default(),
        training: CostTrainingInfo {
            train_cuts: (
                format_day(train[0].cut),
                format_day(train[train.len() - 1].cut),
            ),
            eval_cuts: (
                format_day(eval[0].cut),
                format_day(eval[eval.len() - 1].cut),
            ),
            train_examples: train.len() as u64,
            ridge_penalty: opts.ridge_penalty,
            cut_every_days: opts.cut_every_days,
            source: opts.source.clone(),
        },
    };
    model.metrics = evaluate(&model, eval);
    let hash = crate::state::fingerprint(&format!("{:?}{:?}", model.intercept, model.features));
    model.version = format!(
        "cost-ridge-{}-{:08x}",
        format_day(train[train.len() - 1].cut).replace('-', ""),
        hash as u32
    );
    Ok(model)
}

/// The metrics of `model` and of the carried-forward baseline on `eval`.
pub fn evaluate(model: &CostModel, eval: &[CostExample]) -> CostMetrics {
    let actual: Vec<f64> = eval.iter().map(|e| e.label_cents as f64 / 100.0).collect();
    let pred: Vec<f64> = eval
        .iter()
        .map(|e| model.predict(&e.features).cents as f64 / 100.0)
        .collect();
    let base: Vec<f64> = eval
        .iter()
        .map(|e| e.baseline_cents as f64 / 100.0)
        .collect();
    let (r2, mae, cap) = regression_metrics(&pred, &actual);
    let (br2, bmae, bcap) = regression_metrics(&base, &actual);
    CostMetrics {
        examples: eval.len() as u64,
        r2: r6(r2),
        mae_dollars: r6(mae),
        top_decile_capture: r6(cap),
        baseline_r2: r6(br2),
        baseline_mae_dollars: r6(bmae),
        baseline_top_decile_capture: r6(bcap),
        oracle_top_decile_capture: r6(top_decile_capture(&actual, &actual)),
        mean_actual_dollars: r6(actual.iter().sum::<f64>() / actual.len().max(1) as f64),
    }
}

/// A plain-text report of a fitted cost model.
pub fn report(m: &CostModel) -> String {
    use std::fmt::Write;
    let me = &m.metrics;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "model {} (cost, next {} days)",
        m.version, m.horizon_days
    );
    let _ = writeln!(
        s,
        "train: {} examples, cuts {} .. {} every {} days, ridge penalty {}",
        m.training.train_examples,
        m.training.train_cuts.0,
        m.training.train_cuts.1,
        m.training.cut_every_days,
        m.training.ridge_penalty
    );
    let _ = writeln!(
        s,
        "eval (cuts {} .. {}, {} examples, mean actual ${:.0}):",
        m.training.eval_cuts.0, m.training.eval_cuts.1, me.examples, me.mean_actual_dollars
    );
    let _ = writeln!(
        s,
        "  model:    R2 {:.4}, MAE ${:.0}, top-decile capture {:.3}",
        me.r2, me.mae_dollars, me.top_decile_capture
    );
    let _ = writeln!(
        s,
        "  baseline (last {} days carried forward): R2 {:.4}, MAE ${:.0}, top-decile capture {:.3}",
        m.horizon_days, me.baseline_r2, me.baseline_mae_dollars, me.baseline_top_decile_capture
    );
    let _ = writeln!(
        s,
        "  oracle top-decile capture {:.3}",
        me.oracle_top_decile_capture
    );
    let _ = writeln!(
        s,
        "intercept ${:.2}; coefficients (dollars per standard deviation):",
        m.intercept
    );
    for f in &m.features {
        let _ = writeln!(s, "  {:<28} {:+10.2}", f.name, f.coefficient);
    }
    s
}

/// Reads the encounter records of an input directory (stream files, JSON or Avro).
pub fn read_encounters(input: &Path) -> Result<Vec<Encounter>, CostTrainError> {
    let err = |e: std::io::Error| CostTrainError::Read {
        path: input.display().to_string(),
        message: e.to_string(),
    };
    let Some(reader) =
        crate::replay::files::StreamReader::open(input, crate::model::InputStream::Encounters)
            .map_err(err)?
    else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for rec in reader {
        if let Ok(InputEvent::Encounter(e)) = rec.map_err(err)?.event {
            out.push(e);
        }
    }
    Ok(out)
}

/// The paid amounts of encounters' claims from a replay's `claimwatch.claim-lifecycle.jsonl`
/// (every update of a claim that bills an encounter, with its time).
pub fn read_costs(lifecycle: &Path) -> Result<Vec<CostObservation>, CostTrainError> {
    let err = |m: String| CostTrainError::Read {
        path: lifecycle.display().to_string(),
        message: m,
    };
    let text = std::fs::read(lifecycle).map_err(|e| err(e.to_string()))?;
    let mut last: HashMap<String, i64> = HashMap::new();
    let mut out = Vec::new();
    for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let u: crate::model::ClaimLifecycleUpdate =
            crate::codec::json::decode(line).map_err(|e| err(e.to_string()))?;
        let (Some(member), Some(enc)) = (u.member_id, u.encounter_id) else {
            continue;
        };
        if last.get(&u.claim_id) == Some(&u.paid_to_date_cents) {
            continue;
        }
        last.insert(u.claim_id, u.paid_to_date_cents);
        out.push(CostObservation {
            member_id: member,
            encounter_id: enc,
            paid_cents: u.paid_to_date_cents,
            event_time: u.event_time,
        });
    }
    Ok(out)
}

/// Examples from an input directory and the replay of it in `work` (see the module doc).
pub fn examples_from(
    refdata: &RefData,
    input: &Path,
    work: &Path,
    opts: &CostTrainOptions,
) -> Result<Vec<CostExample>, CostTrainError> {
    let encounters = read_encounters(input)?;
    let costs = read_costs(&work.join("claimwatch.claim-lifecycle.jsonl"))?;
    let times = encounters
        .iter()
        .map(|e| e.event_time)
        .chain(costs.iter().map(|c| c.event_time));
    let (first, last) = times.fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
    if first > last {
        return Ok(Vec::new());
    }
    let cuts = cut_days(day_of(first), day_of(last), opts);
    Ok(build_examples(
        refdata,
        &encounters,
        &costs,
        &cuts,
        opts.horizon_days,
    ))
}
