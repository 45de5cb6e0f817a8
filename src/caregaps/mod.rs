//! Immunization care gaps: which known, eligible members are due a vaccine and lack it.
//!
//! Member-keyed, like readmission detection. Encounters make a member *known* (birth date, sex,
//! diagnoses → Charlson conditions); vaccine product codes on submitted claims reach the member
//! flow as [`VaccineDose`]s through the claim → member re-key (`Rekeyed::Vaccine`); the member's
//! latest readmission risk score sets the outreach priority. The rules are the data file
//! `immunization_rules.csv` (CDC adult schedule subset), the CPT → vaccine/CVX map is
//! `vaccine_cpt_cvx.csv`.
//!
//! **A gap** is one (member, vaccine, season) — `ONCE` for a lifetime vaccine. It is OPENED when the
//! member is known, eligible at the due date, not dead, and no dose counting for it is known, at
//! event time `max(due date, first encounter time)`: a timer at the due date for members already
//! known, else on the encounter that makes the member known. It is CLOSED when a dose that counts
//! arrives (also after it expired or became not applicable: a late claim corrects the record), EXPIRED at the end of the
//! season window with no dose, NOT_APPLICABLE when the member dies. A dose known before the gap
//! would open means the gap never opens.
//!
//! **Settled seasons (retention).** A season is *settled* for a member once its window ended
//! [`SETTLED_AFTER_DAYS`] (365) days before the member's evaluation clock (the latest watermark
//! its rules were evaluated at): its gap record (closed or expired by then) and the seasonal doses
//! that can count only for settled seasons leave the member's state, and settled seasons are not
//! evaluated again. A dose that arrives later for a settled season is dropped and counted
//! (`claimwatch_care_gap_doses_dropped_total`): its claim came more than a year after the season
//! (beyond payers' usual timely-filing limits), so an EXPIRED gap of that season stays expired.
//! Lifetime (`ONCE`) gaps and their doses are kept. So a member's entry holds its conditions, its
//! lifetime doses and about two seasons, however long the member stays.
//!
//! **Timers** are derived from state like the other member timers: the earliest of the next due
//! date after the last evaluation, the end of an open gap's season, and the retention deadline.
//!
//! **Outreach priority**: the latest readmission risk score of the member when there is one (tier
//! and `round(100 p)`); otherwise a points score: age when the gap opened (for a lifetime
//! vaccine the due date can be years earlier) 75+ → 40, 65-74 → 25,
//! 50-64 → 10, else 0, plus 15 per Charlson condition (at most 4 counted), capped at 100; HIGH at
//! 55 or more, MEDIUM at 25 or more, else LOW.

use chrono::Datelike;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::config::CoreConfig;
use crate::model::{
    day_of, disposition, start_of_day, CareGapAction, CareGapEvent, Encounter, EpochDay,
    EpochMillis, OutputEvent, RiskTier, VaccineDose, DAY_MS,
};
use crate::refdata::{ImmunizationRule, ImmunizationSchedule, RefData};

#[cfg(test)]
mod tests;

/// Days after a season's window ends before the season is settled (see the module doc).
pub const SETTLED_AFTER_DAYS: i32 = 365;

/// A dose seen on a claim.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DoseRecord {
    pub vaccine: String,
    pub administered_date: EpochDay,
    pub claim_id: String,
    pub procedure_code: String,
    pub cvx: String,
    pub event_time: EpochMillis,
}

/// One gap and where it stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GapRecord {
    pub vaccine: String,
    /// `2024-25` or `ONCE`.
    pub season: String,
    pub due: EpochDay,
    /// The last action emitted.
    pub status: CareGapAction,
    pub version: i64,
    /// Event time of the OPENED event.
    pub opened_at: EpochMillis,
    /// End of the season window (exclusive) for seasonal gaps.
    pub season_end: Option<EpochMillis>,
}

