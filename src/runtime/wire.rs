//! Message payloads on Kafka: input records are recognised per message (a Confluent-framed Avro
//! datum starts with the magic byte 0, a JSON object with `{`), outputs are written in the format
//! configured for their topic.

use crate::codec::registry::RegistryCodec;
use crate::codec::{json, AvroCodec, DecodeError, Format, SchemaKind};
use crate::model::{
    validate, CashFact, ClaimAck, ClaimSubmitted, Encounter, EncounterCost, InputEvent,
    InputStream, MemberEnrollment, MemberPaid, OutputEvent, PayerFact, PmpmFact, ProviderFact,
    Remittance, StayOutcome, VaccineDose,
};

/// The schema of an input stream's records.
pub fn input_kind(stream: InputStream) -> SchemaKind {
    match stream {
        InputStream::Claims => SchemaKind::ClaimSubmitted,
        InputStream::Encounters => SchemaKind::Encounter,
        InputStream::Acks => SchemaKind::ClaimAck,
        InputStream::Remits => SchemaKind::Remittance,
        InputStream::Enrollment => SchemaKind::MemberEnrollment,
    }
}

fn detect(bytes: &[u8]) -> Result<Format, DecodeError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(DecodeError::Empty),
        Some(0) if bytes[0] == 0 => Ok(Format::Avro),
        Some(b'{') => Ok(Format::Json),
        Some(_) => Err(DecodeError::Frame(
            "neither a Confluent-framed Avro datum (magic byte 0) nor a JSON object",
        )),
    }
}

/// Reads a Confluent-framed datum: [`AvroCodec`] knows only our own schema ids,
/// [`RegistryCodec`] also any registered version of them that can be read as ours.
pub trait FramedDecoder {
    fn decode_framed<T: serde::de::DeserializeOwned>(
        &self,
        kind: SchemaKind,
        bytes: &[u8],
    ) -> Result<T, DecodeError>;
}

impl FramedDecoder for AvroCodec {
    fn decode_framed<T: serde::de::DeserializeOwned>(
        &self,
        kind: SchemaKind,
        bytes: &[u8],
    ) -> Result<T, DecodeError> {
        AvroCodec::decode_framed(self, kind, bytes)
    }
}

impl FramedDecoder for RegistryCodec {
    fn decode_framed<T: serde::de::DeserializeOwned>(
        &self,
        kind: SchemaKind,
        bytes: &[u8],
    ) -> Result<T, DecodeError> {
        RegistryCodec::decode_framed(self, kind, bytes)
    }
}

/// Decodes and validates one input record of `stream`.
pub fn decode_input(
    codec: &impl FramedDecoder,
    stream: InputStream,
    bytes: &[u8],
) -> Result<InputEvent, DecodeError> {
    let kind = input_kind(stream);
    let event = match detect(bytes)? {
        Format::Avro => match stream {
            InputStream::Claims => InputEvent::Claim(codec.decode_framed(kind, bytes)?),
            InputStream::Encounters => InputEvent::Encounter(codec.decode_framed(kind, bytes)?),
            InputStream::Acks => InputEvent::Ack(codec.decode_framed(kind, bytes)?),
            InputStream::Remits => InputEvent::Remit(codec.decode_framed(kind, bytes)?),
            InputStream::Enrollment => InputEvent::Enrollment(codec.decode_framed(kind, bytes)?),
        },
        Format::Json => match stream {
            InputStream::Claims => InputEvent::Claim(json::decode::<ClaimSubmitted>(bytes)?),
            InputStream::Encounters => InputEvent::Encounter(json::decode::<Encounter>(bytes)?),
            InputStream::Acks => InputEvent::Ack(json::decode::<ClaimAck>(bytes)?),
            InputStream::Remits => InputEvent::Remit(json::decode::<Remittance>(bytes)?),
            InputStream::Enrollment => {
                InputEvent::Enrollment(json::decode::<MemberEnrollment>(bytes)?)
            }
        },
    };
    validate(&event)?;
    Ok(event)
}

