//! Topic administration: `claimwatch topics create` and the start-up check.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;

use super::config::{client_config, RuntimeConfig};
use crate::core::TABLES;

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("missing topics (create them with `claimwatch topics create`): {0}")]
    Missing(String),
    #[error("co-partitioning: {0}")]
    Partitions(String),
    #[error("creating {topic}: {reason}")]
    Create { topic: String, reason: String },
}

/// One topic claimwatch uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    /// Must have exactly the configured partition count (keyed state lives by partition).
    pub co_partitioned: bool,
    pub compacted: bool,
}

/// Every topic of a deployment.
pub fn all(config: &RuntimeConfig) -> Vec<TopicSpec> {
    let t = &config.topics;
    let mut v: Vec<TopicSpec> = t
        .consumed()
        .into_iter()
        .map(|name| TopicSpec {
            name,
            co_partitioned: true,
            compacted: false,
        })
        .collect();
    v.push(TopicSpec {
        name: t.raw_x12.clone(),
        co_partitioned: false,
        compacted: false,
    });
    for name in t.outputs() {
        v.push(TopicSpec {
            name,
            co_partitioned: false,
            compacted: false,
        });
    }
    v.push(TopicSpec {
        name: t.api_endpoints.clone(),
        co_partitioned: false,
        compacted: true,
    });
    for (table, _) in TABLES {
        v.push(TopicSpec {
            name: t.changelog(table),
            co_partitioned: true,
            compacted: true,
        });
    }
    v
}

/// Partition counts of the topics that exist.
pub fn describe(config: &RuntimeConfig) -> Result<BTreeMap<String, usize>, TopicError> {
    let consumer: BaseConsumer = client_config(&config.auxiliary_consumer_properties()).create()?;
    let md = consumer.fetch_metadata(None, Duration::from_secs(15))?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_owned(), t.partitions().len()))
        .collect())
}

/// Checks that every topic the service needs exists, and that the co-partitioned ones have
/// the configured partition count.
pub fn check(config: &RuntimeConfig) -> Result<(), TopicError> {
    let have = describe(config)?;
    let specs = all(config);
    let missing: Vec<&str> = specs
        .iter()
        // Optional: raw X12 ingestion, and the read API's endpoint directory (needed only when
        // instances forward to each other; `topics create` makes it).
        .filter(|s| {
            s.name != config.topics.raw_x12
                && s.name != config.topics.api_endpoints
                && !have.contains_key(&s.name)
        })
        .map(|s| s.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(TopicError::Missing(missing.join(", ")));
    }
    let want = config.topics.partitions as usize;
    let wrong: Vec<String> = specs
        .iter()
        .filter(|s| s.co_partitioned)
        .filter_map(|s| {
            let n = have[&s.name];
            (n != want).then(|| format!("{} has {n} partitions, expected {want}", s.name))
        })
        .collect();
    if !wrong.is_empty() {
        return Err(TopicError::Partitions(wrong.join("; ")));
    }
    Ok(())
}

/// Creates every missing topic; existing ones are left alone. Returns the created names.
pub async fn create(config: &RuntimeConfig) -> Result<Vec<String>, TopicError> {
    let cfg = config.clone();
    let have = tokio::task::spawn_blocking(move || describe(&cfg))
        .await
        .map_err(|e| TopicError::Create {
            topic: "*".into(),
            reason: e.to_string(),
        })??;
    let admin: AdminClient<DefaultClientContext> =
        client_config(&config.auxiliary_consumer_properties()).create()?;
    let specs: Vec<TopicSpec> = all(config)
        .into_iter()
        .filter(|s| !have.contains_key(&s.name))
        .collect();
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let new: Vec<NewTopic> = specs
        .iter()
        .map(|s| {
            let t = NewTopic::new(
                &s.name,
                config.topics.partitions,
                TopicReplication::Fixed(config.topics.replication_factor),
            );
            if s.compacted {
                t.set("cleanup.policy", "compact")
            } else {
                t
            }
        })
        .collect();
    let results = admin
        .create_topics(
            &new,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await?;
    let mut created = Vec::new();
    for r in results {
        match r {
            Ok(name) => created.push(name),
            Err((name, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(topic = %name, "already exists")
            }
            Err((name, code)) => {
                return Err(TopicError::Create {
                    topic: name,
                    reason: code.to_string(),
                })
            }
        }
    }
    Ok(created)
}
