//! Care gaps over a generated population: the streamed final state of every gap equals a
//! brute-force batch computation over all the generated events, whatever the partitioning.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use claimwatch::caregaps::{age_at, birthday, season};
use claimwatch::codec::Format;
use claimwatch::config::CoreConfig;
use claimwatch::core::partition_for;
use claimwatch::generate::{generate, write::write_population, GenerateConfig, Generated};
use claimwatch::model::{
    day_of, disposition, start_of_day, CareGapAction, CareGapEvent, ClaimFrequency, EpochDay,
    EpochMillis, InputEvent,
};
use claimwatch::refdata::{ImmunizationSchedule, RefData};
use claimwatch::replay::{run, ReplayOptions};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Final {
    /// A dose counts: no gap, or a closed one.
    Covered,
    Open,
    Expired,
    NotApplicable,
}

fn replay(input: &Path, out: &Path, partitions: u32) -> BTreeMap<String, CareGapAction> {
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
    let mut last = BTreeMap::new();
    let mut versions: HashMap<String, i64> = HashMap::new();
    for line in fs::read_to_string(out.join("claimwatch.care-gaps.jsonl"))
        .unwrap()
        .lines()
    {
        let e: CareGapEvent = serde_json::from_str(line).unwrap();
        let v = versions.entry(e.gap_id.clone()).or_default();
        assert_eq!(
            e.version,
            *v + 1,
            "versions of {} are consecutive",
            e.output_id
        );
        *v = e.version;
        assert_eq!(e.output_id, format!("{}:{}", e.gap_id, e.version));
        last.insert(e.gap_id, e.action);
    }
    last
}

/// Every gap's final state, computed from all the events at once (no streaming).
fn brute_force(g: &Generated, partitions: u32) -> BTreeMap<String, Final> {
    let refdata = RefData::shared();
    // Each partition's final watermark: the latest event time of any input that hashes there.
    let mut watermark: HashMap<i32, EpochMillis> = HashMap::new();
    let all = g
        .claims
        .iter()
        .map(|c| InputEvent::Claim(c.clone()))
        .chain(
            g.encounters
                .iter()
                .map(|e| InputEvent::Encounter(e.clone())),
        )
        .chain(g.acks.iter().map(|a| InputEvent::Ack(a.clone())))
        .chain(g.remits.iter().map(|r| InputEvent::Remit(r.clone())));
    for e in all {
        let w = watermark
            .entry(partition_for(e.key(), partitions))
            .or_insert(i64::MIN);
        *w = (*w).max(e.event_time());
    }
    struct Member {
        known_at: EpochMillis,
        birth: EpochDay,
        died: Option<EpochMillis>,
        /// condition -> first day seen
        conditions: BTreeMap<String, EpochDay>,
    }
    let mut members: BTreeMap<String, Member> = BTreeMap::new();
    for e in &g.encounters {
        let Some(b) = e.birth_date else { continue };
        let m = members.entry(e.member_id.clone()).or_insert(Member {
            known_at: e.event_time,
            birth: b,
            died: None,
            conditions: BTreeMap::new(),
        });
        m.known_at = m.known_at.min(e.event_time);
        m.birth = m.birth.min(b);
        if e.discharge_disposition
            .as_deref()
            .is_some_and(disposition::is_expired)
        {
            m.died = Some(m.died.map_or(e.event_time, |d| d.min(e.event_time)));
        }
        let mut dx = vec![e.principal_dx.clone()];
        dx.extend(e.secondary_dx.iter().cloned());
        for c in refdata.charlson(&dx).conditions {
            let d = m.conditions.entry(c.name).or_insert(e.admit_date);
            *d = (*d).min(e.admit_date);
        }
    }
    let mut doses: HashMap<(String, String), Vec<EpochDay>> = HashMap::new();
    for c in &g.claims {
        if c.frequency == ClaimFrequency::Void {
            continue;
        }
        for l in &c.lines {
            if let Some(v) = refdata.vaccine_code(&l.procedure_code) {
                doses
                    .entry((c.member_id.clone(), v.vaccine.clone()))
                    .or_default()
                    .push(l.service_date.unwrap_or(c.service_date));
            }
        }
    }
    let mut out = BTreeMap::new();
    for (id, m) in &members {
        let w = watermark[&partition_for(id, partitions)];
        let known_day = day_of(m.known_at);
        for rule in refdata.immunization_rules() {
            let given = doses.get(&(id.clone(), rule.vaccine.clone()));
            let risk_day = m
                .conditions
                .iter()
                .filter(|(c, _)| rule.risk_conditions.contains(c))
                .map(|(_, d)| *d)
                .min();
            let mut decide = |label: String, due: EpochDay, window: (EpochDay, EpochDay)| {
                let due_ms = start_of_day(due);
                if due_ms > w || m.died.is_some_and(|d| d <= due_ms.max(m.known_at)) {
                    return;
                }
                let end_ms = (window.1 != EpochDay::MAX).then(|| start_of_day(window.1));
                let fin =
                    if given.is_some_and(|ds| ds.iter().any(|d| window.0 <= *d && *d < window.1)) {
                        Final::Covered
                    } else if m.died.is_some_and(|d| end_ms.is_none_or(|e| d < e)) {
                        Final::NotApplicable
                    } else if end_ms.is_some_and(|e| e <= w) {
                        Final::Expired
                    } else {
                        Final::Open
                    };
                out.insert(format!("{id}:{}:{label}", rule.vaccine), fin);
            };
            match rule.schedule {
                ImmunizationSchedule::Seasonal { .. } => {
                    let first = claimwatch::model::format_day(known_day)[..4]
                        .parse::<i32>()
                        .unwrap()
                        - 1;
                    let last: i32 = claimwatch::model::format_day(day_of(w))[..4]
                        .parse()
                        .unwrap();
                    for y in first..=last {
                        let s = season(rule.schedule, y).unwrap();
                        if s.end <= known_day || age_at(m.birth, s.due) < rule.min_age as i32 {
                            continue;
                        }
                        decide(s.label, s.due, (s.start, s.end));
                    }
                }
                ImmunizationSchedule::Once => {
                    let by_age = birthday(m.birth, rule.min_age);
                    let by_risk = rule
                        .risk_min_age
                        .zip(risk_day)
                        .map(|(a, d)| birthday(m.birth, a).max(d));
                    let due = by_risk.map_or(by_age, |r| r.min(by_age));
                    decide("ONCE".into(), due, (EpochDay::MIN, EpochDay::MAX));
                }
            }
        }
    }
    out
}

