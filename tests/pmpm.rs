//! Cost per member per month on a generated population: the streamed PMPM on the `all`
//! readmission summary equals a brute-force count from the generated enrolment and the final
//! claim outputs, does not depend on the enrolment records' arrival order, every generated
//! encounter and claim lies inside its member's span, and bad enrolment records are
//! dead-lettered.

#[path = "support/fixture_dir.rs"]
mod fixture_dir;
#[path = "support/replayed.rs"]
mod replayed;
use replayed::{lines, Fixture};

use std::collections::BTreeMap;
use std::path::Path;

use claimwatch::config::CoreConfig;
use claimwatch::enrolment::{day_in_month, month_of, next_month, pmpm, MEMBER_MONTH_DAY};
use claimwatch::model::fixtures::enrollment;
use claimwatch::model::{
    ClaimLifecycleUpdate, DeadLetter, EpochDay, InputStream, MaintenanceType, MemberEnrollment,
    PopulationKpis, ReadmissionSummary,
};
use claimwatch::replay::{files, run, ReplayOptions};

fn config() -> CoreConfig {
    CoreConfig {
        partitions: 4,
        ..CoreConfig::default()
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| Fixture::replay(800, 5, config()))
}

/// The PMPM figures of the last `all` summary of a replay.
fn last_kpis(out: &Path) -> PopulationKpis {
    let s: Vec<ReadmissionSummary> = lines(&out.join("claimwatch.readmission-summary.jsonl"));
    s.into_iter()
        .rev()
        .find(|s| s.group == "all")
        .and_then(|s| s.kpis)
        .expect("an all summary with KPIs")
}

/// Each member's coverage: the latest record of each span, cancelled spans dropped.
fn spans(enrollments: &[MemberEnrollment]) -> BTreeMap<String, Vec<(EpochDay, Option<EpochDay>)>> {
    let mut latest: BTreeMap<(&str, &str), &MemberEnrollment> = BTreeMap::new();
    for e in enrollments {
        let k = (e.member_id.as_str(), e.span_id.as_str());
        if latest
            .get(&k)
            .is_none_or(|o| (e.event_time, &e.event_id) > (o.event_time, &o.event_id))
        {
            latest.insert(k, e);
        }
    }
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for ((m, _), e) in latest {
        if e.maintenance_type != MaintenanceType::Cancel {
            out.entry(m.to_owned())
                .or_default()
                .push((e.coverage_start_date, e.coverage_end_date));
        }
    }
    out
}

fn covers(spans: &[(EpochDay, Option<EpochDay>)], day: EpochDay) -> bool {
    spans
        .iter()
        .any(|(s, e)| *s <= day && e.is_none_or(|e| day <= e))
}

#[test]
fn streamed_pmpm_equals_a_brute_force_count() {
    let f = fixture();
    let cov = spans(&f.g.enrollments);
    // Paid to date per claim: its latest lifecycle record; service date: its submission in force.
    let mut latest: BTreeMap<String, ClaimLifecycleUpdate> = BTreeMap::new();
    for u in lines::<ClaimLifecycleUpdate>(&f.out().join("claimwatch.claim-lifecycle.jsonl")) {
        if latest
            .get(&u.claim_id)
            .is_none_or(|o| u.version > o.version)
        {
            latest.insert(u.claim_id.clone(), u);
        }
    }
    let mut service: BTreeMap<&str, (EpochDay, i64, EpochDay)> = BTreeMap::new();
    for c in &f.g.claims {
        let k = (c.submitted_date, c.event_time, c.service_date);
        let e = service.entry(c.claim_id.as_str()).or_insert(k);
        if k > *e {
            *e = k;
        }
    }
    // month -> (member months, paid inside, paid outside)
    let mut months: BTreeMap<i32, (i64, i64, i64)> = BTreeMap::new();
    let mut m = 202_312;
    while m <= 202_502 {
        let day = day_in_month(m, MEMBER_MONTH_DAY);
        let n = cov.values().filter(|s| covers(s, day)).count() as i64;
        months.entry(m).or_default().0 = n;
        m = next_month(m);
    }
    for u in latest.values() {
        let (Some(member), Some((_, _, day))) = (&u.member_id, service.get(u.claim_id.as_str()))
        else {
            continue;
        };
        let e = months.entry(month_of(*day)).or_default();
        if cov.get(member).is_some_and(|s| covers(s, *day)) {
            e.1 += u.paid_to_date_cents;
        } else {
            e.2 += u.paid_to_date_cents;
        }
    }
    let k = last_kpis(&f.out());
    // The window: 12 months to the latest with member months or paid amounts.
    let last = *months
        .iter()
        .rev()
        .find(|(_, v)| **v != (0, 0, 0))
        .unwrap()
        .0;
    let window: Vec<i32> = months
        .keys()
        .copied()
        .filter(|m| *m <= last)
        .rev()
        .take(12)
        .collect();
    let name = |m: i32| format!("{:04}-{:02}", m / 100, m % 100);
    assert_eq!(k.pmpm_last_month, Some(name(last)));
    assert_eq!(k.pmpm_first_month, Some(name(*window.last().unwrap())));
    assert!(last == 202_412 || last == 202_501, "{last}");
    let streamed = k.pmpm_months.clone().unwrap();
    assert_eq!(streamed.len(), 12);
    let (mut mm, mut paid, mut outside) = (0, 0, 0);
    for s in &streamed {
        let y: i32 = s.month[..4].parse().unwrap();
        let mo: i32 = s.month[5..].parse().unwrap();
        let b = months.get(&(y * 100 + mo)).copied().unwrap_or_default();
        assert_eq!(
            (
                s.member_months,
                s.paid_cents,
                s.paid_without_eligibility_cents
            ),
            b,
            "{}",
            s.month
        );
        assert_eq!(s.cost_pmpm_cents, pmpm(b.1, b.0));
        mm += b.0;
        paid += b.1;
        outside += b.2;
    }
    assert_eq!(k.member_months, Some(mm));
    assert_eq!(k.pmpm_paid_cents, Some(paid));
    assert_eq!(k.paid_without_eligibility_cents, Some(outside));
    assert_eq!(k.cost_pmpm_cents, pmpm(paid, mm));
    // The generated spans contain all activity, and everyone is covered in June.
    assert_eq!(outside, 0);
    assert!(paid > 0);
    assert!(mm > 800 * 10 && mm < 800 * 12, "{mm} member months");
}

