//! `claimwatch report --brokers`: reads the output topics from Kafka to their current end and
//! writes them as the JSON-lines files replay writes, so the same loader folds them.
//!
//! Each topic's partitions are read from their low watermark up to the high watermark taken at
//! the start (records produced later are not waited for). The default topic names are read;
//! a topic that does not exist is left absent (its section says it is not computed). There is
//! no `replay-summary.json` on Kafka: the figures that need the core's final state (index stays,
//! matured cohorts) show "-".

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::codec::{AvroCodec, Format};
use crate::runtime::wire;

/// The output topics read from Kafka: the ones replay writes (and `wire::decode_output` decodes),
/// so a topic added there is read here too.
pub const KAFKA_TOPICS: &[&str] = &crate::replay::OUTPUT_FILES;

/// Why the topics could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KafkaReadError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("{topic} partition {partition} offset {offset}: {message}")]
    Decode {
        topic: String,
        partition: i32,
        offset: i64,
        message: String,
    },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{topic}: did not reach the end of the topic within {seconds} s")]
    Timeout { topic: String, seconds: u64 },
}

/// Reads every topic of [`KAFKA_TOPICS`] on `brokers` into `<dir>/<topic>.jsonl`; returns the
/// records read per topic present.
pub fn export_topics(
    brokers: &str,
    dir: &Path,
    timeout: Duration,
) -> Result<BTreeMap<String, u64>, KafkaReadError> {
    std::fs::create_dir_all(dir)?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "claimwatch-report")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()?;
    let codec = AvroCodec::new();
    let mut counts = BTreeMap::new();
    for &topic in KAFKA_TOPICS {
        let md = consumer.fetch_metadata(Some(topic), timeout)?;
        let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
            continue;
        };
        if t.error().is_some() || t.partitions().is_empty() {
            continue; // the topic does not exist
        }
        // Per partition: the offset to reach, and the records read.
        let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
        let mut tpl = TopicPartitionList::new();
        for p in t.partitions() {
            let (low, high) = consumer.fetch_watermarks(topic, p.id(), timeout)?;
            if high > low {
                ends.insert(p.id(), high);
                tpl.add_partition_offset(topic, p.id(), Offset::Offset(low))?;
            }
        }
        let mut records: BTreeMap<i32, Vec<u8>> = BTreeMap::new();
        let mut n = 0u64;
        if !ends.is_empty() {
            consumer.assign(&tpl)?;
            let deadline = Instant::now() + timeout;
            let mut buf = Vec::with_capacity(4096);
            while !ends.is_empty() {
                if Instant::now() > deadline {
                    return Err(KafkaReadError::Timeout {
                        topic: topic.to_owned(),
                        seconds: timeout.as_secs(),
                    });
                }
                let Some(m) = consumer.poll(Duration::from_millis(200)) else {
                    continue;
                };
                let m = m?;
                let (p, off) = (m.partition(), m.offset());
                let Some(end) = ends.get(&p).copied() else {
                    continue;
                };
                let event = wire::decode_output(&codec, topic, m.payload().unwrap_or_default())
                    .map_err(|e| KafkaReadError::Decode {
                        topic: topic.to_owned(),
                        partition: p,
                        offset: off,
                        message: e.to_string(),
                    })?;
                buf.clear();
                wire::encode_output(&codec, &event, Format::Json, &mut buf).map_err(|e| {
                    KafkaReadError::Decode {
                        topic: topic.to_owned(),
                        partition: p,
                        offset: off,
                        message: e,
                    }
                })?;
                let out = records.entry(p).or_default();
                out.extend_from_slice(&buf);
                out.push(b'\n');
                n += 1;
                if off + 1 >= end {
                    ends.remove(&p);
                }
            }
            consumer.unassign()?;
        }
        // Partition after partition: every key lives in one partition, in offset order.
        let mut file = BufWriter::new(File::create(dir.join(format!("{topic}.jsonl")))?);
        for bytes in records.values() {
            file.write_all(bytes)?;
        }
        file.flush()?;
        counts.insert(topic.to_owned(), n);
    }
    Ok(counts)
}
