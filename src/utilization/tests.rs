//! The forecast arithmetic against hand-computed values, interval coverage on simulated counts,
//! the member-flow facts and their corrections, week closing, and order independence of the
//! weekly counts.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::aggregate::{self, UtilEntry};
use super::facts::{key_of, split_key};
use super::forecast::{self, Fit, Prediction};
use super::Utilization;
use crate::cashflow::week_start;
use crate::config::{CoreConfig, UtilizationConfig};
use crate::core::{Engine, Partition};
use crate::model::fixtures::{d, stay};
use crate::model::{
    EncounterClass, EncounterEventType, InputEvent, OutputEvent, Rekeyed, UtilizationFact,
    UtilizationForecast, DAY_MS,
};
use crate::refdata::RefData;
use crate::state::{PartitionStore, Table};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

// ---------------------------------------------------------------- forecast arithmetic

#[test]
fn smoothing_matches_a_hand_computation() {
    // alpha 0.5 over 2, 4, 6, 8: l0 = 5 (mean of the four), one-step predictions 5, 3.5, 3.75,
    // 4.875, final level 6.4375; squared errors 9 + 0.25 + 5.0625 + 9.765625 = 24.078125 over
    // predictions 17.125: dispersion 1.40602.
    let f = forecast::fit(&[2, 4, 6, 8], 0.5).unwrap();
    assert!(close(f.level, 6.4375, 1e-12), "{f:?}");
    assert!(close(f.dispersion, 24.078125 / 17.125, 1e-12), "{f:?}");
    // A constant series: no error, dispersion floored at 1 (Poisson).
    let f = forecast::fit(&[5; 8], 0.2).unwrap();
    assert_eq!((f.level, f.dispersion), (5.0, 1.0));
    assert!(forecast::fit(&[], 0.2).is_none());
    // All zeros: level 0, nothing expected, a zero interval.
    let f = forecast::fit(&[0; 6], 0.2).unwrap();
    assert_eq!(forecast::predict(&f, 0.2, 1), Prediction::default());
}

#[test]
fn poisson_quantiles_match_the_table() {
    // Poisson(3) CDF: 0.0498, 0.1991, 0.4232, 0.6472, 0.8153, 0.9161, 0.9665, 0.9881.
    let p = forecast::predict(
        &Fit {
            level: 3.0,
            dispersion: 1.0,
        },
        0.2,
        1,
    );
    assert_eq!(p.mean, 3.0);
    assert_eq!((p.low80, p.high80, p.low95, p.high95), (1, 5, 0, 7));
    assert!(p.inside80(5) && !p.inside80(6) && p.inside95(7) && !p.inside95(8));
}

#[test]
fn negative_binomial_quantiles_match_the_table() {
    // Mean 4, variance 8: r = 4, p = 0.5, pmf(k) = C(k + 3, 3) / 2^(k + 4); CDF 0.0625, 0.1875,
    // 0.3438, 0.5, 0.6367, 0.7461, 0.8281, 0.8867, 0.9270, 0.9539, 0.9713, 0.9824.
    let fit = Fit {
        level: 4.0,
        dispersion: 2.0,
    };
    let p = forecast::predict(&fit, 0.5, 1);
    assert_eq!((p.low80, p.high80, p.low95, p.high95), (1, 8, 0, 11));
    // Two weeks ahead the variance grows by 1 + alpha^2 (10 instead of 8): no narrower.
    let p2 = forecast::predict(&fit, 0.5, 2);
    assert!(p2.high95 >= p.high95 && p2.high80 >= p.high80 && p2.low80 <= p.low80);
    assert_eq!(p2.mean, 4.0);
    // The one-walk quantiles agree with statrs' CDFs (binary search) over a range of means and
    // dispersions.
    for m in [0.3, 1.0, 2.5, 7.0, 31.0, 250.0] {
        for phi in [1.0, 1.5, 4.0] {
            let v = m * phi;
            let walked = forecast::quantiles(m, v, [0.025, 0.1, 0.9, 0.975]);
            let searched = [0.025, 0.1, 0.9, 0.975].map(|p| forecast::quantile(m, v, p));
            assert_eq!(walked, searched, "mean {m}, dispersion {phi}");
        }
    }
    // The quantile search itself: the smallest k reaching p.
    let cdf = |k: u64| (k as f64 + 1.0) / 10.0; // uniform on 0..=9
    assert_eq!(forecast::smallest_reaching(&cdf, 0.1, 1.0), 0);
    assert_eq!(forecast::smallest_reaching(&cdf, 0.35, 1.0), 3);
    assert_eq!(forecast::smallest_reaching(&cdf, 1.0, 1.0), 9);
}

