//! Avro binary datums against the schemas in `schemas/`, with the Confluent wire frame.
//!
//! Two crates, each where it is strongest: `serde_avro_fast` encodes and decodes datums (it reads
//! straight into our serde types without building an intermediate `Value` tree, >10x faster than
//! going through `apache_avro::Value`); `apache-avro` is the reference implementation we use to
//! check schema compatibility and, in tests, that it reads what we write and we read what it
//! writes.

use serde::{de::DeserializeOwned, Serialize};

use super::DecodeError;

/// Every schema claimwatch reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchemaKind {
    ClaimSubmitted,
    Encounter,
    ClaimAck,
    Remittance,
    ClaimLifecycleUpdate,
    ReadmissionEvent,
    DeadLetter,
    DenialRiskScore,
    ReadmissionRiskScore,
    HighRiskAlert,
    PayerKpi,
    EncounterCost,
    PayerFact,
    PayerMonitorAlert,
    ReadmissionSummary,
    InterventionRoi,
    StayOutcome,
    CareGapEvent,
    VaccineDose,
    MemberRiskEvent,
    CashFact,
    CashForecast,
    ProviderFact,
    ProviderKpi,
    MemberEnrollment,
    MemberPaid,
    PmpmFact,
    UtilizationFact,
    UtilizationForecast,
}

