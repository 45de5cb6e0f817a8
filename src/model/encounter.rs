//! The member-keyed input: an EHR encounter export (admission, discharge, correction, cancel).

use serde::{Deserialize, Serialize};

use super::{EpochDay, EpochMillis, PayerCategory};

/// What this encounter record reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EncounterEventType {
    /// The patient was admitted (ADT A01); discharge fields are empty.
    Admission,
    /// The patient was discharged (ADT A03); carries the whole stay.
    Discharge,
    /// A correction of an earlier record of the same encounter (ADT A08); carries the whole stay.
    Update,
    /// The encounter was entered in error (ADT A11/A13): forget it.
    Cancel,
}

/// Encounter class: only acute inpatient stays take part in readmission logic; emergency visits
/// count as prior utilisation for risk scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EncounterClass {
    Inpatient,
    Emergency,
    Observation,
    Outpatient,
}

/// Priority of admission (UB-04 FL 14 type of admission).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AdmitType {
    Emergency,
    Urgent,
    Elective,
    Newborn,
    Trauma,
    Unknown,
}

impl AdmitType {
    /// Emergent or urgent: the "acute" admission of LACE and HOSPITAL.
    pub fn is_acute(self) -> bool {
        matches!(self, Self::Emergency | Self::Urgent | Self::Trauma)
    }
}

/// Member sex as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Sex {
    Female,
    Male,
    Unknown,
}

/// An encounter record from the EHR, keyed by member id. Later records of the same `encounter_id`
/// supersede earlier ones field by field (by `event_time`), whatever order they arrive in.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Encounter {
    pub event_id: String,
    pub event_time: EpochMillis,
    pub encounter_id: String,
    pub member_id: String,
    pub event_type: EncounterEventType,
    pub encounter_class: EncounterClass,
    pub facility_id: String,
    /// The facility is a short-term acute care hospital (transfers and readmissions count only
    /// between acute hospitals).
    pub acute_care_facility: bool,
    /// Department / service line (e.g. CARDIOLOGY, ONCOLOGY).
    pub department: String,
    pub attending_provider_id: Option<String>,
    pub admit_date: EpochDay,
    pub admit_type: AdmitType,
    /// UB-04 point of origin code (FL 15), when known.
    pub admit_source: Option<String>,
    pub discharge_date: Option<EpochDay>,
    /// UB-04 patient discharge status (FL 17): 01 home, 02 short-term acute hospital, 03 SNF,
    /// 06 home health, 07 left against medical advice, 20 expired, 50/51 hospice, ...
    pub discharge_disposition: Option<String>,
    /// ICD-10-CM principal diagnosis, no dot.
    pub principal_dx: String,
    pub secondary_dx: Vec<String>,
    /// ICD-10-PCS procedure codes performed during the stay.
    pub procedures: Vec<String>,
    /// Last haemoglobin before discharge, g/dL, when known (HOSPITAL score).
    pub hemoglobin_g_dl: Option<f64>,
    /// Last sodium before discharge, mmol/L, when known (HOSPITAL score).
    pub sodium_mmol_l: Option<f64>,
    pub birth_date: Option<EpochDay>,
    pub sex: Option<Sex>,
    pub payer_id: Option<String>,
    pub payer_category: Option<PayerCategory>,
    /// The claim that bills this encounter, when the EHR knows it.
    pub claim_id: Option<String>,
}

impl std::fmt::Debug for Encounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encounter")
            .field("event_time", &self.event_time)
            .field("event_type", &self.event_type)
            .field("encounter_class", &self.encounter_class)
            .field("admit_date", &self.admit_date)
            .field("discharge_date", &self.discharge_date)
            .field("discharge_disposition", &self.discharge_disposition)
            .finish_non_exhaustive()
    }
}

/// UB-04 discharge status codes the readmission logic interprets.
pub mod disposition {
    /// Discharged/transferred to a short-term general hospital for inpatient care.
    pub const TRANSFER_ACUTE: &str = "02";
    /// Every discharge status that transfers the patient to another acute inpatient hospital
    /// (NUBC UB-04 FL17): 02 short-term general hospital, 05 designated cancer center or
    /// children's hospital, 66 critical access hospital, and the same with a planned acute
    /// readmission (82, 85, 94). Such a stay is not an index stay: the episode's last stay is.
    pub const TRANSFERS_ACUTE: [&str; 6] = [TRANSFER_ACUTE, "05", "66", "82", "85", "94"];
    /// Left against medical advice.
    pub const LEFT_AMA: &str = "07";
    /// Expired.
    pub const EXPIRED: &str = "20";
    /// Expired at home / in a facility / place unknown (hospice claims).
    pub const EXPIRED_HOSPICE: [&str; 3] = ["40", "41", "42"];

    /// The patient was transferred to another acute inpatient hospital ([`TRANSFERS_ACUTE`]).
    pub fn is_transfer_acute(code: &str) -> bool {
        TRANSFERS_ACUTE.contains(&code)
    }

    /// The patient died during the stay.
    pub fn is_expired(code: &str) -> bool {
        code == EXPIRED || EXPIRED_HOSPICE.contains(&code)
    }
}
