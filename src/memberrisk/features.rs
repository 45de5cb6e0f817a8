//! Cost features of a member as of a cut day, from the member state the readmission detector keeps
//! (stays and the paid amount of each stay's claim).
//!
//! The look-back is the 365 days up to and including the cut day: a stay counts when it is not
//! cancelled and was admitted in `(cut - 365, cut]`. A stay admitted after the cut (a record that
//! arrived early) is never read. Paid amounts are those known when the features are computed (in
//! the stream: the member state's costs; in training: costs whose event time is on or before the
//! cut day), so training sees what the stream sees.

use std::collections::BTreeMap;

use crate::model::{EncounterClass, EpochDay};
use crate::readmit::StayRec;
use crate::refdata::{HrrpCohort, RefData};

/// Days of the look-back window (inclusive of the cut day).
pub const LOOKBACK_DAYS: i32 = 365;
/// Days of the recent window (`paid_3m_dollars`).
pub const RECENT_DAYS: i32 = 91;

/// Numeric cost features, in order.
pub const COST_NUMERIC: [&str; 17] = [
    "paid_12m_dollars",
    "paid_3m_dollars",
    "admissions_12m",
    "ed_visits_12m",
    "observation_stays_12m",
    "los_days_12m",
    "charlson_index",
    "congestive_heart_failure",
    "chronic_pulmonary_disease",
    "diabetes",
    "renal_disease",
    "malignancy",
    "hrrp_heart_failure_stay",
    "hrrp_copd_stay",
    "hrrp_ami_or_pneumonia_stay",
    "age_65_74",
    "age_75_plus",
];

/// What each feature means (stored in the model artifact).
pub fn doc_of(name: &str) -> &'static str {
    match name {
        "paid_12m_dollars" => "paid to date, in dollars, of the claims of the member's stays admitted in the 365 days to the cut day",
        "paid_3m_dollars" => "the same, stays admitted in the last 91 days",
        "admissions_12m" => "inpatient stays admitted in the 365 days to the cut day",
        "ed_visits_12m" => "emergency visits in the 365 days to the cut day",
        "observation_stays_12m" => "observation stays in the 365 days to the cut day",
        "los_days_12m" => "inpatient days (discharge minus admission) of those stays, capped at 60",
        "charlson_index" => "Charlson index (Quan 2005, original weights) over the diagnoses of those stays, capped at 12",
        "congestive_heart_failure" => "1 when a Charlson congestive heart failure code is among those diagnoses",
        "chronic_pulmonary_disease" => "1 when a Charlson chronic pulmonary disease code is among them",
        "diabetes" => "1 when a Charlson diabetes code (with or without complications) is among them",
        "renal_disease" => "1 when a Charlson renal disease code is among them",
        "malignancy" => "1 when a Charlson malignancy or metastatic tumour code is among them",
        "hrrp_heart_failure_stay" => "1 when an inpatient stay of the window is in the HRRP heart failure cohort",
        "hrrp_copd_stay" => "1 when an inpatient stay of the window is in the HRRP COPD cohort",
        "hrrp_ami_or_pneumonia_stay" => "1 when an inpatient stay of the window is in the HRRP AMI or pneumonia cohort",
        "age_65_74" => "1 when aged 65 to 74 on the cut day (birth date of the latest stay)",
        "age_75_plus" => "1 when aged 75 or over on the cut day",
        _ => "",
    }
}

/// The cost features of a member on `cut`, in [`COST_NUMERIC`] order. `paid` gives the paid amount
/// (cents) known for an encounter.
pub fn cost_features<'a>(
    refdata: &RefData,
    stays: &'a [StayRec],
    paid: impl Fn(&str) -> Option<i64>,
    cut: EpochDay,
) -> [f64; COST_NUMERIC.len()] {
    let in_window =
        |s: &&'a StayRec| !s.cancelled && s.admit_date <= cut && s.admit_date > cut - LOOKBACK_DAYS;
    let (mut paid_12m, mut paid_3m) = (0i64, 0i64);
    let (mut admits, mut ed, mut obs, mut los) = (0u32, 0u32, 0u32, 0i32);
    let (mut hf, mut copd, mut ami_pn) = (false, false, false);
    let mut birth: Option<(EpochDay, EpochDay)> = None;
    for s in stays.iter().filter(in_window) {
        let p = paid(&s.encounter_id).unwrap_or(0);
        paid_12m += p;
        if s.admit_date > cut - RECENT_DAYS {
            paid_3m += p;
        }
        match s.class {
            EncounterClass::Inpatient => {
                admits += 1;
                if let Some(d) = s.discharge_date.filter(|d| *d <= cut) {
                    los += (d - s.admit_date).max(0);
                }
                match refdata.hrrp_cohort(&s.principal_dx, &s.secondary_dx, &s.procedures) {
                    Some(HrrpCohort::HeartFailure) => hf = true,
                    Some(HrrpCohort::Copd) => copd = true,
                    Some(HrrpCohort::Ami | HrrpCohort::Pneumonia) => ami_pn = true,
                    _ => {}
                }
            }
            EncounterClass::Emergency => ed += 1,
            EncounterClass::Observation => obs += 1,
            EncounterClass::Outpatient => {}
        }
        if let Some(b) = s.birth_date {
            if birth.is_none_or(|(at, _)| s.admit_date >= at) {
                birth = Some((s.admit_date, b));
            }
        }
    }
    let set = refdata.charlson_set(
        stays
            .iter()
            .filter(in_window)
            .flat_map(|s| std::iter::once(&s.principal_dx).chain(s.secondary_dx.iter()))
            .map(String::as_str),
    );
    let mut flags = [false; 5];
    for (name, _) in refdata.charlson_conditions(set) {
        match name {
            "CONGESTIVE_HEART_FAILURE" => flags[0] = true,
            "CHRONIC_PULMONARY_DISEASE" => flags[1] = true,
            "DIABETES_WITHOUT_COMPLICATIONS" | "DIABETES_WITH_COMPLICATIONS" => flags[2] = true,
            "RENAL_DISEASE" => flags[3] = true,
            "ANY_MALIGNANCY" | "METASTATIC_SOLID_TUMOR" => flags[4] = true,
            _ => {}
        }
    }
    let age = birth.map(|(_, b)| (f64::from(cut - b) / 365.25).floor());
    let b = |x: bool| f64::from(u8::from(x));
    [
        paid_12m as f64 / 100.0,
        paid_3m as f64 / 100.0,
        f64::from(admits),
        f64::from(ed),
        f64::from(obs),
        f64::from(los.min(60)),
        f64::from(refdata.charlson_index(set).min(12)),
        b(flags[0]),
        b(flags[1]),
        b(flags[2]),
        b(flags[3]),
        b(flags[4]),
        b(hf),
        b(copd),
        b(ami_pn),
        b(age.is_some_and(|a| (65.0..75.0).contains(&a))),
        b(age.is_some_and(|a| a >= 75.0)),
    ]
}

/// Paid (cents) of the stays admitted in `(from, to]`, from the final costs: the training label.
pub fn paid_between(
    stays: &[StayRec],
    costs: &BTreeMap<String, i64>,
    from: EpochDay,
    to: EpochDay,
) -> i64 {
    stays
        .iter()
        .filter(|s| !s.cancelled && s.admit_date > from && s.admit_date <= to)
        .map(|s| costs.get(&s.encounter_id).copied().unwrap_or(0))
        .sum()
}