/// Draws a Poisson count (Knuth's method; small means only).
fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> i64 {
    let l = (-lambda).exp();
    let (mut k, mut p) = (0, 1.0);
    loop {
        p *= rng.gen::<f64>();
        if p <= l {
            return k;
        }
        k += 1;
    }
}

#[test]
fn intervals_cover_their_share_on_simulated_counts() {
    // 400 series of 13 weeks of history and a 14th to predict, counts Poisson with a
    // gamma-mixed (overdispersed) mean around a series-specific level: the 80 % and 95 %
    // intervals must cover at least about their share (discrete quantiles over-cover a little),
    // and not absurdly more.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut n, mut in80, mut in95) = (0, 0, 0);
    for _ in 0..2000 {
        let level: f64 = rng.gen_range(1.0..20.0);
        let draw = |rng: &mut ChaCha8Rng| {
            // Mean multiplied by a factor with mean 1 and sd ~0.2.
            let factor = 1.0 + 0.35 * (rng.gen::<f64>() - 0.5);
            poisson(rng, level * factor)
        };
        let history: Vec<i64> = (0..13).map(|_| draw(&mut rng)).collect();
        let fit = forecast::fit(&history, 0.2).unwrap();
        let p = forecast::predict(&fit, 0.2, 1);
        let y = draw(&mut rng);
        n += 1;
        in80 += i32::from(p.inside80(y));
        in95 += i32::from(p.inside95(y));
    }
    let (c80, c95) = (f64::from(in80) / n as f64, f64::from(in95) / n as f64);
    assert!((0.78..=0.95).contains(&c80), "80 % coverage {c80}");
    assert!((0.93..=0.995).contains(&c95), "95 % coverage {c95}");
}

#[test]
fn config_is_validated() {
    assert!(super::validate(&UtilizationConfig::default()).is_empty());
    let bad = UtilizationConfig {
        enabled: true,
        horizon_weeks: 0,
        history_weeks: 2,
        min_history_weeks: 3,
        alpha: 0.0,
        lateness_hours: 10_000,
        accuracy_weeks: 0,
    };
    assert_eq!(super::validate(&bad).len(), 6);
    let mut cfg = CoreConfig::default();
    cfg.utilization.alpha = 1.5;
    assert!(cfg.validate().is_err());
}

// ---------------------------------------------------------------- member flow

fn engine() -> Engine {
    let config = CoreConfig {
        partitions: 1,
        ..CoreConfig::default()
    };
    Engine::new(config, RefData::shared())
}

