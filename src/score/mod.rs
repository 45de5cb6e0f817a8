//! Risk scoring in the core: denial risk at claim submission, readmission risk at discharge,
//! high-risk discharge alerts, and training labels that mature in the stream.
//!
//! **Job.** On every submitted claim (originals and replacements; voids are not scored) emit a
//! [`DenialRiskScore`]; on every discharge of a stay that can be an index stay emit a
//! [`ReadmissionRiskScore`] with LACE and HOSPITAL alongside, and a [`HighRiskAlert`] with a
//! recommended intervention when the tier is HIGH (once per stay). Each score carries the model
//! version, a calibrated probability, a tier from [`ScoringConfig`] thresholds and the top
//! drivers: signed per-feature contributions to the logit (coefficient x standardized value) in
//! words. Without a trained model the transparent score is used and `fallback` says so: the
//! payer's rolling denial rate for claims, the LACE curve for discharges.
//!
//! **State** (three tables of the partition, checkpointed with the rest):
//! - `history` keyed `payer:<id>` / `provider:<id>` / `family:<code family>` / `all`: rolling
//!   daily counts of matured claim outcomes (by CARC category) and of submissions with a prior
//!   authorization. Read at submission **as of the end of the previous day**; written when a
//!   claim's outcome matures, so a claim never sees its own outcome.
//! - `pending_claims` keyed by claim id: the features as they were at scoring time, until the
//!   outcome is final (front-door rejection, or first adjudication: denied by CAS group + CARC
//!   category as in `reconcile`).
//! - `pending_stays` keyed by member id: scored stays awaiting the close of their readmission
//!   window (a member timer, event time), and the stays already scored (one score per stay),
//!   each kept [`SCORED_GUARD_DAYS`] after its discharge; a member timer removes the entry when
//!   the last has gone and nothing is pending, also after the member left the detector's state.
//!
//! **Training.** When a label matures the core appends a [`TrainingExample`] (the stored
//! features + label) to the partition's training store, drained by the caller (`replay` writes
//! them when `scoring.collect_training` is on); `claimwatch train` fits on them ([`train`]).
//!
//! **Emits** [`OutputEvent::DenialRisk`], [`OutputEvent::ReadmissionRisk`],
//! [`OutputEvent::HighRiskAlert`].

pub mod features;
pub mod html;
pub mod model;
pub mod monitor;
pub mod reload;
pub mod train;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::config::{CoreConfig, ScoringConfig, TierThresholds};
use crate::core::TABLES;
use crate::model::{
    day_of, start_of_day, ClaimFrequency, ClaimStatus, ClaimSubmitted, DenialRiskScore, Driver,
    Encounter, EncounterEventType, EpochDay, EpochMillis, HighRiskAlert, OutputEvent,
    ReadmissionRiskScore, RiskTier,
};
use crate::readmit::{Detector, MemberState, StayRec};
use crate::reconcile::ClaimState;
use crate::refdata::{CarcCategory, RefData};
use crate::state::Table;

use features::{
    code_family, denial_features, history_keys, readmit_features, shrunk, sigmoid, DenialHistory,
    RawFeatures, RollingCounts, Transparent, PRIOR_DENIAL_RATE,
};
use model::{round6, top_drivers, Scored};
pub use model::{LogisticModel, ModelKind};

/// The shipped default models, trained on generated data (`claimwatch train`), so the core
/// scores from the first event without any file.
const EMBEDDED_DENIAL: &str = include_str!("models/denial.json");
const EMBEDDED_READMISSION: &str = include_str!("models/readmission.json");

/// The models in use; `None` means the transparent fallback for a risk score, and the model
/// compiled into the binary for the cost model (which has no fallback).
#[derive(Clone, Debug, Default)]
pub struct Models {
    pub denial: Option<Arc<LogisticModel>>,
    pub readmission: Option<Arc<LogisticModel>>,
    /// The high-cost member model (`cost.json`, `memberrisk`).
    pub cost: Option<Arc<crate::memberrisk::CostModel>>,
}

impl Models {
    /// The model of `kind`.
    pub fn get(&self, kind: ModelKind) -> Option<&Arc<LogisticModel>> {
        match kind {
            ModelKind::Denial => self.denial.as_ref(),
            ModelKind::Readmission => self.readmission.as_ref(),
        }
    }

    /// The models compiled into the binary (none when the shipped file is a placeholder).
    pub fn embedded() -> Self {
        let load = |text: &str, kind: ModelKind| {
            LogisticModel::from_json(text)
                .ok()
                .filter(|m| m.kind == kind)
                .map(Arc::new)
        };
        Self {
            denial: load(EMBEDDED_DENIAL, ModelKind::Denial),
            readmission: load(EMBEDDED_READMISSION, ModelKind::Readmission),
            cost: Some(Arc::new(crate::memberrisk::CostModel::embedded())),
        }
    }