/// Encodes an input event for its topic (the producer side of `claimwatch produce`).
pub fn encode_input(
    codec: &AvroCodec,
    event: &InputEvent,
    format: Format,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let kind = input_kind(event.stream());
    match (format, event) {
        (Format::Avro, InputEvent::Claim(e)) => codec.encode_framed(kind, e, out),
        (Format::Avro, InputEvent::Encounter(e)) => codec.encode_framed(kind, e, out),
        (Format::Avro, InputEvent::Ack(e)) => codec.encode_framed(kind, e, out),
        (Format::Avro, InputEvent::Remit(e)) => codec.encode_framed(kind, e, out),
        (Format::Avro, InputEvent::Enrollment(e)) => codec.encode_framed(kind, e, out),
        (Format::Json, e) => {
            match e {
                InputEvent::Claim(e) => json::encode_line(e, out),
                InputEvent::Encounter(e) => json::encode_line(e, out),
                InputEvent::Ack(e) => json::encode_line(e, out),
                InputEvent::Remit(e) => json::encode_line(e, out),
                InputEvent::Enrollment(e) => json::encode_line(e, out),
            }
            out.pop(); // the line's newline
            Ok(())
        }
    }
}

/// Encodes a record of the internal repartition topic (always Avro: nobody else reads it).
pub fn encode_cost(codec: &AvroCodec, cost: &EncounterCost, out: &mut Vec<u8>) {
    if let Err(e) = codec.encode_framed(SchemaKind::EncounterCost, cost, out) {
        // The schema and the struct are compiled together and round-trip tested.
        unreachable!("EncounterCost does not fit its own schema: {e}");
    }
}

/// Decodes a record of the internal repartition topic.
pub fn decode_cost(codec: &AvroCodec, bytes: &[u8]) -> Result<EncounterCost, DecodeError> {
    codec.decode_framed(SchemaKind::EncounterCost, bytes)
}

/// Encodes a record of the internal member-paid topic (always Avro).
pub fn encode_member_paid(codec: &AvroCodec, paid: &MemberPaid, out: &mut Vec<u8>) {
    if let Err(e) = codec.encode_framed(SchemaKind::MemberPaid, paid, out) {
        // The schema and the struct are compiled together and round-trip tested.
        unreachable!("MemberPaid does not fit its own schema: {e}");
    }
}

/// Decodes a record of the internal member-paid topic.
pub fn decode_member_paid(codec: &AvroCodec, bytes: &[u8]) -> Result<MemberPaid, DecodeError> {
    codec.decode_framed(SchemaKind::MemberPaid, bytes)
}

/// Encodes a record of the internal PMPM-facts topic (always Avro).
pub fn encode_pmpm_fact(codec: &AvroCodec, fact: &PmpmFact, out: &mut Vec<u8>) {
    if let Err(e) = codec.encode_framed(SchemaKind::PmpmFact, fact, out) {
        // The schema and the struct are compiled together and round-trip tested.
        unreachable!("PmpmFact does not fit its own schema: {e}");
    }
}

/// Decodes a record of the internal PMPM-facts topic.
pub fn decode_pmpm_fact(codec: &AvroCodec, bytes: &[u8]) -> Result<PmpmFact, DecodeError> {
    codec.decode_framed(SchemaKind::PmpmFact, bytes)
}

/// Encodes a record of the internal payer-facts topic (always Avro).
pub fn encode_fact(codec: &AvroCodec, fact: &PayerFact, out: &mut Vec<u8>) {
    if let Err(e) = codec.encode_framed(SchemaKind::PayerFact, fact, out) {
        // The schema and the struct are compiled together and round-trip tested.
        unreachable!("PayerFact does not fit its own schema: {e}");
    }
}

/// Encodes a record of the internal population-facts topic (always Avro).
pub fn encode_stay_outcome(codec: &AvroCodec, fact: &StayOutcome, out: &mut Vec<u8>) {
    if let Err(e) = codec.encode_framed(SchemaKind::StayOutcome, fact, out) {
        // The schema is compiled in from the same struct: a failure is a programming error.
        unreachable!("StayOutcome does not fit its own schema: {e}");
    }
}

/// Decodes a record of the internal population-facts topic.
pub fn decode_stay_outcome(codec: &AvroCodec, bytes: &[u8]) -> Result<StayOutcome, DecodeError> {
    codec.decode_framed(SchemaKind::StayOutcome, bytes)
}

