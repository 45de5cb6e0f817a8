//! `claimwatch produce`: publishes stream files (generated, or parsed from X12) to the input topics,
//! in replay's event-time order, keyed and partitioned exactly as replay hashes them (murmur2, the
//! Java client's default), so the service and replay see the same per-partition order.
//!
//! A record that does not decode is sent as it is (its original bytes), so the service
//! dead-letters it; nothing in the files is skipped.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::config::{client_config, RuntimeConfig};
use super::wire;
use crate::codec::{AvroCodec, Format};
use crate::core::partition_for;
use crate::model::InputStream;
use crate::replay::files::StreamReader;

/// How fast to publish.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// As fast as the broker takes it.
    Unlimited,
    /// At most this many records per second.
    Rate(f64),
    /// Event-time deltas divided by `speedup` (1.0 = real time).
    EventTime { speedup: f64 },
}

/// What was published.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Produced {
    pub per_topic: BTreeMap<String, u64>,
    /// Records sent as their original bytes because they did not decode.
    pub undecodable: u64,
}

impl Produced {
    pub fn total(&self) -> u64 {
        self.per_topic.values().sum()
    }
}

/// Publishes every stream file in `dir` to the configured input topics.
pub async fn produce_dir(
    config: &RuntimeConfig,
    dir: &Path,
    format: Format,
    pace: Pace,
) -> anyhow::Result<Produced> {
    let producer: FutureProducer = client_config(&config.producer_properties()).create()?;
    produce_dir_with(&producer, config, dir, format, pace).await
}

/// [`produce_dir`] with a producer of the caller's, e.g. one already connected (the load test
/// warms its producer up, so that a broker's first connection and producer id do not count as
/// pipeline latency).
pub async fn produce_dir_with(
    producer: &FutureProducer,
    config: &RuntimeConfig,
    dir: &Path,
    format: Format,
    pace: Pace,
) -> anyhow::Result<Produced> {
    let codec = AvroCodec::new();
    let mut readers = Vec::new();
    for s in InputStream::ALL {
        if let Some(r) = StreamReader::open(dir, s)? {
            readers.push(r);
        }
    }
    anyhow::ensure!(!readers.is_empty(), "no stream files in {}", dir.display());
    let mut heads = Vec::new();
    for r in &mut readers {
        heads.push(r.next().transpose()?);
    }
    let n = config.core.partitions;
    let mut produced = Produced::default();
    let mut pending = Vec::with_capacity(8192);
    let started = Instant::now();
    let mut first_time: Option<i64> = None;
    let mut buf = Vec::with_capacity(4096);
    let mut sent = 0u64;
    while let Some(i) = (0..heads.len())
        .filter(|i| heads[*i].is_some())
        .min_by_key(|i| {
            heads[*i]
                .as_ref()
                .map(|r| (r.order_time, r.stream, r.offset))
        })
    {
        let rec = heads[i].take().expect("selected head exists");
        heads[i] = readers[i].next().transpose()?;
        let topic = config.topics.input(rec.stream);
        buf.clear();
        let (key, partition) = match &rec.event {
            Ok(event) => {
                wire::encode_input(&codec, event, format, &mut buf)
                    .map_err(|e| anyhow::anyhow!("encoding a record: {e}"))?;
                (
                    event.key().as_bytes().to_vec(),
                    partition_for(event.key(), n),
                )
            }
            Err(_) => {
                produced.undecodable += 1;
                buf.extend_from_slice(&rec.raw);
                (Vec::new(), (rec.offset.rem_euclid(i64::from(n))) as i32)
            }
        };
        match pace {
            Pace::Unlimited => {}
            Pace::Rate(r) => {
                let due = started + Duration::from_secs_f64(sent as f64 / r);
                tokio::time::sleep_until(due.into()).await;
            }
            Pace::EventTime { speedup } => {
                if rec.order_time != i64::MIN {
                    let t0 = *first_time.get_or_insert(rec.order_time);
                    let offset_ms = (rec.order_time - t0) as f64 / speedup;
                    let due = started + Duration::from_secs_f64(offset_ms.max(0.0) / 1000.0);
                    tokio::time::sleep_until(due.into()).await;
                }
            }
        }
        loop {
            let mut record = FutureRecord::<[u8], [u8]>::to(topic)
                .payload(&buf)
                .partition(partition);
            if !key.is_empty() {
                record = record.key(&key);
            }
            match producer.send_result(record) {
                Ok(f) => {
                    pending.push(f);
                    break;
                }
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    _,
                )) => tokio::time::sleep(Duration::from_millis(2)).await,
                Err((e, _)) => anyhow::bail!("producing to {topic}: {e}"),
            }
        }
        sent += 1;
        *produced.per_topic.entry(topic.to_owned()).or_default() += 1;
        if pending.len() >= 8192 {
            for f in pending.drain(..) {
                f.await?.map_err(|(e, _)| e)?;
            }
        }
    }
    for f in pending.drain(..) {
        f.await?.map_err(|(e, _)| e)?;
    }
    let producer = producer.clone();
    tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(30))).await??;
    Ok(produced)
}
