//! Payer denial monitors over a generated population: the final version of every emitted window
//! equals a brute-force batch computation over the same inputs and lifecycle, and two replays
//! emit byte-identical KPIs and alerts.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use claimwatch::codec::Format;
use claimwatch::config::CoreConfig;
use claimwatch::core::partition_for;
use claimwatch::generate::write::generate_to_dir;
use claimwatch::model::{
    ClaimAck, ClaimFrequency, ClaimLifecycleUpdate, ClaimStatus, ClaimSubmitted, Granularity,
    PayerKpi,
};
use claimwatch::refdata::{AckClass, CarcCategory, RefData};
use claimwatch::replay::{run, ReplayOptions};

fn replay(input: &Path, out: &Path) {
    replay_closing(input, out, true);
}

fn replay_closing(input: &Path, out: &Path, close_open_windows: bool) {
    run(&ReplayOptions {
        input: input.into(),
        out: out.into(),
        state: None,
        config: CoreConfig::default(),
        stop_after: None,
        close_open_windows,
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

/// What the brute force counts per window.
#[derive(Clone, Debug, Default, PartialEq)]
struct Sums {
    submitted: i64,
    accepted: i64,
    rejected: i64,
    adjudicated: i64,
    paid: i64,
    partially_paid: i64,
    denied: i64,
    reversed: i64,
    paid_cents: i64,
    denied_cents: i64,
    first_adjudicated: i64,
    first_pass_paid: i64,
    days: Vec<i32>,
    category_count: BTreeMap<String, i64>,
    category_cents: BTreeMap<String, i64>,
}

type Key = (String, Granularity, i64);

fn windows(t: i64) -> [(Granularity, i64); 2] {
    [Granularity::Hourly, Granularity::Daily].map(|g| (g, t.div_euclid(g.millis()) * g.millis()))
}

/// The batch answer: every window of every payer, from the raw inputs (submissions, 277CAs) and
/// the claim lifecycle stream (adjudications), with the definitions of the README.
/// Also returns the payer flow's final watermark per partition: the minimum over the source
/// (claim) partitions of the latest fact time each sent it.
fn brute_force(input: &Path, out: &Path) -> (BTreeMap<Key, Sums>, Vec<i64>) {
    let refdata = RefData::shared();
    let n = CoreConfig::default().partitions;
    let mut sums: BTreeMap<Key, Sums> = BTreeMap::new();
    let mut last_fact: BTreeMap<(i32, i32), i64> = BTreeMap::new();
    let mut at = |payer: &str, claim: &str, t: i64, f: &mut dyn FnMut(&mut Sums)| {
        let route = (partition_for(payer, n), partition_for(claim, n));
        let last = last_fact.entry(route).or_insert(i64::MIN);
        *last = (*last).max(t);
        for (g, start) in windows(t) {
            f(sums.entry((payer.to_owned(), g, start)).or_default());
        }
    };
    let claims: Vec<ClaimSubmitted> = lines(&input.join("ehr.claims.jsonl"));
    let mut payer_of: BTreeMap<String, String> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for c in &claims {
        payer_of.insert(c.claim_id.clone(), c.payer_id.clone());
        if seen.insert(c.event_id.clone()) && c.frequency != ClaimFrequency::Void {
            at(&c.payer_id, &c.claim_id, c.event_time, &mut |s| {
                s.submitted += 1
            });
        }
    }
    for a in lines::<ClaimAck>(&input.join("x12.277ca.jsonl")) {
        let (Some(payer), Some(status)) = (payer_of.get(&a.claim_id), a.statuses.first()) else {
            continue;
        };
        if !seen.insert(a.event_id.clone()) {
            continue;
        }
        match refdata.ack_class(&status.category) {
            AckClass::Accepted | AckClass::Finalized => {
                at(payer, &a.claim_id, a.event_time, &mut |s| s.accepted += 1)
            }
            AckClass::Rejected | AckClass::NotFound | AckClass::Error => {
                at(payer, &a.claim_id, a.event_time, &mut |s| s.rejected += 1)
            }
            _ => {}
        }
    }
    // Adjudications: a status change into paid / partially paid / denied, seen on the lifecycle
    // stream once the payer is known; the first one of a claim is its first adjudication.
    let adjudicated = |s: ClaimStatus| {
        matches!(
            s,
            ClaimStatus::Paid | ClaimStatus::PartiallyPaid | ClaimStatus::Denied
        )
    };
    let mut last: BTreeMap<String, ClaimLifecycleUpdate> = BTreeMap::new();
    for u in lines::<ClaimLifecycleUpdate>(&out.join("claimwatch.claim-lifecycle.jsonl")) {
        let prev = last
            .get(&u.claim_id)
            .filter(|p| p.payer_id.is_some() && u.version > 1)
            .map(|p| p.status);
        last.insert(u.claim_id.clone(), u.clone());
        let Some(payer) = u.payer_id.clone() else {
            continue;
        };
        if prev == Some(u.status) {
            continue;
        }
        if u.status == ClaimStatus::Reversed && prev.is_some_and(adjudicated) {
            at(&payer, &u.claim_id, u.event_time, &mut |s| s.reversed += 1);
            continue;
        }
        if !adjudicated(u.status) {
            continue;
        }
        let first = !prev.is_some_and(|p| {
            adjudicated(p) || matches!(p, ClaimStatus::Reversed | ClaimStatus::Forwarded)
        });
        at(&payer, &u.claim_id, u.event_time, &mut |s| {
            s.adjudicated += 1;
            if u.status == ClaimStatus::Denied {
                s.denied += 1;
            } else {
                s.paid += 1;
                s.partially_paid += i64::from(u.status == ClaimStatus::PartiallyPaid);
                s.paid_cents += u.paid_to_date_cents;
                s.days.extend(u.days_to_first_payment);
            }
            if first {
                s.first_adjudicated += 1;
                s.first_pass_paid += i64::from(u.first_pass_paid == Some(true));
            }
            for a in &u.adjustments_by_category {
                let denial = CarcCategory::from_name(&a.code).is_some_and(CarcCategory::is_denial);
                if denial && a.amount_cents > 0 {
                    s.denied_cents += a.amount_cents;
                    *s.category_cents.entry(a.code.clone()).or_default() += a.amount_cents;
                }
            }
            if let Some(c) = &u.denial_category {
                *s.category_count.entry(c.clone()).or_default() += 1;
            }
        });
    }
    let watermarks = (0..n as i32)
        .map(|p| {
            (0..n as i32)
                .map(|q| last_fact.get(&(p, q)).copied().unwrap_or(i64::MIN))
                .min()
                .unwrap_or(i64::MIN)
        })
        .collect();
    (sums, watermarks)
}

fn median(days: &[i32]) -> Option<f64> {
    let mut v: Vec<i32> = days.iter().map(|d| (*d).clamp(0, 121)).collect();
    v.sort_unstable();
    let n = v.len();
    (n > 0).then(|| f64::from(v[(n - 1) / 2] + v[n / 2]) / 2.0)
}

fn final_versions(out: &Path) -> BTreeMap<Key, PayerKpi> {
    let mut m: BTreeMap<Key, PayerKpi> = BTreeMap::new();
    for k in lines::<PayerKpi>(&out.join("claimwatch.payer-kpis.jsonl")) {
        let key = (k.payer_id.clone(), k.granularity, k.window_start);
        if let Some(prev) = m.get(&key) {
            assert_eq!(
                k.version,
                prev.version + 1,
                "versions go up by one: {key:?}"
            );
        } else {
            assert_eq!(k.version, 1, "the first emission is version 1: {key:?}");
        }
        m.insert(key, k);
    }
    m
}

#[test]
fn final_windows_equal_a_brute_force_batch_and_replay_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    generate_to_dir(1500, 11, &input, Format::Json).unwrap();
    let (out_a, out_b) = (dir.path().join("a"), dir.path().join("b"));
    replay(&input, &out_a);
    replay(&input, &out_b);
    for topic in ["claimwatch.payer-kpis", "claimwatch.alerts.payer-monitor"] {
        let file = format!("{topic}.jsonl");
        assert_eq!(
            fs::read(out_a.join(&file)).unwrap(),
            fs::read(out_b.join(&file)).unwrap(),
            "{topic} differs between two replays"
        );
    }

    let (want, watermarks) = brute_force(&input, &out_a);
    let got = final_versions(&out_a);
    assert!(got.len() > 200, "a real population: {} windows", got.len());
    for (key, k) in &got {
        let s = want
            .get(key)
            .unwrap_or_else(|| panic!("{key:?} emitted but has no facts in the batch"));
        let counts = [
            (k.submitted, s.submitted, "submitted"),
            (k.accepted, s.accepted, "accepted"),
            (k.rejected, s.rejected, "rejected"),
            (k.adjudicated, s.adjudicated, "adjudicated"),
            (k.paid, s.paid, "paid"),
            (k.partially_paid, s.partially_paid, "partially_paid"),
            (k.denied, s.denied, "denied"),
            (k.reversed, s.reversed, "reversed"),
            (k.paid_cents, s.paid_cents, "paid_cents"),
            (k.denied_cents, s.denied_cents, "denied_cents"),
            (
                k.first_adjudicated,
                s.first_adjudicated,
                "first_adjudicated",
            ),
            (k.first_pass_paid, s.first_pass_paid, "first_pass_paid"),
        ];
        for (g, w, name) in counts {
            assert_eq!(g, w, "{name} of {key:?}");
        }
        assert_eq!(
            k.median_days_to_payment,
            median(&s.days),
            "median of {key:?}"
        );
        let rate = if s.adjudicated > 0 {
            s.denied as f64 / s.adjudicated as f64
        } else {
            0.0
        };
        assert_eq!(k.denial_rate, rate);
        for c in &k.top_denial_categories {
            assert_eq!(
                Some(&c.amount_cents),
                s.category_cents.get(&c.code),
                "{key:?}"
            );
        }
        for c in &k.top_denial_category_counts {
            assert_eq!(Some(&c.count), s.category_count.get(&c.code), "{key:?}");
        }
        assert_eq!(
            k.top_denial_categories.len(),
            s.category_cents.len().min(5),
            "{key:?}"
        );
    }
    // Every window with facts was emitted: those still open at the end of the input by the
    // replay's close.
    let emitted: BTreeSet<&Key> = got.keys().collect();
    assert_eq!(emitted, want.keys().collect(), "emitted windows");
    // Without the close, exactly the windows whose end + grace the payer flow's final watermark
    // in the owning partition has passed were emitted (what the service emits), and their final
    // versions are the same.
    let out_c = dir.path().join("c");
    replay_closing(&input, &out_c, false);
    let timed = final_versions(&out_c);
    let config = CoreConfig::default();
    let expected: BTreeSet<&Key> = want
        .keys()
        .filter(|(payer, g, start)| {
            let grace = match g {
                Granularity::Hourly => i64::from(config.monitor.hourly_grace_minutes) * 60_000,
                Granularity::Daily => i64::from(config.monitor.daily_grace_hours) * 3_600_000,
            };
            let p = partition_for(payer, config.partitions) as usize;
            start + g.millis() + grace <= watermarks[p]
        })
        .collect();
    let emitted: BTreeSet<&Key> = timed.keys().collect();
    assert_eq!(emitted, expected, "windows emitted by their timers");
    assert!(
        expected.len() < want.len(),
        "some windows are still open at the end: {} of {}",
        want.len() - expected.len(),
        want.len()
    );
    for (key, k) in &timed {
        assert_eq!(Some(k), got.get(key), "{key:?} differs with the close");
    }
    // The population has denials, first-pass misses and a drift baseline.
    assert!(got
        .values()
        .any(|k| k.denied > 0 && k.first_pass_yield < 1.0));
    assert!(got.values().any(|k| k.baseline_windows > 0));
}