/// The care-gap state of one member (table `care_gaps`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GapMemberState {
    pub birth_date: Option<EpochDay>,
    /// Event time of the member's earliest encounter: known from then on.
    pub known_at: Option<EpochMillis>,
    /// Latest event time of any of the member's encounters or doses (retention).
    pub last_seen: EpochMillis,
    /// Event time of a discharge with an expired/hospice disposition.
    pub died: Option<EpochMillis>,
    /// Charlson conditions seen on encounters: (name, weight, first day seen), by name.
    pub conditions: Vec<(String, u32, EpochDay)>,
    /// Latest readmission risk score: (event time, probability, tier).
    pub risk: Option<(EpochMillis, f64, RiskTier)>,
    /// Doses, deduplicated by (claim, vaccine), in (vaccine, date, claim) order.
    pub doses: Vec<DoseRecord>,
    pub gaps: Vec<GapRecord>,
    /// The time up to which the rules were evaluated (a due date after it is the next timer).
    pub evaluated_through: EpochMillis,
    /// Seasons whose window ends on or before this day are settled (see the module doc).
    pub settled_before: Option<EpochDay>,
    /// The gaps of settled seasons, counted by (vaccine, age band when opened, last action), so
    /// the replay summary still counts every gap ever opened.
    pub settled: Vec<SettledGaps>,
}

/// Gaps of settled seasons with the same vaccine, age band and last action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SettledGaps {
    pub vaccine: String,
    pub age_band: String,
    pub status: CareGapAction,
    pub gaps: u64,
}

impl GapMemberState {
    /// Charlson index of the conditions seen (Quan 2005 hierarchy applied).
    pub fn charlson_index(&self) -> u32 {
        let has = |n: &str| self.conditions.iter().any(|(c, _, _)| c == n);
        self.conditions
            .iter()
            .filter(|(c, _, _)| {
                !((c == "DIABETES_WITHOUT_COMPLICATIONS" && has("DIABETES_WITH_COMPLICATIONS"))
                    || (c == "MILD_LIVER_DISEASE" && has("MODERATE_SEVERE_LIVER_DISEASE"))
                    || (c == "ANY_MALIGNANCY" && has("METASTATIC_SOLID_TUMOR")))
            })
            .map(|(_, w, _)| w)
            .sum()
    }

    /// The age band of the member when `gap` opened (`unknown` without a birth date).
    pub fn age_band_of(&self, gap: &GapRecord) -> &'static str {
        self.birth_date
            .map_or("unknown", |b| age_band(age_at(b, day_of(gap.opened_at))))
    }

    /// The first known dose (by date) counting for `vaccine` within `[from, to)` days.
    fn dose(&self, vaccine: &str, from: EpochDay, to: EpochDay) -> Option<&DoseRecord> {
        self.doses
            .iter()
            .filter(|d| d.vaccine == vaccine && d.administered_date >= from)
            .find(|d| d.administered_date < to)
    }

    fn gap_mut(&mut self, vaccine: &str, season: &str) -> Option<&mut GapRecord> {
        self.gaps
            .iter_mut()
            .find(|g| g.vaccine == vaccine && g.season == season)
    }
}

/// Whole years from `birth` to `day`.
pub fn age_at(birth: EpochDay, day: EpochDay) -> i32 {
    let (b, d) = (date(birth), date(day));
    let mut years = d.year() - b.year();
    if (d.month(), d.day()) < (b.month(), b.day()) {
        years -= 1;
    }
    years
}

/// Age band label of the care-gap outputs and metrics (a closed set).
pub fn age_band(age: i32) -> &'static str {
    match age {
        i32::MIN..=18 => "0-18",
        19..=49 => "19-49",
        50..=64 => "50-64",
        65..=74 => "65-74",
        _ => "75+",
    }
}

/// The age bands, in order.
pub const AGE_BANDS: [&str; 5] = ["0-18", "19-49", "50-64", "65-74", "75+"];

fn date(day: EpochDay) -> chrono::NaiveDate {
    chrono::NaiveDate::from_num_days_from_ce_opt(day + 719_163).unwrap_or_default()
}

fn day_num(d: chrono::NaiveDate) -> EpochDay {
    d.num_days_from_ce() - 719_163
}

