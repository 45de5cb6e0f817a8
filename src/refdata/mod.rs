//! TEMPORARY stand-in with the agreed API; replaced by the refdata change (data-file driven).
#![allow(missing_docs)]
use crate::model::AdjustmentGroup;

#[derive(Debug, thiserror::Error)]
#[error("refdata: {0}")]
pub struct RefDataError(String);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CarcCategory {
    Contractual,
    PatientResponsibility,
    Eligibility,
    Authorization,
    MedicalNecessity,
    Coding,
    TimelyFiling,
    Duplicate,
    MissingInformation,
    Bundling,
    NonCovered,
    Other,
}
impl CarcCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contractual => "CONTRACTUAL",
            Self::PatientResponsibility => "PATIENT_RESPONSIBILITY",
            Self::Eligibility => "ELIGIBILITY",
            Self::Authorization => "AUTHORIZATION",
            Self::MedicalNecessity => "MEDICAL_NECESSITY",
            Self::Coding => "CODING",
            Self::TimelyFiling => "TIMELY_FILING",
            Self::Duplicate => "DUPLICATE",
            Self::MissingInformation => "MISSING_INFORMATION",
            Self::Bundling => "BUNDLING",
            Self::NonCovered => "NON_COVERED",
            Self::Other => "OTHER",
        }
    }
    pub fn is_denial(self) -> bool {
        !matches!(
            self,
            Self::Contractual | Self::PatientResponsibility | Self::Other
        )
    }
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckClass {
    Received,
    Accepted,
    Rejected,
    Pending,
    InfoRequested,
    Error,
    Finalized,
    NotFound,
    Unknown,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HrrpCohort {
    Ami,
    HeartFailure,
    Pneumonia,
    Copd,
    Cabg,
    ThaTka,
}
impl HrrpCohort {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ami => "AMI",
            Self::HeartFailure => "HF",
            Self::Pneumonia => "PNEUMONIA",
            Self::Copd => "COPD",
            Self::Cabg => "CABG",
            Self::ThaTka => "THA_TKA",
        }
    }
}

#[derive(Debug, Default)]
pub struct RefData;
impl RefData {
    pub fn embedded() -> Result<RefData, RefDataError> {
        Ok(RefData)
    }
    pub fn adjustment_category(&self, group: AdjustmentGroup, carc: &str) -> CarcCategory {
        if group == AdjustmentGroup::PR {
            return CarcCategory::PatientResponsibility;
        }
        match carc {
            "45" | "253" => CarcCategory::Contractual,
            "16" => CarcCategory::MissingInformation,
            "29" => CarcCategory::TimelyFiling,
            "50" => CarcCategory::MedicalNecessity,
            "15" | "197" => CarcCategory::Authorization,
            "4" | "11" => CarcCategory::Coding,
            "18" => CarcCategory::Duplicate,
            "97" => CarcCategory::Bundling,
            "27" => CarcCategory::Eligibility,
            "96" => CarcCategory::NonCovered,
            _ => CarcCategory::Other,
        }
    }
    pub fn ack_class(&self, c: &str) -> AckClass {
        match c {
            "A0" | "A1" => AckClass::Received,
            "A2" | "A5" => AckClass::Accepted,
            "A3" | "A6" | "A7" | "A8" => AckClass::Rejected,
            "A4" => AckClass::NotFound,
            _ if c.starts_with('P') => AckClass::Pending,
            _ if c.starts_with('R') => AckClass::InfoRequested,
            _ if c.starts_with('E') => AckClass::Error,
            _ if c.starts_with('F') => AckClass::Finalized,
            _ => AckClass::Unknown,
        }
    }
    pub fn planned_readmission(
        &self,
        principal_dx: &str,
        procedures: &[String],
    ) -> Option<&'static str> {
        if principal_dx.starts_with("Z511") {
            return Some("ALWAYS_PLANNED_DIAGNOSIS");
        }
        if procedures
            .iter()
            .any(|p| p.starts_with("0TY0") || p.starts_with("0TY1"))
        {
            return Some("ALWAYS_PLANNED_PROCEDURE");
        }
        if procedures
            .iter()
            .any(|p| p.starts_with("0SR") || p.starts_with("0270"))
            && !principal_dx.starts_with('S')
            && !principal_dx.starts_with("I21")
        {
            return Some("POTENTIALLY_PLANNED_PROCEDURE");
        }
        None
    }
    pub fn index_exclusion(&self, dx: &str) -> Option<&'static str> {
        if dx.starts_with('F') {
            Some("PSYCHIATRIC")
        } else if dx.starts_with("Z5189") {
            Some("REHABILITATION")
        } else if dx.starts_with('C') || dx.starts_with("Z511") {
            Some("CANCER_TREATMENT")
        } else {
            None
        }
    }
    pub fn hrrp_cohort(
        &self,
        dx: &str,
        _secondary: &[String],
        procedures: &[String],
    ) -> Option<HrrpCohort> {
        if procedures.iter().any(|p| p.starts_with("021")) {
            return Some(HrrpCohort::Cabg);
        }
        if procedures.iter().any(|p| {
            p.starts_with("0SR9")
                || p.starts_with("0SRB")
                || p.starts_with("0SRC")
                || p.starts_with("0SRD")
        }) {
            return Some(HrrpCohort::ThaTka);
        }
        if dx.starts_with("I21") || dx.starts_with("I22") {
            Some(HrrpCohort::Ami)
        } else if dx.starts_with("I50") || dx == "I110" {
            Some(HrrpCohort::HeartFailure)
        } else if ["J12", "J13", "J14", "J15", "J16", "J18"]
            .iter()
            .any(|p| dx.starts_with(p))
        {
            Some(HrrpCohort::Pneumonia)
        } else if dx.starts_with("J44") {
            Some(HrrpCohort::Copd)
        } else {
            None
        }
    }
    pub fn dx_body_system(&self, dx: &str) -> &'static str {
        match dx.as_bytes().first() {
            Some(b'I') => "CIR",
            Some(b'J') => "RSP",
            Some(b'C') => "NEO",
            Some(b'F') => "MBD",
            Some(b'E') => "END",
            _ => "UNK",
        }
    }
}
