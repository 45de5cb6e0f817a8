use std::collections::BTreeMap;

use super::*;
use crate::config::{CoreConfig, Secret};
use crate::core::{Engine, Partition};
use crate::model::fixtures::{claim, d, stay, t};
use crate::model::{ClaimLine, ClaimSubmitted, InputEvent, Rekeyed};
use crate::state::PartitionStore;

fn engine_with(config: CoreConfig) -> Engine {
    Engine::new(config, RefData::shared())
}

fn engine() -> Engine {
    engine_with(CoreConfig::default())
}

/// A claim for `member` with one vaccine product line given on `day`, submitted `lag` days later.
fn vaccine_claim(id: &str, member: &str, cpt: &str, day: &str, lag: i64) -> ClaimSubmitted {
    let mut c = claim(id, day);
    c.member_id = member.into();
    c.event_id = format!("clm-{id}-1");
    c.event_time = t(day) + lag * DAY_MS;
    c.service_date = d(day);
    c.diagnosis_codes = vec!["Z23".into()];
    c.lines = vec![
        ClaimLine {
            line_number: 1,
            procedure_code: cpt.into(),
            modifiers: vec![],
            revenue_code: None,
            units: 1.0,
            charge_cents: 4_900,
            service_date: Some(d(day)),
        },
        ClaimLine {
            line_number: 2,
            procedure_code: "90471".into(),
            modifiers: vec![],
            revenue_code: None,
            units: 1.0,
            charge_cents: 2_500,
            service_date: Some(d(day)),
        },
    ];
    c
}

/// An ED discharge that makes `member` known, born on `birth`.
fn visit(member: &str, enc: &str, day: &str, birth: &str) -> InputEvent {
    let mut e = stay(member, enc, "F1", day, day, "01", "J069");
    e.birth_date = Some(d(birth));
    e.secondary_dx = vec![];
    e.encounter_class = crate::model::EncounterClass::Emergency;
    InputEvent::Encounter(e)
}

/// Applies events in order on one partition (re-keyed records applied at once, as replay does),
/// then moves the watermark to `end`; returns the care-gap events.
fn run(engine: &Engine, events: &[InputEvent], end: EpochMillis) -> (Partition, Vec<CareGapEvent>) {
    let mut p = Partition::open(0, PartitionStore::hot_only(0), engine).unwrap();
    let (mut out, mut costs) = (Vec::new(), Vec::<Rekeyed>::new());
    for (i, e) in events.iter().enumerate() {
        let source = e.stream().name();
        p.apply(engine, e, source, i as i64, &mut out, &mut costs);
        for r in costs.drain(..) {
            p.apply_rekeyed(engine, &r, &mut out);
        }
    }
    p.advance_to(engine, end, &mut out, &mut costs);
    let gaps = out
        .into_iter()
        .filter_map(|o| match o {
            OutputEvent::CareGap(g) => Some(g),
            _ => None,
        })
        .collect();
    (p, gaps)
}

/// (gap id -> last action) of a run's events.
fn last_actions(events: &[CareGapEvent]) -> BTreeMap<String, CareGapAction> {
    let mut m = BTreeMap::new();
    for e in events {
        m.insert(e.gap_id.clone(), e.action);
    }
    m
}

#[test]
fn rule_table_loads_and_names_its_source() {
    let r = RefData::shared();
    let rules = r.immunization_rules();
    assert_eq!(rules.len(), 2);
    let flu = &rules[0];
    assert_eq!(flu.vaccine, "INFLUENZA");
    assert_eq!(
        flu.schedule,
        ImmunizationSchedule::Seasonal {
            start: (8, 1),
            due: (10, 1),
            end: (3, 31)
        }
    );
    assert_eq!(flu.min_age, 19);
    let pcv = &rules[1];
    assert_eq!(
        (pcv.schedule, pcv.min_age, pcv.risk_min_age),
        (ImmunizationSchedule::Once, 50, Some(19))
    );
    assert!(pcv
        .risk_conditions
        .contains(&"CHRONIC_PULMONARY_DISEASE".to_owned()));
    let v = r.vaccine_code("90686").unwrap();
    assert_eq!((v.vaccine.as_str(), v.cvx.as_str()), ("INFLUENZA", "150"));
    let v = r.vaccine_code("90677").unwrap();
    assert_eq!(
        (v.vaccine.as_str(), v.cvx.as_str()),
        ("PNEUMOCOCCAL", "216")
    );
    assert!(r.vaccine_code("90471").is_none(), "administration code");
    assert!(r.vaccine_code("99213").is_none());
    let versions = r.versions();
    for f in ["immunization_rules.csv", "vaccine_cpt_cvx.csv"] {
        let (_, v) = versions.iter().find(|(n, _)| n == f).unwrap();
        assert!(v.contains("CDC"), "{f}: {v}");
    }
}

