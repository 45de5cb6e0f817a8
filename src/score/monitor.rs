//! In-stream model monitoring: rolling discrimination and calibration on matured labels, and
//! feature drift of the scored population against the training window.
//!
//! **Labels.** When a label matures (a claim's outcome is final, a readmission window closes)
//! the score of the *current* model on the stored features (the very score that was emitted,
//! unless the model was reloaded since) and the label enter a ring of the last
//! `scoring.monitor_window_labels` pairs of the partition. Beside the ring the window keeps,
//! incrementally (add on entry, subtract on eviction), integer histograms from which AUC and
//! ECE are read in one pass over fixed bins:
//! - positives and negatives per score bin of width 0.001 ([`SCORE_BINS`]); the AUC is the
//!   Mann-Whitney statistic over the scores quantized to that grid (ties counted half), equal to
//!   a batch computation over the same quantized pairs ([`super::train::auc`]);
//! - per reliability bin (10 equal-width bins, as the training report): count, sum of the
//!   probabilities in micro-units (integers, so eviction is exact) and positives; the ECE is
//!   `sum |sum_p - positives| / n`, equal to [`super::train::ece`] over the same pairs.
//!
//! Memory is bounded by the ring (8 bytes a pair) plus 2 x 1000 + 10 x 3 counters per model.
//! Histograms of several partitions add up, so the service reports the union of its partitions'
//! windows.
//!
//! **Drift.** Every score of a model that carries a training reference
//! ([`super::model::FeatureReference`]) counts its features into that reference's bins, per
//! event day; the last `scoring.drift_window_days` days (by event time) form the recent
//! population. The population stability index of a feature is
//! `sum (a - e) ln(a / e)` over its bins (recent share `a`, training share `e`, both floored at
//! 1e-4), reported once the window holds [`MIN_DRIFT_SCORES`] scores. A model without a
//! reference (an artifact older than the reference) or the fallback reports drift unavailable.
//!
//! **Determinism.** Everything is a function of the partition's event sequence (event days, not
//! wall clock), so replay and the Kafka runtime compute the same windows. The windows are not
//! checkpointed: after a restart or a rebalance they refill from the labels that mature next. A
//! model reload (a new [`Arc`] of the model) starts the model's windows afresh.

use std::collections::VecDeque;
use std::sync::Arc;

use super::features::RawFeatures;
use super::model::LogisticModel;
use crate::model::EpochDay;

/// Score bins of the AUC histogram (width 0.001).
pub const SCORE_BINS: usize = 1000;
/// Equal-width reliability bins (as the training report).
pub const RELIABILITY_BINS: usize = 10;
/// Scores a drift window needs before its PSI is reported.
pub const MIN_DRIFT_SCORES: u64 = 200;
/// Floor of a share in the PSI (an empty bin would make it infinite).
const PSI_FLOOR: f64 = 1e-4;

/// Probability in micro-units (scores are emitted rounded to 6 decimals).
fn micro(p: f64) -> u32 {
    (p.clamp(0.0, 1.0) * 1e6).round() as u32
}

/// The AUC histogram bin of a micro-unit probability.
pub fn score_bin(micro: u32) -> usize {
    (micro as usize / (1_000_000 / SCORE_BINS)).min(SCORE_BINS - 1)
}

fn reliability_bin(micro: u32) -> usize {
    (micro as usize / (1_000_000 / RELIABILITY_BINS)).min(RELIABILITY_BINS - 1)
}

/// One reliability bin's sums.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReliabilitySums {
    pub count: u64,
    /// Sum of the predicted probabilities, micro-units.
    pub sum_micro: u64,
    pub positives: u64,
}

/// Mergeable label statistics: the histograms behind AUC and ECE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelStats {
    pub positives: Vec<u64>,
    pub negatives: Vec<u64>,
    pub reliability: [ReliabilitySums; RELIABILITY_BINS],
}

