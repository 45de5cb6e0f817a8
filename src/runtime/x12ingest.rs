//! X12 into the input topics: `claimwatch x12 publish FILE...`, and in the service the consumer
//! of the raw-X12 topic (`x12.raw`, one interchange per message).
//!
//! Parsed events go to their input topics, keyed and partitioned as replay hashes them, so they
//! join the claim flow like any other record; every parse error (a malformed interchange or
//! transaction set) goes to the dead-letter topic with its location (file or topic/partition/offset,
//! ISA13 control number, segment position) and the raw bytes it concerns, while the good
//! transactions of the same message still flow. A raw message's offset is committed only after
//! everything it produced is acknowledged; re-reading it after a crash re-produces the same events
//! with the same event ids, which the core ignores as duplicates.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::config::{client_config, RuntimeConfig};
use super::task::MAX_DEAD_LETTER_PAYLOAD;
use super::{wire, Status};
use crate::codec::{AvroCodec, Format};
use crate::core::partition_for;
use crate::model::{DeadLetter, OutputEvent};
use crate::x12::ParseOutput;

/// What one publish (files or raw messages) produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Published {
    pub per_topic: BTreeMap<String, u64>,
    pub dead_letters: u64,
    pub findings: u64,
}

/// Where parsed bytes came from: a file (partition and offset -1) or a topic message.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    pub source: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// Produces parsed X12 to the input and dead-letter topics.
pub struct X12Publisher {
    config: RuntimeConfig,
    producer: FutureProducer,
    codec: AvroCodec,
    format: Format,
}

impl X12Publisher {
    pub fn new(config: &RuntimeConfig, format: Format) -> Result<Self, rdkafka::error::KafkaError> {
        Ok(Self {
            producer: client_config(&config.producer_properties()).create()?,
            config: config.clone(),
            codec: AvroCodec::new(),
            format,
        })
    }

