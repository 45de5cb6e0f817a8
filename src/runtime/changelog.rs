//! Changelog topics: each partition's state tables are mirrored, entry by entry, into compacted
//! topics (`<prefix><table>`, same partition number), followed by a checkpoint marker carrying the
//! input offsets and watermark the entries reflect. A partition that moves to an instance without
//! a current local store is rebuilt from them.
//!
//! Restore reads each changelog partition from the beginning to its end and keeps the latest value
//! per key (tombstones delete), so it is correct before the log cleaner has compacted anything.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::config::{client_config, RuntimeConfig};
use super::task::CHECKPOINT_MARKER_KEY;
use crate::core::TABLES;
use crate::state::{decode_checkpoint, Checkpoint};

/// What a restore read.
#[derive(Debug, Default)]
pub struct Restored {
    /// Latest value per (table prefix, key), tombstoned keys removed.
    pub entries: Vec<(u8, String, Vec<u8>)>,
    /// The last checkpoint marker, if any.
    pub checkpoint: Option<Checkpoint>,
    /// Changelog records read (including superseded values and tombstones).
    pub records: u64,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("changelog {topic}[{partition}] did not reach its end within {secs} s")]
    Timeout {
        topic: String,
        partition: i32,
        secs: u64,
    },
    #[error("changelog checkpoint marker: {0}")]
    Marker(#[from] crate::state::StateError),
}

/// The restore reader's client context: an end of partition is how the reader knows a changelog
/// is done, not an error (librdkafka's default context logs every one at ERROR); other client
/// errors are logged as the service's consumer logs them.
struct RestoreContext;

impl rdkafka::ClientContext for RestoreContext {
    fn error(&self, error: KafkaError, reason: &str) {
        super::log_client_error("changelog restore", &error, reason);
    }
}

impl rdkafka::consumer::ConsumerContext for RestoreContext {}

/// Reads the changelogs of `partition` to their ends.
pub fn restore(
    config: &RuntimeConfig,
    partition: i32,
    timeout: Duration,
) -> Result<Restored, RestoreError> {
    let started = Instant::now();
    let mut props = config.auxiliary_consumer_properties();
    // A plain assigned reader: no group membership, no commits.
    props.insert("group.id".into(), format!("{}-restore", config.group_id));
    props.insert("enable.partition.eof".into(), "true".into());
    props.insert("fetch.max.bytes".into(), (64 << 20).to_string());
    props.insert("max.partition.fetch.bytes".into(), (16 << 20).to_string());
    props.insert("queued.max.messages.kbytes".into(), (256 << 10).to_string());
    props.insert("fetch.wait.max.ms".into(), "10".into());
    let consumer: BaseConsumer<RestoreContext> =
        client_config(&props).create_with_context(RestoreContext)?;
    let mut tpl = TopicPartitionList::new();
    let topics: Vec<(String, u8)> = TABLES
        .iter()
        .map(|(t, prefix)| (config.topics.changelog(t), *prefix))
        .collect();
    for (topic, _) in &topics {
        tpl.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut latest: Vec<HashMap<String, Option<Vec<u8>>>> = vec![HashMap::new(); topics.len()];
    let mut done = vec![false; topics.len()];
    let mut restored = Restored::default();
    let mut last_progress = Instant::now();
    while done.iter().any(|d| !d) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {
                if last_progress.elapsed() > timeout {
                    let i = done.iter().position(|d| !d).unwrap_or(0);
                    return Err(RestoreError::Timeout {
                        topic: topics[i].0.clone(),
                        partition,
                        secs: timeout.as_secs(),
                    });
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {
                // The EOF does not name its topic: a topic is done once its position reached the
                // end, so ask for positions.
                last_progress = Instant::now();
                let positions = consumer.position()?;
                for (i, (topic, _)) in topics.iter().enumerate() {
                    if done[i] {
                        continue;
                    }
                    let (_, high) =
                        consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
                    let pos =
                        positions
                            .find_partition(topic, partition)
                            .and_then(|e| match e.offset() {
                                Offset::Offset(o) => Some(o),
                                _ => None,
                            });
                    if high == 0 || pos.is_some_and(|p| p >= high) {
                        done[i] = true;
                    }
                }
            }
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => {
                last_progress = Instant::now();
                restored.records += 1;
                let Some(i) = topics.iter().position(|(t, _)| t == m.topic()) else {
                    continue;
                };
                let Some(key) = m.key() else { continue };
                if key == CHECKPOINT_MARKER_KEY {
                    if let Some(v) = m.payload() {
                        restored.checkpoint = Some(decode_checkpoint(v)?);
                    }
                    continue;
                }
                let key = String::from_utf8_lossy(key).into_owned();
                latest[i].insert(key, m.payload().map(<[u8]>::to_vec));
            }
        }
    }
    // Some brokers report a high watermark one batch short of the real end: drain until quiet.
    loop {
        match consumer.poll(Duration::from_millis(250)) {
            None => break,
            Some(Err(KafkaError::PartitionEOF(_))) => continue,
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => {
                restored.records += 1;
                let Some(i) = topics.iter().position(|(t, _)| t == m.topic()) else {
                    continue;
                };
                let Some(key) = m.key() else { continue };
                if key == CHECKPOINT_MARKER_KEY {
                    if let Some(v) = m.payload() {
                        restored.checkpoint = Some(decode_checkpoint(v)?);
                    }
                    continue;
                }
                let key = String::from_utf8_lossy(key).into_owned();
                latest[i].insert(key, m.payload().map(<[u8]>::to_vec));
            }
        }
    }
    for (i, map) in latest.into_iter().enumerate() {
        let prefix = topics[i].1;
        restored.entries.extend(
            map.into_iter()
                .filter_map(|(k, v)| v.map(|v| (prefix, k, v))),
        );
    }
    restored.elapsed = started.elapsed();
    Ok(restored)
}