    /// No trained model: every score is the transparent fallback.
    pub fn none() -> Self {
        Self::default()
    }

    /// Loads `denial.json`, `readmission.json` and `cost.json` from a directory (any may be
    /// absent: a risk score then uses its transparent fallback, the cost model the compiled-in
    /// one).
    pub fn load_dir(dir: &std::path::Path) -> Result<Self, String> {
        let load = |kind: ModelKind| -> Result<Option<Arc<LogisticModel>>, String> {
            let path = dir.join(format!("{}.json", kind.as_str()));
            if !path.exists() {
                return Ok(None);
            }
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let m =
                LogisticModel::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            if m.kind != kind {
                return Err(format!(
                    "{}: holds a {} model",
                    path.display(),
                    m.kind.as_str()
                ));
            }
            Ok(Some(Arc::new(m)))
        };
        let path = dir.join("cost.json");
        let cost = if path.exists() {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let m = crate::memberrisk::CostModel::parse(&text)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Some(Arc::new(m))
        } else {
            None
        };
        Ok(Self {
            denial: load(ModelKind::Denial)?,
            readmission: load(ModelKind::Readmission)?,
            cost,
        })
    }
}

/// One matured training example: the features as they were at scoring time and the label.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingExample {
    pub kind: ModelKind,
    /// Claim id (denial) or encounter id (readmission): joins to the generator's truth.
    pub id: String,
    pub scored_at: EpochMillis,
    pub matured_at: EpochMillis,
    pub features: RawFeatures,
    pub label: bool,
    /// Denial category of a denial / days to the readmission, when positive.
    pub label_detail: Option<String>,
    /// The transparent score's probability at scoring time (payer base rate; LACE curve).
    pub baseline_probability: f64,
    pub lace_points: Option<i32>,
    pub hospital_points: Option<i32>,
}

/// A scored claim awaiting its outcome.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PendingDenial {
    pub scored_at: EpochMillis,
    pub features: RawFeatures,
    pub baseline_probability: f64,
    /// History keys to credit with the outcome: payer, provider, code family, all.
    pub keys: Vec<String>,
    /// Only remittances paid on or after this day decide the label: a replacement's outcome is
    /// the adjudication after it, not the denial of the claim it replaces.
    pub outcome_from_day: EpochDay,
}

/// A scored stay awaiting the close of its readmission window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingStay {
    pub encounter_id: String,
    pub discharge_date: EpochDay,
    pub scored_at: EpochMillis,
    pub features: RawFeatures,
    pub transparent: Transparent,
    pub baseline_probability: f64,
}

/// A scored stay whose readmission window closed (returned by [`Scorer::mature_stays`]).
#[derive(Clone, Debug, PartialEq)]
pub struct MaturedStay {
    pub encounter_id: String,
    pub discharge_date: EpochDay,
    /// The calibrated probability: the model's score of the features stored at discharge (the
    /// discharge score unless the model was reloaded in between; LACE curve without a model).
    pub probability: f64,
    pub tier: RiskTier,
}

/// Days a scored stay stays in [`PendingStays::scored`] after its discharge, so that a late or
/// re-sent discharge of it is not scored twice: longer than the member look-back (365 days),
/// after which the stay has left the detector too. When the last one leaves and no stay is
/// pending, a member timer removes the entry.
pub const SCORED_GUARD_DAYS: i32 = 400;

/// Scoring state of one member.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PendingStays {
    pub pending: Vec<PendingStay>,
    /// Stays already scored, with their discharge day (one score and one alert per stay).
    pub scored: Vec<(String, EpochDay)>,
}

/// The scoring tables of a partition.
pub struct ScoreTables {
    pub history: Table<RollingCounts>,
    pub claims: Table<PendingDenial>,
    pub stays: Table<PendingStays>,
    /// Rolling AUC / calibration and drift windows (in memory, not checkpointed: see
    /// [`monitor`]).
    pub monitor: monitor::Monitor,
}

impl ScoreTables {
    pub fn new(durable: bool) -> Self {
        let mut t = Self {
            history: Table::new(TABLES[2].0, TABLES[2].1),
            claims: Table::new(TABLES[3].0, TABLES[3].1),
            stays: Table::new(TABLES[4].0, TABLES[4].1),
            monitor: monitor::Monitor::default(),
        };
        if !durable {
            t.history = t.history.without_dirty_tracking();
            t.claims = t.claims.without_dirty_tracking();
            t.stays = t.stays.without_dirty_tracking();
        }
        t
    }
}

