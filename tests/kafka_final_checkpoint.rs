//! A dead letter that cannot be written blocks the commit of its offset, also when the service
//! stops before the next routine checkpoint (README, "State follows its partitions"): the final
//! checkpoint fails, is not retried, and the offset stays where the next owner must read again.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use claimwatch::runtime::Service;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_undeliverable_dead_letter_is_not_committed_at_shutdown() {
    let mock = MockCluster::new(1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = mock_config(&mock, "final-checkpoint", &dir.path().join("state"), 1);
    // No routine checkpoint during the test: the stop's is the first.
    config.checkpoint_interval_ms = 600_000;
    // The service's producer refuses records over 4,000 bytes: the dead letter of a 6 KB
    // garbage record (it carries the original bytes) cannot be enqueued.
    config
        .producer
        .insert("message.max.bytes".into(), "4000".into());
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .create()
        .unwrap();
    let garbage = vec![b'x'; 6_000];
    producer
        .send(
            BaseRecord::to(&config.topics.claims)
                .key("C1")
                .payload(&garbage),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();

    let service = Service::start(config.clone()).await.unwrap();
    let status = std::sync::Arc::clone(&service.status);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while status.delivery_errors.load(Ordering::Relaxed) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the dead letter was never attempted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stopped = service.shutdown().await;
    assert_eq!(stopped.unclean, vec![0], "the final checkpoint failed");

    // Nothing was committed for the garbage record: the next owner reads it again.
    let b = config.brokers.clone();
    let topic = config.topics.claims.clone();
    let committed = tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", b)
            .set("group.id", "final-checkpoint")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&topic, 0);
        c.committed_offsets(tpl, Duration::from_secs(10))
            .unwrap()
            .find_partition(&topic, 0)
            .unwrap()
            .offset()
    })
    .await
    .unwrap();
    assert!(
        matches!(committed, Offset::Invalid | Offset::Offset(0)),
        "committed past an undelivered dead letter: {committed:?}"
    );
    let b = config.brokers.clone();
    let dead = tokio::task::spawn_blocking(move || {
        read_topic(&b, "claimwatch.dead-letter", Duration::from_secs(1))
    })
    .await
    .unwrap();
    assert!(dead.is_empty(), "no dead letter was written");
}