impl SchemaKind {
    pub const ALL: [SchemaKind; 29] = [
        Self::ClaimSubmitted,
        Self::Encounter,
        Self::ClaimAck,
        Self::Remittance,
        Self::ClaimLifecycleUpdate,
        Self::ReadmissionEvent,
        Self::DeadLetter,
        Self::DenialRiskScore,
        Self::ReadmissionRiskScore,
        Self::HighRiskAlert,
        Self::PayerKpi,
        Self::EncounterCost,
        Self::PayerFact,
        Self::PayerMonitorAlert,
        Self::ReadmissionSummary,
        Self::InterventionRoi,
        Self::StayOutcome,
        Self::CareGapEvent,
        Self::VaccineDose,
        Self::MemberRiskEvent,
        Self::CashFact,
        Self::CashForecast,
        Self::ProviderFact,
        Self::ProviderKpi,
        Self::MemberEnrollment,
        Self::MemberPaid,
        Self::PmpmFact,
        Self::UtilizationFact,
        Self::UtilizationForecast,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::ClaimSubmitted => "ClaimSubmitted",
            Self::Encounter => "Encounter",
            Self::ClaimAck => "ClaimAck",
            Self::Remittance => "Remittance",
            Self::ClaimLifecycleUpdate => "ClaimLifecycleUpdate",
            Self::ReadmissionEvent => "ReadmissionEvent",
            Self::DeadLetter => "DeadLetter",
            Self::DenialRiskScore => "DenialRiskScore",
            Self::ReadmissionRiskScore => "ReadmissionRiskScore",
            Self::HighRiskAlert => "HighRiskAlert",
            Self::PayerKpi => "PayerKpi",
            Self::EncounterCost => "EncounterCost",
            Self::PayerFact => "PayerFact",
            Self::PayerMonitorAlert => "PayerMonitorAlert",
            Self::ReadmissionSummary => "ReadmissionSummary",
            Self::InterventionRoi => "InterventionRoi",
            Self::StayOutcome => "StayOutcome",
            Self::CareGapEvent => "CareGapEvent",
            Self::VaccineDose => "VaccineDose",
            Self::MemberRiskEvent => "MemberRiskEvent",
            Self::CashFact => "CashFact",
            Self::CashForecast => "CashForecast",
            Self::ProviderFact => "ProviderFact",
            Self::ProviderKpi => "ProviderKpi",
            Self::MemberEnrollment => "MemberEnrollment",
            Self::MemberPaid => "MemberPaid",
            Self::PmpmFact => "PmpmFact",
            Self::UtilizationFact => "UtilizationFact",
            Self::UtilizationForecast => "UtilizationForecast",
        }
    }

    /// The schema text as shipped in `schemas/`.
    pub fn text(self) -> &'static str {
        match self {
            Self::ClaimSubmitted => include_str!("../../schemas/ClaimSubmitted.avsc"),
            Self::Encounter => include_str!("../../schemas/Encounter.avsc"),
            Self::ClaimAck => include_str!("../../schemas/ClaimAck.avsc"),
            Self::Remittance => include_str!("../../schemas/Remittance.avsc"),
            Self::ClaimLifecycleUpdate => include_str!("../../schemas/ClaimLifecycleUpdate.avsc"),
            Self::ReadmissionEvent => include_str!("../../schemas/ReadmissionEvent.avsc"),
            Self::DeadLetter => include_str!("../../schemas/DeadLetter.avsc"),
            Self::DenialRiskScore => include_str!("../../schemas/DenialRiskScore.avsc"),
            Self::ReadmissionRiskScore => include_str!("../../schemas/ReadmissionRiskScore.avsc"),
            Self::HighRiskAlert => include_str!("../../schemas/HighRiskAlert.avsc"),
            Self::PayerKpi => include_str!("../../schemas/PayerKpi.avsc"),
            Self::EncounterCost => include_str!("../../schemas/EncounterCost.avsc"),
            Self::PayerFact => include_str!("../../schemas/PayerFact.avsc"),
            Self::PayerMonitorAlert => include_str!("../../schemas/PayerMonitorAlert.avsc"),
            Self::ReadmissionSummary => include_str!("../../schemas/ReadmissionSummary.avsc"),
            Self::InterventionRoi => include_str!("../../schemas/InterventionRoi.avsc"),
            Self::StayOutcome => include_str!("../../schemas/StayOutcome.avsc"),
            Self::CareGapEvent => include_str!("../../schemas/CareGapEvent.avsc"),
            Self::VaccineDose => include_str!("../../schemas/VaccineDose.avsc"),
            Self::MemberRiskEvent => include_str!("../../schemas/MemberRiskEvent.avsc"),
            Self::CashFact => include_str!("../../schemas/CashFact.avsc"),
            Self::CashForecast => include_str!("../../schemas/CashForecast.avsc"),
            Self::ProviderFact => include_str!("../../schemas/ProviderFact.avsc"),
            Self::ProviderKpi => include_str!("../../schemas/ProviderKpi.avsc"),
            Self::MemberEnrollment => include_str!("../../schemas/MemberEnrollment.avsc"),
            Self::MemberPaid => include_str!("../../schemas/MemberPaid.avsc"),
            Self::PmpmFact => include_str!("../../schemas/PmpmFact.avsc"),
            Self::UtilizationFact => include_str!("../../schemas/UtilizationFact.avsc"),
            Self::UtilizationForecast => include_str!("../../schemas/UtilizationForecast.avsc"),
        }
    }

    /// Default schema id when no Schema Registry is configured: a fixed, documented number per
    /// schema (1-based position in [`SchemaKind::ALL`]), so producers and consumers agree offline.
    pub fn default_id(self) -> u32 {
        Self::ALL
            .iter()
            .position(|k| *k == self)
            .map_or(0, |i| i as u32 + 1)
    }
}

/// Magic byte that opens a Confluent-framed message.
pub const CONFLUENT_MAGIC: u8 = 0;

/// Splits a Confluent frame into schema id and datum.
pub fn unframe(bytes: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    match bytes {
        [] => Err(DecodeError::Empty),
        [CONFLUENT_MAGIC, a, b, c, d, rest @ ..] => {
            Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest))
        }
        [CONFLUENT_MAGIC, ..] => Err(DecodeError::Frame("shorter than the 5-byte header")),
        _ => Err(DecodeError::Frame("first byte is not the magic byte 0")),
    }
}

/// Writes the Confluent header for `schema_id`.
pub fn frame_header(schema_id: u32, out: &mut Vec<u8>) {
    out.push(CONFLUENT_MAGIC);
    out.extend_from_slice(&schema_id.to_be_bytes());
}

/// Parsed schemas and their ids.
pub struct AvroCodec {
    schemas: Vec<(SchemaKind, u32, serde_avro_fast::Schema)>,
}

impl std::fmt::Debug for AvroCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroCodec")
            .field("schemas", &self.schemas.len())
            .finish()
    }
}

