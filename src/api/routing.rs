//! Finding a key's owner across instances, and forwarding to it.
//!
//! Each instance with `api.advertised_url` publishes an [`Advert`] (URL, partitions it serves,
//! a generation that grows with every change, wall-clock time) to the compacted topic
//! `topics.api_endpoints`, keyed by its instance id: on every assignment change and every
//! [`HEARTBEAT`]; a tombstone on shutdown. Every instance reads the whole topic into a
//! [`Directory`]. The owner of a partition is the freshest live advert that lists it (adverts not
//! renewed for [`STALE_AFTER`] are ignored, so a crashed instance stops being asked). A request
//! for a key served elsewhere is forwarded once (the [`HOP_HEADER`] stops loops) with the
//! caller's token; without a known owner the answer is 503 with `Retry-After`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use serde::{Deserialize, Serialize};

use super::Registry;

/// Marks a forwarded request: an instance never forwards it again.
pub const HOP_HEADER: &str = "x-claimwatch-forwarded";
/// How often an instance renews its advert.
pub const HEARTBEAT: Duration = Duration::from_secs(3);
/// An advert older than this is ignored (its instance is presumed gone).
pub const STALE_AFTER: Duration = Duration::from_secs(15);

/// What an instance publishes about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advert {
    pub url: String,
    /// Partitions restored and served (restoring ones are left out).
    pub partitions: Vec<i32>,
    /// Grows with every change of this instance's partitions.
    pub generation: u64,
    pub updated_ms: i64,
}

/// Every instance's advert, as read from the endpoints topic.
#[derive(Debug, Default)]
pub struct Directory {
    me: String,
    adverts: RwLock<HashMap<String, Advert>>,
}

impl Directory {
    pub fn new(me: impl Into<String>) -> Self {
        Self {
            me: me.into(),
            adverts: RwLock::default(),
        }
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    /// Records an advert (`None`: the instance left).
    pub fn apply(&self, instance: &str, advert: Option<Advert>) {
        let mut m = self.adverts.write().unwrap_or_else(|e| e.into_inner());
        match advert {
            Some(a) => {
                m.insert(instance.to_owned(), a);
            }
            None => {
                m.remove(instance);
            }
        }
    }

    /// The URL of another live instance serving partition `p`.
    pub fn owner(&self, p: i32) -> Option<String> {
        let now = chrono::Utc::now().timestamp_millis();
        let m = self.adverts.read().unwrap_or_else(|e| e.into_inner());
        m.iter()
            .filter(|(id, a)| {
                *id != &self.me
                    && a.partitions.contains(&p)
                    && now - a.updated_ms < STALE_AFTER.as_millis() as i64
            })
            .max_by_key(|(_, a)| a.updated_ms)
            .map(|(_, a)| a.url.clone())
    }
}

/// Publishes this instance's advert until `stop`; a tombstone at the end.
pub async fn publish(
    producer: FutureProducer,
    topic: String,
    instance: String,
    url: String,
    registry: Registry,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut generation = 0u64;
    let mut last: Option<Vec<i32>> = None;
    loop {
        let served = registry.served();
        if last.as_ref() != Some(&served) {
            generation += 1;
            last = Some(served.clone());
        }
        let advert = Advert {
            url: url.clone(),
            partitions: served,
            generation,
            updated_ms: chrono::Utc::now().timestamp_millis(),
        };
        let payload = serde_json::to_vec(&advert).unwrap_or_default();
        let record = FutureRecord::to(&topic)
            .key(instance.as_bytes())
            .payload(&payload);
        if let Err((e, _)) = producer.send(record, Duration::from_secs(5)).await {
            tracing::warn!(error = %e, "publishing the API endpoint failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT) => {}
            _ = registry.changed() => {}
            _ = stop.changed() => break,
        }
    }
    let record = FutureRecord::<[u8], [u8]>::to(&topic).key(instance.as_bytes());
    let _ = producer.send(record, Duration::from_secs(5)).await;
}

/// Reads the endpoints topic into `directory` on a thread of its own until `stop` is set.
pub fn read(
    consumer_props: std::collections::BTreeMap<String, String>,
    topic: String,
    directory: Arc<Directory>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("api-endpoints".into())
        .spawn(move || {
            let mut props = consumer_props;
            props.insert("enable.partition.eof".into(), "false".into());
            props.insert("auto.offset.reset".into(), "earliest".into());
            let consumer: BaseConsumer =
                match crate::runtime::config::client_config(&props).create() {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, "API endpoint reader not started");
                        return;
                    }
                };
            // Assign every partition from the beginning (no group: each instance reads all).
            let mut assigned = false;
            while !stop.load(Ordering::Relaxed) {
                if !assigned {
                    match consumer.fetch_metadata(Some(&topic), Duration::from_secs(5)) {
                        Ok(md) => {
                            let mut tpl = rdkafka::TopicPartitionList::new();
                            for t in md.topics() {
                                for p in t.partitions() {
                                    let _ = tpl.add_partition_offset(
                                        t.name(),
                                        p.id(),
                                        rdkafka::Offset::Beginning,
                                    );
                                }
                            }
                            if tpl.count() > 0 && consumer.assign(&tpl).is_ok() {
                                assigned = true;
                            } else {
                                std::thread::sleep(Duration::from_secs(1));
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_secs(1)),
                    }
                    continue;
                }
                match consumer.poll(Duration::from_millis(200)) {
                    Some(Ok(m)) => {
                        let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                            continue;
                        };
                        let advert = m.payload().and_then(|p| serde_json::from_slice(p).ok());
                        directory.apply(key, advert);
                    }
                    Some(Err(e)) => tracing::debug!(error = %e, "endpoint reader"),
                    None => {}
                }
            }
        })
        .expect("spawning the endpoint reader")
}

