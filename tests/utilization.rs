//! Utilization forecast on a generated population: the weekly admissions and ED visits of every
//! facility and service line equal a brute-force count over the generated encounter records
//! (the winning record of each encounter, as the detector decides), and the prediction intervals
//! cover about their nominal share of what then happened.

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

/// The core's cost of the utilization forecast: events/s through 4 hot-only partitions (replay's
/// routing, no file I/O) on 3,000 generated members, with `utilization.enabled` on and off,
/// alternating, median of 3 runs each. A measurement, not a check: run it in release,
/// `cargo test --release --test utilization -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_core_cost_with_and_without_utilization() {
    use claimwatch::core::{partition_for, Engine, Partition};
    use claimwatch::generate::{generate, GenerateConfig};
    use claimwatch::model::InputEvent;
    use claimwatch::refdata::RefData;
    use claimwatch::state::PartitionStore;
    let g = generate(&GenerateConfig {
        members: 3000,
        seed: 7,
        ..GenerateConfig::default()
    });
    let mut all: Vec<(i64, u8, usize, InputEvent)> = Vec::new();
    all.extend(
        g.claims
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, e)| (e.event_time, 0, i, InputEvent::Claim(e))),
    );
    all.extend(
        g.encounters
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, e)| (e.event_time, 1, i, InputEvent::Encounter(e))),
    );
    all.extend(
        g.acks
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, e)| (e.event_time, 2, i, InputEvent::Ack(e))),
    );
    all.extend(
        g.remits
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, e)| (e.event_time, 3, i, InputEvent::Remit(e))),
    );
    all.sort_by_key(|(t, s, i, _)| (*t, *s, *i));
    let events: Vec<InputEvent> = all.into_iter().map(|(_, _, _, e)| e).collect();
    let run = |enabled: bool| -> (f64, usize) {
        let mut config = CoreConfig {
            partitions: 4,
            ..CoreConfig::default()
        };
        config.utilization.enabled = enabled;
        let engine = Engine::new(config, RefData::shared());
        let mut parts: Vec<Partition> = (0..4)
            .map(|id| Partition::open(id, PartitionStore::hot_only(id), &engine).unwrap())
            .collect();
        let (mut out, mut costs) = (Vec::new(), Vec::new());
        let mut records = 0;
        let start = std::time::Instant::now();
        for (offset, e) in events.iter().enumerate() {
            let p = partition_for(e.key(), 4) as usize;
            parts[p].apply(
                &engine,
                e,
                e.stream().name(),
                offset as i64,
                &mut out,
                &mut costs,
            );
            claimwatch::replay::route_rekeyed(&engine, &mut parts, &mut costs, &mut out);
            records += out
                .iter()
                .filter(|o| o.topic() == "claimwatch.utilization-forecast")
                .count();
            out.clear();
        }
        for p in &mut parts {
            p.flush_population(&engine, &mut out);
        }
        (events.len() as f64 / start.elapsed().as_secs_f64(), records)
    };
    let (mut on, mut off) = (Vec::new(), Vec::new());
    let mut records = 0;
    for _ in 0..3 {
        off.push(run(false).0);
        let (r, n) = run(true);
        on.push(r);
        records = n;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (on, off) = (median(&mut on), median(&mut off));
    println!(
        "{} events ({records} utilization records): without the utilization forecast \
         {off:.0} events/s, with {on:.0} events/s ({:+.1} %)",
        events.len(),
        (on / off - 1.0) * 100.0
    );
}
