//! Field-level validation of decoded inputs. A record that decodes but makes no sense (negative
//! charge, empty key, a discharge before its admission, a date outside any plausible range) is
//! refused with a reason and goes to the dead-letter topic instead of corrupting state.

use super::{
    ClaimAck, ClaimSubmitted, Encounter, EncounterEventType, EpochDay, InputEvent, MaintenanceType,
    MemberEnrollment, Remittance,
};

/// Why a decoded event was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ValidationError {
    #[error("missing key field {0}")]
    MissingKey(&'static str),
    #[error("field {field} is negative")]
    Negative { field: &'static str },
    #[error("field {field} is outside 1900-01-01..2100-01-01")]
    ImplausibleDate { field: &'static str },
    #[error("discharge date before admission date")]
    DischargeBeforeAdmission,
    #[error("{0}")]
    Inconsistent(&'static str),
    #[error("field {field} too long ({len} > {max})")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
}

/// 1900-01-01 and 2100-01-01 as day numbers.
const MIN_DAY: EpochDay = -25_567;
const MAX_DAY: EpochDay = 47_482;
/// Identifiers longer than this are not identifiers (X12 allows at most 50 for CLM01 / TRN02).
const MAX_KEY_LEN: usize = 80;

fn key(field: &'static str, v: &str) -> Result<(), ValidationError> {
    if v.trim().is_empty() {
        return Err(ValidationError::MissingKey(field));
    }
    if v.len() > MAX_KEY_LEN {
        return Err(ValidationError::TooLong {
            field,
            len: v.len(),
            max: MAX_KEY_LEN,
        });
    }
    Ok(())
}

fn day(field: &'static str, d: EpochDay) -> Result<(), ValidationError> {
    if (MIN_DAY..MAX_DAY).contains(&d) {
        Ok(())
    } else {
        Err(ValidationError::ImplausibleDate { field })
    }
}

fn non_negative(field: &'static str, v: i64) -> Result<(), ValidationError> {
    if v < 0 {
        Err(ValidationError::Negative { field })
    } else {
        Ok(())
    }
}

/// Checks one input event.
pub fn validate(event: &InputEvent) -> Result<(), ValidationError> {
    match event {
        InputEvent::Claim(c) => validate_claim(c),
        InputEvent::Encounter(e) => validate_encounter(e),
        InputEvent::Ack(a) => validate_ack(a),
        InputEvent::Remit(r) => validate_remit(r),
        InputEvent::Enrollment(e) => validate_enrollment(e),
    }
}

fn validate_claim(c: &ClaimSubmitted) -> Result<(), ValidationError> {
    key("event_id", &c.event_id)?;
    key("claim_id", &c.claim_id)?;
    key("member_id", &c.member_id)?;
    key("payer_id", &c.payer_id)?;
    non_negative("billed_cents", c.billed_cents)?;
    if let Some(e) = c.expected_cents {
        non_negative("expected_cents", e)?;
    }
    day("service_date", c.service_date)?;
    day("submitted_date", c.submitted_date)?;
    if let Some(end) = c.service_end_date {
        day("service_end_date", end)?;
        if end < c.service_date {
            return Err(ValidationError::Inconsistent(
                "service end date before service date",
            ));
        }
    }
    for l in &c.lines {
        non_negative("lines.charge_cents", l.charge_cents)?;
    }
    Ok(())
}

fn validate_encounter(e: &Encounter) -> Result<(), ValidationError> {
    key("event_id", &e.event_id)?;
    key("encounter_id", &e.encounter_id)?;
    key("member_id", &e.member_id)?;
    day("admit_date", e.admit_date)?;
    if let Some(d) = e.discharge_date {
        day("discharge_date", d)?;
        if d < e.admit_date {
            return Err(ValidationError::DischargeBeforeAdmission);
        }
    }
    if e.event_type == EncounterEventType::Discharge && e.discharge_date.is_none() {
        return Err(ValidationError::Inconsistent(
            "discharge record without discharge date",
        ));
    }
    if let Some(b) = e.birth_date {
        day("birth_date", b)?;
        if b > e.admit_date {
            return Err(ValidationError::Inconsistent("birth date after admission"));
        }
    }
    Ok(())
}

fn validate_ack(a: &ClaimAck) -> Result<(), ValidationError> {
    key("event_id", &a.event_id)?;
    key("claim_id", &a.claim_id)?;
    day("ack_date", a.ack_date)?;
    if a.statuses.is_empty() {
        return Err(ValidationError::Inconsistent(
            "acknowledgment without a status",
        ));
    }
    Ok(())
}

fn validate_remit(r: &Remittance) -> Result<(), ValidationError> {
    key("event_id", &r.event_id)?;
    key("claim_id", &r.claim_id)?;
    day("payment_date", r.payment_date)?;
    // Reversals (CLP02 22) carry negative amounts; everything else must not.
    if !r.is_reversal() {
        non_negative("charge_cents", r.charge_cents)?;
        non_negative("paid_cents", r.paid_cents)?;
    }
    Ok(())
}

fn validate_enrollment(e: &MemberEnrollment) -> Result<(), ValidationError> {
    key("event_id", &e.event_id)?;
    key("member_id", &e.member_id)?;
    key("span_id", &e.span_id)?;
    key("payer_id", &e.payer_id)?;
    day("coverage_start_date", e.coverage_start_date)?;
    if let Some(end) = e.coverage_end_date {
        day("coverage_end_date", end)?;
        if end < e.coverage_start_date {
            return Err(ValidationError::Inconsistent(
                "coverage end date before coverage start date",
            ));
        }
    }
    if e.maintenance_type == MaintenanceType::Terminate && e.coverage_end_date.is_none() {
        return Err(ValidationError::Inconsistent(
            "termination without coverage end date",
        ));
    }
    Ok(())
}