/// Decodes a record of the internal payer-facts topic.
pub fn decode_fact(codec: &AvroCodec, bytes: &[u8]) -> Result<PayerFact, DecodeError> {
    codec.decode_framed(SchemaKind::PayerFact, bytes)
}

/// Encodes a record of the internal vaccine-doses topic (always Avro).
pub fn encode_dose(codec: &AvroCodec, dose: &VaccineDose, out: &mut Vec<u8>) {
    if let Err(e) = codec.encode_framed(SchemaKind::VaccineDose, dose, out) {
        // The schema and the struct are compiled together and round-trip tested.
        unreachable!("VaccineDose does not fit its own schema: {e}");
    }
}

/// Decodes a record of the internal vaccine-doses topic.
pub fn decode_dose(codec: &AvroCodec, bytes: &[u8]) -> Result<VaccineDose, DecodeError> {
    codec.decode_framed(SchemaKind::VaccineDose, bytes)
}

/// Encodes a record of the internal cash-facts topic (always Avro).
pub fn encode_cash_fact(codec: &AvroCodec, fact: &CashFact, out: &mut Vec<u8>) {
    if let Err(e) = codec.encode_framed(SchemaKind::CashFact, fact, out) {
        // The schema and the struct are compiled together and round-trip tested.
        unreachable!("CashFact does not fit its own schema: {e}");
    }
}

/// Decodes a record of the internal cash-facts topic.
pub fn decode_cash_fact(codec: &AvroCodec, bytes: &[u8]) -> Result<CashFact, DecodeError> {
    codec.decode_framed(SchemaKind::CashFact, bytes)
}

/// Encodes a record of the internal provider-facts topic (always Avro).
pub fn encode_provider_fact(codec: &AvroCodec, fact: &ProviderFact, out: &mut Vec<u8>) {
    if let Err(e) = codec.encode_framed(SchemaKind::ProviderFact, fact, out) {
        // The schema and the struct are compiled together and round-trip tested.
        unreachable!("ProviderFact does not fit its own schema: {e}");
    }
}

/// Decodes a record of the internal provider-facts topic.
pub fn decode_provider_fact(codec: &AvroCodec, bytes: &[u8]) -> Result<ProviderFact, DecodeError> {
    codec.decode_framed(SchemaKind::ProviderFact, bytes)
}

/// Encodes a record of the internal utilization-facts topic (always Avro).
pub fn encode_utilization_fact(
    codec: &AvroCodec,
    fact: &crate::model::UtilizationFact,
    out: &mut Vec<u8>,
) {
    if let Err(e) = codec.encode_framed(SchemaKind::UtilizationFact, fact, out) {
        // The schema and the struct are compiled together and round-trip tested.
        unreachable!("UtilizationFact does not fit its own schema: {e}");
    }
}

/// Decodes a record of the internal utilization-facts topic.
pub fn decode_utilization_fact(
    codec: &AvroCodec,
    bytes: &[u8],
) -> Result<crate::model::UtilizationFact, DecodeError> {
    codec.decode_framed(SchemaKind::UtilizationFact, bytes)
}

/// The schema of an output event.
pub fn output_kind(event: &OutputEvent) -> SchemaKind {
    match event {
        OutputEvent::ClaimLifecycle(_) => SchemaKind::ClaimLifecycleUpdate,
        OutputEvent::Readmission(_) => SchemaKind::ReadmissionEvent,
        OutputEvent::DeadLetter(_) => SchemaKind::DeadLetter,
        OutputEvent::DenialRisk(_) => SchemaKind::DenialRiskScore,
        OutputEvent::ReadmissionRisk(_) => SchemaKind::ReadmissionRiskScore,
        OutputEvent::HighRiskAlert(_) => SchemaKind::HighRiskAlert,
        OutputEvent::PayerKpi(_) => SchemaKind::PayerKpi,
        OutputEvent::PayerMonitorAlert(_) => SchemaKind::PayerMonitorAlert,
        OutputEvent::ReadmissionSummary(_) => SchemaKind::ReadmissionSummary,
        OutputEvent::InterventionRoi(_) => SchemaKind::InterventionRoi,
        OutputEvent::CareGap(_) => SchemaKind::CareGapEvent,
        OutputEvent::MemberRisk(_) => SchemaKind::MemberRiskEvent,
        OutputEvent::CashForecast(_) => SchemaKind::CashForecast,
        OutputEvent::ProviderKpi(_) => SchemaKind::ProviderKpi,
        OutputEvent::UtilizationForecast(_) => SchemaKind::UtilizationForecast,
    }
}