impl AvroCodec {
    /// All shipped schemas with their default ids.
    pub fn new() -> Self {
        Self::with_ids(|k| k.default_id())
    }

    /// All shipped schemas with ids from a function (e.g. a Schema Registry lookup).
    pub fn with_ids(id_of: impl Fn(SchemaKind) -> u32) -> Self {
        let schemas = SchemaKind::ALL
            .iter()
            .map(|&k| {
                // The schema texts are compiled in and checked by the tests below: a parse failure is
                // a build defect, not a runtime condition.
                let schema = k
                    .text()
                    .parse()
                    .unwrap_or_else(|e| panic!("shipped schema {} invalid: {e}", k.name()));
                (k, id_of(k), schema)
            })
            .collect();
        Self { schemas }
    }

    fn entry(&self, kind: SchemaKind) -> &(SchemaKind, u32, serde_avro_fast::Schema) {
        // Every kind is present by construction.
        &self.schemas[SchemaKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)]
    }

    pub fn schema_id(&self, kind: SchemaKind) -> u32 {
        self.entry(kind).1
    }

    /// Which schema an id names, if any.
    pub fn kind_of(&self, id: u32) -> Option<SchemaKind> {
        self.schemas
            .iter()
            .find(|(_, i, _)| *i == id)
            .map(|(k, _, _)| *k)
    }

    /// Decodes a bare datum written with `kind`'s schema.
    pub fn decode_datum<T: DeserializeOwned>(
        &self,
        kind: SchemaKind,
        datum: &[u8],
    ) -> Result<T, DecodeError> {
        if datum.is_empty() {
            return Err(DecodeError::Empty);
        }
        serde_avro_fast::from_datum_slice(datum, &self.entry(kind).2)
            .map_err(|e| DecodeError::Avro(e.to_string()))
    }

    /// Decodes a Confluent-framed message that must carry `kind`'s schema id.
    pub fn decode_framed<T: DeserializeOwned>(
        &self,
        kind: SchemaKind,
        bytes: &[u8],
    ) -> Result<T, DecodeError> {
        let (id, datum) = unframe(bytes)?;
        let expected = self.schema_id(kind);
        if id != expected {
            return Err(match self.kind_of(id) {
                Some(found) => DecodeError::WrongSchema {
                    found: id,
                    found_kind: found.name(),
                    expected: kind.name(),
                },
                None => DecodeError::UnknownSchemaId(id),
            });
        }
        self.decode_datum(kind, datum)
    }

    /// Appends the bare datum of `value`.
    pub fn encode_datum<T: Serialize>(
        &self,
        kind: SchemaKind,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let mut config = serde_avro_fast::ser::SerializerConfig::new(&self.entry(kind).2);
        let buf = std::mem::take(out);
        *out = serde_avro_fast::to_datum(value, buf, &mut config).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Appends the Confluent-framed datum of `value`.
    pub fn encode_framed<T: Serialize>(
        &self,
        kind: SchemaKind,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        frame_header(self.schema_id(kind), out);
        self.encode_datum(kind, value, out)
    }
}

impl Default for AvroCodec {
    fn default() -> Self {
        Self::new()
    }
}

/// Parses a schema with the reference implementation (`apache-avro`).
pub fn reference_schema(text: &str) -> Result<apache_avro::Schema, String> {
    apache_avro::Schema::parse_str(text).map_err(|e| e.to_string())
}