#[test]
fn a_bad_rule_table_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let header = "vaccine,schedule,min_age,risk_min_age,risk_conditions,season_start,due,season_end,description\n";
    for (body, needle) in [
        ("FLU,SEASONAL,19,,,08-01,10-01,13-31,x\n", "MM-DD"),
        ("FLU,SEASONAL,19,,,08-01,07-01,03-31,x\n", "season"),
        ("PCV,ONCE,50,19,NOT_A_CONDITION,,,,x\n", "Charlson"),
        ("PCV,ONCE,50,19,,,,,x\n", "go together"),
        ("PCV,YEARLY,50,,,,,,x\n", "schedule"),
    ] {
        std::fs::write(
            dir.path().join("immunization_rules.csv"),
            format!("{header}{body}"),
        )
        .unwrap();
        let e = RefData::load_dir(dir.path()).unwrap_err();
        assert_eq!(e.file, "immunization_rules.csv");
        assert!(e.reason.contains(needle), "{body}: {e}");
    }
    // An override that drops pneumococcal leaves the crosswalk naming a vaccine with no rule.
    std::fs::write(
        dir.path().join("immunization_rules.csv"),
        format!("{header}INFLUENZA,SEASONAL,19,,,08-01,10-01,03-31,x\n"),
    )
    .unwrap();
    let e = RefData::load_dir(dir.path()).unwrap_err();
    assert_eq!(e.file, "vaccine_cpt_cvx.csv");
    // With the crosswalk overridden too, the override loads and is used.
    std::fs::write(
        dir.path().join("vaccine_cpt_cvx.csv"),
        "cpt,cvx,vaccine,description\n90686,150,INFLUENZA,x\n",
    )
    .unwrap();
    let r = RefData::load_dir(dir.path()).unwrap();
    assert_eq!(r.immunization_rules().len(), 1);
    assert!(r.vaccine_code("90677").is_none());
}

#[test]
fn ages_are_whole_years_and_birthdays_handle_29_february() {
    assert_eq!(age_at(d("1960-10-01"), d("2024-09-30")), 63);
    assert_eq!(age_at(d("1960-10-01"), d("2024-10-01")), 64);
    assert_eq!(birthday(d("1974-06-15"), 50), d("2024-06-15"));
    assert_eq!(birthday(d("1972-02-29"), 51), d("2023-03-01"));
    assert_eq!(birthday(d("1972-02-29"), 52), d("2024-02-29"));
    assert_eq!(age_band(18), "0-18");
    assert_eq!(age_band(19), "19-49");
    assert_eq!(age_band(49), "19-49");
    assert_eq!(age_band(50), "50-64");
    assert_eq!(age_band(65), "65-74");
    assert_eq!(age_band(75), "75+");
}

#[test]
fn season_window_boundaries() {
    let flu = RefData::shared().immunization_rules()[0].schedule;
    let s = season(flu, 2024).unwrap();
    assert_eq!(
        (s.start, s.due, s.end, s.label.as_str()),
        (d("2024-08-01"), d("2024-10-01"), d("2025-04-01"), "2024-25")
    );
    assert_eq!(season_of(flu, d("2024-07-31")), None);
    assert_eq!(season_of(flu, d("2024-08-01")).unwrap().label, "2024-25");
    assert_eq!(season_of(flu, d("2025-03-31")).unwrap().label, "2024-25");
    assert_eq!(season_of(flu, d("2025-04-01")), None);
    assert_eq!(season_of(flu, d("2024-01-15")).unwrap().label, "2023-24");
    assert_eq!(season(flu, 1999).unwrap().label, "1999-00");
}