/// Risk scoring. Stateless itself: state lives in [`ScoreTables`].
///
/// The models sit behind an [`ArcSwap`] shared by every clone of the scorer (every partition
/// task of the service): a reload ([`Scorer::swap_models`]) replaces them for the next event
/// without a restart, and each event reads the pointer once without a lock.
#[derive(Debug, Clone)]
pub struct Scorer {
    refdata: Arc<RefData>,
    cfg: ScoringConfig,
    window_days: i32,
    readmit_window_days: i32,
    models: Arc<ArcSwap<Models>>,
}

fn tier(p: f64, t: &TierThresholds) -> RiskTier {
    if p >= t.high {
        RiskTier::High
    } else if p >= t.medium {
        RiskTier::Medium
    } else {
        RiskTier::Low
    }
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    (p / (1.0 - p)).ln()
}

impl Scorer {
    pub fn new(refdata: Arc<RefData>, cfg: &CoreConfig, models: Models) -> Self {
        Self {
            refdata,
            window_days: cfg.scoring.history_window_days as i32,
            readmit_window_days: cfg.readmission_window_days as i32,
            cfg: cfg.scoring.clone(),
            models: Arc::new(ArcSwap::from_pointee(models)),
        }
    }

    /// The models in use now.
    pub fn models(&self) -> Arc<Models> {
        self.models.load_full()
    }

    /// Replaces the models for every clone of this scorer; events already being scored finish
    /// with the models they loaded.
    pub fn swap_models(&self, models: Models) {
        self.models.store(Arc::new(models));
    }

    /// Replaces one model, keeping the other.
    pub fn swap_model(&self, kind: ModelKind, model: Arc<LogisticModel>) {
        self.models.rcu(|m| {
            let mut m = Models::clone(m);
            match kind {
                ModelKind::Denial => m.denial = Some(Arc::clone(&model)),
                ModelKind::Readmission => m.readmission = Some(Arc::clone(&model)),
            }
            m
        });
    }