/// Encodes an output event in `format`.
pub fn encode_output(
    codec: &AvroCodec,
    event: &OutputEvent,
    format: Format,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let kind = output_kind(event);
    match format {
        Format::Avro => match event {
            OutputEvent::ClaimLifecycle(e) => codec.encode_framed(kind, e, out),
            OutputEvent::Readmission(e) => codec.encode_framed(kind, e, out),
            OutputEvent::DeadLetter(e) => codec.encode_framed(kind, e, out),
            OutputEvent::DenialRisk(e) => codec.encode_framed(kind, e, out),
            OutputEvent::ReadmissionRisk(e) => codec.encode_framed(kind, e, out),
            OutputEvent::HighRiskAlert(e) => codec.encode_framed(kind, e, out),
            OutputEvent::PayerKpi(e) => codec.encode_framed(kind, e, out),
            OutputEvent::PayerMonitorAlert(e) => codec.encode_framed(kind, e, out),
            OutputEvent::ReadmissionSummary(e) => codec.encode_framed(kind, e, out),
            OutputEvent::InterventionRoi(e) => codec.encode_framed(kind, e, out),
            OutputEvent::CareGap(e) => codec.encode_framed(kind, e, out),
            OutputEvent::MemberRisk(e) => codec.encode_framed(kind, e, out),
            OutputEvent::CashForecast(e) => codec.encode_framed(kind, e, out),
            OutputEvent::ProviderKpi(e) => codec.encode_framed(kind, e, out),
            OutputEvent::UtilizationForecast(e) => codec.encode_framed(kind, e, out),
        },
        Format::Json => {
            match event {
                OutputEvent::ClaimLifecycle(e) => json::encode_line(e, out),
                OutputEvent::Readmission(e) => json::encode_line(e, out),
                OutputEvent::DeadLetter(e) => json::encode_line(e, out),
                OutputEvent::DenialRisk(e) => json::encode_line(e, out),
                OutputEvent::ReadmissionRisk(e) => json::encode_line(e, out),
                OutputEvent::HighRiskAlert(e) => json::encode_line(e, out),
                OutputEvent::PayerKpi(e) => json::encode_line(e, out),
                OutputEvent::PayerMonitorAlert(e) => json::encode_line(e, out),
                OutputEvent::ReadmissionSummary(e) => json::encode_line(e, out),
                OutputEvent::InterventionRoi(e) => json::encode_line(e, out),
                OutputEvent::CareGap(e) => json::encode_line(e, out),
                OutputEvent::MemberRisk(e) => json::encode_line(e, out),
                OutputEvent::CashForecast(e) => json::encode_line(e, out),
                OutputEvent::ProviderKpi(e) => json::encode_line(e, out),
                OutputEvent::UtilizationForecast(e) => json::encode_line(e, out),
            }
            out.pop();
            Ok(())
        }
    }
}