#[test]
fn influenza_age_boundary_is_the_due_date() {
    let e = engine();
    let events = [
        // 19 on the due date: eligible.
        visit("A", "A1", "2024-06-10", "2005-10-01"),
        // 19 the day after: not eligible this season.
        visit("B", "B1", "2024-06-10", "2005-10-02"),
    ];
    let (_, gaps) = run(&e, &events, t("2024-12-01"));
    let flu: Vec<_> = gaps.iter().filter(|g| g.vaccine == "INFLUENZA").collect();
    assert_eq!(flu.len(), 1, "{flu:?}");
    assert_eq!(flu[0].member_id, "A");
    assert_eq!(flu[0].age, 19);
    assert_eq!(flu[0].age_band, "19-49");
    // Known before the due date: the timer opens it at the due date.
    assert_eq!(flu[0].event_time, start_of_day(d("2024-10-01")));
    assert_eq!(flu[0].output_id, "A:INFLUENZA:2024-25:1");
    assert!(gaps.iter().all(|g| g.vaccine != "PNEUMOCOCCAL"));
}

#[test]
fn pneumococcal_opens_at_the_50th_birthday_or_on_a_risk_condition() {
    let e = engine();
    let mut copd = stay("C", "C1", "F1", "2024-03-01", "2024-03-04", "01", "J441");
    copd.birth_date = Some(d("1990-01-01"));
    copd.secondary_dx = vec![];
    let events = [
        visit("P", "P1", "2024-02-01", "1974-06-15"),
        InputEvent::Encounter(copd),
        visit("Y", "Y1", "2024-02-01", "1990-01-01"),
    ];
    let (_, gaps) = run(&e, &events, t("2024-07-01"));
    let pcv: BTreeMap<_, _> = gaps
        .iter()
        .filter(|g| g.vaccine == "PNEUMOCOCCAL")
        .map(|g| (g.member_id.clone(), g))
        .collect();
    assert_eq!(pcv.len(), 2, "{pcv:?}");
    let p = pcv["P"];
    assert_eq!(
        (p.due_date, p.age, p.season.as_str()),
        (d("2024-06-15"), 50, "ONCE")
    );
    assert_eq!(
        p.event_time,
        start_of_day(d("2024-06-15")),
        "the birthday timer"
    );
    assert!(!p.risk_condition_eligible);
    let c = pcv["C"];
    assert!(c.risk_condition_eligible);
    assert_eq!(c.due_date, d("2024-03-01"), "the day COPD was first seen");
    assert_eq!(c.chronic_conditions, 1);
    assert_eq!(
        c.event_time,
        t("2024-03-04"),
        "opened on the encounter that shows it"
    );
}

#[test]
fn a_dose_closes_the_gap_and_season_end_expires_it() {
    let e = engine();
    let events = [
        visit("A", "A1", "2024-06-10", "1950-01-01"),
        visit("B", "B1", "2024-06-10", "1950-01-01"),
        InputEvent::Claim(vaccine_claim("CA", "A", "90686", "2024-10-20", 3)),
        InputEvent::Claim(vaccine_claim("CP", "A", "90677", "2024-10-20", 3)),
        // Outside the season window: does not count.
        InputEvent::Claim(vaccine_claim("CB", "B", "90686", "2024-07-20", 3)),
    ];
    let mut events = events.to_vec();
    events.sort_by_key(|e| e.event_time());
    let (_, gaps) = run(&e, &events, t("2025-04-02"));
    let a: Vec<_> = gaps
        .iter()
        .filter(|g| g.gap_id == "A:INFLUENZA:2024-25")
        .collect();
    assert_eq!(a.len(), 2);
    assert_eq!(a[1].action, CareGapAction::Closed);
    assert_eq!(a[1].previous_action, Some(CareGapAction::Opened));
    assert_eq!(a[1].version, 2);
    assert_eq!(a[1].output_id, "A:INFLUENZA:2024-25:2");
    assert_eq!(a[1].administered_date, Some(d("2024-10-20")));
    assert_eq!(a[1].procedure_code.as_deref(), Some("90686"));
    assert_eq!(a[1].cvx.as_deref(), Some("150"));
    assert_eq!(a[1].source_claim_id.as_deref(), Some("CA"));
    assert_eq!(a[1].event_time, t("2024-10-23"));
    let b = last_actions(&gaps);
    assert_eq!(b["B:INFLUENZA:2024-25"], CareGapAction::Expired);
    let expired = gaps
        .iter()
        .find(|g| g.gap_id == "B:INFLUENZA:2024-25" && g.action == CareGapAction::Expired)
        .unwrap();
    assert_eq!(expired.event_time, start_of_day(d("2025-04-01")));
    assert_eq!(b["A:PNEUMOCOCCAL:ONCE"], CareGapAction::Closed);
    assert_eq!(b["B:PNEUMOCOCCAL:ONCE"], CareGapAction::Opened);
    // 74 at the due date, no score and no condition: 25 points, MEDIUM.
    let opened = &a[0];
    assert_eq!(
        (
            opened.outreach_priority,
            opened.priority_score,
            opened.priority_basis.as_str()
        ),
        (RiskTier::Medium, 25, "AGE_AND_CONDITIONS")
    );
}