    fn monitor<'a>(&self, t: &'a mut ScoreTables) -> &'a mut monitor::Monitor {
        if t.monitor.capacity == 0 {
            t.monitor = monitor::Monitor::new(
                self.cfg.monitor_window_labels as usize,
                self.cfg.drift_window_days as i32,
            );
        }
        &mut t.monitor
    }

    pub fn config(&self) -> &ScoringConfig {
        &self.cfg
    }

    /// The rolling history of a claim's keys as of the end of the day before `today`.
    pub fn history_for(
        &self,
        history: &Table<RollingCounts>,
        keys: &[String; 5],
        today: EpochDay,
    ) -> DenialHistory {
        let sums = |k: &str| {
            history
                .get(k)
                .map(|c| c.sums(today - 1, self.window_days))
                .unwrap_or_default()
        };
        DenialHistory {
            payer: sums(&keys[0]),
            provider: sums(&keys[1]),
            family: sums(&keys[2]),
            all: sums(&keys[3]),
            service: sums(&keys[4]),
        }
    }

    /// Scores a submission's features (the pure part: model or fallback, tier, drivers).
    pub fn score_denial(
        &self,
        claim: &ClaimSubmitted,
        f: &RawFeatures,
        h: &DenialHistory,
    ) -> (DenialRiskScore, f64) {
        self.score_denial_with(&self.models.load(), claim, f, h)
    }

    fn score_denial_with(
        &self,
        models: &Models,
        claim: &ClaimSubmitted,
        f: &RawFeatures,
        h: &DenialHistory,
    ) -> (DenialRiskScore, f64) {
        let base = shrunk(
            h.all.denied,
            h.all.decided,
            PRIOR_DENIAL_RATE,
            self.cfg.history_prior_claims,
        );
        let payer_rate = f.numeric[6];
        let (probability, version, fallback, drivers) = match &models.denial {
            Some(m) => {
                let s = m.score(f);
                let probability = s.probability;
                let d = top_drivers(
                    s,
                    self.cfg.max_drivers,
                    |i| m.feature_name(i).to_owned(),
                    |i, c| explain_denial(i, c, f, h),
                );
                (probability, m.version.clone(), false, d)
            }
            None => {
                // Transparent: the payer's shrunk rolling rate; one driver carries the difference
                // from the overall rate, so intercept (overall) + driver = logit.
                let c = logit(payer_rate) - logit(base);
                (
                    payer_rate,
                    "fallback-payer-base-rate".to_owned(),
                    true,
                    vec![Driver {
                        feature: "payer_denial_rate_30d".into(),
                        contribution: round6(c),
                        explanation: explain_denial(6, c, f, h),
                    }],
                )
            }
        };
        let mut id = String::with_capacity(claim.claim_id.len() + 16);
        id.push_str(&claim.claim_id);
        id.push_str(":risk:");
        id.push_str(&claim.event_id);
        (
            DenialRiskScore {
                output_id: id,
                claim_id: claim.claim_id.clone(),
                event_time: claim.event_time,
                model_version: version,
                fallback,
                probability: round6(probability),
                tier: tier(probability, &self.cfg.denial_tiers),
                likely_denial_category: features::likely_denial_category(claim, h)
                    .map(str::to_owned),
                drivers,
                frequency: match claim.frequency {
                    ClaimFrequency::Replacement => "REPLACEMENT",
                    _ => "ORIGINAL",
                }
                .to_owned(),
                baseline_probability: round6(payer_rate),
            },
            payer_rate,
        )
    }

    /// A submitted claim: score it, remember its features, credit the code family's prior-auth
    /// counts, and mature its label at once if its outcome is already in state (late export).
    #[allow(clippy::too_many_arguments)]
    pub fn on_claim(
        &self,
        t: &mut ScoreTables,
        claim: &ClaimSubmitted,
        state: Option<&ClaimState>,
        denial_category: Option<&str>,
        out: &mut Vec<OutputEvent>,
        training: &mut Vec<TrainingExample>,
    ) {
        if !self.cfg.enabled || claim.frequency == ClaimFrequency::Void {
            t.claims.remove(&claim.claim_id);
            return;
        }
        let family = code_family(claim);
        let keys = history_keys(claim, &family);
        let today = day_of(claim.event_time);
        let h = self.history_for(&t.history, &keys, today);
        let f = denial_features(claim, &family, &h, self.cfg.history_prior_claims);
        let models = self.models.load();
        let (score, base) = self.score_denial_with(&models, claim, &f, &h);
        out.push(OutputEvent::DenialRisk(score));
        self.monitor(t).scored(0, models.denial.as_ref(), &f, today);
        let with_auth = f.numeric[3] > 0.0;
        let with_attachment = features::attachment_sent(claim);
        let window = self.window_days;
        t.history.update(&keys[2], |c| {
            let d = c.day_mut(today, window);
            d.submitted += 1;
            d.submitted_with_auth += u32::from(with_auth);
        });
        t.history.update(&keys[4], |c| {
            let d = c.day_mut(today, window);
            d.submitted += 1;
            d.submitted_with_attachment += u32::from(with_attachment);
        });
        t.claims.insert(
            claim.claim_id.clone(),
            PendingDenial {
                scored_at: claim.event_time,
                features: f,
                baseline_probability: base,
                keys: keys[..4].to_vec(),
                outcome_from_day: if claim.frequency == ClaimFrequency::Replacement {
                    claim.submitted_date
                } else {
                    EpochDay::MIN
                },
            },
        );
        if let Some(state) = state {
            self.on_claim_outcome(
                t,
                &claim.claim_id,
                state,
                claim.event_time,
                denial_category,
                training,
            );
        }
    }

    /// After any claim event: if the claim has a pending score and its outcome is now final,
    /// write the training example and credit the rolling history.
    #[allow(clippy::too_many_arguments)]
    pub fn on_claim_outcome(
        &self,
        t: &mut ScoreTables,
        claim_id: &str,
        state: &ClaimState,
        now: EpochMillis,
        denial_category: Option<&str>,
        training: &mut Vec<TrainingExample>,
    ) {
        let Some(status) = state.last_status else {
            return;
        };
        let Some(from_day) = t.claims.get(claim_id).map(|p| p.outcome_from_day) else {
            return;
        };
        let (rejected, label) = match status {
            ClaimStatus::Rejected => (true, true),
            ClaimStatus::Paid | ClaimStatus::PartiallyPaid | ClaimStatus::Denied => {
                match self.first_adjudication_denied(state, from_day) {
                    Some(denied) => (false, denied),
                    None => return,
                }
            }
            ClaimStatus::Voided | ClaimStatus::Forwarded | ClaimStatus::Reversed => {
                t.claims.remove(claim_id);
                return;
            }
            _ => return,
        };
        let Some(p) = t.claims.remove(claim_id) else {
            return;
        };
        {
            // The monitored model's score of the stored features (the emitted one unless the
            // model was reloaded since; the fallback's is the stored base rate).
            let models = self.models.load();
            let probability = models.denial.as_ref().map_or(p.baseline_probability, |m| {
                round6(m.score(&p.features).probability)
            });
            self.monitor(t)
                .matured(0, models.denial.as_ref(), probability, label);
        }
        let category = if rejected {
            Some("FRONT_DOOR_REJECTION")
        } else if label {
            denial_category
        } else {
            None
        };
        let today = day_of(now);
        let window = self.window_days;
        let cat_index =
            category.and_then(|c| CarcCategory::ALL.iter().position(|k| k.as_str() == c));
        for key in &p.keys {
            t.history.update(key, |c| {
                let d = c.day_mut(today, window);
                d.decided += 1;
                d.denied += u32::from(label);
                d.rejected += u32::from(rejected);
                if let Some(i) = cat_index {
                    d.by_category[i] += 1;
                }
            });
        }
        if self.cfg.collect_training {
            training.push(TrainingExample {
                kind: ModelKind::Denial,
                id: claim_id.to_owned(),
                scored_at: p.scored_at,
                matured_at: now,
                features: p.features,
                label,
                label_detail: category.map(str::to_owned),
                baseline_probability: p.baseline_probability,
                lace_points: None,
                hospital_points: None,
            });
        }
    }

    /// Whether the first adjudication paid on or after `from_day` (reversals aside) was a denial:
    /// nothing paid, nothing applied to the patient's share, and a denial CARC category (CAS
    /// group + CARC, as `reconcile` defines it) or CLP02 4. `None` before such an 835.
    fn first_adjudication_denied(&self, state: &ClaimState, from_day: EpochDay) -> Option<bool> {
        let first = state
            .remits
            .iter()
            .filter(|r| r.status != "22" && !r.is_predetermination() && r.payment_date >= from_day)
            .min_by_key(|r| (r.payment_date, r.event_time, r.id))?;
        Some(
            first.paid_cents <= 0
                && first.patient_cents <= 0
                && (first.status == "4"
                    || first.adjustments.iter().any(|(g, c, a)| {
                        *a > 0 && self.refdata.adjustment_category(*g, c).is_denial()
                    })),
        )
    }

    /// Scores a discharge's extracted features (the pure part).
    pub fn score_readmission(
        &self,
        member_id: &str,
        index: &StayRec,
        event_time: EpochMillis,
        x: &features::ReadmitExtract,
    ) -> (ReadmissionRiskScore, Option<HighRiskAlert>) {
        self.score_readmission_with(&self.models.load(), member_id, index, event_time, x)
    }

    fn score_readmission_with(
        &self,
        models: &Models,
        member_id: &str,
        index: &StayRec,
        event_time: EpochMillis,
        x: &features::ReadmitExtract,
    ) -> (ReadmissionRiskScore, Option<HighRiskAlert>) {
        let f = &x.features;
        let tr = x.transparent;
        let (probability, version, fallback, drivers) = match &models.readmission {
            Some(m) => {
                let s = m.score(f);
                let probability = s.probability;
                let d = top_drivers(
                    s,
                    self.cfg.max_drivers,
                    |i| m.feature_name(i).to_owned(),
                    |i, c| explain_readmit(i, c, f),
                );
                (probability, m.version.clone(), false, d)
            }
            None => {
                let s = lace_scored(f, tr);
                let probability = s.probability;
                let names = [
                    "lace_length_of_stay",
                    "lace_acuity",
                    "lace_comorbidity",
                    "lace_ed_visits",
                ];
                let d = top_drivers(
                    s,
                    self.cfg.max_drivers,
                    |i| names[i].to_owned(),
                    |i, c| explain_lace(i, c, f),
                );
                (probability, "fallback-lace".to_owned(), true, d)
            }
        };
        let discharge = index.discharge_date.unwrap_or(index.admit_date);
        let tier = tier(probability, &self.cfg.readmission_tiers);
        let cohort = f.categorical[1].clone();
        let score = ReadmissionRiskScore {
            output_id: format!("{member_id}:{}:risk", index.encounter_id),
            member_id: member_id.to_owned(),
            encounter_id: index.encounter_id.clone(),
            event_time,
            model_version: version.clone(),
            fallback,
            probability: round6(probability),
            score: (probability * 100.0).round() as i32,
            tier,
            lace_points: tr.lace,
            hospital_points: tr.hospital,
            drivers,
            lace_band: tr.lace_band().to_owned(),
            hospital_band: tr.hospital_band().to_owned(),
            hrrp_cohort: (cohort != "NONE").then_some(cohort),
            discharge_date: discharge,
        };
        let alert = (tier == RiskTier::High).then(|| {
            let row = self
                .cfg
                .interventions
                .iter()
                .find(|i| probability >= i.min_probability)
                .or(self.cfg.interventions.last());
            HighRiskAlert {
                output_id: format!("{member_id}:{}:alert", index.encounter_id),
                member_id: member_id.to_owned(),
                encounter_id: index.encounter_id.clone(),
                facility_id: index.facility_id.clone(),
                discharge_date: discharge,
                event_time,
                probability: score.probability,
                tier,
                drivers: score.drivers.clone(),
                recommended_intervention: row.map(|r| r.name.clone()).unwrap_or_default(),
                intervention_cost_cents: row.map_or(0, |r| r.cost_cents),
                intervention_expected_reduction: row.map_or(0.0, |r| r.expected_relative_reduction),
                intervention_source: row.map(|r| r.source.clone()).unwrap_or_default(),
                model_version: version,
                fallback,
            }
        });
        (score, alert)
    }

    /// After an encounter record: score the stay once, at its discharge, if it can be an index.
    pub fn on_encounter(
        &self,
        t: &mut ScoreTables,
        member_id: &str,
        e: &Encounter,
        member: &MemberState,
        detector: &Detector,
        out: &mut Vec<OutputEvent>,
    ) {
        if !self.cfg.enabled || e.event_type == EncounterEventType::Cancel {
            return;
        }
        let Some(index) = member
            .stays
            .iter()
            .find(|s| s.encounter_id == e.encounter_id)
        else {
            return;
        };
        let Some(discharge) = index.discharge_date else {
            return;
        };
        if !index.is_acute_inpatient() || !detector.can_be_index(index) {
            return;
        }
        if t.stays
            .get(member_id)
            .is_some_and(|p| p.scored.iter().any(|(id, _)| *id == e.encounter_id))
        {
            return;
        }
        let x = readmit_features(
            &self.refdata,
            index,
            &member.stays,
            e.payer_category.map(|c| c.as_str()),
        );
        let models = self.models.load();
        let (score, alert) =
            self.score_readmission_with(&models, member_id, index, e.event_time, &x);
        out.push(OutputEvent::ReadmissionRisk(score));
        self.monitor(t).scored(
            1,
            models.readmission.as_ref(),
            &x.features,
            day_of(e.event_time),
        );
        if let Some(a) = alert {
            out.push(OutputEvent::HighRiskAlert(a));
        }
        let keep_from = discharge - SCORED_GUARD_DAYS;
        t.stays.update(member_id, |p| {
            p.scored.retain(|(_, d)| *d >= keep_from);
            p.scored.push((e.encounter_id.clone(), discharge));
            p.pending.push(PendingStay {
                encounter_id: e.encounter_id.clone(),
                discharge_date: discharge,
                scored_at: e.event_time,
                baseline_probability: x.transparent.lace_probability(),
                features: x.features,
                transparent: x.transparent,
            });
        });
    }

    /// When the member's earliest pending readmission window closes (event time); without a
    /// pending stay, when its last scored stay leaves the re-scoring guard
    /// ([`SCORED_GUARD_DAYS`]) and the member's entry can go.
    pub fn next_due(&self, t: &ScoreTables, member_id: &str) -> Option<EpochMillis> {
        t.stays.get(member_id).and_then(|p| {
            p.pending
                .iter()
                .map(|s| self.window_close(s.discharge_date))
                .min()
                .or_else(|| {
                    p.scored
                        .iter()
                        .map(|(_, d)| start_of_day(d + SCORED_GUARD_DAYS + 1))
                        .max()
                })
        })
    }

    fn window_close(&self, discharge: EpochDay) -> EpochMillis {
        start_of_day(discharge + self.readmit_window_days + 1)
    }

    /// Matures every pending stay whose window closed by `now`: label = the detector's decision
    /// (an unplanned readmission within the window). A stay that is no longer an index (a late
    /// transfer or cancel) is dropped without a label.
    pub fn mature_stays(
        &self,
        t: &mut ScoreTables,
        member_id: &str,
        member: Option<&MemberState>,
        detector: &Detector,
        now: EpochMillis,
        training: &mut Vec<TrainingExample>,
    ) -> Vec<MaturedStay> {
        let mut matured = Vec::new();
        let Some(mut p) = t.stays.get(member_id).map(|p| p.clone()) else {
            return matured;
        };
        let (due, rest): (Vec<PendingStay>, Vec<PendingStay>) = p
            .pending
            .into_iter()
            .partition(|s| self.window_close(s.discharge_date) <= now);
        p.pending = rest;
        let decisions = member
            .map(|m| detector.decide(&m.stays))
            .unwrap_or_default();
        for s in due {
            let models = self.models.load();
            let probability = models
                .readmission
                .as_ref()
                .map_or(s.baseline_probability, |m| {
                    round6(m.score(&s.features).probability)
                });
            matured.push(MaturedStay {
                encounter_id: s.encounter_id.clone(),
                discharge_date: s.discharge_date,
                probability,
                tier: tier(probability, &self.cfg.readmission_tiers),
            });
            let Some(d) = decisions
                .iter()
                .find(|d| d.index.encounter_id == s.encounter_id)
            else {
                continue;
            };
            let readmit = d.readmission.filter(|(_, _, planned)| planned.is_none());
            self.monitor(t).matured(
                1,
                models.readmission.as_ref(),
                probability,
                readmit.is_some(),
            );
            if self.cfg.collect_training {
                training.push(TrainingExample {
                    kind: ModelKind::Readmission,
                    id: s.encounter_id,
                    scored_at: s.scored_at,
                    matured_at: now,
                    features: s.features,
                    label: readmit.is_some(),
                    label_detail: readmit.map(|(_, days, _)| format!("{days} days")),
                    baseline_probability: s.baseline_probability,
                    lace_points: Some(s.transparent.lace),
                    hospital_points: Some(s.transparent.hospital),
                });
            }
        }
        let now_day = day_of(now);
        p.scored.retain(|(_, d)| *d >= now_day - SCORED_GUARD_DAYS);
        if p.pending.is_empty() && p.scored.is_empty() {
            t.stays.remove(member_id);
        } else {
            t.stays.insert(member_id.to_owned(), p);
        }
        matured
    }
}

