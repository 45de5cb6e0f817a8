//! The model artifact (versioned JSON) and scoring with drivers.
//!
//! A model is a logistic regression over standardized features: numeric features as they are,
//! categorical features one-hot over the most frequent training levels plus an `other` slot.
//! The artifact stores the **calibrated** coefficients (Platt scaling folded in: `a * z + b` is
//! again linear in the features), so a score is one dot product and the drivers, each
//! `coefficient x standardized value`, sum exactly with the intercept to the logit of the
//! reported probability.

use serde::{Deserialize, Serialize};

use super::features::{sigmoid, RawFeatures};
use crate::model::Driver;

/// Which prediction a model makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Denial,
    Readmission,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Denial => "denial",
            Self::Readmission => "readmission",
        }
    }

    pub fn numeric_names(self) -> &'static [&'static str] {
        match self {
            Self::Denial => &super::features::DENIAL_NUMERIC,
            Self::Readmission => &super::features::READMIT_NUMERIC,
        }
    }

    pub fn categorical_names(self) -> &'static [&'static str] {
        match self {
            Self::Denial => &super::features::DENIAL_CATEGORICAL,
            Self::Readmission => &super::features::READMIT_CATEGORICAL,
        }
    }
}

/// A numeric feature and its training mean and standard deviation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NumericSpec {
    pub name: String,
    /// What the feature means, for someone mapping another data source onto it.
    pub doc: String,
    pub mean: f64,
    pub std: f64,
    pub coefficient: f64,
}

/// A categorical feature: its kept levels (the `cap` most frequent in training) and, per level
/// and for `other`, the contribution to the logit of a record with that value (the sum over the
/// one-hot slots of coefficient x standardized slot value).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CategoricalSpec {
    pub name: String,
    pub doc: String,
    pub levels: Vec<String>,
    /// One per level, then one for `other`.
    pub level_contributions: Vec<f64>,
}

/// Reliability bin of a calibration check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

/// Platt scaling applied after the fit (the resampled fit over-predicts by design).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub method: String,
    /// Examples of the held-out calibration slice (the latest part of the training window, not
    /// used for the coefficients) the scaling was fitted on; 0 in artifacts written before it.
    #[serde(default)]
    pub calibration_examples: u64,
    /// p = sigmoid(slope * raw_logit + offset).
    pub slope: f64,
    pub offset: f64,
    /// ECE on the evaluation set before and after the correction.
    pub ece_before: f64,
    pub ece_after: f64,
    pub bins: Vec<ReliabilityBin>,
}

/// Evaluation on the later (held-out) part of the data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub examples: u64,
    pub positives: u64,
    pub auc_roc: f64,
    pub auc_pr: f64,
    pub ece: f64,
    pub precision_at_high: f64,
    pub recall_at_high: f64,
    pub top_decile_lift: f64,
    /// AUC of the generator's true probabilities on the same examples (when truth is known).
    pub oracle_auc: Option<f64>,
    /// Baselines on the same examples: LACE and HOSPITAL (readmission), payer base rate (denial).
    pub baselines: Vec<(String, f64)>,
}

/// Where and how the model was trained.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// First and last scoring time (ms) of the training examples, and of the evaluation ones.
    pub train_window_ms: (i64, i64),
    pub eval_window_ms: (i64, i64),
    pub train_examples: u64,
    pub train_positives: u64,
    /// Positives were repeated this many times in the fit (class imbalance), then Platt-corrected.
    pub positive_oversampling: u32,
    pub l2_alpha: f64,
    pub category_cap: usize,
    pub source: String,
    /// Examples needed this many days of observed history before their scoring time (from
    /// `history_start_ms`, the earliest scoring time among the examples) to be used for
    /// training or evaluation: a feature look-back cut short by the start of the data would
    /// differ between the early (training) and late (evaluation) windows.
    #[serde(default)]
    pub min_history_days: u32,
    #[serde(default)]
    pub history_start_ms: i64,
    /// Examples left out by that rule (scored before `history_start_ms + min_history_days`).
    #[serde(default)]
    pub short_history_excluded: u64,
}

/// A trained model: everything needed to score, audit and re-map it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    pub format: u32,
    pub kind: ModelKind,
    /// `<kind>-lr-<yyyymmdd of the training window end>-<hash of the coefficients>`.
    pub version: String,
    pub intercept: f64,
    pub numeric: Vec<NumericSpec>,
    pub categorical: Vec<CategoricalSpec>,
    pub calibration: Calibration,
    /// Tier thresholds the evaluation used (the service's configured ones decide at run time).
    pub thresholds: (f64, f64),
    pub training: TrainingInfo,
    pub metrics: Metrics,
    /// The training window's distribution of every feature (numeric first, then categorical),
    /// the reference of the in-stream drift monitor (population stability index). Empty in
    /// artifacts written before it existed: they load, and drift is then reported unavailable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference: Vec<FeatureReference>,
}

/// The training distribution of one feature over fixed bins.
///
/// Numeric: `edges` are the interior cut points (training deciles, deduplicated), bin `i` holds
/// values with exactly `i` edges `<=` them, so there are `edges.len() + 1` bins. Categorical:
/// no edges; one bin per kept level of the model (same order) and a last one for `other`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureReference {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<f64>,
    /// Share of the training examples in each bin (sums to 1).
    pub shares: Vec<f64>,
}

