//! The service consumer's pre-fetch bound (`queued.max.messages.kbytes`, README "Configuration"):
//! the service reads every partition through a queue of its own (`split_partition_queue`), and
//! for such queues librdkafka applies the bound per partition. A partition with a backlog that
//! nobody reads must hold about the bound in fetched records, not librdkafka's default of 64 MiB.
//! librdkafka's statistics report each partition's fetch queue (`fetchq_size`, bytes). On Tansu:
//! librdkafka's mock cluster keeps only 5 MB of each partition's log, less than the backlog needs.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use claimwatch::runtime::config::{client_config, QUEUED_MAX_KBYTES};
use claimwatch::runtime::{topics, RuntimeConfig};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use support::Broker;

/// An input topic of the service, created with one partition.
const TOPIC: &str = "ehr.claims";
/// 48 MiB of records that do not compress, in one partition.
const RECORDS: usize = 12_288;
const RECORD_BYTES: usize = 4096;

/// Keeps the largest fetch queue librdkafka reported for partition 0.
#[derive(Default)]
struct FetchQueue(Arc<AtomicU64>);

impl ClientContext for FetchQueue {
    fn stats(&self, stats: Statistics) {
        if let Some(p) = stats.topics.get(TOPIC).and_then(|t| t.partitions.get(&0)) {
            self.0.fetch_max(p.fetchq_size, Ordering::Relaxed);
        }
    }
}

impl ConsumerContext for FetchQueue {}

/// The largest fetch queue of partition 0 over three seconds, for a consumer with the service's
/// properties plus `extra`, whose partition queue is split off and never read.
fn fetched_ahead(bootstrap: &str, extra: &[(&str, &str)]) -> u64 {
    let mut config = RuntimeConfig {
        brokers: bootstrap.to_owned(),
        group_id: format!("prefetch-{}", extra.len()),
        ..RuntimeConfig::default()
    };
    for (k, v) in extra {
        config.consumer.insert((*k).into(), (*v).into());
    }
    let mut props = config.consumer_properties();
    props.insert("statistics.interval.ms".into(), "200".into());
    let seen = Arc::new(AtomicU64::new(0));
    let consumer: Arc<BaseConsumer<FetchQueue>> = Arc::new(
        client_config(&props)
            .create_with_context(FetchQueue(Arc::clone(&seen)))
            .unwrap(),
    );
    let queue = consumer.split_partition_queue(TOPIC, 0).unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        // Serves the statistics callback; the partition's records stay in its own queue.
        assert!(consumer.poll(Duration::from_millis(50)).is_none());
    }
    drop(queue);
    seen.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_fetches_ahead_only_up_to_the_bound() {
    let broker = Broker::start();
    let mut config = RuntimeConfig {
        brokers: broker.bootstrap.clone(),
        ..RuntimeConfig::default()
    };
    config.topics.partitions = 1;
    assert_eq!(config.topics.claims, TOPIC);
    topics::create(&config).await.unwrap();
    let producer: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("linger.ms", "20")
        .create()
        .unwrap();
    // Pseudo-random bytes (xorshift), so that no compression shrinks them.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut payload = vec![0u8; RECORD_BYTES];
    for i in 0..RECORDS {
        for b in payload.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let key = i.to_string();
        loop {
            match producer.send(
                BaseRecord::to(TOPIC)
                    .partition(0)
                    .key(&key)
                    .payload(&payload),
            ) {
                Ok(()) => break,
                Err((_, _)) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let backlog = (RECORDS * RECORD_BYTES) as u64;

    let bootstrap = broker.bootstrap.clone();
    let (bounded, unbounded) = tokio::task::spawn_blocking(move || {
        (
            fetched_ahead(&bootstrap, &[]),
            fetched_ahead(&bootstrap, &[("queued.max.messages.kbytes", "65536")]),
        )
    })
    .await
    .unwrap();
    eprintln!("fetched ahead of partition 0: {bounded} bytes with the service's bound, {unbounded} with 64 MiB; backlog {backlog} bytes");
    // The bound, plus what one fetch may overshoot it by (`max.partition.fetch.bytes`, 1 MiB).
    let limit = u64::from(QUEUED_MAX_KBYTES) * 1024 + (1 << 20) + RECORD_BYTES as u64;
    assert!(bounded > 0, "no fetch queue reported");
    assert!(
        bounded <= limit,
        "fetched ahead {bounded} bytes, bound {limit}"
    );

    // librdkafka's default would have taken far more of the backlog: the bound is what holds.
    assert!(
        unbounded > 4 * limit,
        "with the 64 MiB default: {unbounded} bytes of a {backlog}-byte backlog"
    );
}
