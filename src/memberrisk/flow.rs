//! Member flow: each member's latest predicted cost, the partition's sketch of them, and the
//! `claimwatch.member-risk` records when a member crosses the top-N % threshold.
//!
//! State: the `member_risk` table (key: member id, [`RiskState`]) and the `risk_sketch` table
//! (one key, [`SKETCH_KEY`]: the partition's [`Sketch`]).

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use super::features::cost_features;
use super::model::CostModel;
use super::sketch::{bucket_of, Sketch};
use crate::config::CoreConfig;
use crate::model::{day_of, EpochMillis, MemberRiskAction, MemberRiskEvent, OutputEvent};
use crate::readmit::MemberState;
use crate::refdata::RefData;
use crate::state::Table;

/// The one key of the `risk_sketch` table.
pub const SKETCH_KEY: &str = "sketch";

/// What the flow keeps per member.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskState {
    /// Records emitted so far.
    pub version: i64,
    /// The sketch bucket of the latest prediction (what to take out when it changes).
    pub bucket: Option<u16>,
    pub predicted_cents: i64,
    /// The day the prediction is as of.
    pub as_of: crate::model::EpochDay,
    /// Flagged (the last record was ENTERED).
    pub in_top: bool,
}

/// The high-cost member logic (immutable; state lives in the tables).
#[derive(Debug, Clone)]
pub struct MemberRisk {
    refdata: Arc<RefData>,
    /// Shared by every clone (the partitions' engines), so a reloaded model reaches them all.
    model: Arc<ArcSwap<CostModel>>,
    enabled: bool,
    top_percent: f64,
    min_members: u64,
    drivers: usize,
    secret: Option<Vec<u8>>,
}

impl MemberRisk {
    pub fn new(refdata: Arc<RefData>, config: &CoreConfig, model: Arc<CostModel>) -> Self {
        let c = &config.member_risk;
        Self {
            refdata,
            model: Arc::new(ArcSwap::new(model)),
            enabled: c.enabled,
            top_percent: c.top_percent,
            min_members: u64::from(c.min_members),
            drivers: c.drivers as usize,
            secret: config.deidentify.secret_bytes(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The model in use.
    pub fn model(&self) -> Arc<CostModel> {
        self.model.load_full()
    }

    /// Replaces the model for every clone of this flow; a refresh already running finishes with
    /// the model it loaded. Predictions change from the next refresh of each member: records
    /// already sent are not recomputed.
    pub fn swap_model(&self, model: Arc<CostModel>) {
        self.model.store(model);
    }

    /// Recomputes `key`'s prediction as of `at` from its member state (`None`: the member left
    /// state, and leaves the sketch), updates the sketch, and emits a record when the member
    /// crossed the threshold.
    #[allow(clippy::too_many_arguments)]
    pub fn refresh(
        &self,
        states: &mut Table<RiskState>,
        sketches: &mut Table<Sketch>,
        key: &str,
        member: Option<&MemberState>,
        at: EpochMillis,
        out: &mut Vec<OutputEvent>,
    ) {
        if !self.enabled {
            return;
        }
        let old = states.get(key).map(|s| s.clone());
        let Some(member) = member else {
            if let Some(old) = old.filter(|o| o.bucket.is_some()) {
                if let Some(b) = old.bucket {
                    sketches.update(SKETCH_KEY, |s| s.remove(b));
                }
                let version = old.version + i64::from(old.in_top);
                if old.in_top {
                    let threshold = sketches
                        .get(SKETCH_KEY)
                        .and_then(|s| s.threshold_cents(self.top_percent))
                        .unwrap_or(0);
                    let total = sketches.get(SKETCH_KEY).map_or(0, |s| s.total);
                    out.push(OutputEvent::MemberRisk(self.record(
                        &self.model.load(),
                        key,
                        old.version + 1,
                        MemberRiskAction::Exited,
                        at,
                        0,
                        0,
                        threshold,
                        total,
                        Vec::new(),
                    )));
                }
                if version > 0 {
                    // Kept (without a prediction) so a member who comes back continues its
                    // versions and output ids stay unique.
                    states.update(key, |s| {
                        *s = RiskState {
                            version,
                            ..RiskState::default()
                        }
                    });
                } else {
                    states.remove(key);
                }
            }
            return;
        };
        let cut = day_of(at);
        let x = cost_features(
            &self.refdata,
            &member.stays,
            |e| member.costs.get(e).copied(),
            cut,
        );
        let model = self.model.load();
        let p = model.predict(&x);
        let bucket = bucket_of(p.cents);
        let old = old.unwrap_or_default();
        let (threshold, total) = sketches.update(SKETCH_KEY, |s| {
            if old.bucket != Some(bucket) {
                if let Some(b) = old.bucket {
                    s.remove(b);
                }
                s.add(bucket);
            }
            (s.threshold_cents(self.top_percent).unwrap_or(0), s.total)
        });
        let in_top = total >= self.min_members && p.cents >= threshold;
        let emit = in_top != old.in_top;
        let version = old.version + i64::from(emit);
        states.update(key, |s| {
            *s = RiskState {
                version,
                bucket: Some(bucket),
                predicted_cents: p.cents,
                as_of: cut,
                in_top,
            }
        });
        if emit {
            let action = if in_top {
                MemberRiskAction::Entered
            } else {
                MemberRiskAction::Exited
            };
            let drivers = model.drivers(&x, &p, self.drivers);
            out.push(OutputEvent::MemberRisk(self.record(
                &model,
                key,
                version,
                action,
                at,
                (x[0] * 100.0).round() as i64,
                p.cents,
                threshold,
                total,
                drivers,
            )));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        model: &CostModel,
        key: &str,
        version: i64,
        action: MemberRiskAction,
        at: EpochMillis,
        paid_12m_cents: i64,
        predicted_cents: i64,
        threshold_cents: i64,
        total: u64,
        drivers: Vec<crate::model::CostDriver>,
    ) -> MemberRiskEvent {
        let member_id = match &self.secret {
            Some(s) => crate::caregaps::pseudonym(s, key),
            None => key.to_owned(),
        };
        MemberRiskEvent {
            output_id: format!("{member_id}:{version}"),
            member_id,
            pseudonymised: self.secret.is_some(),
            version,
            action,
            event_time: at,
            as_of_date: day_of(at),
            paid_12m_cents,
            predicted_cents,
            horizon_days: model.horizon_days,
            threshold_cents,
            top_percent: self.top_percent,
            population_members: total as i64,
            model_version: model.version.clone(),
            drivers,
        }
    }
}