fn util_facts(rk: &[Rekeyed]) -> Vec<UtilizationFact> {
    rk.iter()
        .filter_map(|r| match r {
            Rekeyed::Utilization(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

fn records(out: &[OutputEvent]) -> Vec<UtilizationForecast> {
    out.iter()
        .filter_map(|o| match o {
            OutputEvent::UtilizationForecast(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn keys_split_back() {
    assert_eq!(key_of("F1", "CARDIOLOGY"), "F1|CARDIOLOGY");
    assert_eq!(key_of("", "A|B"), "UNKNOWN|A/B");
    assert_eq!(split_key("F1|CARDIOLOGY"), ("F1", "CARDIOLOGY"));
}

#[test]
fn admissions_ed_visits_cancellations_and_corrections() {
    let e = engine();
    let mut p = Partition::open(0, PartitionStore::hot_only(0), &e).unwrap();
    let (mut out, mut rk) = (Vec::new(), Vec::new());
    let adm = stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023");
    p.apply(
        &e,
        &InputEvent::Encounter(adm.clone()),
        "enc",
        0,
        &mut out,
        &mut rk,
    );
    let sent = util_facts(&rk);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].key, "F1|MEDICINE");
    assert_eq!((sent[0].sign, sent[0].day), (1, d("2024-01-01")));
    assert_eq!((sent[0].admissions, sent[0].ed_visits), (1, 0));
    rk.clear();
    // The same record again (a duplicate) and an older update change nothing.
    let mut older = adm.clone();
    older.event_id = "enc-E1-upd".into();
    older.event_type = EncounterEventType::Update;
    older.event_time -= DAY_MS;
    older.department = "SURGERY".into();
    p.apply(
        &e,
        &InputEvent::Encounter(older),
        "enc",
        1,
        &mut out,
        &mut rk,
    );
    assert!(util_facts(&rk).is_empty(), "{rk:?}");
    // A later correction of the department moves the admission.
    let mut moved = adm.clone();
    moved.event_id = "enc-E1-upd2".into();
    moved.event_type = EncounterEventType::Update;
    moved.event_time += DAY_MS;
    moved.department = "CARDIOLOGY".into();
    p.apply(
        &e,
        &InputEvent::Encounter(moved.clone()),
        "enc",
        2,
        &mut out,
        &mut rk,
    );
    let sent = util_facts(&rk);
    assert_eq!(
        sent.iter()
            .map(|f| (f.key.as_str(), f.sign))
            .collect::<Vec<_>>(),
        vec![("F1|MEDICINE", -1), ("F1|CARDIOLOGY", 1)]
    );
    rk.clear();
    // A cancellation takes it back.
    let mut cancel = moved;
    cancel.event_id = "enc-E1-cancel".into();
    cancel.event_type = EncounterEventType::Cancel;
    cancel.event_time += DAY_MS;
    p.apply(
        &e,
        &InputEvent::Encounter(cancel),
        "enc",
        3,
        &mut out,
        &mut rk,
    );
    let sent = util_facts(&rk);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].key.as_str(), sent[0].sign), ("F1|CARDIOLOGY", -1));
    rk.clear();
    // An ED visit counts on its department; observation counts nowhere.
    let mut ed = stay("M2", "E2", "F2", "2024-01-03", "2024-01-03", "01", "R0789");
    ed.encounter_class = EncounterClass::Emergency;
    ed.department = "EMERGENCY".into();
    let mut obs = stay("M3", "E3", "F2", "2024-01-03", "2024-01-04", "01", "R0789");
    obs.encounter_class = EncounterClass::Observation;
    p.apply(&e, &InputEvent::Encounter(ed), "enc", 4, &mut out, &mut rk);
    p.apply(&e, &InputEvent::Encounter(obs), "enc", 5, &mut out, &mut rk);
    let sent = util_facts(&rk);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].key, "F2|EMERGENCY");
    assert_eq!((sent[0].admissions, sent[0].ed_visits), (0, 1));
}

// ---------------------------------------------------------------- utilization flow

fn cfg() -> Utilization {
    UtilizationConfig::default()
}

fn fact(key: &str, sign: i32, event_time: i64, day: i32, adm: i64, ed: i64) -> UtilizationFact {
    UtilizationFact {
        key: key.into(),
        sign,
        event_time,
        day,
        admissions: adm,
        ed_visits: ed,
        source_partition: 0,
    }
}

#[test]
fn weeks_close_on_the_watermark_forecast_and_compare() {
    let cfg = cfg();
    let mut table: Table<UtilEntry> = Table::new("utilization", b'y');
    let mut out = Vec::new();
    // 2024-01-01 is a Monday. Three admissions a week for ten weeks, recorded at noon of the day.
    let monday = d("2024-01-01");
    assert_eq!(week_start(monday), monday);
    for w in 0..10 {
        for i in 0..3 {
            let day = monday + 7 * w + 2 * i;
            aggregate::apply(
                &mut table,
                &cfg,
                1,
                &fact("F1|MED", 1, t_day(day), day, 1, 0),
                &mut out,
            );
        }
    }
    // The last fact is on day 67 (Friday of week 10) at noon; watermark 48 h earlier, Wednesday
    // of week 10: weeks 1..=9 are closed, week 10 is open.
    let recs = records(&out);
    assert_eq!(
        recs.len(),
        9,
        "{:?}",
        recs.iter().map(|r| &r.iso_week).collect::<Vec<_>>()
    );
    assert!(recs
        .iter()
        .all(|r| r.admissions == 3 && r.ed_visits == 0 && r.version == 1));
    assert_eq!(recs[0].iso_week, "2024-W01");
    assert_eq!(recs[0].output_id, "F1|MED:2024-W01:1");
    assert_eq!(
        (recs[0].facility_id.as_str(), recs[0].service_line.as_str()),
        ("F1", "MED")
    );
    // Forecasts from the 4th closed week on (min_history_weeks 4), 4 weeks x 2 measures.
    assert!(recs[2].forecast.is_empty());
    let r4 = &recs[3];
    assert_eq!(r4.history_weeks, 4);
    assert_eq!(r4.forecast.len(), 8);
    let f1 = &r4.forecast[0];
    assert_eq!((f1.measure.as_str(), f1.horizon_weeks), ("ADMISSIONS", 1));
    assert_eq!(f1.week_start, monday + 28);
    assert_eq!(f1.mean, 3.0);
    // Week 8 was forecast 1..4 weeks ahead (at the close of weeks 7, 6, 5, 4): exact, inside.
    let r8 = &recs[7];
    let adm: Vec<_> = r8
        .checks
        .iter()
        .filter(|c| c.measure == "ADMISSIONS")
        .collect();
    assert_eq!(
        adm.iter().map(|c| c.horizon_weeks).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert!(adm
        .iter()
        .all(|c| c.actual == 3 && c.error == 0.0 && c.inside80 && c.inside95));
    assert_eq!(adm[3].made_week_start, monday + 21);
    let a1 = r8
        .accuracy
        .iter()
        .find(|a| a.measure == "ADMISSIONS" && a.horizon_weeks == 1)
        .unwrap();
    // Weeks 5..=8 had a 1-week-ahead forecast.
    assert_eq!((a1.weeks, a1.actual_total), (4, 12));
    assert_eq!(
        (a1.wape, a1.mae, a1.coverage80),
        (Some(0.0), Some(0.0), Some(1.0))
    );
    let e1 = r8
        .accuracy
        .iter()
        .find(|a| a.measure == "ED_VISITS" && a.horizon_weeks == 1)
        .unwrap();
    assert_eq!((e1.weeks, e1.actual_total, e1.wape), (4, 0, None));

    // A late admission in week 2 re-emits it (version 2) at the next day of the flow.
    out.clear();
    let late_day = monday + 8;
    let now = t_day(monday + 68);
    aggregate::apply(
        &mut table,
        &cfg,
        1,
        &fact("F1|MED", 1, now, late_day, 1, 0),
        &mut out,
    );
    let recs = records(&out);
    let w2 = recs.iter().find(|r| r.iso_week == "2024-W02").unwrap();
    assert_eq!((w2.admissions, w2.version), (4, 2));
    // Taken back again: emitted at the flush (same day), back to 3.
    out.clear();
    aggregate::apply(
        &mut table,
        &cfg,
        1,
        &fact("F1|MED", -1, now, late_day, 1, 0),
        &mut out,
    );
    assert!(records(&out).is_empty());
    aggregate::flush(&mut table, &cfg, 1, &mut out);
    let recs = records(&out);
    assert_eq!(recs.len(), 1);
    assert_eq!((recs[0].admissions, recs[0].version), (3, 3));
}

fn t_day(day: i32) -> i64 {
    i64::from(day) * DAY_MS + DAY_MS / 2
}

/// Random encounters' facts over half a year, with corrections (+1 then -1 and +1 elsewhere).
fn random_facts(seed: u64) -> Vec<UtilizationFact> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let keys = ["F1|MED", "F1|EMERGENCY", "F2|SURG", "F2|EMERGENCY"];
    let start = d("2024-01-01");
    let mut facts = Vec::new();
    for _ in 0..3000 {
        let key = keys[rng.gen_range(0..keys.len())];
        let day = start + rng.gen_range(0..180);
        let ed = key.ends_with("EMERGENCY");
        // Recorded 0..3 days after the visit.
        let at = t_day(day) + rng.gen_range(0..3 * DAY_MS);
        let f = fact(key, 1, at, day, i64::from(!ed), i64::from(ed));
        if rng.gen_bool(0.1) {
            // Corrected later: taken back and moved to another day.
            let at2 = at + rng.gen_range(0..10 * DAY_MS);
            let day2 = day + rng.gen_range(-3..=3);
            facts.push(f.clone());
            facts.push(UtilizationFact {
                sign: -1,
                event_time: at2,
                ..f.clone()
            });
            facts.push(UtilizationFact {
                day: day2,
                event_time: at2,
                ..f
            });
        } else {
            facts.push(f);
        }
    }
    facts
}

/// The counts per (key, week) of the facts (the brute-force batch computation).
fn direct_counts(facts: &[UtilizationFact]) -> BTreeMap<(String, i32), (i64, i64)> {
    let mut m: BTreeMap<(String, i32), (i64, i64)> = BTreeMap::new();
    for f in facts {
        let c = m.entry((f.key.clone(), week_start(f.day))).or_default();
        c.0 += i64::from(f.sign) * f.admissions;
        c.1 += i64::from(f.sign) * f.ed_visits;
    }
    m
}

/// Applies facts in the given order, then flushes; the last record of every (key, week).
fn last_records(facts: &[UtilizationFact]) -> BTreeMap<(String, i32), UtilizationForecast> {
    let cfg = cfg();
    let mut table: Table<UtilEntry> = Table::new("utilization", b'y');
    let mut out = Vec::new();
    for f in facts {
        aggregate::apply(&mut table, &cfg, 1, f, &mut out);
    }
    aggregate::flush(&mut table, &cfg, 1, &mut out);
    let mut last = BTreeMap::new();
    for r in records(&out) {
        let k = (r.key.clone(), r.week_start);
        if let Some(prev) = last.get(&k) {
            let prev: &UtilizationForecast = prev;
            assert_eq!(r.version, prev.version + 1, "versions increase by one");
        }
        last.insert(k, r);
    }
    last
}

#[test]
fn weekly_counts_equal_a_direct_count_whatever_the_order() {
    let facts = random_facts(42);
    let truth = direct_counts(&facts);
    let mut in_time = facts.clone();
    in_time.sort_by_key(|f| f.event_time);
    // Shuffled arrival: each fact delayed by up to three weeks (well inside the state kept), so
    // weeks close before some of their facts arrive and are re-emitted.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut delayed: Vec<(i64, UtilizationFact)> = facts
        .iter()
        .map(|f| (f.event_time + rng.gen_range(0..21 * DAY_MS), f.clone()))
        .collect();
    delayed.shuffle(&mut rng);
    delayed.sort_by_key(|(at, _)| *at);
    let late: Vec<UtilizationFact> = delayed
        .into_iter()
        .map(|(at, f)| UtilizationFact {
            event_time: at,
            ..f
        })
        .collect();
    let (a, b) = (last_records(&in_time), last_records(&late));
    assert!(a.len() > 80, "{}", a.len());
    let mut reemitted = 0;
    for recs in [&a, &b] {
        for ((key, week), r) in recs.iter() {
            let want = truth.get(&(key.clone(), *week)).copied().unwrap_or((0, 0));
            assert_eq!((r.admissions, r.ed_visits), want, "{key} {week}");
            reemitted += i64::from(r.version > 1);
        }
    }
    assert!(reemitted > 0, "the delayed order re-emits weeks");
    // Both orders close the same weeks (the delayed one fewer at its end: its flow is later,
    // so more, never fewer).
    for k in a.keys() {
        assert!(b.contains_key(k), "{k:?}");
    }
}

#[test]
fn records_and_facts_round_trip_through_their_avro_schemas() {
    use crate::codec::avro::{AvroCodec, SchemaKind};
    let codec = AvroCodec::new();
    let cfg = cfg();
    let mut table: Table<UtilEntry> = Table::new("utilization", b'y');
    let mut out = Vec::new();
    let monday = d("2024-01-01");
    for w in 0..9 {
        let day = monday + 7 * w;
        let f = fact("F1|EMERGENCY", 1, t_day(day), day, 0, 1 + i64::from(w % 3));
        aggregate::apply(&mut table, &cfg, 1, &f, &mut out);
        let mut buf = Vec::new();
        crate::runtime::wire::encode_utilization_fact(&codec, &f, &mut buf);
        let back = crate::runtime::wire::decode_utilization_fact(&codec, &buf).unwrap();
        assert_eq!(back, f);
    }
    let recs = records(&out);
    let full = recs.iter().rfind(|r| !r.checks.is_empty()).unwrap();
    assert!(!full.forecast.is_empty() && full.accuracy.iter().any(|a| a.wape.is_some()));
    for r in [&recs[0], full] {
        let mut buf = Vec::new();
        codec
            .encode_framed(SchemaKind::UtilizationForecast, r, &mut buf)
            .unwrap();
        let back: UtilizationForecast = codec
            .decode_framed(SchemaKind::UtilizationForecast, &buf)
            .unwrap();
        assert_eq!(&back, r);
        // And through the output path the service uses.
        let ev = OutputEvent::UtilizationForecast(r.clone());
        let mut buf = Vec::new();
        crate::runtime::wire::encode_output(&codec, &ev, crate::codec::Format::Avro, &mut buf)
            .unwrap();
        let back =
            crate::runtime::wire::decode_output(&codec, "claimwatch.utilization-forecast", &buf)
                .unwrap();
        assert_eq!(back, ev);
    }
}

#[test]
fn the_watermark_waits_for_every_source_partition() {
    let cfg = cfg();
    let mut table: Table<UtilEntry> = Table::new("utilization", b'y');
    let mut out = Vec::new();
    let monday = d("2024-01-01");
    // Ten weeks of facts from source 0 of 2: source 1 has not been heard from, nothing closes.
    for w in 0..10 {
        let day = monday + 7 * w;
        let f = fact("F1|MED", 1, t_day(day), day, 1, 0);
        aggregate::apply(&mut table, &cfg, 2, &f, &mut out);
    }
    assert!(records(&out).is_empty());
    // Source 1's first fact, from week 4 (Friday noon): the watermark is its time minus 48 h
    // (Wednesday of week 4), so weeks 1-3 close, and its own fact counts in week 4.
    let day = monday + 25;
    let f = UtilizationFact {
        source_partition: 1,
        ..fact("F1|MED", 1, t_day(day), day, 1, 0)
    };
    aggregate::apply(&mut table, &cfg, 2, &f, &mut out);
    let recs = records(&out);
    assert_eq!(
        recs.iter().map(|r| r.iso_week.as_str()).collect::<Vec<_>>(),
        vec!["2024-W01", "2024-W02", "2024-W03"]
    );
    // A quiet stream closes nothing more (source 1 may still be sending).
    out.clear();
    aggregate::flush(&mut table, &cfg, 2, &mut out);
    assert!(records(&out).is_empty());
    // The end of a replay: the latest time (Monday noon of week 10, watermark Saturday of week 9)
    // closes weeks 4-8.
    let latest = aggregate::latest_fact(&table).unwrap();
    aggregate::finish(&mut table, &cfg, latest, &mut out);
    let recs = records(&out);
    assert_eq!(recs.first().unwrap().iso_week, "2024-W04");
    assert_eq!(recs.first().unwrap().admissions, 2);
    assert_eq!(recs.last().unwrap().iso_week, "2024-W08");
}
