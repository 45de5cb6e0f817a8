//! Model monitoring metrics: the scoring stage's rolling windows (`score::monitor`) of every
//! partition this instance owns, merged at scrape time, and the model reload outcomes.
//!
//! Partition tasks hand in a snapshot of their windows at each checkpoint
//! ([`super::Metrics::set_partition_monitor`]); [`ModelMetrics::refresh`] adds up the histograms
//! of the partitions (those of the model version holding the most labels) and sets the gauges:
//! AUC, ECE, reliability bins, window sizes, PSI per feature and its maximum. Labels are bounded:
//! `model` (2 values), `bin` (10), `feature` (the build's feature names, which every loaded
//! artifact must match), `outcome` (2).

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus::{GaugeVec, IntCounter, IntGauge, Registry};

use super::labels::MODELS;
use super::{counter_vec, float_gauge_vec, gauge_vec, MetricsError};
use crate::score::model::ModelKind;
use crate::score::monitor::{merge_snapshots, ModelSnapshot, RELIABILITY_BINS};
use crate::score::reload::Artifact;

/// The `bin` label of the reliability gauges.
pub const RELIABILITY_BIN_LABELS: [&str; RELIABILITY_BINS] = [
    "0.0-0.1", "0.1-0.2", "0.2-0.3", "0.3-0.4", "0.4-0.5", "0.5-0.6", "0.6-0.7", "0.7-0.8",
    "0.8-0.9", "0.9-1.0",
];

const KINDS: [ModelKind; 2] = [ModelKind::Denial, ModelKind::Readmission];

pub(crate) struct ModelMetrics {
    partitions: Mutex<BTreeMap<i32, [Option<ModelSnapshot>; 2]>>,
    auc: GaugeVec,
    ece: GaugeVec,
    max_psi: GaugeVec,
    feature_psi: GaugeVec,
    predicted: GaugeVec,
    observed: GaugeVec,
    window_labels: [IntGauge; 2],
    drift_scores: [IntGauge; 2],
    /// [model][loaded, refused]
    /// By [`Artifact`] (denial, readmission, cost) and outcome (loaded, refused).
    reloads: [[IntCounter; 2]; 3],
}

impl ModelMetrics {
    /// `auc`, `ece`, `max_psi`: the existing quality gauges (`business.rs` creates them).
    pub(crate) fn new(
        r: &Registry,
        auc: GaugeVec,
        ece: GaugeVec,
        max_psi: GaugeVec,
    ) -> Result<Self, MetricsError> {
        let feature_psi = float_gauge_vec(
            r,
            "claimwatch_model_feature_psi",
            "Population stability index of one feature of the model: recent scored population (drift window) against the training window; NaN while unavailable.",
            &["model", "feature"],
        )?;
        let predicted = float_gauge_vec(
            r,
            "claimwatch_model_reliability_predicted_ratio",
            "Mean predicted probability of the matured labels in one reliability bin of the rolling window; NaN when the bin is empty.",
            &["model", "bin"],
        )?;
        let observed = float_gauge_vec(
            r,
            "claimwatch_model_reliability_observed_ratio",
            "Observed outcome rate of the matured labels in one reliability bin of the rolling window; NaN when the bin is empty.",
            &["model", "bin"],
        )?;
        let labels = gauge_vec(
            r,
            "claimwatch_model_monitor_window_labels",
            "Matured labels in the rolling AUC / calibration window (all partitions of this instance).",
            &["model"],
        )?;
        let scores = gauge_vec(
            r,
            "claimwatch_model_drift_window_scores",
            "Scores counted in the feature-drift window (all partitions of this instance).",
            &["model"],
        )?;
        let reloads = counter_vec(
            r,
            "claimwatch_model_reloads_total",
            "Model files found changed in the model directory, by model (denial, readmission, cost) and outcome (loaded, refused: malformed, the previous model keeps scoring).",
            &["model", "outcome"],
        )?;
        for (m, kind) in MODELS.iter().zip(KINDS) {
            for f in kind.numeric_names().iter().chain(kind.categorical_names()) {
                feature_psi.with_label_values(&[m, f]).set(f64::NAN);
            }
            for b in RELIABILITY_BIN_LABELS {
                predicted.with_label_values(&[m, b]).set(f64::NAN);
                observed.with_label_values(&[m, b]).set(f64::NAN);
            }
        }
        Ok(Self {
            partitions: Mutex::new(BTreeMap::new()),
            window_labels: std::array::from_fn(|i| labels.with_label_values(&[MODELS[i]])),
            drift_scores: std::array::from_fn(|i| scores.with_label_values(&[MODELS[i]])),
            reloads: Artifact::ALL.map(|a| {
                [
                    reloads.with_label_values(&[a.as_str(), "loaded"]),
                    reloads.with_label_values(&[a.as_str(), "refused"]),
                ]
            }),
            auc,
            ece,
            max_psi,
            feature_psi,
            predicted,
            observed,
        })
    }

    pub(crate) fn set_partition(&self, partition: i32, snap: [Option<ModelSnapshot>; 2]) {
        self.partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(partition, snap);
    }

    pub(crate) fn forget_partition(&self, partition: i32) {
        self.partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&partition);
    }

    pub(crate) fn reload(&self, kind: Artifact, loaded: bool) {
        self.reloads[kind as usize][usize::from(!loaded)].inc();
    }

    /// Sets the gauges from the partitions' windows (models no partition reported keep what
    /// `Metrics::set_model_quality` set, NaN by default).
    pub(crate) fn refresh(&self) {
        let parts = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        for (i, model) in MODELS.iter().enumerate() {
            let Some(s) = merge_snapshots(parts.values().filter_map(|p| p[i].as_ref())) else {
                continue;
            };
            let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
            self.auc
                .with_label_values(&[model])
                .set(nan(s.labels.auc()));
            self.ece
                .with_label_values(&[model])
                .set(nan(s.labels.ece()));
            for (b, bin) in s.labels.reliability_bins().iter().enumerate() {
                let l = RELIABILITY_BIN_LABELS[b];
                self.predicted
                    .with_label_values(&[model, l])
                    .set(nan(bin.map(|x| x.0)));
                self.observed
                    .with_label_values(&[model, l])
                    .set(nan(bin.map(|x| x.1)));
            }
            self.window_labels[i].set(s.labels.count() as i64);
            self.drift_scores[i].set(s.drift.scores as i64);
            let psi = s.psi();
            let mut max: Option<f64> = None;
            let names = KINDS[i]
                .numeric_names()
                .iter()
                .chain(KINDS[i].categorical_names());
            for name in names {
                // Only the build's feature names become label values.
                let v = psi.iter().find(|(n, _)| n == name).and_then(|(_, v)| *v);
                if let Some(v) = v {
                    max = Some(max.map_or(v, |m| m.max(v)));
                }
                self.feature_psi
                    .with_label_values(&[model, name])
                    .set(nan(v));
            }
            self.max_psi.with_label_values(&[model]).set(nan(max));
        }
    }
}
