//! The O/E arithmetic against hand-computed values, the member-flow facts and their corrections,
//! and order independence of the aggregate.

use super::aggregate::{self, ProviderEntry};
use super::stats::{self, OeFlag};
use super::ProviderKpis;
use crate::config::{CoreConfig, ProviderKpiConfig};
use crate::core::{Engine, Partition};
use crate::model::fixtures::{stay, t};
use crate::model::{
    EncounterCost, EncounterEventType, InputEvent, OutputEvent, ProviderCounts, ProviderFact,
    ProviderKpi, Rekeyed, DAY_MS,
};
use crate::refdata::RefData;
use crate::state::{PartitionStore, Table};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

// Exact Poisson 95 % limits, as tabulated (e.g. Ulm 1990; Sahai & Khurshid 1993):
// O = 0: (0, 3.689); O = 1: (0.0253, 5.572); O = 10: (4.795, 18.390); O = 30: (20.241, 42.827).
// The O = 0 upper and O = 1 lower limits are closed forms: -ln(0.025) and -ln(0.975).
#[test]
fn poisson_limits_match_tabulated_values() {
    let (lo, hi) = stats::poisson_interval(0);
    assert_eq!(lo, 0.0);
    assert!(close(hi, -(0.025f64.ln()), 1e-6), "{hi}");
    let (lo, hi) = stats::poisson_interval(1);
    assert!(close(lo, -(0.975f64.ln()), 1e-6), "{lo}");
    assert!(close(hi, 5.5716, 1e-3), "{hi}");
    let (lo, hi) = stats::poisson_interval(10);
    assert!(
        close(lo, 4.7954, 1e-3) && close(hi, 18.3904, 1e-3),
        "{lo} {hi}"
    );
    let (lo, hi) = stats::poisson_interval(30);
    assert!(
        close(lo, 20.2409, 1e-3) && close(hi, 42.8269, 1e-3),
        "{lo} {hi}"
    );
}

#[test]
fn observed_to_expected_and_its_interval() {
    // 10 observed against 8 expected: 1.25, interval (4.7954 / 8, 18.3904 / 8).
    let r = stats::observed_to_expected(10, 8.0).unwrap();
    assert!(close(r.ratio, 1.25, 1e-12));
    assert!(
        close(r.low, 0.59943, 1e-4) && close(r.high, 2.29880, 1e-4),
        "{r:?}"
    );
    assert_eq!(stats::flag(&r, 5.0), None, "the interval contains 1");
    // 30 against 15: 2.0, interval (1.3494, 2.8551) excludes 1.
    let r = stats::observed_to_expected(30, 15.0).unwrap();
    assert!(close(r.low, 20.2409 / 15.0, 1e-4) && close(r.high, 42.8269 / 15.0, 1e-4));
    assert_eq!(stats::flag(&r, 5.0), Some(OeFlag::Higher));
    // 0 against 10: interval (0, 0.3689) lies below 1.
    let r = stats::observed_to_expected(0, 10.0).unwrap();
    assert!(close(r.high, 0.36889, 1e-4));
    assert_eq!(stats::flag(&r, 5.0), Some(OeFlag::Lower));
    // A small provider: 3 against 0.5 is O/E 6 and its interval excludes 1, but too little is
    // expected to flag it.
    let r = stats::observed_to_expected(3, 0.5).unwrap();
    assert!(r.low > 1.0);
    assert_eq!(stats::flag(&r, 5.0), None);
    assert_eq!(stats::flag(&r, 0.0), Some(OeFlag::Higher));
    assert!(stats::observed_to_expected(2, 0.0).is_none());
}

#[test]
fn config_is_validated() {
    assert!(super::validate(&ProviderKpiConfig::default()).is_empty());
    let bad = ProviderKpiConfig {
        enabled: true,
        windows: vec![0, 4000],
        min_expected: -1.0,
    };
    assert_eq!(super::validate(&bad).len(), 3);
    let empty = ProviderKpiConfig {
        windows: vec![],
        ..Default::default()
    };
    assert_eq!(super::validate(&empty).len(), 1);
    let k = ProviderKpis::new(&ProviderKpiConfig {
        windows: vec![90, 30, 90],
        ..Default::default()
    });
    assert_eq!(k.windows, vec![30, 90]);
}