/// The day `years` after `birth` (a 29 February birthday falls on 1 March in other years).
pub fn birthday(birth: EpochDay, years: u32) -> EpochDay {
    let b = date(birth);
    let y = b.year() + years as i32;
    chrono::NaiveDate::from_ymd_opt(y, b.month(), b.day())
        .or_else(|| chrono::NaiveDate::from_ymd_opt(y, 3, 1))
        .map_or(birth, day_num)
}

fn ymd(year: i32, (m, d): (u32, u32)) -> EpochDay {
    chrono::NaiveDate::from_ymd_opt(year, m, d).map_or(0, day_num)
}

/// A season of a seasonal rule: `[start, end)` days, the due day and the label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Season {
    pub start: EpochDay,
    pub due: EpochDay,
    /// Exclusive.
    pub end: EpochDay,
    pub label: String,
}

/// The season of a seasonal schedule that opens in `year`.
pub fn season(schedule: ImmunizationSchedule, year: i32) -> Option<Season> {
    let ImmunizationSchedule::Seasonal { start, due, end } = schedule else {
        return None;
    };
    Some(Season {
        start: ymd(year, start),
        due: ymd(year, due),
        end: ymd(year + 1, end) + 1,
        label: format!("{year}-{:02}", (year + 1).rem_euclid(100)),
    })
}

/// The start of the earliest season of a seasonal `schedule` whose window ends after `boundary`
/// (a dose given before it counts only for seasons settled at `boundary`); `None` for a lifetime
/// schedule.
pub fn first_open_season_start(
    schedule: ImmunizationSchedule,
    boundary: EpochDay,
) -> Option<EpochDay> {
    let y = date(boundary).year();
    (y - 1..=y + 1)
        .filter_map(|y| season(schedule, y))
        .find(|s| s.end > boundary)
        .map(|s| s.start)
}

/// The season a day's doses count for, if any.
pub fn season_of(schedule: ImmunizationSchedule, day: EpochDay) -> Option<Season> {
    let y = date(day).year();
    [y - 1, y]
        .into_iter()
        .filter_map(|y| season(schedule, y))
        .find(|s| s.start <= day && day < s.end)
}

