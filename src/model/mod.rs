//! The event contracts: Rust types that mirror `schemas/*.avsc` field for field.
//!
//! Every input and output of claimwatch is one of these types. They are plain data: no behaviour
//! beyond small, obviously-correct helpers. The Avro schemas in `schemas/` are the published contract;
//! `codec::avro` checks at start-up (and in tests) that these types round-trip through them.
//!
//! Conventions shared by every type:
//! - money is `i64` **cents** (USD minor units), named `*_cents`;
//! - business dates are `i32` days since 1970-01-01 (Avro `date`), named `*_date`;
//! - instants are `i64` milliseconds since the Unix epoch (Avro `timestamp-millis`), named `*_time`
//!   or `*_ms`;
//! - `event_time` on an input is when the source system emitted the record (the Kafka record
//!   timestamp); the business dates inside can be older (a late export is "out of order").
//!
//! PHI: member ids, names and claim ids are identifiers. The `Debug` impls of the input types are
//! hand-written to omit them, so a stray `{:?}` in a log line cannot leak them.

mod claim;
mod encounter;
mod enrollment;
#[doc(hidden)]
pub mod fixtures;
mod output;
mod utilization;
mod validate;

pub use claim::*;
pub use encounter::*;
pub use enrollment::*;
pub use output::*;
pub use utilization::*;
pub use validate::{validate, ValidationError};

/// Days since 1970-01-01 (Avro `date` logical type).
pub type EpochDay = i32;
/// Milliseconds since the Unix epoch (Avro `timestamp-millis`).
pub type EpochMillis = i64;

/// Milliseconds in a day, for converting between event time and business dates.
pub const DAY_MS: i64 = 86_400_000;

/// The calendar day an instant falls on (UTC).
pub fn day_of(ms: EpochMillis) -> EpochDay {
    ms.div_euclid(DAY_MS) as EpochDay
}

/// Midnight UTC of a day, as an instant.
pub fn start_of_day(day: EpochDay) -> EpochMillis {
    i64::from(day) * DAY_MS
}

/// ISO-8601 text of a day (`2024-03-01`), for reports and humans.
pub fn format_day(day: EpochDay) -> String {
    chrono::DateTime::from_timestamp(start_of_day(day) / 1000, 0)
        .map(|d| d.date_naive().to_string())
        .unwrap_or_else(|| format!("day{day}"))
}

/// Parses `YYYY-MM-DD` or `YYYYMMDD` (X12 D8) into a day number.
pub fn parse_day(text: &str) -> Option<EpochDay> {
    let fmt = if text.len() == 8 {
        "%Y%m%d"
    } else {
        "%Y-%m-%d"
    };
    let date = chrono::NaiveDate::parse_from_str(text, fmt).ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((date - epoch).num_days()).ok()
}

/// Which input stream an event came from. Also names the default topic.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum InputStream {
    /// EHR claim export (`ehr.claims`), keyed by claim id.
    Claims,
    /// EHR encounter export (`ehr.encounters`), keyed by member id.
    Encounters,
    /// 277CA acknowledgments (`x12.277ca`), keyed by claim id.
    Acks,
    /// 835 remittances (`x12.835`), keyed by claim id.
    Remits,
    /// 834-style enrolment spans (`ehr.enrollment`), keyed by member id.
    Enrollment,
}

impl InputStream {
    /// All input streams, in the order replay breaks event-time ties.
    pub const ALL: [InputStream; 5] = [
        Self::Claims,
        Self::Encounters,
        Self::Acks,
        Self::Remits,
        Self::Enrollment,
    ];

    /// File stem used by `generate`/`replay` and default topic name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Claims => "ehr.claims",
            Self::Encounters => "ehr.encounters",
            Self::Acks => "x12.277ca",
            Self::Remits => "x12.835",
            Self::Enrollment => "ehr.enrollment",
        }
    }

    /// Avro schema name of the stream's records.
    pub fn schema_name(self) -> &'static str {
        match self {
            Self::Claims => "ClaimSubmitted",
            Self::Encounters => "Encounter",
            Self::Acks => "ClaimAck",
            Self::Remits => "Remittance",
            Self::Enrollment => "MemberEnrollment",
        }
    }
}

/// One decoded input event of any stream.
#[derive(Clone, PartialEq)]
pub enum InputEvent {
    Claim(ClaimSubmitted),
    Encounter(Encounter),
    Ack(ClaimAck),
    Remit(Remittance),
    Enrollment(MemberEnrollment),
}

impl InputEvent {
    pub fn stream(&self) -> InputStream {
        match self {
            Self::Claim(_) => InputStream::Claims,
            Self::Encounter(_) => InputStream::Encounters,
            Self::Ack(_) => InputStream::Acks,
            Self::Remit(_) => InputStream::Remits,
            Self::Enrollment(_) => InputStream::Enrollment,
        }
    }

    pub fn event_time(&self) -> EpochMillis {
        match self {
            Self::Claim(e) => e.event_time,
            Self::Encounter(e) => e.event_time,
            Self::Ack(e) => e.event_time,
            Self::Remit(e) => e.event_time,
            Self::Enrollment(e) => e.event_time,
        }
    }

    pub fn event_id(&self) -> &str {
        match self {
            Self::Claim(e) => &e.event_id,
            Self::Encounter(e) => &e.event_id,
            Self::Ack(e) => &e.event_id,
            Self::Remit(e) => &e.event_id,
            Self::Enrollment(e) => &e.event_id,
        }
    }

    /// The partitioning key: claim id for claim events, member id for encounters and enrolment.
    pub fn key(&self) -> &str {
        match self {
            Self::Claim(e) => &e.claim_id,
            Self::Encounter(e) => &e.member_id,
            Self::Ack(e) => &e.claim_id,
            Self::Remit(e) => &e.claim_id,
            Self::Enrollment(e) => &e.member_id,
        }
    }
}

impl std::fmt::Debug for InputEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Claim(e) => e.fmt(f),
            Self::Encounter(e) => e.fmt(f),
            Self::Ack(e) => e.fmt(f),
            Self::Remit(e) => e.fmt(f),
            Self::Enrollment(e) => e.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_round_trip() {
        let d = parse_day("2024-02-29").unwrap();
        assert_eq!(format_day(d), "2024-02-29");
        assert_eq!(parse_day("20240229"), Some(d));
        assert_eq!(parse_day("2023-02-29"), None);
        assert_eq!(day_of(start_of_day(d) + DAY_MS - 1), d);
        assert_eq!(day_of(-1), -1);
    }
}
