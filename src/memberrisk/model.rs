//! The cost model artifact (versioned JSON) and prediction with drivers.
//!
//! A ridge regression of the paid amount of the next [`CostModel::horizon_days`] on the
//! standardized [`super::features::COST_NUMERIC`] features, trained by `claimwatch train --model
//! cost` ([`super::train`]). A prediction is `intercept + sum(coefficient x (x - mean) / std)`
//! dollars, floored at 0; each feature's term is its driver (dollars above or below the
//! prediction of a member at the training means), so the drivers sum with the intercept to the
//! unfloored prediction.

use serde::{Deserialize, Serialize};

use super::features::COST_NUMERIC;
use crate::model::CostDriver;

/// Format of the artifact; bumped when a field changes meaning.
pub const COST_MODEL_FORMAT: u32 = 1;

/// A numeric feature, its training mean and standard deviation and its coefficient (dollars per
/// standard deviation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostFeatureSpec {
    pub name: String,
    pub doc: String,
    pub mean: f64,
    pub std: f64,
    pub coefficient: f64,
}

/// Evaluation of a cost model on the later (evaluation) slice, with the naive baseline (the
/// member's paid amount of the last `horizon_days` carried forward) on the same examples.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CostMetrics {
    pub examples: u64,
    /// Coefficient of determination of the predicted dollars.
    pub r2: f64,
    /// Mean absolute error, dollars.
    pub mae_dollars: f64,
    /// Share of the evaluation slice's actual next-period paid amount that falls on the 10 % of
    /// members with the highest prediction.
    pub top_decile_capture: f64,
    pub baseline_r2: f64,
    pub baseline_mae_dollars: f64,
    pub baseline_top_decile_capture: f64,
    /// The best possible capture (the 10 % with the highest actual amounts).
    pub oracle_top_decile_capture: f64,
    pub mean_actual_dollars: f64,
}

/// Where and how the model was trained.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CostTrainingInfo {
    /// First and last cut day (`YYYY-MM-DD`) of the training slice.
    pub train_cuts: (String, String),
    /// First and last cut day of the evaluation slice.
    pub eval_cuts: (String, String),
    pub train_examples: u64,
    /// Ridge penalty (linfa-elasticnet `penalty` with `l1_ratio` 0) on standardized features.
    pub ridge_penalty: f64,
    /// Days between cut days.
    pub cut_every_days: i32,
    pub source: String,
}

/// The artifact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostModel {
    pub format: u32,
    pub version: String,
    /// Length of the predicted period after the cut day.
    pub horizon_days: i32,
    /// Prediction at the training means, dollars.
    pub intercept: f64,
    pub features: Vec<CostFeatureSpec>,
    pub metrics: CostMetrics,
    pub training: CostTrainingInfo,
}

/// Why an artifact was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CostModelError {
    #[error("cost model: {0}")]
    Parse(String),
    #[error("cost model format {found}, this build reads {COST_MODEL_FORMAT}")]
    Format { found: u32 },
    #[error("cost model features {found:?} do not match this build's {expected:?}")]
    Features {
        found: Vec<String>,
        expected: Vec<String>,
    },
}

/// A prediction and its drivers.
#[derive(Clone, Debug, PartialEq)]
pub struct CostPrediction {
    /// Predicted paid amount of the next period, cents (floored at 0).
    pub cents: i64,
    /// Per-feature contributions, dollars, in feature order.
    pub contributions: Vec<f64>,
}

impl CostModel {
    /// The model compiled into the binary (`src/score/models/cost.json`).
    pub fn embedded() -> Self {
        Self::parse(include_str!("../score/models/cost.json"))
            .expect("the embedded cost model is valid (tested)")
    }

    /// Reads and checks an artifact.
    pub fn parse(text: &str) -> Result<Self, CostModelError> {
        let m: Self =
            serde_json::from_str(text).map_err(|e| CostModelError::Parse(e.to_string()))?;
        if m.format != COST_MODEL_FORMAT {
            return Err(CostModelError::Format { found: m.format });
        }
        let names: Vec<String> = m.features.iter().map(|f| f.name.clone()).collect();
        if names != COST_NUMERIC {
            return Err(CostModelError::Features {
                found: names,
                expected: COST_NUMERIC.iter().map(|s| (*s).to_owned()).collect(),
            });
        }
        Ok(m)
    }

    /// Predicts from features in [`COST_NUMERIC`] order.
    pub fn predict(&self, x: &[f64]) -> CostPrediction {
        let contributions: Vec<f64> = self
            .features
            .iter()
            .zip(x)
            .map(|(f, v)| f.coefficient * (v - f.mean) / f.std)
            .collect();
        let dollars = self.intercept + contributions.iter().sum::<f64>();
        CostPrediction {
            cents: (dollars.max(0.0) * 100.0).round() as i64,
            contributions,
        }
    }

    /// The `n` largest drivers by absolute contribution (ties in feature order), in words.
    pub fn drivers(&self, x: &[f64], p: &CostPrediction, n: usize) -> Vec<CostDriver> {
        let mut idx: Vec<usize> = (0..p.contributions.len()).collect();
        idx.sort_by(|a, b| {
            p.contributions[*b]
                .abs()
                .total_cmp(&p.contributions[*a].abs())
                .then(a.cmp(b))
        });
        idx.into_iter()
            .take(n)
            .filter(|i| p.contributions[*i] != 0.0)
            .map(|i| {
                let f = &self.features[i];
                let c = p.contributions[i];
                CostDriver {
                    feature: f.name.clone(),
                    value: x[i],
                    contribution_dollars: (c * 100.0).round() / 100.0,
                    explanation: explain(&f.name, x[i], f.mean, c),
                }
            })
            .collect()
    }
}

fn explain(name: &str, value: f64, mean: f64, contribution: f64) -> String {
    let dir = if contribution >= 0.0 {
        "adds"
    } else {
        "takes off"
    };
    let amount = format!("${:.0}", contribution.abs());
    let what = match name {
        "paid_12m_dollars" => {
            format!("${value:.0} paid in the last 12 months (average ${mean:.0})")
        }
        "paid_3m_dollars" => format!("${value:.0} paid in the last 3 months (average ${mean:.0})"),
        "admissions_12m" => {
            format!("{value:.0} inpatient admissions in 12 months (average {mean:.1})")
        }
        "ed_visits_12m" => format!("{value:.0} emergency visits in 12 months (average {mean:.1})"),
        "observation_stays_12m" => {
            format!("{value:.0} observation stays in 12 months (average {mean:.1})")
        }
        "los_days_12m" => format!("{value:.0} inpatient days in 12 months (average {mean:.1})"),
        "charlson_index" => format!("Charlson index {value:.0} (average {mean:.1})"),
        _ => {
            let label = name.replace('_', " ");
            if value >= 0.5 {
                label
            } else {
                format!("no {label}")
            }
        }
    };
    format!("{what} {dir} {amount}")
}