#[test]
fn a_dose_known_before_the_due_date_means_no_gap() {
    let e = engine();
    let events = [
        visit("A", "A1", "2024-06-10", "1950-01-01"),
        InputEvent::Claim(vaccine_claim("CA", "A", "90686", "2024-09-01", 3)),
    ];
    let (_, gaps) = run(&e, &events, t("2025-05-01"));
    assert!(gaps.iter().all(|g| g.vaccine != "INFLUENZA"), "{gaps:?}");
}

#[test]
fn the_outcome_does_not_depend_on_the_arrival_order_of_claim_and_encounter() {
    let e = engine();
    let enc = visit("A", "A1", "2024-11-20", "1950-01-01");
    let flu = InputEvent::Claim(vaccine_claim("CA", "A", "90686", "2024-10-20", 3));
    let pcv = InputEvent::Claim(vaccine_claim("CP", "A", "90677", "2024-12-02", 1));
    let other = visit("Z", "Z1", "2024-12-20", "1990-01-01");
    let end = t("2025-04-15");
    let orders = [
        vec![flu.clone(), enc.clone(), pcv.clone(), other.clone()],
        vec![enc.clone(), flu.clone(), pcv.clone(), other.clone()],
        vec![pcv.clone(), other.clone(), enc.clone(), flu.clone()],
        vec![other.clone(), pcv.clone(), flu.clone(), enc.clone()],
    ];
    let mut finals = Vec::new();
    for events in &orders {
        let (p, gaps) = run(&e, events, end);
        let st = p.care_gaps().get("A").unwrap().clone();
        let covered: Vec<(String, String, CareGapAction)> = st
            .gaps
            .iter()
            .map(|g| (g.vaccine.clone(), g.season.clone(), g.status))
            .filter(|(_, _, s)| *s != CareGapAction::Closed)
            .collect();
        // Whatever opened was closed by the doses; nothing stays open or expires.
        assert!(covered.is_empty(), "{events:?}: {:?}", st.gaps);
        assert!(gaps
            .iter()
            .all(|g| g.member_id != "A" || g.action != CareGapAction::Expired));
        finals.push((st.doses.len(), st.known_at, st.birth_date));
    }
    assert!(finals.windows(2).all(|w| w[0] == w[1]), "{finals:?}");
    // With the encounter first and the claims after the due date, the gaps open then close.
    let (_, gaps) = run(&e, &orders[1], end);
    let a = last_actions(&gaps);
    assert_eq!(a.get("A:INFLUENZA:2024-25"), Some(&CareGapAction::Closed));
    assert_eq!(a.get("A:PNEUMOCOCCAL:ONCE"), Some(&CareGapAction::Closed));
}

