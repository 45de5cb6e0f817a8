//! Provider and department KPIs on a generated population: the department totals equal the
//! population totals (encounters from a brute-force pass over the generated records, index stays
//! and readmissions from `claimwatch.readmission-summary`), claim adjudications equal a batch
//! count from the final lifecycles, and the generator's effects show (or, where it has none, do
//! not show) in the risk-adjusted comparison and the denial rates.

#[path = "support/fixture_dir.rs"]
mod fixture_dir;
#[path = "support/replayed.rs"]
mod replayed;
use replayed::{lines, Fixture};

use std::collections::BTreeMap;
use std::path::Path;

use claimwatch::config::{CoreConfig, ProviderKpiConfig};
use claimwatch::generate::Generated;
use claimwatch::model::{
    ClaimLifecycleUpdate, ClaimStatus, EncounterEventType, ProviderKpi, ProviderWindow,
    ReadmissionSummary,
};

/// Longer than the generated period: the whole history in one window.
const ALL_TIME: u32 = 1000;

fn latest<T: serde::de::DeserializeOwned>(
    path: &Path,
    key: impl Fn(&T) -> String,
) -> BTreeMap<String, T> {
    lines::<T>(path).into_iter().map(|v| (key(&v), v)).collect()
}

fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        Fixture::replay(
            3000,
            11,
            CoreConfig {
                partitions: 4,
                provider_kpis: ProviderKpiConfig {
                    windows: vec![30, 90, ALL_TIME],
                    ..ProviderKpiConfig::default()
                },
                ..CoreConfig::default()
            },
        )
    })
}

fn kpis(f: &Fixture) -> BTreeMap<String, ProviderKpi> {
    latest::<ProviderKpi>(
        &f.dir.path().join("out/claimwatch.provider-kpis.jsonl"),
        |k| k.key.clone(),
    )
}

fn all_time(k: &ProviderKpi) -> &ProviderWindow {
    k.windows
        .iter()
        .find(|w| w.days == ALL_TIME as i32)
        .unwrap()
}

fn departments(k: &BTreeMap<String, ProviderKpi>) -> Vec<&ProviderKpi> {
    k.values().filter(|k| k.level == "DEPARTMENT").collect()
}

/// Completed encounters per department from the generated records: the winning record of each
/// encounter (latest event time, then record kind, then record id, as the detector decides) is
/// not a cancel and has a discharge date.
fn batch_encounters(g: &Generated) -> BTreeMap<String, i64> {
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
        let entry = winner.entry(e.encounter_id.clone()).or_insert((k, e));
        if k > entry.0 {
            *entry = (k, e);
        }
    }
    let mut per_dept = BTreeMap::new();
    for (_, e) in winner.values() {
        if e.event_type != EncounterEventType::Cancel && e.discharge_date.is_some() {
            *per_dept.entry(e.department.clone()).or_insert(0) += 1;
        }
    }
    per_dept
}

#[test]
fn department_totals_equal_the_population_totals() {
    let f = fixture();
    let k = kpis(f);
    let depts = departments(&k);
    assert!(depts.len() >= 4, "{:?}", k.keys().collect::<Vec<_>>());
    let summary = latest::<ReadmissionSummary>(
        &f.dir
            .path()
            .join("out/claimwatch.readmission-summary.jsonl"),
        |s| s.group.clone(),
    );
    let all = &summary["all"];
    let sum = |field: fn(&ProviderWindow) -> i64| -> i64 {
        depts.iter().map(|k| field(all_time(k))).sum()
    };
    assert!(all.index_stays > 200, "{}", all.index_stays);
    assert_eq!(sum(|w| w.index_stays), all.index_stays);
    assert_eq!(sum(|w| w.readmissions), all.readmissions);
    let expected: f64 = depts
        .iter()
        .map(|k| all_time(k).expected_readmissions)
        .sum();
    assert!(
        (expected - all.expected_readmissions).abs() < 0.001 * depts.len() as f64,
        "{expected} vs {}",
        all.expected_readmissions
    );
    // Encounters, department by department, against the brute force.
    let batch = batch_encounters(&f.g);
    let streamed: BTreeMap<String, i64> = depts
        .iter()
        .map(|k| (k.name.clone(), all_time(k).encounters))
        .filter(|(_, n)| *n != 0)
        .collect();
    assert_eq!(streamed, batch);
    // Every encounter and index stay also counts on its attending provider (all generated
    // encounters have one).
    let providers: Vec<&ProviderKpi> = k.values().filter(|k| k.level == "PROVIDER").collect();
    let by_provider: i64 = providers.iter().map(|k| all_time(k).encounters).sum();
    assert_eq!(by_provider, batch.values().sum::<i64>());
    let idx_by_provider: i64 = providers.iter().map(|k| all_time(k).index_stays).sum();
    assert_eq!(idx_by_provider, all.index_stays);
}