#[test]
fn pmpm_does_not_depend_on_the_enrolment_arrival_order() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    for entry in std::fs::read_dir(f.dir.path().join("in")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, input.join(p.file_name().unwrap())).unwrap();
    }
    // Reversed: the latest records first (terminations before their adds), and every enrolment
    // record only once the other streams have passed its time.
    let mut reversed = f.g.enrollments.clone();
    reversed.reverse();
    files::write_stream(
        &input,
        InputStream::Enrollment,
        claimwatch::codec::Format::Json,
        &reversed,
    )
    .unwrap();
    let out = dir.path().join("out");
    run(&ReplayOptions {
        input,
        out: out.clone(),
        state: None,
        config: config(),
        stop_after: None,
        close_open_windows: true,
    })
    .unwrap();
    let (a, b) = (last_kpis(&f.out()), last_kpis(&out));
    assert_eq!(
        (&a.pmpm_months, a.cost_pmpm_cents, a.member_months),
        (&b.pmpm_months, b.cost_pmpm_cents, b.member_months)
    );
}

#[test]
fn every_generated_encounter_and_claim_lies_inside_its_members_span() {
    let g = &fixture().g;
    let cov = spans(&g.enrollments);
    assert_eq!(cov.len(), 800, "one span per member");
    assert!(cov.values().all(|s| s.len() == 1));
    for e in &g.encounters {
        let s = &cov[&e.member_id];
        assert!(covers(s, e.admit_date), "admission outside the span");
        if let Some(d) = e.discharge_date {
            assert!(covers(s, d), "discharge outside the span");
        }
    }
    for c in &g.claims {
        assert!(covers(&cov[&c.member_id], c.service_date));
    }
    let start = claimwatch::model::parse_day("2024-01-01").unwrap();
    // The default period: 365 days from 2024-01-01 (a leap year: to 2024-12-30).
    let end = start + 364;
    let joined = cov.values().filter(|s| s[0].0 > start).count();
    let left = cov.values().filter(|s| s[0].1 < Some(end)).count();
    // 10 % join and 8 % are drawn to leave, a month up to the last (binomial, n = 800).
    assert!((40..=120).contains(&joined), "{joined} joined");
    assert!((15..=80).contains(&left), "{left} left");
    let terminations = g
        .enrollments
        .iter()
        .filter(|e| e.maintenance_type == MaintenanceType::Terminate)
        .count();
    assert_eq!(terminations, left);
}

#[test]
fn bad_enrolment_records_go_to_the_dead_letter_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let ok = enrollment(
        "M1",
        "S1",
        MaintenanceType::Add,
        "2024-01-01",
        None,
        "2023-12-01",
    );
    let mut backwards = ok.clone();
    backwards.event_id = "e2".into();
    backwards.coverage_end_date = Some(backwards.coverage_start_date - 1);
    let mut no_end = ok.clone();
    no_end.event_id = "e3".into();
    no_end.maintenance_type = MaintenanceType::Terminate;
    let mut no_member = ok.clone();
    no_member.event_id = "e4".into();
    no_member.member_id = String::new();
    let mut text = String::new();
    for e in [&ok, &backwards, &no_end, &no_member] {
        text.push_str(&serde_json::to_string(e).unwrap());
        text.push('\n');
    }
    text.push_str("{\"event_id\": \"garbage\"}\n");
    std::fs::write(input.join("ehr.enrollment.jsonl"), text).unwrap();
    let out = dir.path().join("out");
    run(&ReplayOptions {
        input,
        out: out.clone(),
        state: None,
        config: config(),
        stop_after: None,
        close_open_windows: true,
    })
    .unwrap();
    let dl: Vec<DeadLetter> = lines(&out.join("claimwatch.dead-letter.jsonl"));
    assert_eq!(dl.len(), 4);
    assert!(dl.iter().all(|d| d.source == "ehr.enrollment"));
    assert_eq!(
        dl.iter().map(|d| d.offset).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert!(dl[0].message.contains("coverage end date before"));
    assert!(dl[1]
        .message
        .contains("termination without coverage end date"));
}