#[test]
fn a_late_claim_closes_an_expired_gap() {
    let e = engine();
    let events = [
        visit("A", "A1", "2024-06-10", "1950-01-01"),
        visit("Z", "Z1", "2025-04-05", "1990-01-01"),
        // Given in March, billed in May, after the season ended.
        InputEvent::Claim(vaccine_claim("CA", "A", "90686", "2025-03-20", 50)),
    ];
    let (_, gaps) = run(&e, &events, t("2025-05-20"));
    let a: Vec<_> = gaps
        .iter()
        .filter(|g| g.gap_id == "A:INFLUENZA:2024-25")
        .map(|g| g.action)
        .collect();
    assert_eq!(
        a,
        [
            CareGapAction::Opened,
            CareGapAction::Expired,
            CareGapAction::Closed
        ]
    );
}

#[test]
fn death_makes_open_gaps_not_applicable_and_opens_no_more() {
    let e = engine();
    let mut died = stay("A", "A2", "F1", "2024-11-01", "2024-11-05", "20", "I214");
    died.birth_date = Some(d("1950-01-01"));
    let events = [
        visit("A", "A1", "2024-06-10", "1950-01-01"),
        InputEvent::Encounter(died),
    ];
    let (p, gaps) = run(&e, &events, t("2026-01-01"));
    let a = last_actions(&gaps);
    assert_eq!(a["A:INFLUENZA:2024-25"], CareGapAction::NotApplicable);
    assert_eq!(a["A:PNEUMOCOCCAL:ONCE"], CareGapAction::NotApplicable);
    assert!(!a.contains_key("A:INFLUENZA:2025-26"));
    let na = gaps
        .iter()
        .find(|g| g.action == CareGapAction::NotApplicable)
        .unwrap();
    assert_eq!(na.event_time, t("2024-11-05"));
    assert!(p.care_gaps().get("A").is_some());
}

#[test]
fn history_start_skips_seasons_whose_doses_cannot_be_seen() {
    let mut config = CoreConfig::default();
    config.care_gaps.history_start = Some("2024-01-01".into());
    let events = [visit("A", "A1", "2024-02-10", "1950-01-01")];
    let (_, with) = run(&engine(), &events, t("2024-05-01"));
    assert!(with.iter().any(|g| g.gap_id == "A:INFLUENZA:2023-24"));
    let (_, without) = run(&engine_with(config), &events, t("2024-05-01"));
    assert!(
        without.iter().all(|g| g.vaccine != "INFLUENZA"),
        "{without:?}"
    );
}

