//! The utilization forecast's contracts (`utilization` module): the internal fact re-keyed from
//! the member flow to `<facility>|<service line>`, and the output record
//! `claimwatch.utilization-forecast`.

use serde::{Deserialize, Serialize};

use super::{EpochDay, EpochMillis};

/// Internal event on the utilization flow: what one encounter adds to (`sign` +1) or takes back
/// from (`sign` -1) a `<facility>|<service line>` key's weekly counts. Re-keyed from the member
/// flow (in Kafka through `claimwatch.internal.utilization-facts`, in replay directly). A changed
/// or cancelled encounter is sent as its old fact with -1 (then its new with +1), so the weekly
/// counts are sums of facts whatever their order. Carries no member or encounter identifier.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UtilizationFact {
    /// `<facility_id>|<service line>`.
    pub key: String,
    /// +1 (add) or -1 (take back).
    pub sign: i32,
    /// Event time of the encounter record that produced it; moves the utilization flow's time.
    pub event_time: EpochMillis,
    /// The day counted: the encounter's admission (inpatient) or visit (ED) date.
    pub day: EpochDay,
    /// Inpatient admissions (0 or 1).
    pub admissions: i64,
    /// Emergency department visits (0 or 1).
    pub ed_visits: i64,
    /// The member partition that sent it: the utilization flow's watermark is the minimum over
    /// the source partitions of the latest fact time from each.
    pub source_partition: i32,
}

impl std::fmt::Debug for UtilizationFact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UtilizationFact")
            .field("key", &self.key)
            .field("sign", &self.sign)
            .field("day", &self.day)
            .finish_non_exhaustive()
    }
}

/// A forecast made for a week, compared with what the week turned out to be.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UtilizationCheck {
    /// `ADMISSIONS` or `ED_VISITS`.
    pub measure: String,
    /// Weeks ahead the forecast was made (1 = at the close of the week before).
    pub horizon_weeks: i32,
    /// Monday of the last closed week when the forecast was made.
    pub made_week_start: EpochDay,
    /// Point forecast (expected count).
    pub forecast: f64,
    pub low80: i64,
    pub high80: i64,
    pub low95: i64,
    pub high95: i64,
    /// The week's count now.
    pub actual: i64,
    /// actual - forecast.
    pub error: f64,
    /// low80 <= actual <= high80.
    pub inside80: bool,
    /// low95 <= actual <= high95.
    pub inside95: bool,
}

/// The forecast of one future week, made at the close of the record's week.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UtilizationWeekForecast {
    /// `ADMISSIONS` or `ED_VISITS`.
    pub measure: String,
    /// Weeks after the record's week (1..=horizon).
    pub horizon_weeks: i32,
    /// ISO week, `2024-W09`.
    pub iso_week: String,
    /// Its Monday.
    pub week_start: EpochDay,
    /// Point forecast (expected count).
    pub mean: f64,
    /// 80 % prediction interval (10 % and 90 % quantiles).
    pub low80: i64,
    pub high80: i64,
    /// 95 % prediction interval (2.5 % and 97.5 % quantiles).
    pub low95: i64,
    pub high95: i64,
}

/// Rolling accuracy of one measure and horizon over the closed weeks ending with the record's
/// week (`utilization.accuracy_weeks` at most).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UtilizationAccuracy {
    /// `ADMISSIONS` or `ED_VISITS`.
    pub measure: String,
    pub horizon_weeks: i32,
    /// Weeks with a forecast at this horizon.
    pub weeks: i64,
    /// Sum of their actual counts.
    pub actual_total: i64,
    /// Sum of |actual - forecast|.
    pub abs_error_total: f64,
    /// abs_error_total / actual_total (absent when actual_total is 0).
    pub wape: Option<f64>,
    /// abs_error_total / weeks (absent without weeks).
    pub mae: Option<f64>,
    /// Share of the weeks inside the 80 % / 95 % interval (absent without weeks).
    pub coverage80: Option<f64>,
    pub coverage95: Option<f64>,
}

/// Weekly admissions and ED visits of one facility and service line, the forecast of the next
/// weeks, and the earlier forecasts of this week compared with what happened. Emitted on
/// `claimwatch.utilization-forecast`, keyed `<facility>|<service line>`, when the utilization
/// flow's watermark passes the week's end (version 1) and again (version + 1) when a late or
/// corrected encounter changes its counts. Aggregate only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UtilizationForecast {
    /// `<key>:<iso_week>:<version>`: deterministic.
    pub output_id: String,
    /// `<facility_id>|<service line>` (the record key).
    pub key: String,
    pub facility_id: String,
    /// The encounter's department.
    pub service_line: String,
    /// ISO week, `2024-W09`.
    pub iso_week: String,
    /// Monday of the week.
    pub week_start: EpochDay,
    /// Increments with every emission of this key and week.
    pub version: i64,
    /// The utilization flow's watermark at emission.
    pub event_time: EpochMillis,
    /// Inpatient admissions with an admission date in the week.
    pub admissions: i64,
    /// ED visits with a visit date in the week.
    pub ed_visits: i64,
    /// Closed weeks of history the forecast below was made from.
    pub history_weeks: i32,
    /// The earlier forecasts of this week (1..=horizon weeks ahead) against its counts.
    pub checks: Vec<UtilizationCheck>,
    /// The forecast of the `horizon_weeks` weeks after this one, made when it closed (empty with
    /// less than `min_history_weeks` of history).
    pub forecast: Vec<UtilizationWeekForecast>,
    /// Rolling accuracy per measure and horizon.
    pub accuracy: Vec<UtilizationAccuracy>,
}
