//! A partition's backlog is merged in replay's order even when one input is slow to fetch
//! (`max_task_idle_catch_up_ms`, README "What is equal to replay").
//!
//! The mock cluster has two brokers; the leaders of `x12.835`'s partitions are on the second,
//! whose every round trip takes 1.5 s, so after the service starts the remittances arrive well
//! after the claims, acknowledgments and encounters of the whole input. A task that passed the
//! empty 835 input over after `max_task_idle_ms` (200 ms) would run event time to the end of the
//! input first, and with 60-day claim retentions retire the claims before their 835s are read.

mod support;

use std::time::Duration;

use claimwatch::codec::Format;
use claimwatch::replay::{self, ReplayOptions};
use claimwatch::runtime::{produce, topics, Service};
use rdkafka::mocking::{MockCluster, MockCoordinator};
use support::*;

const PARTITIONS: u32 = 2;
const SLOW_BROKER: i32 = 2;

/// Generates an input, produces it to a fresh mock cluster whose 835 partitions lead on a slow
/// broker, runs the service over it with the given catch-up wait and returns the claims whose
/// final lifecycle record differs from replay's, and the number of claims.
async fn differing_claims(catch_up_ms: u64) -> (usize, usize) {
    let mock = MockCluster::new(2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    claimwatch::generate::write::generate_to_dir(150, 11, &input, Format::Json).unwrap();
    let group = format!("catch-up-{catch_up_ms}");
    let mut config = mock_config(&mock, &group, &dir.path().join("state"), PARTITIONS);
    config.checkpoint_interval_ms = 500;
    config.max_task_idle_ms = 200;
    config.max_task_idle_catch_up_ms = catch_up_ms;
    // Short retentions: a claim whose 835 is read more than 60 days of event time after its
    // other records has left state. In replay's order no remittance comes that late.
    config.core.closed_claim_retention_days = 60;
    config.core.open_claim_retention_days = 60;
    mock.coordinator(MockCoordinator::Group(group), 1).unwrap();
    for spec in topics::all(&config) {
        let leader = if spec.name == config.topics.remits {
            SLOW_BROKER
        } else {
            1
        };
        for p in 0..PARTITIONS as i32 {
            mock.partition_leader(&spec.name, p, Some(leader)).unwrap();
        }
    }
    // The whole input is in the topics before the service starts: a backlog, as after a restart.
    let total = produce::produce_dir(&config, &input, Format::Avro, produce::Pace::Unlimited)
        .await
        .unwrap()
        .total();
    mock.broker_round_trip_time(SLOW_BROKER, Duration::from_millis(1500))
        .unwrap();
    let service = Service::start(config.clone()).await.unwrap();
    run_until_quiet(&service, total).await;
    service.shutdown().await;

    let replay_out = dir.path().join("replay");
    replay::run(&ReplayOptions {
        input: input.clone(),
        out: replay_out.clone(),
        state: None,
        config: config.core.clone(),
        stop_after: None,
        close_open_windows: false,
    })
    .unwrap();
    let b = config.brokers.clone();
    let lifecycle = tokio::task::spawn_blocking(move || {
        read_outputs(&b, "claimwatch.claim-lifecycle", Duration::from_secs(2))
    })
    .await
    .unwrap();
    let got = final_lifecycle(&lifecycle);
    let want = final_lifecycle(&replay_outputs(&replay_out, "claimwatch.claim-lifecycle"));
    assert!(want.len() > 300, "a real population: {}", want.len());
    let differ = want
        .iter()
        .filter(|(claim, v)| got.get(*claim) != Some(*v))
        .count()
        + got.keys().filter(|c| !want.contains_key(*c)).count();
    (differ, want.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_input_is_waited_for_while_it_catches_up() {
    let (differ, claims) = differing_claims(10_000).await;
    println!("catch-up wait 10 s: {differ} of {claims} claims differ from replay");
    assert_eq!(differ, 0, "final claim states equal replay's");
}

/// The premise of the test above: without the catch-up wait, the same setup does run event time
/// ahead of the slow input, and claims end differently from replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_catch_up_wait_the_slow_input_is_passed_over() {
    let (differ, claims) = differing_claims(0).await;
    println!("no catch-up wait: {differ} of {claims} claims differ from replay");
    assert!(
        differ > claims / 10,
        "passing the 835s over retires claims: {differ} of {claims}"
    );
}
