//! Claim-keyed inputs: the EHR claim export (what was submitted), the 277CA acknowledgment and the
//! 835 remittance. All three carry the patient control number as `claim_id` (837 CLM01 = 277CA
//! TRN02 = 835 CLP01), the join key of reconciliation.

use serde::{Deserialize, Serialize};

use super::{EpochDay, EpochMillis};

/// The payer's line of business, a bounded label safe for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PayerCategory {
    Medicare,
    MedicareAdvantage,
    Medicaid,
    Commercial,
    SelfPay,
    Other,
}

impl PayerCategory {
    pub const ALL: [PayerCategory; 6] = [
        Self::Medicare,
        Self::MedicareAdvantage,
        Self::Medicaid,
        Self::Commercial,
        Self::SelfPay,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Medicare => "MEDICARE",
            Self::MedicareAdvantage => "MEDICARE_ADVANTAGE",
            Self::Medicaid => "MEDICAID",
            Self::Commercial => "COMMERCIAL",
            Self::SelfPay => "SELF_PAY",
            Self::Other => "OTHER",
        }
    }
}

/// Professional (837P) or institutional (837I) claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClaimType {
    Professional,
    Institutional,
}

/// Claim frequency code (837 CLM05-3): what this submission does to the claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClaimFrequency {
    /// 1: original claim.
    Original,
    /// 7: replacement of a prior claim; supersedes it.
    Replacement,
    /// 8: void/cancel of a prior claim.
    Void,
}

impl ClaimFrequency {
    /// Maps the X12 frequency code; anything unknown is treated as an original.
    pub fn from_x12(code: &str) -> Self {
        match code {
            "7" => Self::Replacement,
            "8" => Self::Void,
            _ => Self::Original,
        }
    }
}

/// One service line of a submitted claim (837 SV1/SV2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimLine {
    pub line_number: i32,
    /// CPT/HCPCS code.
    pub procedure_code: String,
    pub modifiers: Vec<String>,
    /// UB-04 revenue code (institutional claims).
    pub revenue_code: Option<String>,
    pub units: f64,
    pub charge_cents: i64,
    pub service_date: Option<EpochDay>,
}

/// A claim as exported by the provider's EHR / billing system at submission (or the 837 itself).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimSubmitted {
    /// Unique id of this record at its source; duplicates with the same id are ignored.
    pub event_id: String,
    /// When the source emitted the record (Kafka record timestamp), ms since epoch.
    pub event_time: EpochMillis,
    /// Patient control number (837 CLM01): the reconciliation join key.
    pub claim_id: String,
    pub member_id: String,
    pub payer_id: String,
    pub payer_category: PayerCategory,
    pub provider_id: String,
    pub department: String,
    pub facility_id: Option<String>,
    /// The encounter this claim bills, when known (institutional claims).
    pub encounter_id: Option<String>,
    pub claim_type: ClaimType,
    pub frequency: ClaimFrequency,
    pub billed_cents: i64,
    /// Contracted (allowed) amount the provider expects: payer payment + patient share.
    /// Absent when the source is a bare 837.
    pub expected_cents: Option<i64>,
    pub service_date: EpochDay,
    pub service_end_date: Option<EpochDay>,
    pub submitted_date: EpochDay,
    /// ICD-10-CM codes, principal first, without the dot.
    pub diagnosis_codes: Vec<String>,
    pub lines: Vec<ClaimLine>,
    pub drg: Option<String>,
    /// Place of service (professional) or facility type code (institutional).
    pub place_of_service: Option<String>,
    pub prior_auth_ref: Option<String>,
    /// For replacements and voids: the payer's claim control number of the claim replaced.
    pub original_payer_claim_id: Option<String>,
    /// Supporting documentation announced with the claim (837 loop 2300 PWK). Empty when none
    /// was sent; absent in records written before the field existed.
    #[serde(default)]
    pub attachments: Vec<ClaimAttachment>,
}

/// One claim supplemental information record (837 loop 2300 PWK).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimAttachment {
    /// PWK01 report type code, e.g. `09` progress report, `OB` operative note, `DS` discharge
    /// summary, `77` support data for verification, `OZ` support data for claim.
    pub report_type: String,
    /// PWK02 transmission code: `EL` electronically only, `BM` by mail, `FX` by fax, `FT` file
    /// transfer, `EM` e-mail, `AA` available on request at the provider site (not sent).
    pub transmission: String,
}

impl ClaimAttachment {
    /// Whether the documentation actually went to the payer (`AA` only announces it).
    pub fn delivered(&self) -> bool {
        !self.transmission.is_empty() && self.transmission != "AA"
    }
}

impl std::fmt::Debug for ClaimSubmitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimSubmitted")
            .field("event_time", &self.event_time)
            .field("payer_category", &self.payer_category)
            .field("frequency", &self.frequency)
            .field("billed_cents", &self.billed_cents)
            .field("lines", &self.lines.len())
            .finish_non_exhaustive()
    }
}

