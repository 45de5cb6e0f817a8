//! Prometheus metrics: every metric claimwatch exports, on one explicit registry, and the HTTP
//! server that exposes them with the health endpoints.
//!
//! ```text
//!  runtime (Kafka) ──► Metrics::topic(..).consumed / observe_stage / checkpoint / rebalance ...
//!  every output    ──► Metrics::observe_output(&OutputEvent)   (pipeline counts + business KPIs)
//!  librdkafka      ──► Metrics::observe_librdkafka_stats(&Statistics)   (consumer lag)
//!  GET /metrics    ◄── Metrics::render()   (http::serve: /metrics, /health/live, /health/ready)
//! ```
//!
//! **Names.** `claimwatch_<subsystem>_<name>_<unit>`: counters end in `_total`, units are base units
//! (`_seconds`, `_bytes`; money in `_dollars`, counts of things in `_records`/`_claims`). The README's
//! "Metrics" section is the canonical list (a test checks it against a scrape).
//!
//! **Labels** are bounded: every value is an enum's name, one of the fixed lists in [`labels`], or
//! passes through a [`labels::Bounded`] set (topic names, dead-letter reason codes, model
//! versions). Never a claim, member, provider or encounter id: a test scrapes a generated
//! population and looks for them.
//!
//! **Cost.** The handles for the fixed label sets are resolved once in [`Metrics::new`] and kept in
//! arrays indexed by enum position, so [`Metrics::observe_output`] does a few atomic adds and no
//! allocation. Per-topic handles for the runtime are resolved once per partition task with
//! [`Metrics::topic`].
//!
//! A `Metrics` is a plain value: tests build as many as they like, each with its own registry.

mod business;
mod caregaps;
pub mod exposition;
pub mod http;
mod kafka;
pub mod labels;
pub mod model;
#[doc(hidden)]
pub mod sample;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use prometheus::{
    Counter, CounterVec, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec,
    IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub use http::{router, serve, serve_listener, ReadyFn};

use crate::model::OutputEvent;
use labels::Bounded;

/// A metric could not be created or registered (a defect: names are fixed).
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// The content type of the Prometheus text exposition format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A timed processing stage of the pipeline (the `stage` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Bytes to a model event (Avro/JSON decode and validation).
    Decode,
    /// The core: reconciliation, readmission detection, timers.
    Core,
    /// A model output to bytes.
    Encode,
    /// Handing records to the producer (including waits on a full queue).
    Produce,
    /// Awaiting the broker's acknowledgements at a checkpoint.
    Deliver,
    /// The part of a checkpoint that holds the partition task: serialising the dirty state and
    /// the changelog records (the rest runs beside the task).
    Snapshot,
    /// Handing a checkpoint's changelog records and its marker to the producer (beside the task,
    /// yielding the runtime's threads to the partition tasks between slices).
    Changelog,
    /// Writing a checkpoint's state and offsets to sled (beside the task).
    Write,
    /// Committing a checkpoint's input offsets: to the consumer group (at least once), or with
    /// the Kafka transaction that holds its outputs (exactly once: `send_offsets_to_transaction`
    /// and `commit_transaction`, which the partition task waits for).
    Commit,
}

impl Stage {
    pub const ALL: [Stage; 9] = [
        Self::Decode,
        Self::Core,
        Self::Encode,
        Self::Produce,
        Self::Deliver,
        Self::Snapshot,
        Self::Changelog,
        Self::Write,
        Self::Commit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Decode => "decode",
            Self::Core => "core",
            Self::Encode => "encode",
            Self::Produce => "produce",
            Self::Deliver => "deliver",
            Self::Snapshot => "snapshot",
            Self::Changelog => "changelog",
            Self::Write => "write",
            Self::Commit => "commit",
        }
    }
}

/// What a rebalance callback did (the `event` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rebalance {
    Assign,
    Revoke,
    Error,
}

/// Where a partition's state came from on assignment (the `source` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreSource {
    /// The local sled store was current.
    Local,
    /// Rebuilt from the changelog topics.
    Changelog,
    /// Neither: no local checkpoint and no committed offsets (a partition's first start).
    Empty,
}

