//! Hand-made example events for tests, benchmarks and documentation. Synthetic: no real person.

use super::*;

/// Day number of a `YYYY-MM-DD` literal (panics on a bad literal: fixtures only).
pub fn d(text: &str) -> EpochDay {
    parse_day(text).unwrap_or_else(|| panic!("bad fixture date {text}"))
}

/// Midday of a `YYYY-MM-DD` literal as event time.
pub fn t(text: &str) -> EpochMillis {
    start_of_day(d(text)) + DAY_MS / 2
}

pub fn claim(claim_id: &str, submitted: &str) -> ClaimSubmitted {
    ClaimSubmitted {
        event_id: format!("clm-{claim_id}-1"),
        event_time: t(submitted),
        claim_id: claim_id.into(),
        member_id: "M0001".into(),
        payer_id: "P-ACME".into(),
        payer_category: PayerCategory::Commercial,
        provider_id: "1234567890".into(),
        department: "CARDIOLOGY".into(),
        facility_id: Some("F01".into()),
        encounter_id: None,
        claim_type: ClaimType::Professional,
        frequency: ClaimFrequency::Original,
        billed_cents: 100_000,
        expected_cents: Some(60_000),
        service_date: d(submitted) - 2,
        service_end_date: None,
        submitted_date: d(submitted),
        diagnosis_codes: vec!["I509".into(), "E119".into()],
        lines: vec![ClaimLine {
            line_number: 1,
            procedure_code: "99214".into(),
            modifiers: vec![],
            revenue_code: None,
            units: 1.0,
            charge_cents: 100_000,
            service_date: Some(d(submitted) - 2),
        }],
        drg: None,
        place_of_service: Some("11".into()),
        prior_auth_ref: None,
        original_payer_claim_id: None,
        attachments: Vec::new(),
    }
}

pub fn ack(claim_id: &str, date: &str, category: &str, code: &str) -> ClaimAck {
    ClaimAck {
        event_id: format!("ack-{claim_id}-{date}-{category}{code}"),
        event_time: t(date),
        claim_id: claim_id.into(),
        payer_id: Some("P-ACME".into()),
        payer_claim_control_number: Some(format!("PCN{claim_id}")),
        clearinghouse_trace: None,
        ack_date: d(date),
        statuses: vec![ClaimStatusCode {
            category: category.into(),
            code: code.into(),
            entity: Some("PR".into()),
        }],
        billed_cents: Some(100_000),
    }
}

/// An 835 claim payment: `adjustments` are claim-level (group, CARC, cents).
pub fn remit(
    claim_id: &str,
    date: &str,
    status: &str,
    paid: i64,
    adjustments: &[(AdjustmentGroup, &str, i64)],
) -> Remittance {
    let adjustments: Vec<Adjustment> = adjustments
        .iter()
        .map(|(g, r, a)| Adjustment {
            group: *g,
            reason: (*r).into(),
            amount_cents: *a,
            quantity: None,
        })
        .collect();
    let patient: i64 = adjustments
        .iter()
        .filter(|a| a.group == AdjustmentGroup::PR)
        .map(|a| a.amount_cents)
        .sum();
    let sign = if status == "22" { -1 } else { 1 };
    Remittance {
        event_id: format!("rmt-{claim_id}-{date}-{status}-{paid}"),
        event_time: t(date),
        claim_id: claim_id.into(),
        payer_id: "P-ACME".into(),
        payer_claim_control_number: Some(format!("PCN{claim_id}")),
        claim_status: status.into(),
        charge_cents: sign * 100_000,
        paid_cents: paid,
        patient_responsibility_cents: patient,
        claim_filing_indicator: Some("CI".into()),
        facility_code: None,
        frequency: Some("1".into()),
        drg: None,
        adjustments,
        remarks: vec![],
        lines: vec![],
        payment_date: d(date),
        payment_trace: Some("EFT0001".into()),
        findings: vec![],
    }
}

/// An inpatient discharge record: the whole stay.
pub fn stay(
    member: &str,
    encounter: &str,
    facility: &str,
    admit: &str,
    discharge: &str,
    disposition: &str,
    dx: &str,
) -> Encounter {
    Encounter {
        event_id: format!("enc-{encounter}-dis"),
        event_time: t(discharge),
        encounter_id: encounter.into(),
        member_id: member.into(),
        event_type: EncounterEventType::Discharge,
        encounter_class: EncounterClass::Inpatient,
        facility_id: facility.into(),
        acute_care_facility: true,
        department: "MEDICINE".into(),
        attending_provider_id: Some("1234567890".into()),
        admit_date: d(admit),
        admit_type: AdmitType::Emergency,
        admit_source: Some("1".into()),
        discharge_date: Some(d(discharge)),
        discharge_disposition: Some(disposition.into()),
        principal_dx: dx.into(),
        secondary_dx: vec!["E119".into()],
        procedures: vec![],
        hemoglobin_g_dl: Some(11.5),
        sodium_mmol_l: Some(138.0),
        birth_date: Some(d("1950-06-01")),
        sex: Some(Sex::Female),
        payer_id: Some("P-MCR".into()),
        payer_category: Some(PayerCategory::Medicare),
        claim_id: None,
    }
}

/// An enrolment record of `member`'s span `span`, sent at midday of `sent`.
pub fn enrollment(
    member: &str,
    span: &str,
    maintenance_type: MaintenanceType,
    start: &str,
    end: Option<&str>,
    sent: &str,
) -> MemberEnrollment {
    MemberEnrollment {
        event_id: format!("enr-{member}-{span}-{sent}-{maintenance_type:?}"),
        event_time: t(sent),
        member_id: member.into(),
        span_id: span.into(),
        payer_id: "P-ACME".into(),
        payer_category: PayerCategory::Commercial,
        maintenance_type,
        coverage_start_date: d(start),
        coverage_end_date: end.map(d),
    }
}