/// Six seasons of a member who visits every year and gets a flu shot every other season: the
/// events are those of every season, while the state keeps only the unsettled seasons' gaps and
/// doses and counts the settled ones; a dose for a settled season is dropped and counted, one a
/// few months late still closes its expired gap.
#[test]
fn settled_seasons_leave_the_state_and_are_counted() {
    let e = engine();
    let mut events = Vec::new();
    for y in 2018..2024 {
        events.push(visit(
            "A",
            &format!("A{y}"),
            &format!("{y}-06-10"),
            "1950-01-01",
        ));
        if y % 2 == 0 {
            events.push(InputEvent::Claim(vaccine_claim(
                &format!("F{y}"),
                "A",
                "90686",
                &format!("{y}-10-20"),
                5,
            )));
        }
    }
    let (mut p, gaps) = run(&e, &events, t("2024-06-01"));
    let flu = last_actions(&gaps);
    for y in 2018..2024 {
        let id = format!("A:INFLUENZA:{y}-{:02}", (y + 1) % 100);
        // The shot (Oct 20) comes after the due date (Oct 1): opened, then closed.
        let want = if y % 2 == 0 {
            CareGapAction::Closed
        } else {
            CareGapAction::Expired
        };
        assert_eq!(flu.get(&id).copied(), Some(want), "{id}");
    }
    assert_eq!(flu.get("A:PNEUMOCOCCAL:ONCE"), Some(&CareGapAction::Opened));
    let st = p.care_gaps().get("A").unwrap().clone();
    // Last evaluated when the 2023-24 season ended (2024-04-01, its timer): seasons ending by
    // 2023-04-02 are settled, the 2022-23 one (ended 2023-04-01) among them.
    assert_eq!(st.evaluated_through, start_of_day(d("2024-04-01")));
    assert_eq!(
        st.settled_before,
        Some(d("2024-04-01") - SETTLED_AFTER_DAYS)
    );
    let seasons: Vec<&str> = st.gaps.iter().map(|g| g.season.as_str()).collect();
    assert_eq!(seasons, ["ONCE", "2023-24"]);
    assert!(
        st.doses.is_empty(),
        "the 2022 dose counted only for a settled season"
    );
    let tally = |status, gaps| SettledGaps {
        vaccine: "INFLUENZA".into(),
        age_band: "65-74".into(),
        status,
        gaps,
    };
    assert_eq!(
        st.settled,
        [
            tally(CareGapAction::Closed, 3),
            tally(CareGapAction::Expired, 2)
        ]
    );
    let summary = crate::replay::Summary::compute(
        &e,
        std::slice::from_ref(&p),
        BTreeMap::new(),
        0,
        &BTreeMap::new(),
        &crate::replay::OutputTally::default(),
    );
    let counts = &summary.care_gaps.by_vaccine["INFLUENZA"];
    assert_eq!(
        (counts.opened, counts.closed, counts.expired, counts.open),
        (6, 3, 3, 0),
        "settled or not, every gap counts"
    );

    // A dose of the settled 2021-22 season: dropped. One of 2023-24, given in March and billed in
    // May: closes that season's expired gap.
    let (mut out, mut costs) = (Vec::new(), Vec::new());
    let old = vaccine_claim("F2021", "A", "90686", "2021-11-02", 940);
    let late = vaccine_claim("F2024", "A", "90686", "2024-03-20", 72);
    for (offset, c) in [(100, old), (101, late)] {
        let claim = InputEvent::Claim(c);
        p.apply(&e, &claim, "ehr.claims", offset, &mut out, &mut costs);
    }
    for r in costs.drain(..) {
        p.apply_rekeyed(&e, &r, &mut out);
    }
    let closed: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            OutputEvent::CareGap(g) => Some((g.season.as_str(), g.action)),
            _ => None,
        })
        .collect();
    assert_eq!(closed, [("2023-24", CareGapAction::Closed)]);
    assert_eq!(p.stats().care_gap_doses_dropped, 1);
}

#[test]
fn state_leaves_after_retention_and_timers_survive_a_restart() {
    let e = engine();
    let db = crate::state::StateDb::temporary().unwrap();
    let (mut out, mut costs) = (Vec::new(), Vec::new());
    {
        let mut p = Partition::open(0, db.partition(0).unwrap(), &e).unwrap();
        p.apply(
            &e,
            &visit("A", "A1", "2024-06-10", "1950-01-01"),
            "ehr.encounters",
            0,
            &mut out,
            &mut costs,
        );
        p.checkpoint(&BTreeMap::new()).unwrap();
    }
    let mut p = Partition::open(0, db.partition(0).unwrap(), &e).unwrap();
    out.clear();
    p.advance_to(&e, t("2024-10-02"), &mut out, &mut costs);
    assert!(
        out.iter()
            .any(|o| matches!(o, OutputEvent::CareGap(g) if g.gap_id == "A:INFLUENZA:2024-25")),
        "the due-date timer was rebuilt from state"
    );
    p.advance_to(&e, t("2026-07-01"), &mut out, &mut costs);
    assert!(p.care_gaps().get("A").is_none());
    assert_eq!(p.stats().care_gap_members_expired, 1);
}