/// LACE as a scored logit: intercept of the fallback curve plus 0.192 x points per component.
fn lace_scored(f: &RawFeatures, tr: Transparent) -> Scored {
    let los = f.numeric[3] as i32;
    let l = match los {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 3,
        4..=6 => 4,
        7..=13 => 5,
        _ => 7,
    };
    let a = if f.numeric[4] > 0.0 { 3 } else { 0 };
    let e = (f.numeric[7] as i32).min(4);
    let c = tr.lace - l - a - e;
    let w = 0.192;
    let contributions: Vec<(usize, f64)> = [l, a, c, e]
        .iter()
        .enumerate()
        .map(|(i, pts)| (i, w * f64::from(*pts)))
        .collect();
    let z = -3.9 + contributions.iter().map(|(_, c)| c).sum::<f64>();
    Scored {
        probability: sigmoid(z),
        logit: z,
        intercept: -3.9,
        contributions,
    }
}

fn direction(c: f64) -> &'static str {
    if c >= 0.0 {
        "raises risk"
    } else {
        "lowers risk"
    }
}

/// An explanation is built in one buffer (no intermediate strings): this runs for every driver of
/// every scored claim. Counts are whole numbers and written as integers, which prints exactly what
/// `{:.0}` printed for them.
fn explanation(c: f64, what: impl FnOnce(&mut String) -> std::fmt::Result) -> String {
    let mut s = String::with_capacity(96);
    let _ = what(&mut s);
    s.push_str(": ");
    s.push_str(direction(c));
    s
}