/// Pre-resolved counters of one consumed topic, kept by a partition task.
#[derive(Clone, Debug)]
pub struct TopicMetrics {
    pub consumed: IntCounter,
    pub produced: IntCounter,
}

/// Every metric of claimwatch. Cheap to share (`Arc<Metrics>`); all methods take `&self`.
pub struct Metrics {
    registry: Registry,

    // Pipeline.
    pub(crate) consumed: IntCounterVec,
    pub(crate) produced: IntCounterVec,
    produced_by_output: [IntCounter; OUTPUT_TOPICS.len()],
    stage_duration: [Histogram; Stage::ALL.len()],
    e2e_latency: [Histogram; OUTPUT_TOPICS.len()],
    dead_letters: IntCounterVec,
    duplicates: IntCounter,
    pub(crate) watermark_ms: AtomicI64,
    watermark: Gauge,
    service_ready: IntGauge,
    topics: Bounded,
    reasons: Bounded,

    // Kafka.
    pub(crate) consumer_lag: IntGaugeVec,
    pub(crate) lag_series: Mutex<Vec<(String, i32)>>,
    /// The same for the raw X12 consumer.
    pub(crate) raw_lag_series: Mutex<Vec<(String, i32)>>,
    pub(crate) client_queue_messages: IntGaugeVec,
    pub(crate) client_queue_bytes: IntGaugeVec,
    rebalances: [IntCounter; 3],
    commits_ok: IntCounter,
    commits_err: IntCounter,
    assigned_partitions: IntGauge,
    consume_errors: IntCounter,
    delivery_errors: IntCounter,

    // Checkpoints and state.
    checkpoint_duration: Histogram,
    checkpoint_size: Histogram,
    checkpoint_ok: IntCounter,
    checkpoint_err: IntCounter,
    checkpoint_last_success: Gauge,
    recoveries: IntCounter,
    state_entries: IntGaugeVec,
    state_expired: IntCounterVec,
    state_disk: IntGauge,
    restores: [IntCounter; 3],
    restored_entries: IntCounter,
    c_heap_trim: Histogram,
    c_heap_trim_free: IntGauge,
    /// Heap figures, registered only when the binary counts them (`memory::count_heap`).
    heap: Option<HeapGauges>,

    // Business KPIs (see `business.rs`).
    pub(crate) kpi: business::Kpi,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Bucket boundaries of the per-record stage timings (10 µs to 1 s).
const STAGE_BUCKETS: [f64; 12] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.01, 0.05, 0.25,
    1.0,
];
/// End-to-end latency: 10 ms to 1 h (replayed history lands in +Inf).
const LATENCY_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 3600.0,
];
/// Checkpoint duration: 1 ms to 1 min.
const CHECKPOINT_BUCKETS: [f64; 11] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 60.0,
];
/// Checkpoint size: 1 KiB to 256 MiB, by powers of 4.
const SIZE_BUCKETS: [f64; 10] = [
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    268_435_456.0,
];