/// One STC status composite of a 277CA: category : status : entity.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClaimStatusCode {
    /// STC01-1, e.g. A1 received, A2 accepted, A3 rejected, R* information requested.
    pub category: String,
    /// STC01-2 claim status code.
    pub code: String,
    /// STC01-3 entity identifier code, when present.
    pub entity: Option<String>,
}

/// A claim-level 277CA acknowledgment.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimAck {
    pub event_id: String,
    pub event_time: EpochMillis,
    /// Patient control number (277CA TRN02 at the claim level).
    pub claim_id: String,
    pub payer_id: Option<String>,
    /// Payer claim control number (REF*1K).
    pub payer_claim_control_number: Option<String>,
    /// Clearinghouse trace number (REF*D9).
    pub clearinghouse_trace: Option<String>,
    /// Status effective date (STC02 or DTP*472 of the claim).
    pub ack_date: EpochDay,
    /// Claim-level STC composites (STC01, STC10, STC11), first is primary.
    pub statuses: Vec<ClaimStatusCode>,
    pub billed_cents: Option<i64>,
}

impl std::fmt::Debug for ClaimAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimAck")
            .field("event_time", &self.event_time)
            .field("ack_date", &self.ack_date)
            .field("statuses", &self.statuses)
            .finish_non_exhaustive()
    }
}

/// CAS group code: who bears an adjustment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AdjustmentGroup {
    /// Contractual obligation: provider write-off.
    CO,
    /// Patient responsibility.
    PR,
    /// Other adjustment.
    OA,
    /// Payer-initiated reduction.
    PI,
    /// Correction/reversal (4010; not used in 5010 but still seen).
    CR,
}

impl AdjustmentGroup {
    pub const ALL: [AdjustmentGroup; 5] = [Self::CO, Self::PR, Self::OA, Self::PI, Self::CR];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CO => "CO",
            Self::PR => "PR",
            Self::OA => "OA",
            Self::PI => "PI",
            Self::CR => "CR",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == code)
    }
}

/// One CAS triplet: group + CARC + amount (+ quantity).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Adjustment {
    pub group: AdjustmentGroup,
    /// Claim adjustment reason code (CARC).
    pub reason: String,
    pub amount_cents: i64,
    pub quantity: Option<f64>,
}

/// One 835 service line (SVC loop).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceLinePayment {
    pub procedure_code: String,
    pub modifiers: Vec<String>,
    pub revenue_code: Option<String>,
    pub charge_cents: i64,
    pub paid_cents: i64,
    pub units: Option<f64>,
    pub service_date: Option<super::EpochDay>,
    pub adjustments: Vec<Adjustment>,
    /// RARC codes from LQ*HE.
    pub remarks: Vec<String>,
}

/// One claim payment (CLP loop) of an 835 remittance advice.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Remittance {
    pub event_id: String,
    pub event_time: EpochMillis,
    /// Patient control number (CLP01).
    pub claim_id: String,
    pub payer_id: String,
    /// Payer claim control number (CLP07).
    pub payer_claim_control_number: Option<String>,
    /// CLP02 claim status code: 1/2/3 processed, 4 denied, 19-21 forwarded, 22 reversal, 23, 25.
    pub claim_status: String,
    pub charge_cents: i64,
    pub paid_cents: i64,
    pub patient_responsibility_cents: i64,
    pub claim_filing_indicator: Option<String>,
    pub facility_code: Option<String>,
    pub frequency: Option<String>,
    pub drg: Option<String>,
    /// Claim-level CAS triplets.
    pub adjustments: Vec<Adjustment>,
    /// Claim-level RARC codes (MIA/MOA).
    pub remarks: Vec<String>,
    pub lines: Vec<ServiceLinePayment>,
    /// Payment or production date (BPR16 / DTM*405).
    pub payment_date: EpochDay,
    /// Check or EFT trace number (TRN02).
    pub payment_trace: Option<String>,
    /// Findings of the parser (balancing mismatches, code-set warnings): `code: message`.
    pub findings: Vec<String>,
}

impl Remittance {
    /// Every CAS triplet on the claim, claim level first, then line level.
    pub fn all_adjustments(&self) -> impl Iterator<Item = &Adjustment> {
        self.adjustments
            .iter()
            .chain(self.lines.iter().flat_map(|l| l.adjustments.iter()))
    }

    /// CLP02 = 22: this remittance reverses an earlier adjudication.
    pub fn is_reversal(&self) -> bool {
        self.claim_status == "22"
    }
}

impl std::fmt::Debug for Remittance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remittance")
            .field("event_time", &self.event_time)
            .field("claim_status", &self.claim_status)
            .field("charge_cents", &self.charge_cents)
            .field("paid_cents", &self.paid_cents)
            .field("adjustments", &self.adjustments)
            .field("lines", &self.lines.len())
            .finish_non_exhaustive()
    }
}