/// True when data written with `writer` can be read with `reader` (Avro schema resolution rules).
pub fn can_read(writer: &str, reader: &str) -> Result<(), String> {
    let w = reference_schema(writer)?;
    let r = reference_schema(reader)?;
    apache_avro::schema_compatibility::SchemaCompatibility::can_read(&w, &r)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{fixtures, AdjustmentGroup::*, *};

    fn round_trip<T>(kind: SchemaKind, v: &T)
    where
        T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let codec = AvroCodec::new();
        let mut bytes = Vec::new();
        codec.encode_framed(kind, v, &mut bytes).unwrap();
        let back: T = codec.decode_framed(kind, &bytes).unwrap();
        assert_eq!(&back, v);
        // The reference implementation reads what we wrote, with the published schema.
        let schema = reference_schema(kind.text()).unwrap();
        let value = apache_avro::from_avro_datum(&schema, &mut &bytes[5..], None).unwrap();
        assert!(
            value.validate(&schema),
            "{} datum does not validate against its schema",
            kind.name()
        );
        // ... and we read what it writes.
        let written = apache_avro::to_avro_datum(&schema, value).unwrap();
        assert_eq!(written, bytes[5..]);
    }

    /// Every field of every schema, nested records included, says what it is.
    #[test]
    fn every_field_has_a_doc_string() {
        fn walk(v: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(o) => {
                    if let Some(fields) = o.get("fields").and_then(|f| f.as_array()) {
                        for f in fields {
                            let name = f["name"].as_str().unwrap_or("?");
                            if f.get("doc")
                                .and_then(|d| d.as_str())
                                .is_none_or(str::is_empty)
                            {
                                missing.push(format!("{path}.{name}"));
                            }
                            walk(&f["type"], &format!("{path}.{name}"), missing);
                        }
                    }
                    if let Some(items) = o.get("items") {
                        walk(items, path, missing);
                    }
                }
                serde_json::Value::Array(a) => a.iter().for_each(|t| walk(t, path, missing)),
                _ => {}
            }
        }
        let mut missing = Vec::new();
        for k in SchemaKind::ALL {
            let v: serde_json::Value = serde_json::from_str(k.text()).unwrap();
            assert!(
                v["doc"].as_str().is_some_and(|d| !d.is_empty()),
                "{} has no doc",
                k.name()
            );
            walk(&v, k.name(), &mut missing);
        }
        assert!(missing.is_empty(), "fields without doc: {missing:?}");
    }

    #[test]
    fn every_shipped_schema_parses_in_both_crates() {
        for k in SchemaKind::ALL {
            reference_schema(k.text()).unwrap_or_else(|e| panic!("{}: {e}", k.name()));
            k.text()
                .parse::<serde_avro_fast::Schema>()
                .unwrap_or_else(|e| panic!("{}: {e}", k.name()));
        }
    }

    #[test]
    fn inputs_round_trip_and_interoperate() {
        let mut c = fixtures::claim("C1", "2024-03-01");
        c.prior_auth_ref = Some("PA1".into());
        round_trip(SchemaKind::ClaimSubmitted, &c);
        round_trip(
            SchemaKind::ClaimAck,
            &fixtures::ack("C1", "2024-03-02", "A2", "20"),
        );
        let mut r = fixtures::remit(
            "C1",
            "2024-03-20",
            "1",
            50_000,
            &[(CO, "45", 40_000), (PR, "2", 10_000)],
        );
        r.lines.push(ServiceLinePayment {
            procedure_code: "99214".into(),
            modifiers: vec!["25".into()],
            revenue_code: None,
            charge_cents: 100_000,
            paid_cents: 50_000,
            units: Some(1.0),
            service_date: Some(fixtures::d("2024-02-28")),
            adjustments: vec![Adjustment {
                group: CO,
                reason: "45".into(),
                amount_cents: 1,
                quantity: Some(2.0),
            }],
            remarks: vec!["N130".into()],
        });
        round_trip(SchemaKind::Remittance, &r);
        round_trip(
            SchemaKind::Encounter,
            &fixtures::stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I509"),
        );
    }

    #[test]
    fn outputs_round_trip() {
        let dl = DeadLetter {
            source: "x12.835".into(),
            partition: 3,
            offset: 42,
            error_kind: "decode".into(),
            message: "truncated".into(),
            payload: vec![0, 1, 2, 255],
            event_time: 1,
        };
        round_trip(SchemaKind::DeadLetter, &dl);
    }

    #[test]
    fn payer_monitor_records_round_trip() {
        let fact = PayerFact {
            payer_id: "P1".into(),
            payer_category: PayerCategory::Medicaid,
            event_time: 1_700_000_000_000,
            kind: FactKind::Adjudicated,
            outcome: Some(FactOutcome::PartiallyPaid),
            first_adjudication: true,
            first_pass_paid: false,
            paid_cents: 12_000,
            denied_cents: 3_000,
            denial_category: Some("CODING".into()),
            denied_by_category: vec![AmountByCode {
                code: "CODING".into(),
                amount_cents: 3_000,
            }],
            days_to_payment: Some(21),
            source_partition: 2,
        };
        round_trip(SchemaKind::PayerFact, &fact);
        let kpi = PayerKpi {
            output_id: "P1:DAILY:0:2".into(),
            payer_id: "P1".into(),
            payer_category: PayerCategory::Medicaid,
            window_start: 0,
            window_end: DAY_MS,
            version: 2,
            submitted: 10,
            accepted: 9,
            rejected: 1,
            paid: 6,
            denied: 2,
            paid_cents: 60_000,
            denied_cents: 9_000,
            denial_rate: 0.25,
            first_pass_yield: 0.5,
            top_denial_categories: vec![AmountByCode {
                code: "CODING".into(),
                amount_cents: 9_000,
            }],
            median_days_to_payment: Some(20.5),
            granularity: Granularity::Daily,
            adjudicated: 8,
            partially_paid: 1,
            reversed: 0,
            first_adjudicated: 8,
            first_pass_paid: 4,
            top_denial_category_counts: vec![CountByCode {
                code: "CODING".into(),
                count: 2,
            }],
            late_facts: 1,
            baseline_windows: 28,
            baseline_denial_rate: Some(0.1),
            denial_rate_z: Some(2.1),
            carc_mix_chi2: Some(3.5),
            carc_mix_dof: Some(8),
            carc_mix_p_value: Some(0.9),
        };
        round_trip(SchemaKind::PayerKpi, &kpi);
        let alert = PayerMonitorAlert {
            output_id: "P1:DAILY:0:DENIAL_RATE_SPIKE".into(),
            payer_id: "P1".into(),
            payer_category: PayerCategory::Medicaid,
            granularity: Granularity::Daily,
            window_start: 0,
            window_end: DAY_MS,
            rule: MonitorRule::DenialRateSpike,
            value: 3.2,
            threshold: 3.0,
            volume: 8,
            kpi_version: 2,
        };
        round_trip(SchemaKind::PayerMonitorAlert, &alert);
    }

    #[test]
    fn framing_errors_are_typed() {
        let codec = AvroCodec::new();
        let r: Result<ClaimAck, _> = codec.decode_framed(SchemaKind::ClaimAck, &[]);
        assert_eq!(r.unwrap_err(), DecodeError::Empty);
        let r: Result<ClaimAck, _> = codec.decode_framed(SchemaKind::ClaimAck, &[1, 2, 3]);
        assert!(matches!(r.unwrap_err(), DecodeError::Frame(_)));
        let r: Result<ClaimAck, _> = codec.decode_framed(SchemaKind::ClaimAck, &[0, 0, 0]);
        assert!(matches!(r.unwrap_err(), DecodeError::Frame(_)));
        let r: Result<ClaimAck, _> =
            codec.decode_framed(SchemaKind::ClaimAck, &[0, 0, 0, 0, 99, 1]);
        assert_eq!(r.unwrap_err(), DecodeError::UnknownSchemaId(99));
        let mut bytes = Vec::new();
        codec
            .encode_framed(
                SchemaKind::ClaimSubmitted,
                &fixtures::claim("C1", "2024-03-01"),
                &mut bytes,
            )
            .unwrap();
        let r: Result<ClaimAck, _> = codec.decode_framed(SchemaKind::ClaimAck, &bytes);
        assert!(matches!(r.unwrap_err(), DecodeError::WrongSchema { .. }));
        // Every truncation of a valid record is an error, never a panic.
        for cut in 5..bytes.len() {
            let r: Result<ClaimSubmitted, _> =
                codec.decode_framed(SchemaKind::ClaimSubmitted, &bytes[..cut]);
            assert!(r.is_err(), "truncated at {cut} decoded");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"))), ..proptest::test_runner::Config::default() })]
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let codec = AvroCodec::new();
            let _ = codec.decode_datum::<Remittance>(SchemaKind::Remittance, &bytes);
            let _ = codec.decode_datum::<Encounter>(SchemaKind::Encounter, &bytes);
            let _ = codec.decode_datum::<ClaimSubmitted>(SchemaKind::ClaimSubmitted, &bytes);
            let _ = codec.decode_datum::<ClaimAck>(SchemaKind::ClaimAck, &bytes);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"))), ..proptest::test_runner::Config::default() })]
        #[test]
        fn mutated_valid_records_never_panic(
            edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY, 0u8..3), 1..8),
        ) {
            let codec = AvroCodec::new();
            let mut r = fixtures::remit("C1", "2024-03-20", "1", 50_000, &[(CO, "45", 40_000), (PR, "2", 10_000)]);
            r.remarks = vec!["N130".into(), "M51".into()];
            let mut bytes = Vec::new();
            codec.encode_framed(SchemaKind::Remittance, &r, &mut bytes).unwrap();
            for (pos, byte, op) in edits {
                let i = pos % (bytes.len() + 1);
                match op {
                    0 if i < bytes.len() => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ => bytes.truncate(i.max(1)),
                }
            }
            let _ = codec.decode_framed::<Remittance>(SchemaKind::Remittance, &bytes);
            let _ = crate::codec::json::decode::<Remittance>(&bytes);
        }
    }

    #[test]
    fn population_records_round_trip() {
        let fact = StayOutcome {
            sign: -1,
            event_time: 1_700_000_000_000,
            dx_group: "CIR".into(),
            hrrp_cohort: Some("HF".into()),
            tier: RiskTier::High,
            probability_micros: 412_345,
            los_days: 5,
            index_paid_cents: Some(1_200_000),
            readmitted: true,
            planned: false,
            preventable: true,
            readmission_paid_cents: None,
        };
        round_trip(SchemaKind::StayOutcome, &fact);
        let summary = ReadmissionSummary {
            output_id: "all:3".into(),
            group: "all".into(),
            version: 3,
            event_time: 1_700_006_400_000,
            index_stays: 120,
            readmissions: 20,
            readmission_rate: 0.166667,
            planned_readmissions: 4,
            preventable_readmissions: 9,
            readmission_paid_cents: 25_000_000,
            readmissions_with_paid: 18,
            preventable_paid_cents: 11_000_000,
            average_los_days: 4.25,
            index_paid_cents: 140_000_000,
            expected_readmissions: 19.5,
            kpis: Some(PopulationKpis {
                readmission_rate: 0.166667,
                preventable_share: 0.45,
                preventable_readmission_spend_cents: 11_000_000,
                average_los_days: 4.25,
                observed_to_expected: Some(1.0256),
                cost_pmpm_cents: Some(41_250),
                member_months: Some(240),
                pmpm_paid_cents: Some(9_900_000),
                paid_without_eligibility_cents: Some(12_000),
                pmpm_first_month: Some("2024-01".into()),
                pmpm_last_month: Some("2024-12".into()),
                pmpm_months: Some(vec![crate::model::PmpmMonth {
                    month: "2024-01".into(),
                    member_months: 20,
                    paid_cents: 800_000,
                    paid_without_eligibility_cents: 0,
                    cost_pmpm_cents: Some(40_000),
                }]),
            }),
        };
        round_trip(SchemaKind::ReadmissionSummary, &summary);
        let cut = |min_tier, roi| RoiCutoff {
            min_tier,
            members_targeted: 40,
            expected_readmissions: 12.5,
            expected_avoided: 3.75,
            gross_savings_cents: 5_000_000,
            programme_cost_cents: 1_800_000,
            net_savings_cents: 3_200_000,
            roi,
        };
        let roi = InterventionRoi {
            output_id: "care-coordination:2".into(),
            intervention_id: "care-coordination".into(),
            version: 2,
            event_time: 1_700_006_400_000,
            name: "care coordination".into(),
            cost_per_member_cents: 45_000,
            expected_relative_reduction: 0.3,
            source: "assumption".into(),
            cutoffs: vec![
                cut(RiskTier::High, Some(1.7778)),
                cut(RiskTier::Medium, None),
                cut(RiskTier::Low, Some(-0.5)),
            ],
            best_min_tier: RiskTier::High,
            best_net_savings_cents: 3_200_000,
            best_roi: Some(1.7778),
        };
        round_trip(SchemaKind::InterventionRoi, &roi);
    }
}