fn engine() -> Engine {
    let config = CoreConfig {
        partitions: 1,
        ..CoreConfig::default()
    };
    Engine::new(config, RefData::shared())
}

fn provider_facts(rk: &[Rekeyed]) -> Vec<ProviderFact> {
    rk.iter()
        .filter_map(|r| match r {
            Rekeyed::Provider(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

fn route(p: &mut Partition, e: &Engine, rekeyed: &mut Vec<Rekeyed>, out: &mut Vec<OutputEvent>) {
    while !rekeyed.is_empty() {
        for r in std::mem::take(rekeyed) {
            p.apply_rekeyed(e, &r, out);
            p.take_rekeyed(rekeyed);
        }
    }
}

fn kpis(out: &[OutputEvent]) -> Vec<ProviderKpi> {
    out.iter()
        .filter_map(|o| match o {
            OutputEvent::ProviderKpi(k) => Some(k.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn encounters_index_stays_and_late_costs_reach_the_provider_and_department() {
    let e = engine();
    let mut p = Partition::open(0, PartitionStore::hot_only(0), &e).unwrap();
    let (mut out, mut rk) = (Vec::new(), Vec::new());
    for ev in [
        stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023"),
        stay("M1", "E2", "F1", "2024-01-20", "2024-01-24", "01", "J189"),
    ] {
        p.apply(&e, &InputEvent::Encounter(ev), "enc", 0, &mut out, &mut rk);
    }
    let sent = provider_facts(&rk);
    // Two encounters, each on MEDICINE and on provider 1234567890.
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert!(sent.iter().all(|f| f.sign == 1 && f.counts.encounters == 1));
    assert!(sent.iter().any(|f| f.key == "department:MEDICINE"));
    assert!(sent.iter().any(|f| f.key == "provider:1234567890"));
    let e1 = sent
        .iter()
        .find(|f| f.day == crate::model::day_of(t("2024-01-05")));
    assert_eq!(e1.unwrap().counts.inpatient_los_days, 4);
    route(&mut p, &e, &mut rk, &mut out);
    // E1 matures (window closed): an index stay fact on each key, on its maturity day.
    p.advance_to(&e, t("2024-02-06"), &mut out, &mut rk);
    let sent = provider_facts(&rk);
    let idx: Vec<_> = sent.iter().filter(|f| f.counts.index_stays == 1).collect();
    assert_eq!(idx.len(), 2, "{sent:?}");
    assert!(idx
        .iter()
        .all(|f| f.counts.readmissions == 1 && f.sign == 1));
    assert_eq!(idx[0].day, crate::model::day_of(t("2024-01-05")) + 31);
    route(&mut p, &e, &mut rk, &mut out);
    // The index stay's claim is paid later: its encounter facts are corrected (-1 then +1).
    let cost = EncounterCost {
        member_id: "M1".into(),
        encounter_id: "E1".into(),
        claim_id: "C1".into(),
        paid_cents: 500_000,
        event_time: t("2024-02-10"),
    };
    p.apply_rekeyed(&e, &Rekeyed::Cost(cost), &mut out);
    p.take_rekeyed(&mut rk);
    let sent = provider_facts(&rk);
    let dept: Vec<_> = sent
        .iter()
        .filter(|f| f.key == "department:MEDICINE")
        .collect();
    // Old encounter + old index fact taken back, new ones sent.
    assert_eq!(
        dept.iter().map(|f| f.sign).collect::<Vec<_>>(),
        vec![-1, -1, 1, 1]
    );
    assert!(dept
        .iter()
        .any(|f| f.sign == 1 && f.counts.paid_cents == 500_000));
    route(&mut p, &e, &mut rk, &mut out);
    p.close_providers(&e, &mut out);
    let last = kpis(&out)
        .into_iter()
        .rfind(|k| k.key == "department:MEDICINE")
        .unwrap();
    assert_eq!(last.level, "DEPARTMENT");
    assert_eq!(
        last.output_id,
        format!("department:MEDICINE:{}", last.version)
    );
    let w90 = &last.windows[1];
    assert_eq!(w90.days, 90);
    assert_eq!((w90.encounters, w90.inpatient_stays), (2, 2));
    assert_eq!(w90.average_los_days, 4.0);
    assert_eq!(w90.cost_per_encounter_cents, Some(500_000));
    assert_eq!((w90.index_stays, w90.readmissions), (1, 1));
    assert!(w90.observed_to_expected.is_some());
    assert_eq!(w90.flag, None, "too little expected");
    // The 30-day window ending 2024-02-10 holds the index stay (matured 02-05) but not the
    // encounters (discharged in January before 01-12).
    let w30 = &last.windows[0];
    assert_eq!((w30.index_stays, w30.encounters), (1, 1));
}

#[test]
fn a_cancelled_encounter_is_taken_back() {
    let e = engine();
    let mut p = Partition::open(0, PartitionStore::hot_only(0), &e).unwrap();
    let (mut out, mut rk) = (Vec::new(), Vec::new());
    let a = stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023");
    p.apply(
        &e,
        &InputEvent::Encounter(a.clone()),
        "enc",
        0,
        &mut out,
        &mut rk,
    );
    rk.clear();
    let mut cancel = a;
    cancel.event_type = EncounterEventType::Cancel;
    cancel.event_id = "enc-E1-cancel".into();
    cancel.event_time += DAY_MS;
    p.apply(
        &e,
        &InputEvent::Encounter(cancel),
        "enc",
        1,
        &mut out,
        &mut rk,
    );
    let sent = provider_facts(&rk);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent
        .iter()
        .all(|f| f.sign == -1 && f.counts.encounters == 1));
}

#[test]
fn an_older_record_does_not_change_the_attending_provider() {
    let e = engine();
    let mut p = Partition::open(0, PartitionStore::hot_only(0), &e).unwrap();
    let (mut out, mut rk) = (Vec::new(), Vec::new());
    let mut late = stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023");
    late.attending_provider_id = Some("NEW".into());
    let mut early = late.clone();
    early.event_id = "enc-E1-upd".into();
    early.event_type = EncounterEventType::Update;
    early.event_time -= DAY_MS;
    early.attending_provider_id = Some("OLD".into());
    p.apply(
        &e,
        &InputEvent::Encounter(late),
        "enc",
        0,
        &mut out,
        &mut rk,
    );
    p.apply(
        &e,
        &InputEvent::Encounter(early),
        "enc",
        1,
        &mut out,
        &mut rk,
    );
    let keys: Vec<String> = provider_facts(&rk).into_iter().map(|f| f.key).collect();
    assert!(keys.contains(&"provider:NEW".to_owned()));
    assert!(!keys.contains(&"provider:OLD".to_owned()), "{keys:?}");
}

fn fact(key: &str, sign: i32, event_day: i32, day: i32, counts: ProviderCounts) -> ProviderFact {
    ProviderFact {
        key: key.into(),
        sign,
        event_time: i64::from(event_day) * DAY_MS + 3_600_000,
        day,
        counts,
        source_partition: -1,
    }
}

/// Applies `facts` in order to a fresh table and returns the final windows of every key.
fn final_state(cfg: &ProviderKpis, facts: &[ProviderFact]) -> Vec<(String, String)> {
    let mut table: Table<ProviderEntry> = Table::new("provider_kpis", b'd');
    let mut out = Vec::new();
    for f in facts {
        aggregate::apply(&mut table, cfg, f, 1, &mut out);
    }
    aggregate::flush(&mut table, cfg, &mut out);
    let mut last = std::collections::BTreeMap::new();
    for k in kpis(&out) {
        // The figures, not the dates: a key whose sums did not change at the last flush keeps
        // the record of the (order-dependent) day they last changed.
        let mut windows = k.windows.clone();
        for w in &mut windows {
            (w.first_day, w.last_day) = (0, 0);
        }
        last.insert(k.key.clone(), serde_json::to_string(&windows).unwrap());
    }
    last.into_iter().collect()
}

#[test]
fn the_aggregate_does_not_depend_on_the_order_of_facts() {
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    let cfg = ProviderKpis::new(&ProviderKpiConfig::default());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut facts = Vec::new();
    let keys = ["department:A", "department:B", "provider:P1", "provider:P2"];
    for i in 0..400 {
        let key = keys[i % keys.len()];
        let day = 19_700 + (i as i32 * 7) % 150;
        let c = ProviderCounts {
            encounters: 1,
            inpatient_stays: (i % 2) as i64,
            inpatient_los_days: (i % 5) as i64,
            index_stays: (i % 3 == 0) as i64,
            readmissions: (i % 9 == 0) as i64,
            expected_micros: 150_000 + (i as i64 % 7) * 10_000,
            adjudicated: (i % 4 != 0) as i64,
            denied: (i % 8 == 1) as i64,
            first_adjudications: (i % 4 == 1) as i64,
            first_pass_paid: (i % 12 == 1) as i64,
            ..Default::default()
        };
        facts.push(fact(key, 1, day + 2, day, c));
        if i % 5 == 0 {
            // A correction: taken back, re-sent with a paid amount.
            facts.push(fact(key, -1, day + 20, day, c));
            let mut paid = c;
            paid.paid_encounters = 1;
            paid.paid_cents = 10_000 + i as i64;
            facts.push(fact(key, 1, day + 20, day, paid));
        }
    }
    let base = final_state(&cfg, &facts);
    assert_eq!(base.len(), keys.len());
    for _ in 0..5 {
        facts.shuffle(&mut rng);
        assert_eq!(final_state(&cfg, &facts), base);
    }
    facts.reverse();
    assert_eq!(final_state(&cfg, &facts), base);
    // What the runtime sends: each batch's facts summed per key, day and source.
    for _ in 0..5 {
        facts.shuffle(&mut rng);
        let mut sent = Vec::new();
        let mut rest = facts.as_slice();
        while !rest.is_empty() {
            let n = rng.gen_range(1..=rest.len().min(60));
            let batch = super::facts::coalesce(&rest[..n]);
            assert!(batch.len() <= n);
            assert!(batch.iter().all(|f| f.sign == 1));
            sent.extend(batch);
            rest = &rest[n..];
        }
        assert!(sent.len() < facts.len());
        assert_eq!(final_state(&cfg, &sent), base);
    }
}

#[test]
fn facts_and_records_fit_their_avro_schemas() {
    use crate::codec::{AvroCodec, SchemaKind};
    let codec = AvroCodec::new();
    let f = fact(
        "provider:NPI-1",
        -1,
        19_800,
        19_790,
        ProviderCounts {
            encounters: 1,
            expected_micros: 123_456,
            ..Default::default()
        },
    );
    let mut buf = Vec::new();
    codec
        .encode_framed(SchemaKind::ProviderFact, &f, &mut buf)
        .unwrap();
    let back: ProviderFact = codec.decode_framed(SchemaKind::ProviderFact, &buf).unwrap();
    assert_eq!(back, f);
    let mut buckets = std::collections::BTreeMap::new();
    buckets.insert(19_790, f.counts);
    let k = aggregate::record(
        "department:ONCOLOGY",
        3,
        t("2024-03-01"),
        vec![
            aggregate::window(&buckets, 30, 19_800, 5.0),
            aggregate::window(&std::collections::BTreeMap::new(), 90, 19_800, 5.0),
        ],
    );
    buf.clear();
    codec
        .encode_framed(SchemaKind::ProviderKpi, &k, &mut buf)
        .unwrap();
    let back: ProviderKpi = codec.decode_framed(SchemaKind::ProviderKpi, &buf).unwrap();
    assert_eq!(back, k);
    assert_eq!(k.name, "ONCOLOGY");
}

#[test]
fn adjudications_count_on_the_billing_provider_and_department() {
    use crate::model::{FactKind, FactOutcome, PayerCategory, PayerFact};
    let payer = |kind, outcome, first, fpp| {
        Rekeyed::Payer(PayerFact {
            payer_id: "P1".into(),
            payer_category: PayerCategory::Commercial,
            event_time: t("2024-03-05") + 5_000,
            kind,
            outcome,
            first_adjudication: first,
            first_pass_paid: fpp,
            paid_cents: 0,
            denied_cents: 0,
            denial_category: None,
            denied_by_category: vec![],
            days_to_payment: None,
            source_partition: 0,
        })
    };
    let facts = [
        payer(FactKind::Submitted, None, false, false),
        payer(
            FactKind::Adjudicated,
            Some(FactOutcome::Denied),
            true,
            false,
        ),
        payer(FactKind::Adjudicated, Some(FactOutcome::Paid), false, false),
    ];
    let mut out = Vec::new();
    super::facts::claim_facts("NPI-9", "ONCOLOGY", &facts, &mut out);
    let got = provider_facts(&out);
    assert_eq!(got.len(), 4, "two adjudications on two keys");
    let on = |key: &str| -> ProviderCounts {
        let mut c = ProviderCounts::default();
        for f in got.iter().filter(|f| f.key == key) {
            assert_eq!(f.day, crate::model::day_of(t("2024-03-05")));
            c.add(&f.counts, i64::from(f.sign));
        }
        c
    };
    for key in ["provider:NPI-9", "department:ONCOLOGY"] {
        let c = on(key);
        assert_eq!(
            (
                c.adjudicated,
                c.denied,
                c.first_adjudications,
                c.first_pass_paid
            ),
            (2, 1, 1, 0),
            "{key}"
        );
    }
}

#[test]
fn a_stay_no_longer_followed_keeps_its_index_facts() {
    use super::facts::{desired, EncounterTrack};
    use crate::readmit::{Detector, MemberState};
    let e = engine();
    let det = Detector::new(RefData::shared(), &e.config);
    let mut member = MemberState::default();
    let s = stay("M1", "E1", "F1", "2024-01-01", "2024-01-05", "01", "I5023");
    det.apply(&mut member, "M1", &s, &mut Vec::new());
    let frozen = ProviderFact {
        key: "department:MEDICINE".into(),
        sign: 1,
        event_time: 0,
        day: crate::model::day_of(t("2024-01-05")) + 31,
        counts: ProviderCounts {
            index_stays: 1,
            readmissions: 1,
            expected_micros: 200_000,
            ..Default::default()
        },
        source_partition: -1,
    };
    let track = EncounterTrack {
        encounter_id: "E1".into(),
        attending: None,
        sent: vec![frozen.clone()],
    };
    // No tracked stay (the population flow froze it): the index fact stays as sent, next to
    // the encounter fact recomputed from the member's state.
    let now = desired(&member.stays[0], &track, &member, None, 30);
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(now.contains(&frozen));
    // Tracked with no outcome (no longer an index stay): the index fact goes.
    let tracked = crate::population::TrackedStays {
        stays: vec![crate::population::TrackedStay {
            encounter_id: "E1".into(),
            discharge_date: crate::model::day_of(t("2024-01-05")),
            probability_micros: 200_000,
            tier: crate::model::RiskTier::Low,
            sent: None,
        }],
    };
    let now = desired(&member.stays[0], &track, &member, Some(&tracked), 30);
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].counts.index_stays, 0);
}

#[test]
fn a_slow_source_holds_the_flow_back_so_its_facts_are_neither_late_nor_dropped() {
    // Two source partitions; partition 0 runs 200 days ahead of partition 1 (a backlog in
    // Kafka). With the flow's day taken from the latest fact alone, partition 1's fact for day
    // 19_801 would be older than every window and dropped.
    let cfg = ProviderKpis::new(&ProviderKpiConfig::default());
    let one = ProviderCounts {
        encounters: 1,
        ..Default::default()
    };
    let from = |source: i32, day: i32| ProviderFact {
        source_partition: source,
        ..fact("department:A", 1, day, day, one)
    };
    let mut table: Table<ProviderEntry> = Table::new("provider_kpis", b'd');
    let mut out = Vec::new();
    for f in [from(0, 19_800), from(0, 20_000), from(1, 19_801)] {
        aggregate::apply(&mut table, &cfg, &f, 2, &mut out);
    }
    assert!(
        kpis(&out).is_empty(),
        "nothing is emitted before the slow source's day is complete"
    );
    aggregate::close(&mut table, &cfg, &mut out);
    let emitted = kpis(&out);
    let first = &emitted[0];
    assert_eq!(first.event_time, crate::model::start_of_day(19_802));
    assert_eq!(
        (first.windows[0].last_day, first.windows[0].encounters),
        (19_801, 2),
        "both sources' facts of days up to the watermark are in the first emission"
    );
    let last = emitted.last().unwrap();
    assert_eq!(last.windows[1].last_day, 20_000);
    assert_eq!(
        last.windows[1].encounters, 1,
        "the end of the input closes the flow"
    );

    // A source that was never heard from keeps the flow from moving at all.
    let mut table: Table<ProviderEntry> = Table::new("provider_kpis", b'd');
    let mut out = Vec::new();
    for f in [from(0, 19_800), from(0, 20_000)] {
        aggregate::apply(&mut table, &cfg, &f, 2, &mut out);
    }
    assert!(kpis(&out).is_empty());
}