/// A fixed description of a client error: the error's own text can carry the URL, and the URL
/// carries the key, which must not reach the general log.
fn error_kind(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "timeout",
        ureq::Error::Io(_) => "i/o error",
        ureq::Error::ConnectionFailed => "connection failed",
        ureq::Error::HostNotFound => "host not found",
        ureq::Error::BodyExceedsLimit(_) => "response too large",
        _ => "HTTP client error",
    }
    .to_owned()
}

/// The owner's answer to a forwarded request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forwarded {
    pub status: u16,
    pub content_type: String,
    /// The owner's `Retry-After` (its partition restoring, or moved on), passed on to the client.
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

/// Forwards `path_and_query` to `base_url` with the caller's `authorization`. Runs the blocking
/// client off the async workers.
pub async fn forward(
    base_url: String,
    path_and_query: String,
    authorization: Option<String>,
) -> Result<Forwarded, String> {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(3)))
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}{}", base_url.trim_end_matches('/'), path_and_query);
        let mut req = agent.get(&url).header(HOP_HEADER, "1");
        if let Some(a) = &authorization {
            req = req.header("authorization", a);
        }
        let mut resp = req.call().map_err(|e| error_kind(&e))?;
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp
            .body_mut()
            .with_config()
            .limit(4 << 20)
            .read_to_vec()
            .map_err(|e| error_kind(&e))?;
        Ok(Forwarded {
            status,
            content_type: ct,
            retry_after,
            body,
        })
    })
    .await
    .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advert(url: &str, partitions: &[i32], age_ms: i64) -> Advert {
        Advert {
            url: url.into(),
            partitions: partitions.to_vec(),
            generation: 1,
            updated_ms: chrono::Utc::now().timestamp_millis() - age_ms,
        }
    }

    #[test]
    fn owner_is_the_freshest_live_other_instance() {
        let d = Directory::new("me");
        d.apply("me", Some(advert("http://me", &[0, 1], 0)));
        d.apply("old", Some(advert("http://old", &[2], 5_000)));
        d.apply("new", Some(advert("http://new", &[2, 3], 100)));
        d.apply("gone", Some(advert("http://gone", &[4], 60_000)));
        assert_eq!(d.owner(0), None, "never forwards to itself");
        assert_eq!(d.owner(2).as_deref(), Some("http://new"));
        assert_eq!(d.owner(3).as_deref(), Some("http://new"));
        assert_eq!(d.owner(4), None, "stale adverts are ignored");
        d.apply("new", None);
        assert_eq!(d.owner(2).as_deref(), Some("http://old"));
        assert_eq!(d.owner(3), None);
    }
}
