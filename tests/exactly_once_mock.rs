//! Exactly-once on librdkafka's mock cluster (in-process, fast): the service with transactions on
//! a second Kafka-protocol implementation, many transactions per partition, outputs equal to
//! replay's and none repeated.
//!
//! Neither test broker can show the rest. The mock cluster reads a `TxnOffsetCommit` and discards
//! its offsets (`rdkafka_mock_handlers.c`, TxnOffsetCommit; Tansu does not store them either), and
//! it gives a second producer of a transactional id a new producer id instead of bumping the
//! first one's epoch (InitProducerId), so nothing is ever fenced. README, "Exactly-once".

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use claimwatch::codec::Format;
use claimwatch::replay::{self, ReplayOptions};
use claimwatch::runtime::config::ProcessingGuarantee;
use claimwatch::runtime::{produce, topics, RuntimeConfig, Service};
use rdkafka::mocking::MockCluster;
use support::*;

const PARTITIONS: u32 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transactions_on_the_mock_cluster_equal_replay_without_repeats() {
    let mock = MockCluster::new(1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    claimwatch::generate::write::generate_to_dir(150, 5, &input, Format::Json).unwrap();
    let mut config = RuntimeConfig {
        brokers: mock.bootstrap_servers(),
        group_id: "eos-mock".into(),
        state_dir: dir.path().join("state"),
        checkpoint_interval_ms: 200,
        http_listen: None,
        processing_guarantee: ProcessingGuarantee::ExactlyOnce,
        ..RuntimeConfig::default()
    };
    config.topics.partitions = PARTITIONS as i32;
    config.core.partitions = PARTITIONS;
    config
        .consumer
        .insert("session.timeout.ms".into(), "6000".into());
    for spec in topics::all(&config) {
        mock.create_topic(&spec.name, PARTITIONS as i32, 1).unwrap();
    }

    // The input over about 4 s, so that records keep arriving across many transactions.
    let service = Service::start(config.clone()).await.unwrap();
    let records: u64 = std::fs::read_dir(&input)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .filter(|p| !p.to_string_lossy().contains("truth"))
        .map(|p| std::fs::read_to_string(p).unwrap().lines().count() as u64)
        .sum();
    let producer = {
        let (config, input) = (config.clone(), input.clone());
        tokio::spawn(async move {
            produce::produce_dir(
                &config,
                &input,
                Format::Avro,
                produce::Pace::Rate(records as f64 / 4.0),
            )
            .await
            .unwrap()
        })
    };
    let status = std::sync::Arc::clone(&service.status);
    let total = producer.await.unwrap().total();
    assert_eq!(total, records);
    run_until_quiet(&service, total).await;
    assert_eq!(status.recoveries.load(Ordering::Relaxed), 0);
    assert!(
        status.checkpoints.load(Ordering::Relaxed) > 8,
        "many transactions"
    );
    // The transaction commits are timed as the `commit` stage.
    let scrape = claimwatch::metrics::exposition::parse(&service.metrics.render()).unwrap();
    let commits = stage_count(&scrape, "commit");
    assert!(
        commits.is_some_and(|c| c >= 8.0),
        "commit stage: {commits:?}"
    );
    service.shutdown().await;

    let replay_out = dir.path().join("replay");
    replay::run(&ReplayOptions {
        input: input.clone(),
        out: replay_out.clone(),
        state: None,
        config: config.core.clone(),
        stop_after: None,
        close_open_windows: true,
    })
    .unwrap();
    let b = config.brokers.clone();
    let (lifecycle, readmissions) = tokio::task::spawn_blocking(move || {
        (
            read_outputs(&b, "claimwatch.claim-lifecycle", Duration::from_secs(2)),
            read_outputs(&b, "claimwatch.readmissions", Duration::from_secs(2)),
        )
    })
    .await
    .unwrap();
    let want = final_lifecycle(&replay_outputs(&replay_out, "claimwatch.claim-lifecycle"));
    assert!(want.len() > 300, "a real population: {}", want.len());
    assert_eq!(
        final_lifecycle(&lifecycle),
        want,
        "final claim states equal replay's"
    );
    assert_eq!(
        final_readmissions(&readmissions),
        final_readmissions(&replay_outputs(&replay_out, "claimwatch.readmissions"))
    );
    let (by_claim, dups) = by_key(&lifecycle);
    assert_eq!(dups, 0, "an uninterrupted run repeats no output");
    let (replayed, _) = by_key(&replay_outputs(&replay_out, "claimwatch.claim-lifecycle"));
    assert_eq!(by_claim.len(), replayed.len());
    println!(
        "exactly-once on the mock cluster: {} lifecycle records, none repeated",
        lifecycle.len()
    );
}
