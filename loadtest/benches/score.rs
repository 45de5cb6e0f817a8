//! Scoring cost per event, including driver computation (issue 6: <= 2 us per score on one core).
//!
//! - `score/denial_model`: one submitted claim scored with the shipped denial model: feature
//!   extraction (rolling history already summed), dot product, tier, top drivers in words.
//! - `score/readmission_model`: one discharge scored with the shipped readmission model: feature
//!   extraction from the member's stays (Charlson, prior utilisation, LACE, HOSPITAL), score,
//!   drivers, alert.
//! - `score/*_model_only`: the model's dot product and contributions alone.
//! - `score/denial_drift_record`: what monitoring adds to each score of a model that carries a
//!   drift reference: its features counted into the reference bins of the day (`score::monitor`).
//! - `score/denial_with_drift`, `score/readmission_with_drift`: what the service pays per score
//!   with the shipped models (which carry a drift reference): the `*_model` work (for a claim
//!   also its documentation history key) plus the drift record of the features.
//!
//! Run: `cargo bench --bench score` (figures in BENCHMARKS.md).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};

use claimwatch::config::CoreConfig;
use claimwatch::model::fixtures::{claim, stay};
use claimwatch::model::InputEvent;
use claimwatch::readmit::MemberState;
use claimwatch::refdata::RefData;
use claimwatch::score::features::{
    code_family, denial_features, readmit_features, service_key, DenialHistory, WindowSums,
};
use claimwatch::score::{Models, Scorer};

fn bench(c: &mut Criterion) {
    let refdata = RefData::shared();
    let cfg = CoreConfig::default();
    let models = Models::embedded();
    assert!(
        models.denial.is_some() && models.readmission.is_some(),
        "shipped models load"
    );
    let scorer = Scorer::new(refdata.clone(), &cfg, models.clone());

    let cl = claim("C1", "2024-03-01");
    let sums = WindowSums {
        decided: 120.0,
        denied: 18.0,
        rejected: 4.0,
        submitted: 300.0,
        submitted_with_auth: 40.0,
        submitted_with_attachment: 120.0,
        by_category: [0.0, 0.0, 3.0, 6.0, 4.0, 2.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0],
    };
    let h = DenialHistory {
        payer: sums,
        provider: sums,
        family: sums,
        all: sums,
        service: sums,
    };
    let mut g = c.benchmark_group("score");
    g.bench_function("denial_model", |b| {
        b.iter(|| {
            let fam = code_family(black_box(&cl));
            black_box(service_key(&cl, &fam));
            let f = denial_features(&cl, &fam, &h, 20.0);
            black_box(scorer.score_denial(&cl, &f, &h))
        })
    });
    let f = denial_features(&cl, &code_family(&cl), &h, 20.0);
    let dm = models.denial.clone().unwrap();
    g.bench_function("denial_model_only", |b| {
        b.iter(|| black_box(dm.score(black_box(&f))))
    });
    // The shipped model with a reference like `claimwatch train` writes: nine edges per numeric
    // feature (normal deciles around the training mean), every category level plus other.
    let mut referenced = claimwatch::score::LogisticModel::clone(&dm);
    let z = [-1.28, -0.84, -0.52, -0.25, 0.0, 0.25, 0.52, 0.84, 1.28];
    referenced.reference =
        referenced
            .numeric
            .iter()
            .map(|n| claimwatch::score::model::FeatureReference {
                name: n.name.clone(),
                edges: z.iter().map(|k| n.mean + k * n.std).collect(),
                shares: vec![0.1; 10],
            })
            .chain(referenced.categorical.iter().map(|c| {
                claimwatch::score::model::FeatureReference {
                    name: c.name.clone(),
                    edges: Vec::new(),
                    shares: vec![1.0 / (c.levels.len() + 1) as f64; c.levels.len() + 1],
                }
            }))
            .collect();
    let referenced = std::sync::Arc::new(referenced);
    let mut monitor = claimwatch::score::monitor::Monitor::new(5_000, 7);
    g.bench_function("denial_drift_record", |b| {
        b.iter(|| monitor.scored(0, Some(&referenced), black_box(&f), 19_800))
    });

    // A member with a year of history: 3 prior stays and 4 ED visits.
    let engine = claimwatch::core::Engine::new(cfg.clone(), refdata.clone());
    let mut st = MemberState::default();
    let mut history = vec![
        stay("M1", "E1", "F1", "2024-01-03", "2024-01-07", "01", "I5023"),
        stay("M1", "E2", "F1", "2024-03-10", "2024-03-12", "01", "J441"),
        stay("M1", "E3", "F1", "2024-06-01", "2024-06-04", "06", "I214"),
    ];
    for (i, day) in ["2024-02-01", "2024-04-02", "2024-05-05", "2024-07-07"]
        .iter()
        .enumerate()
    {
        let mut ed = stay("M1", &format!("ED{i}"), "F1", day, day, "01", "R079");
        ed.encounter_class = claimwatch::model::EncounterClass::Emergency;
        history.push(ed);
    }
    let index = stay("M1", "E9", "F1", "2024-08-01", "2024-08-08", "03", "I5023");
    history.push(index.clone());
    for e in &history {
        engine.detector.apply(&mut st, "M1", e, &mut Vec::new());
    }
    let idx = st
        .stays
        .iter()
        .find(|s| s.encounter_id == "E9")
        .unwrap()
        .clone();
    g.bench_function("readmission_model", |b| {
        b.iter(|| {
            let x = readmit_features(&refdata, black_box(&idx), &st.stays, Some("MEDICARE"));
            black_box(scorer.score_readmission("M1", &idx, index.event_time, &x))
        })
    });
    let x = readmit_features(&refdata, &idx, &st.stays, Some("MEDICARE"));
    let rm = models.readmission.clone().unwrap();
    g.bench_function("readmission_model_only", |b| {
        b.iter(|| black_box(rm.score(black_box(&x.features))))
    });
    let mut mon = claimwatch::score::monitor::Monitor::new(5_000, 7);
    g.bench_function("denial_with_drift", |b| {
        b.iter(|| {
            let fam = code_family(black_box(&cl));
            black_box(service_key(&cl, &fam));
            let f = denial_features(&cl, &fam, &h, 20.0);
            mon.scored(0, models.denial.as_ref(), &f, 19_800);
            black_box(scorer.score_denial(&cl, &f, &h))
        })
    });
    g.bench_function("readmission_with_drift", |b| {
        b.iter(|| {
            let x = readmit_features(&refdata, black_box(&idx), &st.stays, Some("MEDICARE"));
            mon.scored(1, models.readmission.as_ref(), &x.features, 19_936);
            black_box(scorer.score_readmission("M1", &idx, index.event_time, &x))
        })
    });
    g.finish();
    let _ = InputEvent::Claim(cl);
}

criterion_group!(benches, bench);
criterion_main!(benches);