/// A rate written as a percentage with no decimals ("22 %").
struct Pct(f64);

impl std::fmt::Display for Pct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.0} %", self.0 * 100.0)
    }
}

/// A count held as f64, written as `{:.0}` would.
struct Count(f64);

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let x = self.0;
        if x.fract() == 0.0 && x.abs() < 1e15 {
            write!(f, "{}", x as i64)
        } else {
            write!(f, "{x:.0}")
        }
    }
}

fn explain_denial(i: usize, c: f64, f: &RawFeatures, h: &DenialHistory) -> String {
    use std::fmt::Write;
    let x = f.numeric.get(i).copied().unwrap_or(0.0);
    let cat = |j: usize| f.categorical.get(j).map_or("?", String::as_str);
    explanation(c, |s| {
        match i {
        0 => write!(s, "billed amount ${:.0}", x.exp()),
        1 => write!(s, "{} service line(s)", Count(x)),
        2 => write!(s, "{} diagnosis code(s) on the claim", Count(x)),
        3 if x > 0.0 => s.write_str("prior authorization reference present"),
        3 => s.write_str("no prior authorization reference"),
        // The raw counts: the model's input is shrunk toward 0 (15 of 15 reads 43 %).
        4 if x > 0.0 => write!(
            s,
            "no prior authorization on a code family that carries one on {} of {} recent claims ({})",
            Count(h.family.submitted_with_auth),
            Count(h.family.submitted),
            Pct(h.family.submitted_with_auth / h.family.submitted.max(1.0))
        ),
        4 => s.write_str("prior authorization present or not usual for this code family"),
        10 if x > 0.0 => write!(
            s,
            "no supporting documentation sent; {} of {} recent claims for this service carry it ({})",
            Count(h.service.submitted_with_attachment),
            Count(h.service.submitted),
            Pct(h.service.submitted_with_attachment / h.service.submitted.max(1.0))
        ),
        10 => s.write_str("supporting documentation sent or not usual for this service"),
        5 if x > 0.0 => s.write_str("replacement claim (frequency 7)"),
        5 => s.write_str("original claim"),
        6 => write!(s, "payer {} denial rate {} (last 30 days)", cat(0), Pct(x)),
        7 => write!(
            s,
            "payer {} front-door rejection rate {} (last 30 days)",
            cat(0),
            Pct(x)
        ),
        8 => write!(
            s,
            "rendering provider's denial rate {} (last 30 days)",
            Pct(x)
        ),
        9 => write!(
            s,
            "code family {} denial rate {} (last 30 days)",
            cat(2),
            Pct(x)
        ),
        11 => write!(s, "payer {}", cat(0)),
        12 => write!(s, "payer category {}", cat(1)),
        13 => write!(s, "code family {}", cat(2)),
        14 => write!(s, "place of service {}", cat(3)),
        15 => write!(s, "department {}", cat(4)),
        16 => write!(s, "{} claim", cat(5).to_ascii_lowercase()),
        _ => s.write_str("other"),
    }
    })
}

