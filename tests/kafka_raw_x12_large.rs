//! A raw X12 message too large to dead-letter whole does not stop in-stream X12 parsing: its
//! dead letter carries the first 512 KiB (and says so), and the messages after it are parsed.

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use claimwatch::runtime::Service;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_huge_garbage_message_is_dead_lettered_cut_and_the_next_one_parsed() {
    let mock = MockCluster::new(1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = mock_config(&mock, "raw-x12-large", &dir.path().join("state"), 2);
    let x12_dir = dir.path().join("x12");
    claimwatch::generate::write::generate_x12_to_dir(5, 3, &x12_dir).unwrap();
    let remits = std::fs::read(x12_dir.join("remits.835")).unwrap();
    let events = claimwatch::x12::parse(&remits, "t").events.len() as u64;
    assert!(events > 5);

    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("message.max.bytes", "10000000")
        .create()
        .unwrap();
    // 1.5 MB without an ISA: dead-lettered whole, over the service producer's 1 MB limit.
    let garbage = vec![b'z'; 1_500_000];
    for (key, payload) in [("g", &garbage), ("r", &remits)] {
        producer
            .send(
                BaseRecord::to(&config.topics.raw_x12)
                    .key(key)
                    .partition(0)
                    .payload(payload),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    let service = Service::start(config.clone()).await.unwrap();
    let status = std::sync::Arc::clone(&service.status);
    let deadline = Instant::now() + Duration::from_secs(60);
    while status.consumed.load(Ordering::Relaxed) < events
        || status.dead_letters.load(Ordering::Relaxed) < 1
    {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {events} events, {} dead letters",
            status.consumed.load(Ordering::Relaxed),
            status.dead_letters.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    service.shutdown().await;
    let b = config.brokers.clone();
    let dead = tokio::task::spawn_blocking(move || {
        read_outputs(&b, "claimwatch.dead-letter", Duration::from_secs(1))
    })
    .await
    .unwrap();
    let letters: Vec<_> = dead
        .iter()
        .filter_map(|o| match o {
            claimwatch::model::OutputEvent::DeadLetter(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].payload.len(), 512 * 1024);
    assert!(
        letters[0].message.contains("cut to 524288"),
        "{}",
        letters[0].message
    );
}