#[test]
fn pseudonymised_records_carry_no_member_or_claim_id() {
    let mut config = CoreConfig::default();
    config.deidentify.pseudonym_secret = Some(Secret("a-test-secret-of-32-bytes-000000".into()));
    let e = engine_with(config);
    let events = [
        visit("M-SECRET-1", "E1", "2024-06-10", "1950-01-01"),
        InputEvent::Claim(vaccine_claim(
            "CLM-SECRET",
            "M-SECRET-1",
            "90686",
            "2024-10-20",
            3,
        )),
    ];
    let (_, gaps) = run(&e, &events, t("2024-12-01"));
    assert!(gaps.len() >= 2);
    let expected = pseudonym(b"a-test-secret-of-32-bytes-000000", "M-SECRET-1");
    assert_eq!(expected.len(), 64);
    for g in &gaps {
        assert!(g.pseudonymised);
        assert_eq!(g.member_id, expected);
        assert_eq!(OutputEvent::CareGap(g.clone()).key(), expected);
        let text = serde_json::to_string(g).unwrap();
        assert!(
            !text.contains("M-SECRET") && !text.contains("CLM-SECRET"),
            "{text}"
        );
    }
    // Known-answer: RFC 4231 test case 2.
    assert_eq!(
        pseudonym(b"Jefe", "what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // The secret does not show in the configuration's debug output.
    let c = CoreConfig {
        deidentify: crate::config::DeidentifyConfig {
            pseudonym_secret: Some(Secret("do-not-print-me-0123".into())),
        },
        ..CoreConfig::default()
    };
    assert!(!format!("{c:?}").contains("do-not-print-me"));
}

#[test]
fn the_high_risk_alert_keeps_the_real_member_id_when_care_gaps_are_pseudonymised() {
    let mut config = CoreConfig::default();
    config.deidentify.pseudonym_secret = Some(Secret("a-test-secret-of-32-bytes-000000".into()));
    // Every score is a high-risk alert.
    config.scoring.readmission_tiers.high = 0.0;
    config.scoring.readmission_tiers.medium = 0.0;
    let e = engine_with(config);
    let mut p = Partition::open(0, PartitionStore::hot_only(0), &e).unwrap();
    let (mut out, mut costs) = (Vec::new(), Vec::new());
    let mut s = stay("M7", "E7", "F1", "2024-11-01", "2024-11-06", "01", "I5023");
    s.birth_date = Some(d("1950-01-01"));
    p.apply(
        &e,
        &InputEvent::Encounter(s),
        "ehr.encounters",
        0,
        &mut out,
        &mut costs,
    );
    let alert = out
        .iter()
        .find_map(|o| match o {
            OutputEvent::HighRiskAlert(a) => Some(a),
            _ => None,
        })
        .expect("a high-risk alert");
    assert_eq!(alert.member_id, "M7");
    let gap = out
        .iter()
        .find_map(|o| match o {
            OutputEvent::CareGap(g) => Some(g),
            _ => None,
        })
        .expect("a care gap");
    assert_ne!(gap.member_id, "M7");
    assert_eq!(gap.priority_basis, "READMISSION_RISK");
    assert_eq!(gap.outreach_priority, RiskTier::High);
}

#[test]
fn priority_formula() {
    assert_eq!(priority(80, 1, None).0, RiskTier::High);
    assert_eq!(priority(80, 1, None).1, 55);
    assert_eq!(priority(70, 0, None).0, RiskTier::Medium);
    assert_eq!(priority(55, 1, None).1, 25);
    assert_eq!(priority(30, 0, None).0, RiskTier::Low);
    assert_eq!(priority(90, 9, None).1, 100);
    let r = priority(30, 0, Some((0, 0.234, RiskTier::Medium)));
    assert_eq!(
        (r.0, r.1, r.2, r.3),
        (RiskTier::Medium, 23, "READMISSION_RISK", Some(0.234))
    );
}

#[test]
fn cvx_codes_of_the_crosswalk_exist_in_the_cdc_list() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/vaccines/cdc_cvrs_CVX.txt");
    let Ok(text) = std::fs::read_to_string(&path) else {
        panic!("{} is needed by this test", path.display());
    };
    let known: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.split(['\t', ' ']).next())
        .filter(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_digit()))
        .collect();
    assert!(known.len() > 150, "parsed {} codes", known.len());
    // Created in 2021, after the 2020 snapshot of the list (see vaccine_cpt_cvx.csv).
    const NEWER_THAN_THE_LIST: [&str; 2] = ["215", "216"];
    for code in RefData::shared().vaccine_codes() {
        if NEWER_THAN_THE_LIST.contains(&code.cvx.as_str()) {
            assert!(
                !known.contains(code.cvx.as_str()),
                "CVX {} is in the list now: drop it from the exceptions",
                code.cvx
            );
        } else {
            assert!(
                known.contains(code.cvx.as_str()),
                "CVX {} ({}) is not a CDC CVX code",
                code.cvx,
                code.cpt
            );
        }
    }
}