#[test]
fn claim_adjudications_equal_the_batch_count_from_the_lifecycles() {
    let f = fixture();
    let k = kpis(f);
    // Brute force: the final lifecycle of every claim; a claim adjudicated (paid, partially paid,
    // denied) at the end counts one first adjudication on its department (a front-door rejection
    // has `first_pass_paid` false but no adjudication). Claims whose status went back and forth
    // are re-adjudications in the stream, so the stream has at least as many denials as the
    // batch has denied claims.
    let lifecycles = latest::<ClaimLifecycleUpdate>(
        &f.dir.path().join("out/claimwatch.claim-lifecycle.jsonl"),
        |u| u.claim_id.clone(),
    );
    let mut first_pass: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut denied_claims: BTreeMap<String, i64> = BTreeMap::new();
    for u in lifecycles.values() {
        let Some(dept) = &u.department else { continue };
        let adjudicated = matches!(
            u.status,
            ClaimStatus::Paid | ClaimStatus::PartiallyPaid | ClaimStatus::Denied
        );
        if let (true, Some(paid)) = (adjudicated, u.first_pass_paid) {
            let e = first_pass.entry(dept.clone()).or_default();
            e.0 += 1;
            e.1 += i64::from(paid);
        }
        if u.status == ClaimStatus::Denied {
            *denied_claims.entry(dept.clone()).or_default() += 1;
        }
    }
    for d in departments(&k) {
        let w = all_time(d);
        let (firsts, paid) = first_pass.get(&d.name).copied().unwrap_or_default();
        assert_eq!(
            (w.first_adjudications, w.first_pass_paid),
            (firsts, paid),
            "{}",
            d.name
        );
        let denied = denied_claims.get(&d.name).copied().unwrap_or_default();
        assert!(w.denied >= denied, "{}: {} < {denied}", d.name, w.denied);
        assert!(w.adjudicated >= w.first_adjudications);
    }
}

#[test]
fn generator_effects_show_in_the_provider_figures() {
    let f = fixture();
    let k = kpis(f);
    let depts = departments(&k);
    // Denials: the generator adds +0.3 to the denial logit of ONCOLOGY claims
    // (billing::claim_model::DENY_ONCOLOGY); its denial rate is above the other departments'.
    let onc = all_time(&k["department:ONCOLOGY"]);
    let (mut denied, mut adjudicated) = (0, 0);
    for d in &depts {
        if d.name != "ONCOLOGY" {
            denied += all_time(d).denied;
            adjudicated += all_time(d).adjudicated;
        }
    }
    let rest = denied as f64 / adjudicated as f64;
    eprintln!(
        "ONCOLOGY denial rate {:.4} ({} adjudications), others {rest:.4} ({adjudicated})",
        onc.denial_rate, onc.adjudicated
    );
    // A small department in the generated market (oncology inpatient stays only).
    assert!(onc.adjudicated >= 20);
    assert!(onc.denial_rate > rest, "{} <= {rest}", onc.denial_rate);
    // Readmissions: the generator draws them from the member's risk alone, with no provider or
    // department effect, and the scorer's calibrated probabilities are the expected counts. So the
    // departments' O/E scatter around 1 and their 95 % intervals contain 1 (at most one of them
    // outside by chance).
    let mut flagged = Vec::new();
    for d in &depts {
        let w = all_time(d);
        eprintln!(
            "{:<14} index {:>5} obs {:>4} exp {:>8.2} O/E {:?} CI [{:?}, {:?}] flag {:?}",
            d.name,
            w.index_stays,
            w.readmissions,
            w.expected_readmissions,
            w.observed_to_expected,
            w.oe_ci_low,
            w.oe_ci_high,
            w.flag
        );
        if w.flag.is_some() {
            flagged.push(d.name.clone());
        }
        if let (Some(lo), Some(hi), Some(r)) = (w.oe_ci_low, w.oe_ci_high, w.observed_to_expected) {
            assert!(lo <= r && r <= hi);
        }
    }
    assert!(flagged.len() <= 1, "{flagged:?}");
}
