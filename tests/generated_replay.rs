//! A generated population replayed through the core agrees with the generator's ground truth, and
//! the final answers do not depend on how keys are spread over partitions.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use claimwatch::codec::Format;
use claimwatch::config::CoreConfig;
use claimwatch::generate::{generate, write::write_population, GenerateConfig, Generated};
use claimwatch::model::{ClaimLifecycleUpdate, ClaimStatus, ReadmissionAction, ReadmissionEvent};
use claimwatch::refdata::CarcCategory;
use claimwatch::replay::{run, ReplayOptions};

#[path = "support/fixture_dir.rs"]
mod fixture_dir;

fn replay(input: &Path, out: &Path, partitions: u32) {
    let config = CoreConfig {
        partitions,
        ..CoreConfig::default()
    };
    run(&ReplayOptions {
        input: input.into(),
        out: out.into(),
        state: None,
        config,
        stop_after: None,
        close_open_windows: true,
    })
    .unwrap();
}

fn lines<T: serde::de::DeserializeOwned>(path: &Path) -> Vec<T> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Unplanned readmissions standing at the end: index encounter -> readmission encounter.
fn standing(out: &Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for e in lines::<ReadmissionEvent>(&out.join("claimwatch.readmissions.jsonl")) {
        if e.action == ReadmissionAction::Retracted || e.planned {
            m.remove(&e.index_encounter_id);
        } else {
            m.insert(e.index_encounter_id, e.readmit_encounter_id);
        }
    }
    m
}

struct Lifecycle {
    last: BTreeMap<String, ClaimLifecycleUpdate>,
    /// Each claim's first adjudication: its status and CARCs.
    first_adjudication: BTreeMap<String, (ClaimStatus, Vec<String>)>,
    ever_rejected: BTreeSet<String>,
}

fn lifecycle(out: &Path) -> Lifecycle {
    let mut l = Lifecycle {
        last: BTreeMap::new(),
        first_adjudication: BTreeMap::new(),
        ever_rejected: BTreeSet::new(),
    };
    for u in lines::<ClaimLifecycleUpdate>(&out.join("claimwatch.claim-lifecycle.jsonl")) {
        if u.remit_count > 0 && !l.first_adjudication.contains_key(&u.claim_id) {
            l.first_adjudication
                .insert(u.claim_id.clone(), (u.status, u.carc_codes.clone()));
        }
        if u.status == ClaimStatus::Rejected {
            l.ever_rejected.insert(u.claim_id.clone());
        }
        l.last.insert(u.claim_id.clone(), u);
    }
    l
}

/// One generated population and its 4-partition replay, shared by the tests of this file.
struct Fixture {
    dir: tempfile::TempDir,
    g: Generated,
}

impl Fixture {
    fn input(&self) -> std::path::PathBuf {
        self.dir.path().join("in")
    }
    fn out(&self) -> std::path::PathBuf {
        self.dir.path().join("out")
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        // A static is never dropped: see `fixture_dir`.
        let dir = fixture_dir::tempdir();
        let g = generate(&GenerateConfig {
            members: 3000,
            seed: 7,
            ..GenerateConfig::default()
        });
        let f = Fixture { dir, g };
        write_population(&f.g, &f.input(), Format::Json).unwrap();
        replay(&f.input(), &f.out(), 4);
        f
    })
}

#[test]
fn detected_readmissions_equal_the_ground_truth() {
    let f = fixture();
    let (g, out) = (&f.g, f.out());
    let detected: BTreeSet<String> = standing(&out).into_keys().collect();
    let truth: BTreeSet<String> = g
        .truth
        .readmissions
        .iter()
        .filter(|t| t.readmitted)
        .map(|t| t.encounter_id.clone())
        .collect();
    assert!(
        truth.len() > 40,
        "population too small to mean anything: {}",
        truth.len()
    );
    let missed: Vec<_> = truth.difference(&detected).collect();
    let extra: Vec<_> = detected.difference(&truth).collect();
    assert!(
        missed.is_empty() && extra.is_empty(),
        "missed {missed:?}\nextra {extra:?}"
    );
}

#[test]
fn claim_outcomes_agree_with_the_ground_truth() {
    let f = fixture();
    let (g, out) = (&f.g, f.out());
    let l = lifecycle(&out);
    let (mut checked_denied, mut checked_paid) = (0, 0);
    for t in &g.truth.denials {
        if t.rejected {
            assert!(
                l.ever_rejected.contains(&t.claim_id),
                "{} was rejected at the front door",
                t.claim_id
            );
        }
        let Some((first, first_carcs)) = l.first_adjudication.get(&t.claim_id) else {
            continue;
        };
        if t.denied {
            assert_eq!(
                *first,
                ClaimStatus::Denied,
                "{} was denied ({:?})",
                t.claim_id,
                t.carc
            );
            // The first adjudication carries the denial's CARC (a later appeal's adjudication
            // supersedes it in the claim's latest state).
            assert!(
                first_carcs
                    .iter()
                    .any(|c| c.ends_with(&format!("-{}", t.carc.as_deref().unwrap()))),
                "{} carries its CARC",
                t.claim_id
            );
            checked_denied += 1;
        } else if !t.rejected {
            assert_ne!(*first, ClaimStatus::Denied, "{} was not denied", t.claim_id);
            checked_paid += 1;
        }
    }
    assert!(
        checked_denied > 100 && checked_paid > 1000,
        "{checked_denied} denied, {checked_paid} paid checked"
    );
    // An appeal's adjudication supersedes the first: an appeal paid in full is PAID, and no
    // claim's latest state carries the denials of more than one adjudication.
    let (mut appeals_paid, mut appeals_partial) = (0, 0);
    for u in l.last.values() {
        let denied: i64 = u
            .adjustments_by_category
            .iter()
            .filter(|a| CarcCategory::from_name(&a.code).is_some_and(CarcCategory::is_denial))
            .map(|a| a.amount_cents)
            .sum();
        assert!(
            denied <= u.billed_cents,
            "{}: denials of {denied} cents on {} billed",
            u.claim_id,
            u.billed_cents
        );
        let appealed = u.submission_count > 1
            && l.first_adjudication
                .get(&u.claim_id)
                .is_some_and(|(s, _)| *s == ClaimStatus::Denied);
        if appealed {
            appeals_paid += usize::from(u.status == ClaimStatus::Paid);
            appeals_partial += usize::from(u.status == ClaimStatus::PartiallyPaid);
        }
    }
    assert!(
        appeals_paid > 100 && appeals_partial * 10 < appeals_paid,
        "appeals after a denial: {appeals_paid} paid, {appeals_partial} partially paid"
    );
}

/// 1 partition against the fixture's 4.
#[test]
fn final_answers_do_not_depend_on_the_partition_count() {
    let f = fixture();
    let (one, many) = (f.dir.path().join("p1"), f.out());
    replay(&f.input(), &one, 1);
    assert_eq!(standing(&one), standing(&many));
    let final_status = |p: &Path| -> BTreeMap<String, (ClaimStatus, i64)> {
        lifecycle(p)
            .last
            .into_iter()
            .map(|(k, u)| (k, (u.status, u.paid_to_date_cents)))
            .collect()
    };
    assert_eq!(final_status(&one), final_status(&many));
}