fn compare(streamed: &BTreeMap<String, CareGapAction>, brute: &BTreeMap<String, Final>) {
    for (gap, action) in streamed {
        assert!(
            brute.contains_key(gap),
            "streamed a gap the batch does not have: {gap}"
        );
        let _ = action;
    }
    let mut wrong = Vec::new();
    for (gap, want) in brute {
        let got = match streamed.get(gap) {
            None | Some(CareGapAction::Closed) => Final::Covered,
            Some(CareGapAction::Opened) => Final::Open,
            Some(CareGapAction::Expired) => Final::Expired,
            Some(CareGapAction::NotApplicable) => Final::NotApplicable,
        };
        if got != *want {
            wrong.push((gap.clone(), *want, got));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} differ, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
}

#[test]
fn streamed_care_gaps_equal_the_batch_computation() {
    let dir = tempfile::tempdir().unwrap();
    let g = generate(&GenerateConfig {
        members: 2500,
        seed: 11,
        ..GenerateConfig::default()
    });
    let input = dir.path().join("in");
    write_population(&g, &input, Format::Json).unwrap();
    for partitions in [4, 3] {
        let out = dir.path().join(format!("out{partitions}"));
        let streamed = replay(&input, &out, partitions);
        let brute = brute_force(&g, partitions);
        let count = |f: Final| brute.values().filter(|v| **v == f).count();
        let (open, covered, expired) = (
            count(Final::Open),
            count(Final::Covered),
            count(Final::Expired),
        );
        assert!(
            open > 50 && expired > 50,
            "the population must open and expire gaps: {open} open, {expired} expired"
        );
        let closed = streamed
            .iter()
            .filter(|(k, a)| **a == CareGapAction::Closed && k.contains("INFLUENZA"))
            .count();
        assert!(
            closed > 50,
            "and close influenza gaps: {closed} ({covered} covered)"
        );
        assert!(streamed
            .iter()
            .any(|(k, a)| *a == CareGapAction::Closed && k.contains("PNEUMOCOCCAL")));
        compare(&streamed, &brute);
    }
}