    async fn send(
        &self,
        topic: &str,
        key: &[u8],
        payload: &[u8],
        partition: Option<i32>,
        pending: &mut Vec<DeliveryFuture>,
    ) -> Result<(), KafkaError> {
        loop {
            let mut r = FutureRecord::<[u8], [u8]>::to(topic)
                .key(key)
                .payload(payload);
            if let Some(p) = partition {
                r = r.partition(p);
            }
            match self.producer.send_result(r) {
                Ok(f) => {
                    pending.push(f);
                    return Ok(());
                }
                // The producer's queue is full: its thread delivers meanwhile.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(2)).await
                }
                // Not retriable (a record over `message.max.bytes`, say): the caller must not
                // commit past the message that caused it.
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Queues the events and dead letters of one parse of `input`.
    pub async fn queue(
        &self,
        parsed: &ParseOutput,
        input: &[u8],
        origin: Origin<'_>,
        pending: &mut Vec<DeliveryFuture>,
        report: &mut Published,
    ) -> Result<(), KafkaError> {
        let Origin {
            source,
            partition,
            offset,
        } = origin;
        let n = self.config.core.partitions;
        let mut buf = Vec::with_capacity(2048);
        for event in &parsed.events {
            buf.clear();
            if let Err(e) = wire::encode_input(&self.codec, event, self.format, &mut buf) {
                tracing::error!(error = %e, "parsed X12 event does not fit its schema");
                continue;
            }
            let topic = self.config.topics.input(event.stream()).to_owned();
            let p = partition_for(event.key(), n);
            self.send(&topic, event.key().as_bytes(), &buf, Some(p), pending)
                .await?;
            *report.per_topic.entry(topic).or_default() += 1;
        }
        report.findings += parsed.findings.len() as u64;
        for e in &parsed.errors {
            // A message without an ISA is dead-lettered whole: cut like the partition tasks'
            // dead letters, so that it fits under the producer's `message.max.bytes`.
            let raw = e.raw(input);
            let payload = raw[..raw.len().min(MAX_DEAD_LETTER_PAYLOAD)].to_vec();
            let cut = if raw.len() > MAX_DEAD_LETTER_PAYLOAD {
                format!(
                    " (payload of {} bytes cut to {MAX_DEAD_LETTER_PAYLOAD})",
                    raw.len()
                )
            } else {
                String::new()
            };
            let dl = OutputEvent::DeadLetter(DeadLetter {
                source: source.to_owned(),
                partition,
                offset,
                error_kind: format!("x12_{}", e.code),
                message: format!(
                    "{} (interchange {}, segment {}){cut}",
                    e.message, e.interchange, e.segment
                ),
                payload,
                event_time: 0,
            });
            let topic = self.config.topics.dead_letter.clone();
            buf.clear();
            if let Err(err) =
                wire::encode_output(&self.codec, &dl, self.config.format_of(&topic), &mut buf)
            {
                tracing::error!(error = %err, "dead letter does not fit its schema");
                continue;
            }
            self.send(&topic, source.as_bytes(), &buf, None, pending)
                .await?;
            report.dead_letters += 1;
        }
        Ok(())
    }
}

async fn settle(pending: &mut Vec<DeliveryFuture>) -> anyhow::Result<()> {
    for f in pending.drain(..) {
        f.await?.map_err(|(e, _)| e)?;
    }
    Ok(())
}

/// `claimwatch x12 publish`: parses files and publishes their events (and dead letters).
pub async fn publish_files(
    config: &RuntimeConfig,
    files: &[PathBuf],
    format: Format,
) -> anyhow::Result<Published> {
    let publisher = X12Publisher::new(config, format)?;
    let mut report = Published::default();
    let mut pending = Vec::new();
    for file in files {
        let bytes = std::fs::read(file)?;
        let source = file.display().to_string();
        let parsed = crate::x12::parse(&bytes, &source);
        publisher
            .queue(
                &parsed,
                &bytes,
                Origin {
                    source: &source,
                    partition: -1,
                    offset: -1,
                },
                &mut pending,
                &mut report,
            )
            .await?;
        settle(&mut pending).await?;
    }
    Ok(report)
}

/// The service's consumer of the raw-X12 topic; runs until `stop` turns true.
pub async fn run_raw_consumer(
    config: RuntimeConfig,
    status: Arc<Status>,
    metrics: Arc<crate::metrics::Metrics>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let publisher = X12Publisher::new(&config, Format::Avro)?;
    // With statistics, for its partitions' lag (`claimwatch_kafka_consumer_lag_records`).
    let mut props = config.consumer_properties();
    // Its own group: the raw topic is not co-partitioned with the keyed inputs.
    props.insert("group.id".into(), format!("{}.x12-raw", config.group_id));
    props.insert("enable.partition.eof".into(), "false".into());
    props.insert(
        "partition.assignment.strategy".into(),
        "cooperative-sticky".into(),
    );
    let consumer: RawConsumer =
        client_config(&props).create_with_context(RawContext { metrics })?;
    let topic = config.topics.raw_x12.clone();
    consumer.subscribe(&[&topic])?;
    let mut stream = consumer.stream();
    let mut pending = Vec::new();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut report = Published::default();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            m = stream.next() => {
                let Some(m) = m else { break };
                let m = match m {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "x12.raw consume error");
                        continue;
                    }
                };
                let bytes = m.payload().unwrap_or_default();
                let source = format!("{}/{}/{}", m.topic(), m.partition(), m.offset());
                let parsed = crate::x12::parse_interchange(bytes, &source);
                status.x12_messages.fetch_add(1, Ordering::Relaxed);
                let before = report.dead_letters;
                publisher
                    .queue(
                        &parsed,
                        bytes,
                        Origin { source: m.topic(), partition: m.partition(), offset: m.offset() },
                        &mut pending,
                        &mut report,
                    )
                    .await?;
                status
                    .dead_letters
                    .fetch_add(report.dead_letters - before, Ordering::Relaxed);
                next.insert(m.partition(), m.offset() + 1);
            }
            _ = tick.tick() => {
                commit(&consumer, &topic, &mut pending, &mut next, CommitMode::Async).await?;
            }
            _ = stop.changed() => break,
        }
    }
    commit(&consumer, &topic, &mut pending, &mut next, CommitMode::Sync).await?;
    Ok(())
}

/// The raw X12 consumer's client context: its statistics go to the lag metric (librdkafka's
/// default context would log each report at INFO), client errors are warnings as for the
/// service's consumer.
struct RawContext {
    metrics: Arc<crate::metrics::Metrics>,
}

impl rdkafka::ClientContext for RawContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.metrics.observe_raw_x12_stats(&statistics);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        super::log_client_error("raw X12 consumer", &error, reason);
    }
}

impl rdkafka::consumer::ConsumerContext for RawContext {}

type RawConsumer = StreamConsumer<RawContext>;

async fn commit(
    consumer: &RawConsumer,
    topic: &str,
    pending: &mut Vec<DeliveryFuture>,
    next: &mut BTreeMap<i32, i64>,
    mode: CommitMode,
) -> anyhow::Result<()> {
    if next.is_empty() {
        return Ok(());
    }
    settle(pending).await?;
    let mut tpl = TopicPartitionList::new();
    for (p, o) in std::mem::take(next) {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))?;
    }
    consumer.commit(&tpl, mode)?;
    Ok(())
}