/// Decodes an output record (for tests, the demo and subscribers written in Rust).
pub fn decode_output(
    codec: &AvroCodec,
    default_topic: &str,
    bytes: &[u8],
) -> Result<OutputEvent, DecodeError> {
    let format = detect(bytes)?;
    macro_rules! dec {
        ($kind:expr, $t:ty) => {
            match format {
                Format::Avro => codec.decode_framed::<$t>($kind, bytes)?,
                Format::Json => json::decode::<$t>(bytes)?,
            }
        };
    }
    Ok(match default_topic {
        "claimwatch.claim-lifecycle" => OutputEvent::ClaimLifecycle(Box::new(dec!(
            SchemaKind::ClaimLifecycleUpdate,
            crate::model::ClaimLifecycleUpdate
        ))),
        "claimwatch.readmissions" => OutputEvent::Readmission(Box::new(dec!(
            SchemaKind::ReadmissionEvent,
            crate::model::ReadmissionEvent
        ))),
        "claimwatch.dead-letter" => {
            OutputEvent::DeadLetter(dec!(SchemaKind::DeadLetter, crate::model::DeadLetter))
        }
        "claimwatch.denial-risk" => OutputEvent::DenialRisk(dec!(
            SchemaKind::DenialRiskScore,
            crate::model::DenialRiskScore
        )),
        "claimwatch.readmission-risk" => OutputEvent::ReadmissionRisk(dec!(
            SchemaKind::ReadmissionRiskScore,
            crate::model::ReadmissionRiskScore
        )),
        "claimwatch.alerts.high-risk-discharge" => {
            OutputEvent::HighRiskAlert(dec!(SchemaKind::HighRiskAlert, crate::model::HighRiskAlert))
        }
        "claimwatch.payer-kpis" => {
            OutputEvent::PayerKpi(dec!(SchemaKind::PayerKpi, crate::model::PayerKpi))
        }
        "claimwatch.alerts.payer-monitor" => OutputEvent::PayerMonitorAlert(dec!(
            SchemaKind::PayerMonitorAlert,
            crate::model::PayerMonitorAlert
        )),
        "claimwatch.readmission-summary" => OutputEvent::ReadmissionSummary(dec!(
            SchemaKind::ReadmissionSummary,
            crate::model::ReadmissionSummary
        )),
        "claimwatch.intervention-roi" => OutputEvent::InterventionRoi(dec!(
            SchemaKind::InterventionRoi,
            crate::model::InterventionRoi
        )),
        "claimwatch.care-gaps" => {
            OutputEvent::CareGap(dec!(SchemaKind::CareGapEvent, crate::model::CareGapEvent))
        }
        "claimwatch.member-risk" => OutputEvent::MemberRisk(dec!(
            SchemaKind::MemberRiskEvent,
            crate::model::MemberRiskEvent
        )),
        "claimwatch.cash-forecast" => {
            OutputEvent::CashForecast(dec!(SchemaKind::CashForecast, crate::model::CashForecast))
        }
        "claimwatch.provider-kpis" => {
            OutputEvent::ProviderKpi(dec!(SchemaKind::ProviderKpi, crate::model::ProviderKpi))
        }
        "claimwatch.utilization-forecast" => OutputEvent::UtilizationForecast(dec!(
            SchemaKind::UtilizationForecast,
            crate::model::UtilizationForecast
        )),
        _ => return Err(DecodeError::Frame("not a claimwatch output topic")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{claim, stay};

    #[test]
    fn inputs_round_trip_in_both_formats() {
        let codec = AvroCodec::new();
        for event in [
            InputEvent::Claim(claim("C1", "2024-03-01")),
            InputEvent::Encounter(stay(
                "M1",
                "E1",
                "F1",
                "2024-03-01",
                "2024-03-04",
                "01",
                "I5023",
            )),
        ] {
            for format in [Format::Avro, Format::Json] {
                let mut buf = Vec::new();
                encode_input(&codec, &event, format, &mut buf).unwrap();
                let back = decode_input(&codec, event.stream(), &buf).unwrap();
                assert_eq!(back, event);
            }
        }
    }

    #[test]
    fn garbage_and_wrong_schema_are_typed_errors() {
        let codec = AvroCodec::new();
        assert_eq!(
            decode_input(&codec, InputStream::Claims, b""),
            Err(DecodeError::Empty)
        );
        assert!(matches!(
            decode_input(&codec, InputStream::Claims, b"\xffgarbage"),
            Err(DecodeError::Frame(_))
        ));
        let mut buf = Vec::new();
        encode_input(
            &codec,
            &InputEvent::Encounter(stay(
                "M1",
                "E1",
                "F1",
                "2024-03-01",
                "2024-03-04",
                "01",
                "I5023",
            )),
            Format::Avro,
            &mut buf,
        )
        .unwrap();
        assert!(matches!(
            decode_input(&codec, InputStream::Claims, &buf),
            Err(DecodeError::WrongSchema { .. })
        ));
    }
}
