//! Shared helpers of the real-broker tests: a Tansu broker on a free port, the service's config
//! for it, and readers of the output topics.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use claimwatch::codec::AvroCodec;
use claimwatch::model::OutputEvent;
use claimwatch::runtime::{wire, RuntimeConfig};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// The Tansu binary: `$CLAIMWATCH_TANSU`, else installed by `tests/support/install-tansu.sh`.
pub fn tansu_binary() -> PathBuf {
    if let Ok(p) = std::env::var("CLAIMWATCH_TANSU") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("tests/support/install-tansu.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("running tests/support/install-tansu.sh");
    assert!(
        out.status.success(),
        "installing Tansu failed (needs python3 + pip and PyPI access)"
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A Tansu broker with in-memory storage, stopped (by pid) on drop.
pub struct Broker {
    child: Child,
    pub port: u16,
    pub bootstrap: String,
}

impl Broker {
    pub fn start() -> Self {
        let bin = tansu_binary();
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting tansu");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            bootstrap: format!("127.0.0.1:{port}"),
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill {sig} tansu");
    }

    /// Simulates an outage: the process stops answering (its memory storage survives).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The service's configuration for a test broker: short session timeout (group joins take about
/// half of it on Tansu) and frequent checkpoints.
pub fn config(broker: &Broker, group: &str, state_dir: &Path, partitions: u32) -> RuntimeConfig {
    let mut c = RuntimeConfig {
        brokers: broker.bootstrap.clone(),
        group_id: group.into(),
        state_dir: state_dir.to_owned(),
        checkpoint_interval_ms: 300,
        http_listen: None,
        ..RuntimeConfig::default()
    };
    c.topics.partitions = partitions as i32;
    c.core.partitions = partitions;
    c.consumer
        .insert("session.timeout.ms".into(), "6000".into());
    c.consumer
        .insert("heartbeat.interval.ms".into(), "500".into());
    c
}

/// The service's configuration on librdkafka's mock cluster (`partitions` per keyed flow, no HTTP
/// listener, group joins of a few seconds), with every topic it uses created on the cluster.
#[allow(dead_code)] // not every test binary runs on the mock cluster
pub fn mock_config(
    mock: &rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    group: &str,
    state_dir: &Path,
    partitions: u32,
) -> RuntimeConfig {
    let mut c = RuntimeConfig {
        brokers: mock.bootstrap_servers(),
        group_id: group.into(),
        state_dir: state_dir.to_owned(),
        http_listen: None,
        ..RuntimeConfig::default()
    };
    c.topics.partitions = partitions as i32;
    c.core.partitions = partitions;
    c.consumer
        .insert("session.timeout.ms".into(), "6000".into());
    for spec in claimwatch::runtime::topics::all(&c) {
        mock.create_topic(&spec.name, partitions as i32, 1).unwrap();
    }
    c
}

/// Reads every record of `topic` (all partitions) until nothing new arrives for `quiet`.
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    quiet: Duration,
) -> Vec<(i32, i64, Vec<u8>, Vec<u8>)> {
    read_topic_at(bootstrap, topic, quiet, "read_committed")
}

/// [`read_topic`] at an `isolation.level`.
pub fn read_topic_at(
    bootstrap: &str,
    topic: &str,
    quiet: Duration,
    isolation: &str,
) -> Vec<(i32, i64, Vec<u8>, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "claimwatch-test-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("reader");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for t in md.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .expect("tpl");
        }
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let mut last = Instant::now();
    while last.elapsed() < quiet {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                last = Instant::now();
                out.push((
                    m.partition(),
                    m.offset(),
                    m.key().unwrap_or_default().to_vec(),
                    m.payload().unwrap_or_default().to_vec(),
                ));
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    out.sort_by_key(|r| (r.0, r.1));
    out
}

/// Decoded outputs of a claimwatch output topic, in per-partition offset order.
pub fn read_outputs(bootstrap: &str, topic: &str, quiet: Duration) -> Vec<OutputEvent> {
    read_outputs_at(bootstrap, topic, quiet, "read_committed")
}

/// [`read_outputs`] at an `isolation.level`.
pub fn read_outputs_at(
    bootstrap: &str,
    topic: &str,
    quiet: Duration,
    isolation: &str,
) -> Vec<OutputEvent> {
    let codec = AvroCodec::new();
    read_topic_at(bootstrap, topic, quiet, isolation)
        .into_iter()
        .map(|(_, _, _, v)| wire::decode_output(&codec, topic, &v).expect("our own output decodes"))
        .collect()
}

/// Replay's outputs of one topic (JSON lines written by `claimwatch replay`).
pub fn replay_outputs(dir: &Path, topic: &str) -> Vec<OutputEvent> {
    let codec = AvroCodec::new();
    let text = std::fs::read(dir.join(format!("{topic}.jsonl"))).unwrap_or_default();
    text.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| wire::decode_output(&codec, topic, l).expect("replay output decodes"))
        .collect()
}

/// Lifecycle updates grouped by claim, in per-key order, duplicates (same output id) dropped, as
/// JSON text for readable diffs.
pub fn by_key(events: &[OutputEvent]) -> (BTreeMap<String, Vec<String>>, usize) {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    let mut dups = 0;
    for e in events {
        let (id, json) = match e {
            OutputEvent::ClaimLifecycle(u) => (u.output_id.clone(), serde_json::to_string(u)),
            OutputEvent::Readmission(r) => (r.output_id.clone(), serde_json::to_string(r)),
            other => (format!("{other:?}"), Ok(format!("{other:?}"))),
        };
        if !seen.insert(id) {
            dups += 1;
            continue;
        }
        map.entry(e.key().to_owned())
            .or_default()
            .push(json.expect("serialises"));
    }
    (map, dups)
}

/// The last readmission record per (member, index stay), without its version and id: what a
/// subscriber's table holds once every update is applied.
pub fn final_readmissions(events: &[OutputEvent]) -> BTreeMap<(String, String), String> {
    let mut map = BTreeMap::new();
    for e in events {
        if let OutputEvent::Readmission(r) = e {
            let mut v = serde_json::to_value(&**r).expect("serialises");
            if let Some(o) = v.as_object_mut() {
                o.remove("version");
                o.remove("output_id");
                o.remove("event_time");
                // DETECTED then UPDATED (the readmission's paid amount came after it was
                // detected) or DETECTED with the amount (it came first): the same readmission,
                // and which depends on how the internal encounter-cost topic interleaves with
                // the encounters, which differs between Kafka and replay.
                if o.get("action").and_then(|a| a.as_str()) == Some("UPDATED") {
                    o.insert("action".into(), "DETECTED".into());
                }
            }
            let key = (r.member_id.clone(), r.index_encounter_id.clone());
            let keep = map
                .get(&key)
                .is_none_or(|(ver, _): &(i64, String)| r.version >= *ver);
            if keep {
                map.insert(key, (r.version, v.to_string()));
            }
        }
    }
    map.into_iter().map(|(k, (_, v))| (k, v)).collect()
}

/// The final version of every payer KPI window, without the fields that depend on the order in
/// which facts from different claim partitions reached the payer's partition (version, id, how
/// many facts came after the first emission, and the drift fields): what a subscriber holds once
/// every version is applied. Intermediate versions differ between Kafka and replay; the final sums do not.
pub fn final_payer_kpis(events: &[OutputEvent]) -> BTreeMap<(String, String, i64), String> {
    let mut map: BTreeMap<(String, String, i64), (i64, String)> = BTreeMap::new();
    for e in events {
        if let OutputEvent::PayerKpi(k) = e {
            let mut v = serde_json::to_value(k).expect("serialises");
            if let Some(o) = v.as_object_mut() {
                o.remove("version");
                o.remove("output_id");
                o.remove("late_facts");
                // Drift is computed against the baseline windows as they stand when the window
                // is emitted; a late fact that creates or changes a baseline day afterwards
                // reaches it in a different order in Kafka.
                for drift in [
                    "baseline_windows",
                    "baseline_denial_rate",
                    "denial_rate_z",
                    "carc_mix_chi2",
                    "carc_mix_dof",
                    "carc_mix_p_value",
                ] {
                    o.remove(drift);
                }
            }
            let key = (
                k.payer_id.clone(),
                k.granularity.as_str().to_owned(),
                k.window_start,
            );
            let keep = map.get(&key).is_none_or(|(ver, _)| k.version >= *ver);
            if keep {
                map.insert(key, (k.version, v.to_string()));
            }
        }
    }
    map.into_iter().map(|(k, (_, v))| (k, v)).collect()
}

/// The last lifecycle update per claim, without the fields that depend on the order in which
/// records of different topics arrived (version, id, cause, previous status, event time): what a
/// subscriber's table of claims holds once every update is applied. The claim view itself is a
/// function of the set of records (see `reconcile`), so this is the same in any arrival order.
pub fn final_lifecycle(events: &[OutputEvent]) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for e in events {
        if let OutputEvent::ClaimLifecycle(u) = e {
            let mut v = serde_json::to_value(&**u).expect("serialises");
            if let Some(o) = v.as_object_mut() {
                for f in [
                    "version",
                    "output_id",
                    "cause",
                    "previous_status",
                    "event_time",
                ] {
                    o.remove(f);
                }
            }
            let keep = map
                .get(&u.claim_id)
                .is_none_or(|(ver, _)| u.version >= *ver);
            if keep {
                map.insert(u.claim_id.clone(), (u.version, v.to_string()));
            }
        }
    }
    map.into_iter().map(|(k, (_, v))| (k, v)).collect()
}

/// Waits until `done()` holds, panicking with `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A free local port for an HTTP listener.
pub fn free_http_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// GET `path` from `addr` over plain HTTP/1.1: (status code, body).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Waits until the service has consumed `inputs` input records and nothing (inputs or internal
/// repartition records) has arrived for 3 s; fails after 240 s.
pub async fn run_until_quiet(service: &claimwatch::runtime::Service, inputs: u64) {
    let status = std::sync::Arc::clone(&service.status);
    let mut last = (0, Instant::now());
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let c = status.consumed.load(std::sync::atomic::Ordering::Relaxed);
        // Quiet means no input and no internal repartition record (paid amounts, payer facts
        // still on their way to another partition) for 3 s.
        let all = c + status.rekeyed.load(std::sync::atomic::Ordering::Relaxed);
        if all != last.0 {
            last = (all, Instant::now());
        }
        if c >= inputs && last.1.elapsed() > Duration::from_secs(3) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "service consumed {c} of {inputs} inputs in 240 s"
        );
    }
}

/// Observations of one stage of `claimwatch_pipeline_processing_duration_seconds` in a scrape.
pub fn stage_count(scrape: &claimwatch::metrics::exposition::Scrape, stage: &str) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| {
            s.name == "claimwatch_pipeline_processing_duration_seconds_count"
                && s.labels.iter().any(|(k, v)| k == "stage" && v == stage)
        })
        .map(|s| s.value)
}