impl Default for LabelStats {
    fn default() -> Self {
        Self {
            positives: vec![0; SCORE_BINS],
            negatives: vec![0; SCORE_BINS],
            reliability: [ReliabilitySums::default(); RELIABILITY_BINS],
        }
    }
}

impl LabelStats {
    fn add(&mut self, micro: u32, label: bool) {
        let b = score_bin(micro);
        if label {
            self.positives[b] += 1;
        } else {
            self.negatives[b] += 1;
        }
        let r = &mut self.reliability[reliability_bin(micro)];
        r.count += 1;
        r.sum_micro += u64::from(micro);
        r.positives += u64::from(label);
    }

    fn remove(&mut self, micro: u32, label: bool) {
        let b = score_bin(micro);
        let h = if label {
            &mut self.positives[b]
        } else {
            &mut self.negatives[b]
        };
        *h = h.saturating_sub(1);
        let r = &mut self.reliability[reliability_bin(micro)];
        r.count = r.count.saturating_sub(1);
        r.sum_micro = r.sum_micro.saturating_sub(u64::from(micro));
        r.positives = r.positives.saturating_sub(u64::from(label));
    }

    /// Adds another window's histograms (another partition's).
    pub fn merge(&mut self, other: &LabelStats) {
        for (a, b) in self.positives.iter_mut().zip(&other.positives) {
            *a += b;
        }
        for (a, b) in self.negatives.iter_mut().zip(&other.negatives) {
            *a += b;
        }
        for (a, b) in self.reliability.iter_mut().zip(&other.reliability) {
            a.count += b.count;
            a.sum_micro += b.sum_micro;
            a.positives += b.positives;
        }
    }

    /// Labelled pairs in the window.
    pub fn count(&self) -> u64 {
        self.reliability.iter().map(|r| r.count).sum()
    }

    /// ROC AUC over the quantized scores (ties half); `None` without both classes.
    pub fn auc(&self) -> Option<f64> {
        let (mut u, mut below, mut pos) = (0.0f64, 0.0f64, 0.0f64);
        for (p, n) in self.positives.iter().zip(&self.negatives) {
            let (p, n) = (*p as f64, *n as f64);
            u += p * (below + 0.5 * n);
            below += n;
            pos += p;
        }
        (pos > 0.0 && below > 0.0).then(|| u / (pos * below))
    }

    /// Expected calibration error over the reliability bins; `None` when empty.
    pub fn ece(&self) -> Option<f64> {
        let n = self.count();
        (n > 0).then(|| {
            self.reliability
                .iter()
                .map(|r| (r.sum_micro as f64 / 1e6 - r.positives as f64).abs())
                .sum::<f64>()
                / n as f64
        })
    }

    /// Per reliability bin: (mean predicted, observed rate, count), `None` when empty.
    pub fn reliability_bins(&self) -> [Option<(f64, f64, u64)>; RELIABILITY_BINS] {
        self.reliability.map(|r| {
            (r.count > 0).then(|| {
                let n = r.count as f64;
                (
                    r.sum_micro as f64 / 1e6 / n,
                    r.positives as f64 / n,
                    r.count,
                )
            })
        })
    }
}

/// The last `capacity` matured (score, label) pairs of a model and their histograms.
#[derive(Clone, Debug, Default)]
pub struct LabelWindow {
    capacity: usize,
    ring: VecDeque<(u32, bool)>,
    stats: LabelStats,
}

impl LabelWindow {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            ring: VecDeque::new(),
            stats: LabelStats::default(),
        }
    }

    /// A matured label and the probability the model gives the example.
    pub fn push(&mut self, probability: f64, label: bool) {
        let m = micro(probability);
        if self.ring.len() == self.capacity {
            if let Some((old, l)) = self.ring.pop_front() {
                self.stats.remove(old, l);
            }
        }
        self.ring.push_back((m, label));
        self.stats.add(m, label);
    }

    pub fn stats(&self) -> &LabelStats {
        &self.stats
    }

    /// The pairs in the window, oldest first (probability, label).
    pub fn pairs(&self) -> impl Iterator<Item = (f64, bool)> + '_ {
        self.ring.iter().map(|(m, l)| (f64::from(*m) / 1e6, *l))
    }
}

