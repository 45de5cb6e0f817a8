//! A generated population driven through the core in memory, and one output of every kind the
//! core does not emit yet (scores, alerts, payer KPIs, dead letters): what the metric tests, the
//! dashboard/alert asset test and `promtool check metrics` scrape.

use std::collections::BTreeSet;

use crate::config::CoreConfig;
use crate::core::{Engine, Partition};
use crate::generate::{generate, GenerateConfig};
use crate::model::{
    DeadLetter, DenialRiskScore, Granularity, HighRiskAlert, InputEvent, MonitorRule, OutputEvent,
    PayerCategory, PayerKpi, PayerMonitorAlert, ReadmissionRiskScore, RiskTier,
};
use crate::refdata::RefData;
use crate::state::PartitionStore;

/// Outputs of a generated population, and every identifier in its inputs.
#[derive(Debug)]
pub struct SampleOutputs {
    pub outputs: Vec<OutputEvent>,
    /// Claim, member, provider, encounter, facility and payer-claim ids of the inputs: none may
    /// appear as a label value.
    pub identifiers: BTreeSet<String>,
}

/// Generates `members` members with `seed`, replays them through one in-memory partition in
/// event-time order, and appends one synthetic output of each kind the core does not emit yet.
pub fn sample_outputs(members: usize, seed: u64) -> SampleOutputs {
    sample_outputs_delayed(members, seed, 0)
}

/// As [`sample_outputs`], with every claim submission processed as if it arrived `claims_delay_ms`
/// after its event time (its acknowledgment and remittances usually first): a lagging claim
/// partition.
pub(crate) fn sample_outputs_delayed(
    members: usize,
    seed: u64,
    claims_delay_ms: i64,
) -> SampleOutputs {
    let g = generate(&GenerateConfig {
        members,
        seed,
        ..GenerateConfig::default()
    });
    let mut identifiers = BTreeSet::new();
    let mut events: Vec<(i64, usize, InputEvent)> = Vec::new();
    for c in &g.claims {
        identifiers.insert(c.claim_id.clone());
        identifiers.insert(c.member_id.clone());
        identifiers.insert(c.provider_id.clone());
        identifiers.extend(c.encounter_id.iter().cloned());
        events.push((
            c.event_time + claims_delay_ms,
            0,
            InputEvent::Claim(c.clone()),
        ));
    }
    for e in &g.encounters {
        identifiers.insert(e.encounter_id.clone());
        identifiers.insert(e.member_id.clone());
        identifiers.extend(e.attending_provider_id.iter().cloned());
        events.push((e.event_time, 1, InputEvent::Encounter(e.clone())));
    }
    for a in &g.acks {
        identifiers.extend(a.payer_claim_control_number.iter().cloned());
        events.push((a.event_time, 2, InputEvent::Ack(a.clone())));
    }
    for r in &g.remits {
        identifiers.extend(r.payer_claim_control_number.iter().cloned());
        events.push((r.event_time, 3, InputEvent::Remit(r.clone())));
    }
    events.sort_by_key(|(t, s, _)| (*t, *s));

    let config = CoreConfig {
        partitions: 1,
        ..CoreConfig::default()
    };
    let engine = Engine::new(config, RefData::shared());
    let mut outputs = Vec::new();
    let mut costs = Vec::new();
    let Ok(mut partition) = Partition::open(0, PartitionStore::hot_only(0), &engine) else {
        return SampleOutputs {
            outputs,
            identifiers,
        };
    };
    for (offset, (_, _, event)) in events.iter().enumerate() {
        partition.apply(
            &engine,
            event,
            event.stream().name(),
            offset as i64,
            &mut outputs,
            &mut costs,
        );
        while !costs.is_empty() {
            for c in std::mem::take(&mut costs) {
                partition.apply_rekeyed(&engine, &c, &mut outputs);
                partition.take_rekeyed(&mut costs);
            }
        }
    }
    let end = events.last().map_or(0, |e| e.0) + 200 * crate::model::DAY_MS;
    partition.advance_to(&engine, end, &mut outputs, &mut costs);
    outputs.extend(synthetic(end));
    SampleOutputs {
        outputs,
        identifiers,
    }
}