pub(crate) fn counter_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, MetricsError> {
    let m = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

pub(crate) fn float_counter_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<CounterVec, MetricsError> {
    let m = CounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

pub(crate) fn counter(r: &Registry, name: &str, help: &str) -> Result<IntCounter, MetricsError> {
    let m = IntCounter::new(name, help)?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

pub(crate) fn gauge_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntGaugeVec, MetricsError> {
    let m = IntGaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

pub(crate) fn float_gauge_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<GaugeVec, MetricsError> {
    let m = GaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

pub(crate) fn int_gauge(r: &Registry, name: &str, help: &str) -> Result<IntGauge, MetricsError> {
    let m = IntGauge::new(name, help)?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

/// The heap diagnostics (`CLAIMWATCH_COUNT_HEAP=1`): the Rust heap's live bytes, what its
/// allocator holds, and glibc's heap (librdkafka's), so a creeping RSS can be put on one of them.
struct HeapGauges {
    live: IntGauge,
    committed: IntGauge,
    c_live: IntGauge,
    c_held: IntGauge,
}

impl HeapGauges {
    fn new(r: &Registry) -> Result<Self, MetricsError> {
        Ok(Self {
            live: int_gauge(
                r,
                "claimwatch_heap_live_bytes",
                "Bytes live on the heap through the global allocator (allocated minus freed since start); only with CLAIMWATCH_COUNT_HEAP=1.",
            )?,
            committed: int_gauge(
                r,
                "claimwatch_heap_committed_bytes",
                "Bytes mimalloc holds committed: the live heap plus memory kept after it was freed; only with CLAIMWATCH_COUNT_HEAP=1.",
            )?,
            c_live: int_gauge(
                r,
                "claimwatch_c_heap_live_bytes",
                "Bytes allocated and not freed on the C heap (glibc malloc: librdkafka); only with CLAIMWATCH_COUNT_HEAP=1 on glibc.",
            )?,
            c_held: int_gauge(
                r,
                "claimwatch_c_heap_held_bytes",
                "Bytes the C heap holds from the kernel, free chunks included; only with CLAIMWATCH_COUNT_HEAP=1 on glibc.",
            )?,
        })
    }

    fn refresh(&self) {
        if let Some(bytes) = crate::memory::live_heap_bytes() {
            self.live.set(bytes);
        }
        self.committed
            .set(crate::memory::allocator_committed_bytes() as i64);
        if let Some(c) = crate::memory::c_heap() {
            self.c_live.set(c.live as i64);
            self.c_held.set(c.held as i64);
        }
    }
}

pub(crate) fn gauge(r: &Registry, name: &str, help: &str) -> Result<Gauge, MetricsError> {
    let m = Gauge::new(name, help)?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

pub(crate) fn histogram_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> Result<HistogramVec, MetricsError> {
    let m = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

pub(crate) fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
) -> Result<Histogram, MetricsError> {
    let m = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

/// The handles of `vec` for each value of one label, in order.
pub(crate) fn resolve<const N: usize, M, F>(values: &[&str; N], get: F) -> [M; N]
where
    F: Fn(&str) -> M,
{
    std::array::from_fn(|i| get(values[i]))
}

/// Output topics in `OutputEvent` variant order (the `topic` label of outputs).
pub(crate) const OUTPUT_TOPICS: [&str; 15] = [
    "claimwatch.claim-lifecycle",
    "claimwatch.readmissions",
    "claimwatch.dead-letter",
    "claimwatch.denial-risk",
    "claimwatch.readmission-risk",
    "claimwatch.alerts.high-risk-discharge",
    "claimwatch.payer-kpis",
    "claimwatch.alerts.payer-monitor",
    "claimwatch.readmission-summary",
    "claimwatch.intervention-roi",
    "claimwatch.care-gaps",
    "claimwatch.member-risk",
    "claimwatch.cash-forecast",
    "claimwatch.provider-kpis",
    "claimwatch.utilization-forecast",
];

pub(crate) fn output_index(e: &OutputEvent) -> usize {
    match e {
        OutputEvent::ClaimLifecycle(_) => 0,
        OutputEvent::Readmission(_) => 1,
        OutputEvent::DeadLetter(_) => 2,
        OutputEvent::DenialRisk(_) => 3,
        OutputEvent::ReadmissionRisk(_) => 4,
        OutputEvent::HighRiskAlert(_) => 5,
        OutputEvent::PayerKpi(_) => 6,
        OutputEvent::PayerMonitorAlert(_) => 7,
        OutputEvent::ReadmissionSummary(_) => 8,
        OutputEvent::InterventionRoi(_) => 9,
        OutputEvent::CareGap(_) => 10,
        OutputEvent::MemberRisk(_) => 11,
        OutputEvent::CashForecast(_) => 12,
        OutputEvent::ProviderKpi(_) => 13,
        OutputEvent::UtilizationForecast(_) => 14,
    }
}

impl Metrics {
    /// Creates every metric on a new registry of its own.
    pub fn new() -> Result<Self, MetricsError> {
        let r = Registry::new();

        let consumed = counter_vec(
            &r,
            "claimwatch_pipeline_consumed_records_total",
            "Input records consumed (good and bad), by topic.",
            &["topic"],
        )?;
        let produced = counter_vec(
            &r,
            "claimwatch_pipeline_produced_records_total",
            "Output records handed to the producer, by logical topic.",
            &["topic"],
        )?;
        let produced_by_output = resolve(&OUTPUT_TOPICS, |t| produced.with_label_values(&[t]));
        let stage = histogram_vec(
            &r,
            "claimwatch_pipeline_processing_duration_seconds",
            "Time spent in each processing stage: per input record (decode, core), per produced record (encode, produce), per checkpoint (deliver: awaiting the broker's acknowledgements).",
            &["stage"],
            &STAGE_BUCKETS,
        )?;
        let stage_duration =
            std::array::from_fn(|i| stage.with_label_values(&[Stage::ALL[i].as_str()]));
        let e2e = histogram_vec(
            &r,
            "claimwatch_pipeline_end_to_end_latency_seconds",
            "Wall-clock time from an input event's timestamp to its output being produced, by output topic.",
            &["topic"],
            &LATENCY_BUCKETS,
        )?;
        let e2e_latency = resolve(&OUTPUT_TOPICS, |t| e2e.with_label_values(&[t]));
        let dead_letters = counter_vec(
            &r,
            "claimwatch_pipeline_dead_letters_total",
            "Input records refused and dead-lettered, by reason code and source topic.",
            &["reason", "topic"],
        )?;
        let duplicates = counter(
            &r,
            "claimwatch_pipeline_duplicates_total",
            "Input records recognised as a repeat of one already applied (the same claim, acknowledgment, remittance or enrolment record sent again) and ignored: nothing changes and nothing is emitted. Counted at each checkpoint.",
        )?;
        let watermark = gauge(
            &r,
            "claimwatch_pipeline_watermark_timestamp_seconds",
            "Largest event time among the outputs observed (the event-time clock A/R aging uses).",
        )?;
        let service_ready = int_gauge(
            &r,
            "claimwatch_service_ready",
            "1 when partitions are assigned and their state restored (as /health/ready).",
        )?;
        let build_info = gauge_vec(
            &r,
            "claimwatch_build_info",
            "Always 1; the labels name the build.",
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        let consumer_lag = gauge_vec(
            &r,
            "claimwatch_kafka_consumer_lag_records",
            "Records between the consumer's position and the partition's high watermark (librdkafka statistics).",
            &["topic", "partition"],
        )?;
        let client_queue_messages = gauge_vec(
            &r,
            "claimwatch_kafka_client_queue_messages",
            "Messages waiting in librdkafka's queues, by client type (librdkafka statistics msg_cnt).",
            &["client"],
        )?;
        let client_queue_bytes = gauge_vec(
            &r,
            "claimwatch_kafka_client_queue_bytes",
            "Bytes waiting in librdkafka's queues, by client type (librdkafka statistics msg_size).",
            &["client"],
        )?;
        let rebalance = counter_vec(
            &r,
            "claimwatch_kafka_rebalances_total",
            "Consumer group rebalance callbacks, by event (assign, revoke, error).",
            &["event"],
        )?;
        let rebalances = resolve(&["assign", "revoke", "error"], |e| {
            rebalance.with_label_values(&[e])
        });
        let commits = counter_vec(
            &r,
            "claimwatch_kafka_commits_total",
            "Offset commits to the consumer group, by outcome (ok, error).",
            &["outcome"],
        )?;
        let assigned_partitions = int_gauge(
            &r,
            "claimwatch_kafka_assigned_partitions",
            "Partition numbers currently owned by this instance.",
        )?;
        let consume_errors = counter(
            &r,
            "claimwatch_kafka_consume_errors_total",
            "Errors returned by the consumer (retried by librdkafka).",
        )?;
        let delivery_errors = counter(
            &r,
            "claimwatch_kafka_delivery_errors_total",
            "Outputs that could not be enqueued or delivered to the broker.",
        )?;

        let checkpoint_duration = histogram(
            &r,
            "claimwatch_checkpoint_duration_seconds",
            "Duration of a checkpoint: deliveries awaited, state and changelog written, offsets committed.",
            &CHECKPOINT_BUCKETS,
        )?;
        let checkpoint_size = histogram(
            &r,
            "claimwatch_checkpoint_size_bytes",
            "Bytes of state written by a checkpoint.",
            &SIZE_BUCKETS,
        )?;
        let checkpoints = counter_vec(
            &r,
            "claimwatch_checkpoint_runs_total",
            "Checkpoints attempted, by outcome (ok, error).",
            &["outcome"],
        )?;
        let checkpoint_last_success = gauge(
            &r,
            "claimwatch_checkpoint_last_success_timestamp_seconds",
            "Unix time of the last successful checkpoint of any partition.",
        )?;
        let recoveries = counter(
            &r,
            "claimwatch_checkpoint_recoveries_total",
            "Partitions rewound to their last checkpoint after a failed delivery or commit.",
        )?;
        let state_entries = gauge_vec(
            &r,
            "claimwatch_state_entries",
            "Keys held in the hot state, by store (each state table: claims, members, score_history, ...) and partition.",
            &["store", "partition"],
        )?;
        let state_expired = counter_vec(
            &r,
            "claimwatch_state_expired_total",
            "State entries that left the hot state and the store by retention, by store (claims expired, members whose look-back emptied, care-gap histories, retired enrolment entries, payer monitor windows).",
            &["store"],
        )?;
        // Every store with retention exports its series from the start, at 0.
        for (store, _) in crate::core::PartitionStats::default().expired() {
            state_expired.with_label_values(&[store]);
        }
        let state_disk = int_gauge(
            &r,
            "claimwatch_state_disk_bytes",
            "Size of the sled state directory on disk.",
        )?;
        let c_heap_trim = histogram(
            &r,
            "claimwatch_c_heap_trim_duration_seconds",
            "Time of each trim of glibc's heap (malloc_trim once its free bytes passed c_heap_trim_mib and grew since the last trim); the count is the number of trims.",
            &CHECKPOINT_BUCKETS,
        )?;
        let c_heap_trim_free = int_gauge(
            &r,
            "claimwatch_c_heap_trim_free_bytes",
            "Free bytes glibc's arenas held at the last trim, whose whole pages the trim gave back to the kernel.",
        )?;
        let heap = crate::memory::live_heap_bytes()
            .map(|_| HeapGauges::new(&r))
            .transpose()?;
        let restore = counter_vec(
            &r,
            "claimwatch_state_restores_total",
            "Partition state opened on assignment, by source (local, changelog, empty).",
            &["source"],
        )?;
        let restores = resolve(&["local", "changelog", "empty"], |s| {
            restore.with_label_values(&[s])
        });
        let restored_entries = counter(
            &r,
            "claimwatch_state_restored_entries_total",
            "State entries rebuilt from the changelog topics.",
        )?;

        let kpi = business::Kpi::new(&r)?;

        Ok(Self {
            consumed,
            produced_by_output,
            produced,
            stage_duration,
            e2e_latency,
            dead_letters,
            duplicates,
            watermark_ms: AtomicI64::new(i64::MIN),
            watermark,
            service_ready,
            topics: Bounded::new(64, 249),
            reasons: Bounded::new(32, 64),
            consumer_lag,
            lag_series: Mutex::new(Vec::new()),
            raw_lag_series: Mutex::new(Vec::new()),
            client_queue_messages,
            client_queue_bytes,
            rebalances,
            commits_ok: commits.with_label_values(&["ok"]),
            commits_err: commits.with_label_values(&["error"]),
            assigned_partitions,
            consume_errors,
            delivery_errors,
            checkpoint_duration,
            checkpoint_size,
            checkpoint_ok: checkpoints.with_label_values(&["ok"]),
            checkpoint_err: checkpoints.with_label_values(&["error"]),
            checkpoint_last_success,
            recoveries,
            state_entries,
            state_expired,
            state_disk,
            restores,
            restored_entries,
            c_heap_trim,
            c_heap_trim_free,
            heap,
            kpi,
            registry: r,
        })
    }

    /// The registry, for adding process collectors or gathering directly.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Refreshes the derived gauges (A/R aging, watermark) and encodes every metric in the
    /// Prometheus text format.
    pub fn render(&self) -> String {
        self.refresh();
        let mut buf = Vec::with_capacity(32 * 1024);
        // Encoding our own well-formed families into a Vec cannot fail.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "encoding metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    fn refresh(&self) {
        if let Some(heap) = &self.heap {
            heap.refresh();
        }
        let w = self.watermark_ms.load(Ordering::Relaxed);
        if w != i64::MIN {
            self.watermark.set(w as f64 / 1000.0);
        }
        self.kpi.refresh(w);
    }

    /// Sets `claimwatch_service_ready` (the HTTP server does at every scrape).
    pub fn set_ready(&self, ready: bool) {
        self.service_ready.set(i64::from(ready));
    }

    // ---- pipeline ----------------------------------------------------------------------------

    /// The counters of one topic (consumed input or produced internal topic). Resolve once per
    /// task; topic names past the first 64 share the label `other`.
    pub fn topic(&self, topic: &str) -> TopicMetrics {
        let t = self.topics.get(topic);
        TopicMetrics {
            consumed: self.consumed.with_label_values(&[t]),
            produced: self.produced.with_label_values(&[t]),
        }
    }

    /// Pre-creates the consumed series of the input topics so that dashboards show zeros before
    /// the first record.
    pub fn register_inputs<'a>(&self, topics: impl IntoIterator<Item = &'a str>) {
        for t in topics {
            let _ = self.topic(t);
        }
    }

    /// Time one record spent in a stage.
    pub fn observe_stage(&self, stage: Stage, elapsed: Duration) {
        self.stage_duration[stage as usize].observe(elapsed.as_secs_f64());
    }

    /// Counts an output handed to the producer and updates the business KPIs it carries. Call
    /// once per output event (the dead letters included), after it was queued for delivery.
    pub fn observe_output(&self, event: &OutputEvent) {
        let i = output_index(event);
        self.produced_by_output[i].inc();
        let (event_time, timed, clock) = business::event_time(event);
        if event_time > 0 {
            if clock {
                self.watermark_ms.fetch_max(event_time, Ordering::Relaxed);
            }
            if timed {
                let now = now_ms();
                if now >= event_time {
                    self.e2e_latency[i].observe((now - event_time) as f64 / 1000.0);
                }
            }
        }
        match event {
            OutputEvent::DeadLetter(d) => {
                let reason = self.reasons.get(&d.error_kind);
                let topic = self.topics.get(&d.source);
                self.dead_letters.with_label_values(&[reason, topic]).inc();
            }
            other => self.kpi.observe(other),
        }
    }

    // ---- kafka -------------------------------------------------------------------------------

    pub fn rebalance(&self, event: Rebalance) {
        self.rebalances[event as usize].inc();
    }

    pub fn commit(&self, ok: bool) {
        if ok {
            self.commits_ok.inc()
        } else {
            self.commits_err.inc()
        }
    }

    pub fn set_assigned_partitions(&self, n: usize) {
        self.assigned_partitions.set(n as i64);
    }

    pub fn consume_error(&self) {
        self.consume_errors.inc();
    }

    pub fn delivery_error(&self) {
        self.delivery_errors.inc();
    }

    // ---- checkpoints and state ---------------------------------------------------------------

    /// A successful checkpoint: its duration and the bytes of state it wrote.
    pub fn checkpoint_done(&self, elapsed: Duration, bytes: usize) {
        self.checkpoint_duration.observe(elapsed.as_secs_f64());
        self.checkpoint_size.observe(bytes as f64);
        self.checkpoint_ok.inc();
        self.checkpoint_last_success.set(now_ms() as f64 / 1000.0);
    }

    /// A checkpoint tick with nothing new to save: the durable state is current.
    pub fn checkpoint_current(&self) {
        self.checkpoint_last_success.set(now_ms() as f64 / 1000.0);
    }

    /// A failed checkpoint (the task will rewind: call [`Metrics::recovery`] too if it does).
    pub fn checkpoint_failed(&self) {
        self.checkpoint_err.inc();
    }

    pub fn recovery(&self) {
        self.recoveries.inc();
    }

    /// Keys in a partition's hot state (`store`: a table name of `core::TABLES`).
    /// Counts payer facts dropped as older than the monitor retention (see
    /// [`crate::core::PartitionStats::monitor_facts_dropped`]; pass the increase since last call).
    pub fn observe_monitor_dropped(&self, dropped: &[[u64; 6]; 2]) {
        self.kpi.monitor_facts_dropped(dropped);
    }

    /// Counts re-keyed records dropped as too late for their member's retention: PMPM paid
    /// amounts for a closed month, vaccine doses for a settled season and encounter costs of
    /// stays that left the look-back (see [`crate::core::PartitionStats::pmpm_paid_dropped`],
    /// [`crate::core::PartitionStats::care_gap_doses_dropped`] and
    /// [`crate::core::PartitionStats::stale_costs`]; pass the increases since the last call).
    pub fn observe_late_drops(&self, pmpm_paid: u64, care_gap_doses: u64, costs: u64) {
        self.kpi.late_drops(pmpm_paid, care_gap_doses, costs);
    }

    /// Counts input records ignored as repeats ([`crate::core::PartitionStats::duplicates`]; the
    /// increase).
    pub fn observe_duplicates(&self, n: u64) {
        self.duplicates.inc_by(n);
    }

    /// Counts enrolment records dropped because they reached a departed member after its months
    /// closed (see [`crate::core::PartitionStats::enrolment_dropped`]; the increase).
    pub fn observe_enrollment_dropped(&self, n: u64) {
        self.kpi.enrollment_dropped.inc_by(n);
    }

    /// Counts `n` entries of `store` that left the state by retention.
    pub fn state_expired(&self, store: &str, n: u64) {
        self.state_expired
            .with_label_values(&[store_label(store)])
            .inc_by(n);
    }

    pub fn set_state_entries(&self, store: &str, partition: i32, entries: usize) {
        let mut b = itoa::Buffer::new();
        let store = store_label(store);
        self.state_entries
            .with_label_values(&[store, b.format(partition)])
            .set(entries as i64);
    }

    /// Drops the series of a partition this instance no longer owns.
    pub fn forget_partition(&self, partition: i32) {
        let mut b = itoa::Buffer::new();
        let p = b.format(partition);
        for (t, _) in crate::core::TABLES {
            let _ = self.state_entries.remove_label_values(&[t, p]);
        }
        self.kpi.monitor.forget_partition(partition);
    }

    pub fn set_state_disk_bytes(&self, bytes: u64) {
        self.state_disk.set(bytes as i64);
    }

    /// A partition's state opened on assignment; `entries` rebuilt when from the changelog.
    pub fn restored(&self, source: RestoreSource, entries: usize) {
        self.restores[source as usize].inc();
        if source == RestoreSource::Changelog {
            self.restored_entries.inc_by(entries as u64);
        }
    }

    // ---- model -------------------------------------------------------------------------------

    /// Rolling quality of a scoring model, from the scoring stage's evaluator: AUC, expected
    /// calibration error, and the largest population stability index over its features.
    /// `model`: `denial` or `readmission`.
    pub fn set_model_quality(&self, model: &str, auc: f64, ece: f64, max_feature_psi: f64) {
        self.kpi.set_model_quality(model, auc, ece, max_feature_psi);
    }

    /// A partition's model monitoring windows (`score::monitor`), as of its last checkpoint; the
    /// gauges are the merge of every partition's at the next scrape.
    pub fn set_partition_monitor(
        &self,
        partition: i32,
        snapshot: [Option<crate::score::monitor::ModelSnapshot>; 2],
    ) {
        self.kpi.monitor.set_partition(partition, snapshot);
    }

    /// glibc's heap was trimmed (`memory::trim_c_heap`): it held `free` bytes free; the trim
    /// took `took`.
    pub fn c_heap_trimmed(&self, free: u64, took: std::time::Duration) {
        self.c_heap_trim.observe(took.as_secs_f64());
        self.c_heap_trim_free.set(free as i64);
    }

    /// A changed model file was loaded (`loaded`) or refused.
    pub fn model_reload(&self, kind: crate::score::reload::Artifact, loaded: bool) {
        self.kpi.monitor.reload(kind, loaded);
    }
}

/// A `store` label: a table name of `core::TABLES`, else `other`.
fn store_label(store: &str) -> &str {
    if crate::core::TABLES.iter().any(|(t, _)| *t == store) {
        store
    } else {
        labels::OTHER
    }
}

/// Wall-clock milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A float counter of dollars from cents (counters only go up: negative amounts are ignored).
pub(crate) fn add_cents(c: &Counter, cents: i64) {
    if cents > 0 {
        c.inc_by(cents as f64 / 100.0);
    }
}