/// Counts of the recent scored population over a model's reference bins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DriftStats {
    /// Bins of every feature, concatenated in the reference's order.
    pub counts: Vec<u64>,
    pub scores: u64,
}

impl DriftStats {
    pub fn merge(&mut self, other: &DriftStats) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.scores += other.scores;
    }

    /// PSI per feature of `model`'s reference: `(name, psi)`, psi `None` while the window holds
    /// fewer than [`MIN_DRIFT_SCORES`] scores. Empty when the model has no reference.
    pub fn psi(&self, model: &LogisticModel) -> Vec<(String, Option<f64>)> {
        let mut out = Vec::with_capacity(model.reference.len());
        let mut off = 0;
        for r in &model.reference {
            let bins = r.shares.len();
            let psi =
                (self.scores >= MIN_DRIFT_SCORES && off + bins <= self.counts.len()).then(|| {
                    let counts = &self.counts[off..off + bins];
                    let total = counts.iter().sum::<u64>().max(1) as f64;
                    counts
                        .iter()
                        .zip(&r.shares)
                        .map(|(c, e)| {
                            let a = (*c as f64 / total).max(PSI_FLOOR);
                            let e = e.max(PSI_FLOOR);
                            (a - e) * (a / e).ln()
                        })
                        .sum::<f64>()
                });
            out.push((r.name.clone(), psi));
            off += bins;
        }
        out
    }
}

/// Per-day counts of the scored population, the last `window_days` days.
#[derive(Clone, Debug, Default)]
pub struct DriftWindow {
    window_days: i32,
    days: VecDeque<(EpochDay, DriftStats)>,
    /// First bin of each feature in the concatenated counts; empty without a reference.
    offsets: Vec<usize>,
    width: usize,
}

impl DriftWindow {
    fn new(window_days: i32, model: Option<&LogisticModel>) -> Self {
        let mut offsets = Vec::new();
        let mut width = 0;
        for r in model.map_or(&[][..], |m| &m.reference[..]) {
            offsets.push(width);
            width += r.shares.len();
        }
        Self {
            window_days: window_days.max(1),
            days: VecDeque::new(),
            offsets,
            width,
        }
    }

    /// Counts one scored example's features (no-op without a reference).
    fn record(&mut self, model: &LogisticModel, f: &RawFeatures, day: EpochDay) {
        if self.offsets.is_empty() {
            return;
        }
        let newest = self.days.back().map_or(day, |(d, _)| (*d).max(day));
        if day <= newest - self.window_days {
            return; // older than the window
        }
        let pos = match self.days.iter().rposition(|(d, _)| *d <= day) {
            Some(p) if self.days[p].0 == day => p,
            found => {
                let at = found.map_or(0, |p| p + 1);
                self.days.insert(
                    at,
                    (
                        day,
                        DriftStats {
                            counts: vec![0; self.width],
                            scores: 0,
                        },
                    ),
                );
                at
            }
        };
        let stats = &mut self.days[pos].1;
        stats.scores += 1;
        let n = model.numeric.len();
        for (i, r) in model.reference.iter().enumerate() {
            let bin = match i.checked_sub(n) {
                None => r.numeric_bin(f.numeric.get(i).copied().unwrap_or(0.0)),
                Some(j) => model.category_slot(j, f.categorical.get(j).map_or("", String::as_str)),
            };
            if let Some(c) = stats.counts.get_mut(self.offsets[i] + bin) {
                *c += 1;
            }
        }
        while self
            .days
            .front()
            .is_some_and(|(d, _)| *d <= newest - self.window_days)
        {
            self.days.pop_front();
        }
    }

