//! Response bodies of the read API: their own serde types, so the wire format does not move
//! when internal state does (and internal fields such as fingerprints never leak).

use serde::Serialize;

use crate::model::{
    format_day, AmountByCode, ClaimAlert, ClaimStatus, EpochDay, EpochMillis, Granularity, PayerKpi,
};
use crate::readmit::{IndexDecision, StayRec};
use crate::reconcile::{ClaimState, ClaimTimer, SourceKind, StatusChange};

fn day(d: Option<EpochDay>) -> Option<String> {
    d.map(format_day)
}

fn instant(ms: EpochMillis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// `GET /v1/claims/{claim_id}`.
#[derive(Debug, Serialize)]
pub struct ClaimDto {
    pub claim_id: String,
    pub status: ClaimStatus,
    /// Number of reconciled-view changes emitted so far.
    pub version: i64,
    pub payer_id: Option<String>,
    pub payer_category: Option<String>,
    pub provider_id: Option<String>,
    pub submitted_date: Option<String>,
    pub amounts: AmountsDto,
    pub adjustments: AdjustmentsDto,
    pub lags: LagsDto,
    pub ack_status: Option<String>,
    pub alerts: Vec<ClaimAlert>,
    pub pending_timers: Vec<TimerDto>,
    pub history: Vec<HistoryDto>,
    pub counts: CountsDto,
}

#[derive(Debug, Serialize)]
pub struct AmountsDto {
    pub billed_cents: i64,
    pub expected_cents: Option<i64>,
    pub paid_to_date_cents: i64,
    pub patient_responsibility_cents: i64,
    pub variance_cents: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct AdjustmentsDto {
    pub by_group: Vec<AmountDto>,
    pub by_category: Vec<AmountDto>,
    /// `GROUP-CARC` pairs of the effective adjudication.
    pub carc_codes: Vec<String>,
    pub rarc_codes: Vec<String>,
    pub denial_category: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AmountDto {
    pub code: String,
    pub amount_cents: i64,
}

impl From<&AmountByCode> for AmountDto {
    fn from(a: &AmountByCode) -> Self {
        Self {
            code: a.code.clone(),
            amount_cents: a.amount_cents,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct LagsDto {
    pub days_to_ack: Option<i32>,
    pub days_to_first_payment: Option<i32>,
    pub days_to_final: Option<i32>,
    pub first_pass_paid: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct CountsDto {
    pub submissions: i32,
    pub acks: i32,
    pub remits: i32,
}

#[derive(Debug, Serialize)]
pub struct TimerDto {
    /// `MISSING_ACK`, `MISSING_REMIT` or `EXPIRE` (the claim leaves state).
    pub timer: &'static str,
    /// Event-time instant at which it fires (RFC 3339).
    pub due: String,
}

#[derive(Debug, Serialize)]
pub struct HistoryDto {
    pub status: ClaimStatus,
    pub previous_status: Option<ClaimStatus>,
    pub event_time: String,
    /// `EHR`, `277CA` or `835`.
    pub source: &'static str,
    pub topic: String,
    pub partition: i32,
    /// Absent when unknown (state written before offsets were kept, or file replay).
    pub offset: Option<i64>,
}

/// Topic names of the three claim inputs, for the history's source positions.
#[derive(Clone, Debug)]
pub struct SourceTopics {
    pub claims: String,
    pub acks: String,
    pub remits: String,
}

impl ClaimDto {
    pub fn build(
        engine: &crate::core::Engine,
        topics: &SourceTopics,
        partition: i32,
        claim_id: &str,
        state: &ClaimState,
    ) -> Self {
        let view = engine.reconciler.view(state, claim_id);
        let mut timers: Vec<_> = engine
            .reconciler
            .pending_timers(state)
            .into_iter()
            .collect();
        timers.sort_unstable();
        let history = engine
            .reconciler
            .status_history(state, claim_id)
            .into_iter()
            .map(|c: StatusChange| {
                let (source, topic) = match c.source {
                    SourceKind::Ehr => ("EHR", &topics.claims),
                    SourceKind::Ack277ca => ("277CA", &topics.acks),
                    SourceKind::Remit835 => ("835", &topics.remits),
                };
                HistoryDto {
                    status: c.status,
                    previous_status: c.previous,
                    event_time: instant(c.event_time),
                    source,
                    topic: topic.clone(),
                    partition,
                    offset: (c.offset >= 0).then_some(c.offset),
                }
            })
            .collect();
        Self {
            claim_id: claim_id.to_owned(),
            status: view.status,
            version: state.version,
            payer_id: view.payer_id,
            payer_category: view.payer_category.map(|c| c.as_str().to_owned()),
            provider_id: view.provider_id,
            submitted_date: day(view.submitted_date),
            amounts: AmountsDto {
                billed_cents: view.billed_cents,
                expected_cents: view.expected_cents,
                paid_to_date_cents: view.paid_to_date_cents,
                patient_responsibility_cents: view.patient_responsibility_cents,
                variance_cents: view.variance_cents,
            },
            adjustments: AdjustmentsDto {
                by_group: view.adjustments_by_group.iter().map(Into::into).collect(),
                by_category: view
                    .adjustments_by_category
                    .iter()
                    .map(Into::into)
                    .collect(),
                carc_codes: view.carc_codes,
                rarc_codes: view.rarc_codes,
                denial_category: view.denial_category,
            },
            lags: LagsDto {
                days_to_ack: view.days_to_ack,
                days_to_first_payment: view.days_to_first_payment,
                days_to_final: view.days_to_final,
                first_pass_paid: view.first_pass_paid,
            },
            ack_status: view.ack_status,
            alerts: view.alerts,
            pending_timers: timers
                .into_iter()
                .map(|(due, t)| TimerDto {
                    timer: match t {
                        ClaimTimer::MissingAck => "MISSING_ACK",
                        ClaimTimer::MissingRemit => "MISSING_REMIT",
                        ClaimTimer::Expire => "EXPIRE",
                    },
                    due: instant(due),
                })
                .collect(),
            history,
            counts: CountsDto {
                submissions: view.submission_count,
                acks: view.ack_count,
                remits: view.remit_count,
            },
        }
    }
}

/// `GET /v1/members/{member_id}/stays`.
#[derive(Debug, Serialize)]
pub struct MemberStaysDto {
    pub member_id: String,
    /// Most recent admission first.
    pub stays: Vec<StayDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Index stays and their first readmission within the window (all of the member's stays).
    pub readmissions: Vec<ReadmissionLinkDto>,
    /// Risk score of the most recent discharge whose readmission window is still open.
    pub current_risk: Option<RiskDto>,
    /// High-risk alerts of stays whose readmission window is still open.
    pub open_alerts: Vec<AlertDto>,
}

#[derive(Debug, Serialize)]
pub struct StayDto {
    pub encounter_id: String,
    pub class: String,
    pub facility_id: String,
    pub admit_date: String,
    pub discharge_date: Option<String>,
    pub disposition: Option<String>,
    pub cancelled: bool,
    pub acute_inpatient: bool,
    pub paid_cents: Option<i64>,
}

impl StayDto {
    pub fn of(s: &StayRec, paid: Option<i64>) -> Self {
        Self {
            encounter_id: s.encounter_id.clone(),
            class: serde_json::to_value(s.class)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            facility_id: s.facility_id.clone(),
            admit_date: format_day(s.admit_date),
            discharge_date: day(s.discharge_date),
            disposition: s.disposition.clone(),
            cancelled: s.cancelled,
            acute_inpatient: s.is_acute_inpatient(),
            paid_cents: paid,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ReadmissionLinkDto {
    pub index_encounter_id: String,
    pub index_discharge_date: Option<String>,
    pub readmission_encounter_id: Option<String>,
    pub days_to_readmission: Option<i32>,
    /// The planned-readmission rule that matched, when planned.
    pub planned_reason: Option<String>,
}

impl From<&IndexDecision<'_>> for ReadmissionLinkDto {
    fn from(d: &IndexDecision<'_>) -> Self {
        Self {
            index_encounter_id: d.index.encounter_id.clone(),
            index_discharge_date: day(d.index.discharge_date),
            readmission_encounter_id: d.readmission.map(|(s, _, _)| s.encounter_id.clone()),
            days_to_readmission: d.readmission.map(|(_, days, _)| days),
            planned_reason: d.readmission.and_then(|(_, _, p)| p.map(str::to_owned)),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DriverDto {
    pub feature: String,
    pub contribution: f64,
    pub explanation: String,
}

#[derive(Debug, Serialize)]
pub struct RiskDto {
    pub encounter_id: String,
    pub discharge_date: String,
    pub scored_at: String,
    pub model_version: String,
    pub fallback: bool,
    pub probability: f64,
    pub score: i32,
    pub tier: crate::model::RiskTier,
    pub lace_points: i32,
    pub hospital_points: i32,
    pub drivers: Vec<DriverDto>,
}

#[derive(Debug, Serialize)]
pub struct AlertDto {
    pub encounter_id: String,
    pub facility_id: String,
    pub discharge_date: String,
    pub probability: f64,
    pub recommended_intervention: String,
    /// When the readmission window closes (the alert is no longer open after it).
    pub window_closes: String,
}

/// `GET /v1/payers/{payer_id}/kpis`: a page of one payer's windows of one granularity.
#[derive(Debug, Serialize)]
pub struct PayerKpisDto {
    pub payer_id: String,
    pub granularity: Granularity,
    /// Newest window first.
    pub windows: Vec<KpiWindowDto>,
    pub next_cursor: Option<String>,
}

/// Whether a window has been emitted on `claimwatch.payer-kpis` yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WindowPhase {
    /// Before its end plus grace: counts still move, nothing emitted (`version` 0).
    Open,
    /// Emitted (closed) and still retained for corrections: `version` is the last emitted one.
    Emitted,
}

/// One window: its phase and the KPI record as the monitor builds it now.
#[derive(Debug, Serialize)]
pub struct KpiWindowDto {
    pub state: WindowPhase,
    #[serde(flatten)]
    pub kpi: PayerKpi,
}