impl FeatureReference {
    /// Bin of a numeric value (see the type's doc).
    pub fn numeric_bin(&self, x: f64) -> usize {
        self.edges.partition_point(|e| *e <= x)
    }
}

/// Artifact format this build reads and writes.
pub const MODEL_FORMAT: u32 = 1;

/// A score before tiering: probability, logit and every feature's contribution.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    pub probability: f64,
    pub logit: f64,
    pub intercept: f64,
    /// (feature index: numeric first then categorical, contribution).
    pub contributions: Vec<(usize, f64)>,
}

impl LogisticModel {
    /// Parses and checks an artifact against the kind's feature names.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let m: LogisticModel = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if m.format != MODEL_FORMAT {
            return Err(format!(
                "model format {} (this build reads {MODEL_FORMAT})",
                m.format
            ));
        }
        let names: Vec<&str> = m.numeric.iter().map(|n| n.name.as_str()).collect();
        let cats: Vec<&str> = m.categorical.iter().map(|c| c.name.as_str()).collect();
        if names != m.kind.numeric_names() || cats != m.kind.categorical_names() {
            return Err(format!(
                "{} model's features do not match this build's feature spec",
                m.kind.as_str()
            ));
        }
        if m.categorical
            .iter()
            .any(|c| c.level_contributions.len() != c.levels.len() + 1)
            || m.numeric.iter().any(|n| n.std.is_nan() || n.std <= 0.0)
        {
            return Err("malformed model: category slots or standard deviations".into());
        }
        if !m.reference.is_empty() {
            let n = m.numeric.len();
            let ok = m.reference.len() == n + m.categorical.len()
                && m.reference.iter().enumerate().all(|(i, r)| {
                    let bins = match i.checked_sub(n) {
                        None => r.edges.len() + 1,
                        Some(j) => m.categorical[j].levels.len() + 1,
                    };
                    r.name == m.feature_name(i)
                        && r.shares.len() == bins
                        && r.edges.windows(2).all(|w| w[0] < w[1])
                        && r.shares.iter().all(|s| s.is_finite() && *s >= 0.0)
                });
            if !ok {
                return Err("malformed model: drift reference does not match the features".into());
            }
        }
        Ok(m)
    }

    /// Scores raw features. Contributions of all features are returned (drivers pick the largest).
    pub fn score(&self, f: &RawFeatures) -> Scored {
        let mut contributions = Vec::with_capacity(self.numeric.len() + self.categorical.len());
        let mut z = self.intercept;
        for (i, (spec, x)) in self.numeric.iter().zip(&f.numeric).enumerate() {
            let c = spec.coefficient * (x - spec.mean) / spec.std;
            z += c;
            contributions.push((i, c));
        }
        let n = self.numeric.len();
        for (j, (spec, v)) in self.categorical.iter().zip(&f.categorical).enumerate() {
            let slot = spec
                .levels
                .iter()
                .position(|l| l == v)
                .unwrap_or(spec.levels.len());
            let c = spec.level_contributions[slot];
            z += c;
            contributions.push((n + j, c));
        }
        Scored {
            probability: sigmoid(z),
            logit: z,
            intercept: self.intercept,
            contributions,
        }
    }

    /// Slot of a categorical value among feature `j`'s kept levels (`levels.len()` = other).
    pub fn category_slot(&self, j: usize, v: &str) -> usize {
        self.categorical.get(j).map_or(0, |c| {
            c.levels
                .iter()
                .position(|l| l == v)
                .unwrap_or(c.levels.len())
        })
    }

    /// Name of feature `i` (numeric first, then categorical).
    pub fn feature_name(&self, i: usize) -> &str {
        match self.numeric.get(i) {
            Some(n) => &n.name,
            None => self
                .categorical
                .get(i - self.numeric.len())
                .map_or("?", |c| c.name.as_str()),
        }
    }
}

/// The `k` largest contributions by absolute value, with plain-language explanations from
/// `explain(feature index, contribution)`; ties broken by feature index (deterministic).
pub fn top_drivers(
    scored: Scored,
    k: usize,
    name: impl Fn(usize) -> String,
    explain: impl Fn(usize, f64) -> String,
) -> Vec<Driver> {
    // The score's own contribution buffer is reordered in place (no copy).
    let mut idx = scored.contributions;
    idx.retain(|(_, c)| *c != 0.0);
    let order =
        |a: &(usize, f64), b: &(usize, f64)| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0));
    // Only the top k are ordered: partition them to the front first.
    if k < idx.len() {
        if k == 0 {
            return Vec::new();
        }
        idx.select_nth_unstable_by(k - 1, order);
        idx.truncate(k);
    }
    idx.sort_by(order);
    idx.into_iter()
        .map(|(i, c)| Driver {
            feature: name(i),
            contribution: round6(c),
            explanation: explain(i, c),
        })
        .collect()
}

/// Rounds to 6 decimals: outputs stay byte-identical across platforms' last-bit differences and
/// are easier to read.
pub fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
