//! Utilization forecast on a generated population: the weekly admissions and ED visits of every
//! facility and service line equal a brute-force count over the generated encounter records
//! (the winning record of each encounter, as the detector decides), and the prediction intervals
//! cover about their nominal share of what then happened.

#[path = "support/fixture_dir.rs"]
mod fixture_dir;
#[path = "support/replayed.rs"]
mod replayed;
use replayed::{lines, Fixture};

use std::collections::BTreeMap;

use claimwatch::cashflow::week_start;
use claimwatch::config::CoreConfig;
use claimwatch::generate::Generated;
use claimwatch::model::{EncounterClass, EncounterEventType, UtilizationForecast};
use claimwatch::utilization::facts::key_of;

fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        Fixture::replay(
            3000,
            11,
            CoreConfig {
                partitions: 4,
                ..CoreConfig::default()
            },
        )
    })
}

/// (admissions, ED visits) per (key, week) from the generated records: the winning record of
/// each encounter (latest event time, then record kind, then record id) is not a cancel.
fn batch_counts(g: &Generated) -> BTreeMap<(String, i32), (i64, i64)> {
    let rank = |t: EncounterEventType| match t {
        EncounterEventType::Admission => 0u8,
        EncounterEventType::Update => 1,
        EncounterEventType::Discharge => 2,
        EncounterEventType::Cancel => 3,
    };
    let mut winner = BTreeMap::new();
    for e in &g.encounters {
        let k = (
            e.event_time,
            rank(e.event_type),
            claimwatch::reconcile::record_id(&e.event_id),
        );
        let entry = winner
            .entry((e.member_id.clone(), e.encounter_id.clone()))
            .or_insert((k, e));
        if k > entry.0 {
            *entry = (k, e);
        }
    }
    let mut counts: BTreeMap<(String, i32), (i64, i64)> = BTreeMap::new();
    for (_, e) in winner.values() {
        if e.event_type == EncounterEventType::Cancel {
            continue;
        }
        let (a, v) = match e.encounter_class {
            EncounterClass::Inpatient => (1, 0),
            EncounterClass::Emergency => (0, 1),
            _ => continue,
        };
        let c = counts
            .entry((
                key_of(&e.facility_id, &e.department),
                week_start(e.admit_date),
            ))
            .or_default();
        c.0 += a;
        c.1 += v;
    }
    counts
}

/// The last version of every (key, week).
fn records(f: &Fixture) -> BTreeMap<(String, i32), UtilizationForecast> {
    let mut last = BTreeMap::new();
    for r in lines::<UtilizationForecast>(&f.out().join("claimwatch.utilization-forecast.jsonl")) {
        last.insert((r.key.clone(), r.week_start), r);
    }
    last
}

#[test]
fn weekly_counts_equal_a_brute_force_count() {
    let f = fixture();
    let truth = batch_counts(&f.g);
    let recs = records(f);
    assert!(recs.len() > 200, "{}", recs.len());
    // Every closed week of a key has exactly the brute-force counts.
    let mut closed: BTreeMap<&str, (i32, i32)> = BTreeMap::new();
    for ((key, week), r) in &recs {
        let want = truth.get(&(key.clone(), *week)).copied().unwrap_or((0, 0));
        assert_eq!((r.admissions, r.ed_visits), want, "{key} {}", r.iso_week);
        let e = closed.entry(key.as_str()).or_insert((*week, *week));
        e.0 = e.0.min(*week);
        e.1 = e.1.max(*week);
    }
    // Every brute-force week inside a key's closed range was emitted, and the closed weeks hold
    // nearly everything (only the last week or two, still open at the end, are not).
    let (mut inside, mut total) = (0i64, 0i64);
    for ((key, week), (a, v)) in &truth {
        total += a + v;
        if let Some((lo, hi)) = closed.get(key.as_str()) {
            if (lo..=hi).contains(&week) {
                assert!(recs.contains_key(&(key.clone(), *week)), "{key} {week}");
                inside += a + v;
            }
        }
    }
    assert!(inside as f64 >= 0.95 * total as f64, "{inside} of {total}");
    // ED visits land on the EMERGENCY service line, admissions elsewhere.
    assert!(recs
        .values()
        .filter(|r| r.service_line != "EMERGENCY")
        .all(|r| r.ed_visits == 0));
    assert!(recs.values().any(|r| r.ed_visits > 0) && recs.values().any(|r| r.admissions > 0));
}

#[test]
fn intervals_cover_about_their_share() {
    let f = fixture();
    let recs = records(f);
    // Over every check of the last versions: (checks, inside 80 %, inside 95 %) per horizon.
    let mut by_h: BTreeMap<i32, (u32, u32, u32)> = BTreeMap::new();
    for r in recs.values() {
        for c in &r.checks {
            let e = by_h.entry(c.horizon_weeks).or_default();
            e.0 += 1;
            e.1 += u32::from(c.inside80);
            e.2 += u32::from(c.inside95);
        }
    }
    assert_eq!(by_h.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    for (h, (n, i80, i95)) in by_h {
        let (c80, c95) = (f64::from(i80) / f64::from(n), f64::from(i95) / f64::from(n));
        eprintln!("horizon {h}: {n} checks, coverage 80 % {c80:.3}, 95 % {c95:.3}");
        assert!(n > 300, "{n}");
        assert!((0.75..=0.99).contains(&c80), "h {h}: 80 % coverage {c80}");
        assert!((0.90..=1.0).contains(&c95), "h {h}: 95 % coverage {c95}");
    }
}

/// The end of a replay closes every key's weeks to the same day, whatever the partition count
/// (each partition used to close its keys to the latest fact it had received itself, so some
/// service lines stopped a week earlier than others).
#[test]
fn the_last_week_closed_does_not_depend_on_the_partition_count() {
    use claimwatch::codec::Format;
    use claimwatch::generate::{generate, write::write_population, GenerateConfig};
    // Not the shared fixture: its directory is one per test binary.
    let dir = tempfile::tempdir().unwrap();
    let g = generate(&GenerateConfig {
        members: 600,
        seed: 5,
        ..GenerateConfig::default()
    });
    let input = dir.path().join("in");
    write_population(&g, &input, Format::Json).unwrap();
    let weeks = |partitions: u32| -> BTreeMap<(String, i32), (i64, i64)> {
        let out = dir.path().join(format!("out-{partitions}"));
        claimwatch::replay::run(&claimwatch::replay::ReplayOptions {
            input: input.clone(),
            out: out.clone(),
            state: None,
            config: CoreConfig {
                partitions,
                ..CoreConfig::default()
            },
            stop_after: None,
            close_open_windows: true,
        })
        .unwrap();
        let mut last = BTreeMap::new();
        for r in lines::<UtilizationForecast>(&out.join("claimwatch.utilization-forecast.jsonl")) {
            last.insert((r.key.clone(), r.week_start), (r.admissions, r.ed_visits));
        }
        last
    };
    // The last week each key closed (the end of the replay closes them).
    let last_closed = |m: &BTreeMap<(String, i32), (i64, i64)>| -> BTreeMap<String, i32> {
        let mut last = BTreeMap::new();
        for (key, week) in m.keys() {
            last.insert(key.clone(), *week);
        }
        last
    };
    let one = last_closed(&weeks(1));
    let four = last_closed(&weeks(4));
    assert!(one.len() > 20, "{}", one.len());
    assert_eq!(four, one);
}