/// Hex HMAC-SHA256 of a member id under the configured secret.
pub fn pseudonym(secret: &[u8], member_id: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(member_id.as_bytes());
    let bytes = mac.finalize().into_bytes();
    let mut out = String::with_capacity(64);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// What makes a gap's evaluation open it: the member's eligibility at its due date.
struct Eligibility {
    due: EpochDay,
    age: i32,
    risk_condition: bool,
}

/// Care-gap logic shared by every partition.
#[derive(Clone, Debug)]
pub struct CareGaps {
    rules: Vec<ImmunizationRule>,
    refdata: std::sync::Arc<RefData>,
    enabled: bool,
    history_start: Option<EpochDay>,
    retention_ms: i64,
    secret: Option<Vec<u8>>,
}

impl CareGaps {
    pub fn new(refdata: std::sync::Arc<RefData>, config: &CoreConfig) -> Self {
        Self {
            rules: refdata.immunization_rules().to_vec(),
            refdata,
            enabled: config.care_gaps.enabled,
            history_start: config.care_gaps.history_start_day(),
            retention_ms: i64::from(config.care_gaps.retention_days) * DAY_MS,
            secret: config.deidentify.secret_bytes(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The vaccine doses a submitted claim shows (one per vaccine and claim).
    pub fn doses_of(&self, claim: &crate::model::ClaimSubmitted) -> Vec<VaccineDose> {
        let mut out: Vec<VaccineDose> = Vec::new();
        if !self.enabled || claim.frequency == crate::model::ClaimFrequency::Void {
            return out;
        }
        for line in &claim.lines {
            let Some(v) = self.refdata.vaccine_code(&line.procedure_code) else {
                continue;
            };
            if out.iter().any(|d| d.vaccine == v.vaccine) {
                continue;
            }
            out.push(VaccineDose {
                member_id: claim.member_id.clone(),
                claim_id: claim.claim_id.clone(),
                vaccine: v.vaccine.clone(),
                procedure_code: v.cpt.clone(),
                cvx: v.cvx.clone(),
                administered_date: line.service_date.unwrap_or(claim.service_date),
                event_time: claim.event_time,
            });
        }
        out
    }

    /// Applies an encounter (and the readmission risk score it produced, if any), then evaluates
    /// the rules at `now`.
    pub fn on_encounter(
        &self,
        st: &mut GapMemberState,
        key: &str,
        e: &Encounter,
        risk: Option<(EpochMillis, f64, RiskTier)>,
        now: EpochMillis,
        out: &mut Vec<OutputEvent>,
    ) {
        // The earliest birth date any encounter gives: the same whatever order they arrive in.
        if let Some(b) = e.birth_date {
            st.birth_date = Some(st.birth_date.map_or(b, |s| s.min(b)));
        }
        st.known_at = Some(st.known_at.map_or(e.event_time, |k| k.min(e.event_time)));
        st.last_seen = st.last_seen.max(e.event_time);
        let mut dx = Vec::with_capacity(1 + e.secondary_dx.len());
        dx.push(e.principal_dx.clone());
        dx.extend(e.secondary_dx.iter().cloned());
        let day = e.admit_date;
        for c in self.refdata.charlson(&dx).conditions {
            match st.conditions.binary_search_by(|(n, _, _)| n.cmp(&c.name)) {
                Ok(i) => st.conditions[i].2 = st.conditions[i].2.min(day),
                Err(i) => st.conditions.insert(i, (c.name, c.weight, day)),
            }
        }
        if e.discharge_disposition
            .as_deref()
            .is_some_and(disposition::is_expired)
        {
            st.died = Some(st.died.map_or(e.event_time, |d| d.min(e.event_time)));
        }
        if let Some(r) = risk {
            if st.risk.is_none_or(|(t, _, _)| r.0 >= t) {
                st.risk = Some(r);
            }
        }
        self.evaluate(st, key, now, out);
    }

    /// Applies a dose from a claim, then evaluates the rules at `now`. Returns false when the
    /// dose was dropped: it can count only for settled seasons.
    pub fn on_dose(
        &self,
        st: &mut GapMemberState,
        key: &str,
        dose: &VaccineDose,
        now: EpochMillis,
        out: &mut Vec<OutputEvent>,
    ) -> bool {
        if self.settled_dose(st, &dose.vaccine, dose.administered_date) {
            return false;
        }
        st.last_seen = st.last_seen.max(dose.event_time);
        let rec = DoseRecord {
            vaccine: dose.vaccine.clone(),
            administered_date: dose.administered_date,
            claim_id: dose.claim_id.clone(),
            procedure_code: dose.procedure_code.clone(),
            cvx: dose.cvx.clone(),
            event_time: dose.event_time,
        };
        match st
            .doses
            .iter_mut()
            .find(|d| d.claim_id == rec.claim_id && d.vaccine == rec.vaccine)
        {
            // A replacement of the claim: the earliest submission stands.
            Some(d) if d.event_time <= rec.event_time => {}
            Some(d) => *d = rec,
            None => st.doses.push(rec),
        }
        st.doses.sort_by(|a, b| {
            (&a.vaccine, a.administered_date, &a.claim_id).cmp(&(
                &b.vaccine,
                b.administered_date,
                &b.claim_id,
            ))
        });
        self.evaluate(st, key, now.max(st.evaluated_through), out);
        true
    }

    /// Whether a dose of `vaccine` given on `day` can count only for settled seasons (false for
    /// lifetime vaccines and unknown ones).
    fn settled_dose(&self, st: &GapMemberState, vaccine: &str, day: EpochDay) -> bool {
        let Some(boundary) = st.settled_before else {
            return false;
        };
        self.rules
            .iter()
            .find(|r| r.vaccine == vaccine)
            .and_then(|r| first_open_season_start(r.schedule, boundary))
            .is_some_and(|keep_from| day < keep_from)
    }

    /// Moves the member's settled boundary to [`SETTLED_AFTER_DAYS`] before its evaluation clock
    /// and lets the settled seasons' gap records and doses go.
    fn settle(&self, st: &mut GapMemberState) {
        let boundary = day_of(st.evaluated_through) - SETTLED_AFTER_DAYS;
        if st.settled_before.is_some_and(|b| b >= boundary) {
            return;
        }
        st.settled_before = Some(boundary);
        let end = start_of_day(boundary);
        let settles = |g: &GapRecord| g.season_end.is_some_and(|e| e <= end);
        // The boundary moves with every evaluated day; the gaps are rebuilt only when one settles.
        let settled: Vec<GapRecord> = if st.gaps.iter().any(settles) {
            let (settled, kept) = std::mem::take(&mut st.gaps).into_iter().partition(settles);
            st.gaps = kept;
            settled
        } else {
            Vec::new()
        };
        for g in &settled {
            let band = st.age_band_of(g);
            match st
                .settled
                .iter_mut()
                .find(|t| t.vaccine == g.vaccine && t.age_band == band && t.status == g.status)
            {
                Some(t) => t.gaps += 1,
                None => st.settled.push(SettledGaps {
                    vaccine: g.vaccine.clone(),
                    age_band: band.to_owned(),
                    status: g.status,
                    gaps: 1,
                }),
            }
        }
        for rule in &self.rules {
            if let Some(keep_from) = first_open_season_start(rule.schedule, boundary) {
                st.doses
                    .retain(|d| d.vaccine != rule.vaccine || d.administered_date >= keep_from);
            }
        }
    }

    fn eligibility(
        &self,
        st: &GapMemberState,
        rule: &ImmunizationRule,
        due: Option<EpochDay>,
    ) -> Option<Eligibility> {
        let birth = st.birth_date?;
        let risk_day = rule.risk_min_age.and_then(|_| {
            st.conditions
                .iter()
                .filter(|(n, _, _)| rule.risk_conditions.contains(n))
                .map(|(_, _, d)| *d)
                .min()
        });
        let due = match due {
            // Seasonal: the season's due date; eligible by age then.
            Some(due) => due,
            // Once: the day the member first qualifies.
            None => {
                let by_age = birthday(birth, rule.min_age);
                let by_risk = rule
                    .risk_min_age
                    .zip(risk_day)
                    .map(|(a, d)| birthday(birth, a).max(d));
                by_risk.map_or(by_age, |r| r.min(by_age))
            }
        };
        let age = age_at(birth, due);
        let by_age = age >= rule.min_age as i32;
        let by_risk = rule
            .risk_min_age
            .is_some_and(|a| age >= a as i32 && risk_day.is_some_and(|d| d <= due));
        (by_age || by_risk).then_some(Eligibility {
            due,
            age,
            risk_condition: by_risk && !by_age,
        })
    }

    /// Opens, closes and expires the member's gaps as of `now` (deterministic in the state: the
    /// events' times come from the state, not from `now`).
    pub fn evaluate(
        &self,
        st: &mut GapMemberState,
        key: &str,
        now: EpochMillis,
        out: &mut Vec<OutputEvent>,
    ) {
        if !self.enabled {
            return;
        }
        st.evaluated_through = st.evaluated_through.max(now);
        let (Some(known_at), Some(_)) = (st.known_at, st.birth_date) else {
            return;
        };
        let known_day = day_of(known_at);
        let settled = st.settled_before;
        for rule in &self.rules {
            match rule.schedule {
                ImmunizationSchedule::Seasonal { .. } => {
                    let mut first = date(known_day).year() - 1;
                    if let Some(b) = settled {
                        first = first.max(date(b).year() - 1);
                    }
                    let last = date(day_of(now)).year();
                    for y in first..=last {
                        let Some(s) = season(rule.schedule, y) else {
                            continue;
                        };
                        if s.end <= known_day
                            || settled.is_some_and(|b| s.end <= b)
                            || start_of_day(s.due) > now
                            || self.history_start.is_some_and(|h| s.start < h)
                        {
                            continue;
                        }
                        let Some(el) = self.eligibility(st, rule, Some(s.due)) else {
                            continue;
                        };
                        self.step(st, key, rule, &s.label, el, (s.start, s.end), now, out);
                    }
                }
                ImmunizationSchedule::Once => {
                    let Some(el) = self.eligibility(st, rule, None) else {
                        continue;
                    };
                    if start_of_day(el.due) > now {
                        continue;
                    }
                    self.step(st, key, rule, "ONCE", el, (i32::MIN, i32::MAX), now, out);
                }
            }
        }
        self.settle(st);
    }

    /// The transitions of one gap.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        st: &mut GapMemberState,
        key: &str,
        rule: &ImmunizationRule,
        season: &str,
        el: Eligibility,
        (from, to): (EpochDay, EpochDay),
        now: EpochMillis,
        out: &mut Vec<OutputEvent>,
    ) {
        let dose = st.dose(&rule.vaccine, from, to).cloned();
        let season_end = (to != i32::MAX).then(|| start_of_day(to));
        let due_ms = start_of_day(el.due);
        let known_at = st.known_at.unwrap_or(due_ms);
        if st.gap_mut(&rule.vaccine, season).is_none() {
            if dose.is_some() || st.died.is_some_and(|d| d <= due_ms.max(known_at)) {
                return;
            }
            st.gaps.push(GapRecord {
                vaccine: rule.vaccine.clone(),
                season: season.to_owned(),
                due: el.due,
                status: CareGapAction::Opened,
                version: 0,
                opened_at: due_ms.max(known_at),
                season_end,
            });
            self.emit(st, key, rule, season, &el, CareGapAction::Opened, None, out);
        }
        let Some(gap) = st.gap_mut(&rule.vaccine, season) else {
            return;
        };
        let status = gap.status;
        match (status, dose) {
            // A dose given in the window closes the gap whenever its claim arrives: after the
            // season ended, or after a death it preceded.
            (
                CareGapAction::Opened | CareGapAction::Expired | CareGapAction::NotApplicable,
                Some(d),
            ) => {
                self.emit(
                    st,
                    key,
                    rule,
                    season,
                    &el,
                    CareGapAction::Closed,
                    Some(&d),
                    out,
                );
            }
            (CareGapAction::Opened, None) => {
                if st.died.is_some() {
                    self.emit(
                        st,
                        key,
                        rule,
                        season,
                        &el,
                        CareGapAction::NotApplicable,
                        None,
                        out,
                    );
                } else if season_end.is_some_and(|e| e <= now) {
                    self.emit(
                        st,
                        key,
                        rule,
                        season,
                        &el,
                        CareGapAction::Expired,
                        None,
                        out,
                    );
                }
            }
            _ => {}
        }
    }

    /// Records the transition on the gap and emits it.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        st: &mut GapMemberState,
        key: &str,
        rule: &ImmunizationRule,
        season: &str,
        el: &Eligibility,
        action: CareGapAction,
        dose: Option<&DoseRecord>,
        out: &mut Vec<OutputEvent>,
    ) {
        let charlson_index = st.charlson_index() as i32;
        let birth = st.birth_date;
        let chronic = st.conditions.len() as i32;
        let risk = st.risk;
        let died = st.died;
        let Some(gap) = st.gap_mut(&rule.vaccine, season) else {
            return;
        };
        let previous = (gap.version > 0).then_some(gap.status);
        gap.version += 1;
        gap.status = action;
        let event_time = match action {
            CareGapAction::Opened => gap.opened_at,
            CareGapAction::Closed => {
                dose.map_or(gap.opened_at, |d| d.event_time.max(gap.opened_at))
            }
            CareGapAction::Expired => gap.season_end.unwrap_or(gap.opened_at),
            CareGapAction::NotApplicable => died.unwrap_or(gap.opened_at).max(gap.opened_at),
        };
        // Age when the gap opened (for a lifetime vaccine the due date can be years earlier).
        let age = birth.map_or(el.age, |b| age_at(b, day_of(gap.opened_at)));
        let (priority, score, basis, probability) = priority(age, chronic, risk);
        let member_id = match &self.secret {
            Some(s) => pseudonym(s, key),
            None => key.to_owned(),
        };
        let gap_id = format!("{member_id}:{}:{season}", gap.vaccine);
        out.push(OutputEvent::CareGap(CareGapEvent {
            output_id: format!("{gap_id}:{}", gap.version),
            pseudonymised: self.secret.is_some(),
            gap_id,
            member_id,
            version: gap.version,
            action,
            previous_action: previous,
            event_time,
            vaccine: gap.vaccine.clone(),
            season: season.to_owned(),
            due_date: el.due,
            age,
            age_band: age_band(age).to_owned(),
            risk_condition_eligible: el.risk_condition,
            chronic_conditions: chronic,
            charlson_index,
            outreach_priority: priority,
            priority_score: score,
            priority_basis: basis.to_owned(),
            readmission_probability: probability,
            administered_date: dose.map(|d| d.administered_date),
            procedure_code: dose.map(|d| d.procedure_code.clone()),
            cvx: dose.map(|d| d.cvx.clone()),
            source_claim_id: dose
                .filter(|_| self.secret.is_none())
                .map(|d| d.claim_id.clone()),
        }));
    }

    /// When the member's care-gap state next needs the timer: the next due date after the last
    /// evaluation, the end of an open gap's season, or the retention deadline (whichever first).
    pub fn next_timer(&self, st: &GapMemberState) -> EpochMillis {
        let mut next = st.last_seen.saturating_add(self.retention_ms);
        if !self.enabled {
            return next;
        }
        for g in &st.gaps {
            if g.status == CareGapAction::Opened {
                if let Some(e) = g.season_end {
                    next = next.min(e);
                }
            }
        }
        if st.known_at.is_none() || st.birth_date.is_none() || st.died.is_some() {
            return next;
        }
        let after = st.evaluated_through;
        for rule in &self.rules {
            match rule.schedule {
                ImmunizationSchedule::Seasonal { .. } => {
                    let y = date(day_of(after)).year();
                    if let Some(due) = (y..=y + 1)
                        .filter_map(|y| season(rule.schedule, y))
                        .map(|s| start_of_day(s.due))
                        .find(|d| *d > after)
                    {
                        next = next.min(due);
                    }
                }
                ImmunizationSchedule::Once => {
                    if let Some(el) = self.eligibility(st, rule, None) {
                        let due = start_of_day(el.due);
                        if due > after {
                            next = next.min(due);
                        }
                    }
                }
            }
        }
        next
    }

    /// Fires the member's timer at `due`: evaluates the rules; returns false when the state
    /// should leave (retention passed).
    pub fn fire(
        &self,
        st: &mut GapMemberState,
        key: &str,
        due: EpochMillis,
        out: &mut Vec<OutputEvent>,
    ) -> bool {
        if due >= st.last_seen.saturating_add(self.retention_ms) {
            return false;
        }
        self.evaluate(st, key, due, out);
        true
    }
}

/// Outreach priority: (tier, 0-100 score, basis, readmission probability). See the module doc.
pub fn priority(
    age: i32,
    chronic_conditions: i32,
    risk: Option<(EpochMillis, f64, RiskTier)>,
) -> (RiskTier, i32, &'static str, Option<f64>) {
    if let Some((_, p, tier)) = risk {
        return (
            tier,
            (p * 100.0).round().clamp(0.0, 100.0) as i32,
            "READMISSION_RISK",
            Some(p),
        );
    }
    let age_points = match age {
        75.. => 40,
        65..=74 => 25,
        50..=64 => 10,
        _ => 0,
    };
    let score = (age_points + 15 * chronic_conditions.clamp(0, 4)).min(100);
    let tier = if score >= 55 {
        RiskTier::High
    } else if score >= 25 {
        RiskTier::Medium
    } else {
        RiskTier::Low
    };
    (tier, score, "AGE_AND_CONDITIONS", None)
}