    /// The window's counts summed over its days.
    pub fn stats(&self) -> DriftStats {
        let mut s = DriftStats {
            counts: vec![0; self.width],
            scores: 0,
        };
        for (_, d) in &self.days {
            s.merge(d);
        }
        s
    }
}

/// Monitoring state of one model kind in one partition.
#[derive(Clone, Debug, Default)]
pub struct ModelWindows {
    /// The model the windows describe (`None`: the transparent fallback).
    model: Option<Arc<LogisticModel>>,
    started: bool,
    labels: LabelWindow,
    drift: DriftWindow,
}

impl ModelWindows {
    /// Starts afresh when the model in use is not the one the windows describe.
    fn align(&mut self, model: Option<&Arc<LogisticModel>>, capacity: usize, days: i32) {
        let same = match (&self.model, model) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same || !self.started {
            self.model = model.cloned();
            self.labels = LabelWindow::new(capacity);
            self.drift = DriftWindow::new(days, model.map(|m| m.as_ref()));
            self.started = true;
        }
    }

    pub fn labels(&self) -> &LabelWindow {
        &self.labels
    }

    /// What the metrics need: version, label histograms, drift counts and the model (for the
    /// reference shares and feature names).
    pub fn snapshot(&self) -> Option<ModelSnapshot> {
        self.started.then(|| ModelSnapshot {
            version: self
                .model
                .as_ref()
                .map_or_else(|| "fallback".to_owned(), |m| m.version.clone()),
            model: self.model.clone(),
            labels: self.labels.stats().clone(),
            drift: self.drift.stats(),
        })
    }
}

/// A model's monitoring windows as the metrics read them (mergeable across partitions).
#[derive(Clone, Debug)]
pub struct ModelSnapshot {
    pub version: String,
    pub model: Option<Arc<LogisticModel>>,
    pub labels: LabelStats,
    pub drift: DriftStats,
}

impl ModelSnapshot {
    /// Adds another partition's windows of the same model version.
    pub fn merge(&mut self, other: &ModelSnapshot) {
        self.labels.merge(&other.labels);
        self.drift.merge(&other.drift);
    }

    /// PSI per feature; empty when drift is unavailable (fallback, or no reference).
    pub fn psi(&self) -> Vec<(String, Option<f64>)> {
        self.model
            .as_ref()
            .map(|m| self.drift.psi(m))
            .unwrap_or_default()
    }
}

/// The monitoring windows of a partition: `[denial, readmission]`.
#[derive(Clone, Debug, Default)]
pub struct Monitor {
    pub capacity: usize,
    pub drift_days: i32,
    models: [ModelWindows; 2],
}

impl Monitor {
    pub fn new(capacity: usize, drift_days: i32) -> Self {
        Self {
            capacity,
            drift_days,
            models: Default::default(),
        }
    }

    fn windows(&mut self, kind: usize, model: Option<&Arc<LogisticModel>>) -> &mut ModelWindows {
        let (c, d) = (self.capacity, self.drift_days);
        let w = &mut self.models[kind];
        w.align(model, c, d);
        w
    }

    /// A score was emitted: count its features into the drift window.
    pub fn scored(
        &mut self,
        kind: usize,
        model: Option<&Arc<LogisticModel>>,
        f: &RawFeatures,
        day: EpochDay,
    ) {
        let w = self.windows(kind, model);
        if let Some(m) = model {
            w.drift.record(m, f, day);
        }
    }

    /// A label matured for an example the model scores `probability`.
    pub fn matured(
        &mut self,
        kind: usize,
        model: Option<&Arc<LogisticModel>>,
        probability: f64,
        label: bool,
    ) {
        self.windows(kind, model).labels.push(probability, label);
    }