fn disposition_words(code: &str) -> &str {
    match code {
        "01" => "home (self-care)",
        "03" => "a skilled nursing facility",
        "06" => "home with home health",
        "62" => "inpatient rehabilitation",
        "50" | "51" => "hospice",
        "04" => "an intermediate care facility",
        _ => code,
    }
}

fn explain_readmit(i: usize, c: f64, f: &RawFeatures) -> String {
    use std::fmt::Write;
    let x = f.numeric.get(i).copied().unwrap_or(0.0);
    let yes = x > 0.0;
    let cat = |j: usize| f.categorical.get(j).map_or("?", String::as_str);
    explanation(c, |s| match i {
        0 => write!(s, "age {}", Count(x)),
        1 if yes => s.write_str("female"),
        1 => s.write_str("male or sex unknown"),
        2 => write!(s, "Charlson comorbidity index {}", Count(x)),
        3 => write!(s, "length of stay {} days", Count(x)),
        4 if yes => s.write_str("emergency or urgent admission"),
        4 => s.write_str("elective admission"),
        5 => write!(s, "{} admission(s) in the prior 6 months", Count(x)),
        6 => write!(s, "{} admission(s) in the prior 12 months", Count(x)),
        7 => write!(s, "{} ED visit(s) in the prior 6 months", Count(x)),
        8 => write!(s, "{} ED visit(s) in the prior 12 months", Count(x)),
        9 if yes => s.write_str("haemoglobin below 12 g/dL at discharge"),
        9 => s.write_str("haemoglobin not low at discharge"),
        10 if yes => s.write_str("sodium below 135 mmol/L at discharge"),
        10 => s.write_str("sodium not low at discharge"),
        11 if yes => s.write_str("discharge labs missing"),
        11 => s.write_str("discharge labs present"),
        12 if yes => s.write_str("cancer in the diagnosis history"),
        12 => s.write_str("no cancer in the diagnosis history"),
        13 if yes => s.write_str("procedure during the stay"),
        13 => s.write_str("no procedure during the stay"),
        14 if yes => s.write_str("aged 75 or over"),
        14 => s.write_str("under 75"),
        15 => write!(s, "discharged to {}", disposition_words(cat(0))),
        16 if cat(1) == "NONE" => s.write_str("not in an HRRP condition cohort"),
        16 => write!(s, "HRRP cohort {}", cat(1)),
        17 => write!(s, "discharging service {}", cat(2)),
        18 => write!(s, "payer category {}", cat(3)),
        _ => s.write_str("other"),
    })
}

fn explain_lace(i: usize, c: f64, f: &RawFeatures) -> String {
    let what = match i {
        0 => format!("LACE length of stay ({:.0} days)", f.numeric[3]),
        1 => "LACE acute admission".to_owned(),
        2 => format!("LACE comorbidity (Charlson {:.0})", f.numeric[2]),
        _ => format!("LACE ED visits in the prior 6 months ({:.0})", f.numeric[7]),
    };
    format!("{what}: {}", direction(c))
}