/// One output of each kind the core does not produce yet.
fn synthetic(t: i64) -> Vec<OutputEvent> {
    vec![
        OutputEvent::DeadLetter(DeadLetter {
            source: "ehr.claims".into(),
            partition: 0,
            offset: 7,
            error_kind: "decode".into(),
            message: "not Avro".into(),
            payload: vec![1, 2, 3],
            event_time: t,
        }),
        OutputEvent::DenialRisk(DenialRiskScore {
            output_id: "SYNTH-C1:1".into(),
            claim_id: "SYNTH-C1".into(),
            event_time: t,
            model_version: "denial-2024.1".into(),
            fallback: true,
            probability: 0.42,
            tier: RiskTier::Medium,
            likely_denial_category: Some("AUTHORIZATION".into()),
            drivers: Vec::new(),
            frequency: "ORIGINAL".into(),
            baseline_probability: 0.12,
        }),
        OutputEvent::ReadmissionRisk(ReadmissionRiskScore {
            output_id: "SYNTH-M1:E1:1".into(),
            member_id: "SYNTH-M1".into(),
            encounter_id: "SYNTH-E1".into(),
            event_time: t,
            model_version: "readmit-2024.1".into(),
            fallback: false,
            probability: 0.31,
            score: 31,
            tier: RiskTier::High,
            lace_points: 12,
            hospital_points: 5,
            drivers: Vec::new(),
            lace_band: "HIGH".into(),
            hospital_band: "INTERMEDIATE".into(),
            hrrp_cohort: Some("HF".into()),
            discharge_date: crate::model::day_of(t),
        }),
        OutputEvent::HighRiskAlert(HighRiskAlert {
            output_id: "SYNTH-M1:E1:alert".into(),
            member_id: "SYNTH-M1".into(),
            encounter_id: "SYNTH-E1".into(),
            facility_id: "SYNTH-F1".into(),
            discharge_date: crate::model::day_of(t),
            event_time: t,
            probability: 0.31,
            tier: RiskTier::High,
            drivers: Vec::new(),
            recommended_intervention: "transitional care call within 48 h".into(),
            intervention_cost_cents: 15_000,
            intervention_expected_reduction: 0.1,
            intervention_source: "assumption".into(),
            model_version: "readmit-2024.1".into(),
            fallback: false,
        }),
        OutputEvent::PayerKpi(PayerKpi {
            output_id: "SYNTH-P1:w".into(),
            payer_id: "SYNTH-P1".into(),
            payer_category: PayerCategory::Commercial,
            window_start: t - crate::model::DAY_MS,
            window_end: t,
            version: 1,
            submitted: 10,
            accepted: 9,
            rejected: 1,
            paid: 7,
            denied: 2,
            paid_cents: 70_000,
            denied_cents: 20_000,
            denial_rate: 0.2,
            first_pass_yield: 0.7,
            top_denial_categories: Vec::new(),
            median_days_to_payment: Some(14.0),
            granularity: Granularity::Daily,
            adjudicated: 9,
            partially_paid: 1,
            reversed: 0,
            first_adjudicated: 10,
            first_pass_paid: 7,
            top_denial_category_counts: Vec::new(),
            late_facts: 0,
            baseline_windows: 28,
            baseline_denial_rate: Some(0.1),
            denial_rate_z: Some(3.3),
            carc_mix_chi2: None,
            carc_mix_dof: None,
            carc_mix_p_value: None,
        }),
        OutputEvent::PayerMonitorAlert(PayerMonitorAlert {
            output_id: "SYNTH-P1:DAILY:0:DENIAL_RATE_SPIKE".into(),
            payer_id: "SYNTH-P1".into(),
            payer_category: PayerCategory::Commercial,
            granularity: Granularity::Daily,
            window_start: t - crate::model::DAY_MS,
            window_end: t,
            rule: MonitorRule::DenialRateSpike,
            value: 3.3,
            threshold: 3.0,
            volume: 9,
            kpi_version: 1,
        }),
    ]
}

/// The synthetic outputs' identifiers (also never label values).
pub const SYNTHETIC_IDS: [&str; 5] = ["SYNTH-C1", "SYNTH-M1", "SYNTH-E1", "SYNTH-F1", "SYNTH-P1"];