    /// The windows of `kind` (0 denial, 1 readmission).
    pub fn model(&self, kind: usize) -> &ModelWindows {
        &self.models[kind]
    }

    pub fn snapshot(&self) -> [Option<ModelSnapshot>; 2] {
        [self.models[0].snapshot(), self.models[1].snapshot()]
    }
}

/// Merges partitions' snapshots of one model: those of the version holding the most labels (a
/// reload in progress mixes versions for a moment).
pub fn merge_snapshots<'a>(
    parts: impl IntoIterator<Item = &'a ModelSnapshot>,
) -> Option<ModelSnapshot> {
    let parts: Vec<&ModelSnapshot> = parts.into_iter().collect();
    let mut by_version: std::collections::BTreeMap<&str, u64> = Default::default();
    for p in &parts {
        *by_version.entry(p.version.as_str()).or_default() += p.labels.count() + p.drift.scores;
    }
    let version = by_version
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(v, _)| (*v).to_owned())?;
    let mut it = parts.into_iter().filter(|p| p.version == version);
    let mut out = it.next()?.clone();
    for p in it {
        out.merge(p);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::train::{auc, ece};
    use rand::{Rng, SeedableRng};

    #[test]
    fn incremental_auc_and_ece_equal_the_batch_computation_over_the_window() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut w = LabelWindow::new(3_000);
        for step in 0..10_000 {
            let p: f64 = (rng.gen::<f64>() * 1e6).round() / 1e6;
            // Informative but noisy labels; the ring evicts most of them on the way.
            let label = rng.gen::<f64>() < p * 0.8;
            w.push(p, label);
            if step % 2_500 == 2_499 || step == 10 {
                let pairs: Vec<(f64, bool)> = w.pairs().collect();
                let quantized: Vec<f64> = pairs
                    .iter()
                    .map(|(p, _)| score_bin(micro(*p)) as f64)
                    .collect();
                let probs: Vec<f64> = pairs.iter().map(|(p, _)| *p).collect();
                let labels: Vec<bool> = pairs.iter().map(|(_, l)| *l).collect();
                let s = w.stats();
                assert_eq!(s.count() as usize, pairs.len());
                assert_eq!(s.auc(), Some(auc(&quantized, &labels)), "step {step}");
                let (batch_ece, bins) = ece(&probs, &labels);
                assert!((s.ece().unwrap() - batch_ece).abs() < 1e-12, "step {step}");
                let inc: Vec<_> = s.reliability_bins().into_iter().flatten().collect();
                assert_eq!(inc.len(), bins.len());
                for (a, b) in inc.iter().zip(&bins) {
                    assert_eq!(a.2, b.count);
                    assert!((a.0 - b.mean_predicted).abs() < 1e-6);
                    assert!((a.1 - b.observed_rate).abs() < 1e-6);
                }
            }
        }
        assert_eq!(w.pairs().count(), 3_000);
        // Quantization to 0.001 moves the AUC only through ties within a bin.
        let pairs: Vec<(f64, bool)> = w.pairs().collect();
        let raw: Vec<f64> = pairs.iter().map(|(p, _)| *p).collect();
        let labels: Vec<bool> = pairs.iter().map(|(_, l)| *l).collect();
        assert!((w.stats().auc().unwrap() - auc(&raw, &labels)).abs() < 2e-3);
    }

    #[test]
    fn merged_partitions_equal_one_window_over_all_pairs() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        let (mut a, mut b, mut all) = (
            LabelWindow::new(10_000),
            LabelWindow::new(10_000),
            LabelWindow::new(10_000),
        );
        for i in 0..4_000 {
            let p: f64 = rng.gen();
            let l = rng.gen::<f64>() < p;
            if i % 3 == 0 { &mut a } else { &mut b }.push(p, l);
            all.push(p, l);
        }
        let mut merged = a.stats().clone();
        merged.merge(b.stats());
        assert_eq!(&merged, all.stats());
    }
}
