//! The Kafka runtime (`claimwatch run`): the transport-free core driven by a consumer group.
//!
//! ```text
//!  ehr.claims ─┐                       one task per partition number p
//!  x12.277ca  ─┤ (claim id)            ┌──────────────────────────────────────────┐
//!  x12.835    ─┼── partition p ───────►│ merge by event time → core::Partition p  │──► outputs (keyed)
//!  ehr.encounters (member id) ─────────►│  dashmap hot view / sled / timers        │──► changelog p
//!  internal.encounter-cost (member id) ►│                                          │──► internal.encounter-cost
//!  internal.payer-facts (payer id) ────►│                                          │──► internal.payer-facts
//!                                       └──────────────────────────────────────────┘
//! ```
//!
//! - **Co-partitioning.** Claim topics are keyed by claim id, encounters by member id, all with the
//!   same partition count; the range assignor gives one instance partition p of every input, so
//!   task p sees every record of its keys. Paid amounts needed by the member flow and the facts
//!   the payer monitors count are re-keyed through the internal topics (as Kafka Streams
//!   repartitions), never through shared memory.
//! - **State follows partitions.** On assignment a partition's state comes from the local sled
//!   store when its checkpoint is at least as new as the group's committed offsets, else from the
//!   changelog topics ([`changelog`]); consumption starts at the checkpoint's offsets. On
//!   revocation the task checkpoints and commits before the partition is released.
//! - **Delivery.** At least once with deterministic output ids: see [`task`].

pub mod background;
pub mod changelog;
pub mod config;
pub mod demo;
pub mod produce;
mod task;
pub use task::INPUT_TIMESTAMP_HEADER;
pub mod topics;
pub mod wire;
pub mod x12ingest;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

pub use config::RuntimeConfig;

use crate::codec::AvroCodec;
use crate::core::{Engine, Partition};
use crate::model::InputStream;
use crate::refdata::RefData;
use crate::replay::OutputTally;
use crate::state::StateDb;
use task::{Control, InputSpec, Task};

pub(crate) type KafkaConsumer = StreamConsumer<Ctx>;

/// Live counters of the service (progress display, tests, metrics).
#[derive(Debug, Default)]
pub struct Status {
    /// Input records handled (good and bad), internal repartition records not included.
    pub consumed: AtomicU64,
    /// Internal repartition records handled (paid amounts, payer facts).
    pub rekeyed: AtomicU64,
    /// Output records queued for delivery (all topics but the changelogs).
    pub produced: AtomicU64,
    pub dead_letters: AtomicU64,
    pub checkpoints: AtomicU64,
    pub changelog_records: AtomicU64,
    pub consume_errors: AtomicU64,
    pub delivery_errors: AtomicU64,
    /// Partitions rewound to their last checkpoint after a failed delivery or commit.
    pub recoveries: AtomicU64,
    pub rebalances: AtomicU64,
    /// Messages read from the raw-X12 topic.
    pub x12_messages: AtomicU64,
    /// Partition numbers currently owned.
    pub assigned: AtomicUsize,
    /// Partitions restored from the changelog (not from the local store).
    pub restored_from_changelog: AtomicU64,
    pub restored_entries: AtomicU64,
    /// Assigned partitions given up after their restore failed 4 times (each leaves the instance
    /// not ready until the next rebalance).
    pub restore_failures: AtomicU64,
    /// True when assigned partitions are restored and running.
    pub ready: AtomicBool,
    /// Counters of each partition's core as its task last stopped (summaries).
    pub partition_stats: Mutex<std::collections::BTreeMap<i32, crate::core::PartitionStats>>,
}

/// Everything the partition tasks share.
pub(crate) struct Shared {
    pub config: RuntimeConfig,
    pub engine: Engine,
    pub codec: AvroCodec,
    /// With a Schema Registry: decodes inputs written with any registered version of our
    /// schemas that can be read as ours.
    pub registry: Option<crate::codec::registry::RegistryCodec>,
    pub producer: FutureProducer,
    pub db: StateDb,
    pub status: Arc<Status>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Lifecycle tally and per-topic output counts for the demo's summary (off in production).
    pub tally: Option<Mutex<(OutputTally, std::collections::BTreeMap<&'static str, u64>)>>,
    pub inputs: Vec<(String, Option<InputStream>)>,
    /// The partitions this instance serves and their state's read handles (read API).
    pub served: crate::api::Registry,
}

struct TaskHandle {
    control: mpsc::UnboundedSender<Control>,
    join: tokio::task::JoinHandle<()>,
}

/// Logs an error a Kafka client reports through its context, naming the client. Transport errors
/// (broker down, all brokers down) are retried by librdkafka, so they are warnings; an
/// end-of-partition event, which a consumer with `enable.partition.eof` also receives as a global
/// error, is expected and never logged.
pub(crate) fn log_client_error(client: &'static str, error: &KafkaError, reason: &str) {
    if matches!(
        error,
        KafkaError::PartitionEOF(_)
            | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
    ) {
        return;
    }
    tracing::warn!(error = %error, reason, client, "kafka client error");
}

/// The consumer's context: runs rebalances (restore on assign, checkpoint on revoke).
pub(crate) struct Ctx {
    shared: Arc<Shared>,
    consumer: OnceLock<Weak<KafkaConsumer>>,
    tasks: Mutex<HashMap<i32, TaskHandle>>,
    runtime: tokio::runtime::Handle,
}

impl ClientContext for Ctx {
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.shared.metrics.observe_librdkafka_stats(&statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error("service consumer", &error, reason);
    }
}

impl ConsumerContext for Ctx {
    fn rebalance(
        &self,
        base: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        self.shared
            .status
            .rebalances
            .fetch_add(1, Ordering::Relaxed);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.shared
                    .metrics
                    .rebalance(crate::metrics::Rebalance::Assign);
                tokio::task::block_in_place(|| self.on_assign(base, tpl));
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.shared
                    .metrics
                    .rebalance(crate::metrics::Rebalance::Revoke);
                tokio::task::block_in_place(|| {
                    self.stop_tasks(None);
                });
                if let Err(e) = base.unassign() {
                    tracing::error!(error = %e, "unassign failed");
                }
            }
            other => {
                self.shared
                    .metrics
                    .rebalance(crate::metrics::Rebalance::Error);
                tracing::error!(error = ?other, "rebalance error");
                let _ = base.unassign();
            }
        }
    }
}

fn partition_numbers(tpl: &TopicPartitionList) -> Vec<i32> {
    let mut ps: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
    ps.sort_unstable();
    ps.dedup();
    ps
}

impl Ctx {
    fn on_assign(&self, base: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let status = &self.shared.status;
        status.ready.store(false, Ordering::SeqCst);
        let started = Instant::now();
        let mut opened = Vec::new();
        let assigned = partition_numbers(tpl);
        for p in &assigned {
            self.shared.served.restoring(*p);
        }
        let mut failed = Vec::new();
        for p in assigned {
            // A restore can fail on a passing broker fault (committed offsets or the changelog
            // not answering in time): a few attempts before giving the partition up.
            let mut attempt = 0u32;
            let opened_partition = loop {
                match self.open_partition(base, p) {
                    Ok(partition) => break Ok(partition),
                    Err(e) if attempt < 3 => {
                        let pause = Duration::from_secs(1 << attempt);
                        tracing::warn!(partition = p, error = %e, pause_ms = pause.as_millis() as u64, "restoring partition failed; trying again");
                        std::thread::sleep(pause);
                        attempt += 1;
                    }
                    Err(e) => break Err(e),
                }
            };
            match opened_partition {
                Ok(partition) => {
                    for (topic, _) in &self.shared.inputs {
                        if tpl.find_partition(topic, p).is_none() {
                            continue;
                        }
                        let offset = partition
                            .offsets()
                            .get(topic)
                            .map_or(Offset::Stored, |o| Offset::Offset(*o));
                        if let Err(e) = tpl.set_partition_offset(topic, p, offset) {
                            tracing::error!(topic, partition = p, error = %e, "setting start offset");
                        }
                    }
                    opened.push(partition);
                }
                Err(e) => {
                    // Without its state the partition cannot be processed correctly: leave it
                    // unassigned in this process and let the group move it (we stay not ready).
                    tracing::error!(partition = p, error = %e, "restoring partition failed; the instance stays not ready");
                    failed.push(p);
                    status.restore_failures.fetch_add(1, Ordering::Relaxed);
                    self.shared.served.remove(p);
                    for (topic, _) in &self.shared.inputs {
                        let _ = tpl.set_partition_offset(topic, p, Offset::Invalid);
                    }
                }
            }
        }
        if let Err(e) = base.assign(tpl) {
            tracing::error!(error = %e, "assign failed");
            for partition in &opened {
                self.shared.served.remove(partition.id());
            }
            return;
        }
        let Some(consumer) = self.consumer.get().and_then(Weak::upgrade) else {
            return;
        };
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        for partition in opened {
            let p = partition.id();
            let mut specs = Vec::new();
            let mut queues = Vec::new();
            for (topic, stream) in &self.shared.inputs {
                if tpl.find_partition(topic, p).is_none() {
                    continue;
                }
                match consumer.split_partition_queue(topic, p) {
                    Some(q) => {
                        specs.push(InputSpec {
                            topic: topic.clone(),
                            stream: *stream,
                        });
                        queues.push(q);
                    }
                    None => tracing::error!(topic, partition = p, "no partition queue"),
                }
            }
            self.shared
                .served
                .ready(p, crate::api::Views::of(&partition));
            let (tx, rx) = mpsc::unbounded_channel();
            let task = Task::new(
                Arc::clone(&self.shared),
                Arc::clone(&consumer),
                partition,
                specs,
                queues,
                rx,
            );
            let join = self.runtime.spawn(task.run());
            tasks.insert(p, TaskHandle { control: tx, join });
        }
        status.assigned.store(tasks.len(), Ordering::SeqCst);
        // Not ready while an assigned partition has no state (and so no task): its records wait
        // until the next rebalance, and the operator must see it.
        let ready = failed.is_empty();
        status.ready.store(ready, Ordering::SeqCst);
        self.shared.metrics.set_assigned_partitions(tasks.len());
        self.shared.metrics.set_ready(ready);
        // The partitions' state is as durable as their checkpoints: current until new records.
        self.shared.metrics.checkpoint_current();
        tracing::info!(
            partitions = ?tasks.keys().collect::<std::collections::BTreeSet<_>>(),
            ms = started.elapsed().as_millis() as u64,
            "partitions assigned and restored"
        );
    }

    /// Opens partition `p`'s state: local when current, else rebuilt from the changelog.
    fn open_partition(&self, base: &BaseConsumer<Self>, p: i32) -> Result<Partition, crate::Error> {
        let shared = &self.shared;
        let store = shared.db.partition(p)?;
        let local = store.checkpoint()?;
        let mut want = TopicPartitionList::new();
        for (topic, _) in &shared.inputs {
            want.add_partition(topic, p);
        }
        let committed = base
            .committed_offsets(want, Duration::from_secs(30))
            .map_err(|e| crate::Error::Internal(format!("committed offsets: {e}")))?;
        let mut behind = false;
        for e in committed.elements() {
            if let Offset::Offset(c) = e.offset() {
                let mine = local
                    .as_ref()
                    .and_then(|cp| cp.offsets.get(e.topic()).copied())
                    .unwrap_or(0);
                if mine < c {
                    behind = true;
                }
            }
        }
        let mut partition = if behind {
            let r = changelog::restore(&shared.config, p, Duration::from_secs(120))
                .map_err(|e| crate::Error::Internal(format!("changelog restore: {e}")))?;
            let cp = r.checkpoint.clone().unwrap_or_default();
            let started = Instant::now();
            let (n, records, read) = (r.entries.len(), r.records, r.elapsed);
            let partition = Partition::open_restored(p, store, &shared.engine, r.entries, &cp)?;
            shared
                .status
                .restored_from_changelog
                .fetch_add(1, Ordering::Relaxed);
            shared
                .metrics
                .restored(crate::metrics::RestoreSource::Changelog, n);
            shared
                .status
                .restored_entries
                .fetch_add(n as u64, Ordering::Relaxed);
            tracing::info!(
                partition = p,
                entries = n,
                records,
                read_ms = read.as_millis() as u64,
                load_ms = started.elapsed().as_millis() as u64,
                "restored from changelog"
            );
            partition
        } else {
            let source = if local.is_some() {
                crate::metrics::RestoreSource::Local
            } else {
                crate::metrics::RestoreSource::Empty
            };
            shared.metrics.restored(source, 0);
            let partition = Partition::open(p, store, &shared.engine)?;
            tracing::info!(
                partition = p,
                source = if local.is_some() {
                    "local store"
                } else {
                    "empty (first start)"
                },
                watermark_ms = partition.watermark(),
                "partition state opened"
            );
            partition
        };
        partition.capture_changes();
        Ok(partition)
    }

    /// Stops tasks (all, or `only`), each after a final checkpoint and synchronous commit.
    /// Returns the partitions that did not stop cleanly (their final checkpoint failed or did not
    /// finish within `shutdown_timeout_ms`): the next owner re-processes their uncommitted work.
    fn stop_tasks(&self, only: Option<&[i32]>) -> Vec<i32> {
        let deadline =
            Instant::now() + Duration::from_millis(self.shared.config.shutdown_timeout_ms);
        self.stop_tasks_by(only, deadline)
    }

    /// [`Ctx::stop_tasks`] with the deadline given (the service's shutdown started earlier).
    fn stop_tasks_by(&self, only: Option<&[i32]>, deadline: Instant) -> Vec<i32> {
        let handles: Vec<(i32, TaskHandle)> = {
            let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
            let keys: Vec<i32> = tasks
                .keys()
                .copied()
                .filter(|p| only.is_none_or(|o| o.contains(p)))
                .collect();
            keys.into_iter()
                .filter_map(|p| tasks.remove(&p).map(|h| (p, h)))
                .collect()
        };
        if handles.is_empty() {
            return Vec::new();
        }
        self.shared.status.ready.store(false, Ordering::SeqCst);
        let mut waits = Vec::new();
        for (p, h) in &handles {
            let (tx, rx) = std::sync::mpsc::channel();
            if h.control.send(Control::Stop(tx)).is_ok() {
                waits.push((*p, rx));
            }
        }
        let mut unclean: Vec<i32> = handles
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| !waits.iter().any(|(w, _)| w == p))
            .collect();
        for (p, rx) in waits {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(true) => {}
                Ok(false) => unclean.push(p),
                Err(_) => {
                    tracing::error!(partition = p, "partition did not stop in time; its uncommitted work will be re-processed by the next owner");
                    unclean.push(p);
                }
            }
        }
        unclean.sort_unstable();
        for (p, h) in handles {
            self.shared.served.remove(p);
            h.join.abort();
            self.shared.metrics.forget_partition(p);
        }
        let left = self.tasks.lock().map(|t| t.len()).unwrap_or(0);
        self.shared.status.assigned.store(left, Ordering::SeqCst);
        self.shared.metrics.set_assigned_partitions(left);
        self.shared.metrics.set_ready(false);
        unclean
    }
}

/// A running service; dropped or [`Service::shutdown`] to stop.
pub struct Service {
    consumer: Arc<KafkaConsumer>,
    ctx_tasks: Arc<Shared>,
    pub status: Arc<Status>,
    main: tokio::task::JoinHandle<()>,
    x12: Option<tokio::task::JoinHandle<()>>,
    http: Option<tokio::task::JoinHandle<()>>,
    reload: Option<tokio::task::JoinHandle<()>>,
    trim: Option<tokio::task::JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The partitions served here (read API).
    pub served: crate::api::Registry,
    endpoints: Option<Endpoints>,
}

/// The read API's endpoint advertising (publisher) and directory (reader).
struct Endpoints {
    stop: Arc<AtomicBool>,
    reader: std::thread::JoinHandle<()>,
    publisher: tokio::task::JoinHandle<()>,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Topics(#[from] topics::TopicError),
    #[error(transparent)]
    Core(#[from] crate::Error),
}

/// The codec with our schemas' ids in the Schema Registry (subjects `<topic>-value`): output
/// schemas are registered with `auto_register`, else must be registered; input schemas must be
/// registered by their producers, since the consumers decode only the version we ship (reading
/// other registered versions is `codec::RegistryCodec`, not wired into the consumers yet).
fn registry_codec(
    registry: &config::SchemaRegistryConfig,
    topics: &config::Topics,
) -> Result<(AvroCodec, crate::codec::registry::RegistryCodec), StartError> {
    use crate::codec::registry::{topic_subject, RegistryClient, SchemaIds, DEFAULT_TIMEOUT};
    use crate::codec::SchemaKind as K;
    let auth = registry
        .basic_auth_user
        .as_deref()
        .map(|u| (u, registry.basic_auth_password.as_deref().unwrap_or("")));
    let client = RegistryClient::new(&registry.url, auth, DEFAULT_TIMEOUT)
        .map_err(|e| StartError::Config(e.to_string()))?;
    let topic = |kind: K| -> &str {
        match kind {
            K::ClaimSubmitted => &topics.claims,
            K::Encounter => &topics.encounters,
            K::ClaimAck => &topics.acks,
            K::Remittance => &topics.remits,
            K::ClaimLifecycleUpdate => &topics.claim_lifecycle,
            K::ReadmissionEvent => &topics.readmissions,
            K::DeadLetter => &topics.dead_letter,
            K::DenialRiskScore => &topics.denial_risk,
            K::ReadmissionRiskScore => &topics.readmission_risk,
            K::HighRiskAlert => &topics.high_risk_alerts,
            K::PayerKpi => &topics.payer_kpis,
            K::EncounterCost => &topics.encounter_cost,
            K::PayerFact => &topics.payer_facts,
            K::PayerMonitorAlert => &topics.payer_monitor_alerts,
            K::ReadmissionSummary => &topics.readmission_summary,
            K::InterventionRoi => &topics.intervention_roi,
            K::StayOutcome => &topics.population_facts,
            K::CareGapEvent => &topics.care_gaps,
            K::VaccineDose => &topics.vaccine_doses,
            K::MemberRiskEvent => &topics.member_risk,
            K::CashFact => &topics.cash_facts,
            K::CashForecast => &topics.cash_forecast,
            K::ProviderFact => &topics.provider_facts,
            K::ProviderKpi => &topics.provider_kpis,
            K::MemberEnrollment => &topics.enrollment,
            K::MemberPaid => &topics.member_paid,
            K::PmpmFact => &topics.pmpm_facts,
            K::UtilizationFact => &topics.utilization_facts,
            K::UtilizationForecast => &topics.utilization_forecast,
        }
    };
    let ids = SchemaIds::resolve(&client, |k| topic_subject(topic(k)), registry.auto_register)
        .map_err(|e| StartError::Config(e.to_string()))?;
    // The eligibility feed (`ehr.enrollment`) is optional: a deployment without it need not
    // register its schema; its records, when they come, are read by their writer id.
    let missing: Vec<String> = ids
        .missing()
        .into_iter()
        .filter(|k| *k != K::MemberEnrollment)
        .map(|k| format!("{} ({})", topic_subject(topic(k)), k.name()))
        .collect();
    if !missing.is_empty() {
        return Err(StartError::Config(format!(
            "schema registry: input schemas not registered: {}",
            missing.join(", ")
        )));
    }
    let decoder = crate::codec::registry::RegistryCodec::new(ids.codec(), Arc::new(client));
    Ok((ids.codec(), decoder))
}

impl Service {
    /// Starts consuming. Must be called inside a multi-threaded tokio runtime.
    pub async fn start(config: RuntimeConfig) -> Result<Self, StartError> {
        Self::start_with(config, false).await
    }

    /// Starts consuming; with `tally`, keeps the lifecycle tally the demo summarises.
    pub async fn start_with(config: RuntimeConfig, tally: bool) -> Result<Self, StartError> {
        config
            .validate()
            .map_err(|p| StartError::Config(p.join("; ")))?;
        let producer: FutureProducer =
            config::client_config(&config.producer_properties()).create()?;
        let check_cfg = config.clone();
        let have = tokio::task::spawn_blocking(move || {
            topics::check(&check_cfg)?;
            topics::describe(&check_cfg)
        })
        .await
        .map_err(|e| StartError::Config(e.to_string()))??;
        let raw_x12 = have.contains_key(&config.topics.raw_x12);
        std::fs::create_dir_all(&config.state_dir).map_err(crate::Error::from)?;
        let db = StateDb::open_with_cache(&config.state_dir, config.state_cache_bytes())
            .map_err(crate::Error::from)?;
        let (codec, registry) = match &config.schema_registry {
            Some(registry) => {
                let (registry, topics) = (registry.clone(), config.topics.clone());
                let (codec, decoder) =
                    tokio::task::spawn_blocking(move || registry_codec(&registry, &topics))
                        .await
                        .map_err(|e| StartError::Config(e.to_string()))??;
                (codec, Some(decoder))
            }
            None => (AvroCodec::new(), None),
        };
        let inputs: Vec<(String, Option<InputStream>)> = InputStream::ALL
            .iter()
            .map(|s| (config.topics.input(*s).to_owned(), Some(*s)))
            .chain([
                (config.topics.encounter_cost.clone(), None),
                (config.topics.payer_facts.clone(), None),
                (config.topics.population_facts.clone(), None),
                (config.topics.vaccine_doses.clone(), None),
                (config.topics.cash_facts.clone(), None),
                (config.topics.provider_facts.clone(), None),
                (config.topics.member_paid.clone(), None),
                (config.topics.pmpm_facts.clone(), None),
                (config.topics.utilization_facts.clone(), None),
            ])
            .collect();
        let status = Arc::new(Status::default());
        let metrics = Arc::new(
            crate::metrics::Metrics::new().map_err(|e| StartError::Config(e.to_string()))?,
        );
        metrics.register_inputs(inputs.iter().map(|(t, _)| t.as_str()));
        let (engine, watcher) = match &config.model_dir {
            Some(dir) => {
                let (w, models) = crate::score::reload::ModelWatcher::start(dir)
                    .map_err(|e| StartError::Config(format!("model_dir: {e}")))?;
                tracing::info!(
                    dir = %dir.display(),
                    denial = models.denial.as_ref().map_or("fallback", |m| m.version.as_str()),
                    readmission = models.readmission.as_ref().map_or("fallback", |m| m.version.as_str()),
                    cost = models.cost.as_ref().map_or("compiled-in", |m| m.version.as_str()),
                    "models loaded"
                );
                let e = Engine::with_models(config.core.clone(), RefData::shared(), models);
                (e, (config.model_reload_interval_ms > 0).then_some(w))
            }
            None => (Engine::new(config.core.clone(), RefData::shared()), None),
        };
        let served = crate::api::Registry::new(config.topics.partitions.max(1) as u32);
        let shared = Arc::new(Shared {
            served: served.clone(),
            metrics: Arc::clone(&metrics),
            engine,
            codec,
            registry,
            producer,
            db,
            status: Arc::clone(&status),
            tally: tally.then(|| Mutex::new(Default::default())),
            inputs,
            config,
        });
        let ctx = Ctx {
            shared: Arc::clone(&shared),
            consumer: OnceLock::new(),
            tasks: Mutex::new(HashMap::new()),
            runtime: tokio::runtime::Handle::current(),
        };
        let consumer: Arc<KafkaConsumer> = Arc::new(
            config::client_config(&shared.config.consumer_properties()).create_with_context(ctx)?,
        );
        let _ = consumer.context().consumer.set(Arc::downgrade(&consumer));
        let names: Vec<&str> = shared.inputs.iter().map(|(t, _)| t.as_str()).collect();
        consumer.subscribe(&names)?;
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let c = Arc::clone(&consumer);
        let sh = Arc::clone(&shared);
        let x12 = if raw_x12 {
            let (cfg, st, stop_rx) = (shared.config.clone(), Arc::clone(&status), stopped.clone());
            let m = Arc::clone(&shared.metrics);
            m.register_inputs([shared.config.topics.raw_x12.as_str()]);
            Some(tokio::spawn(async move {
                // Supervised: a failure (a message whose events or dead letter cannot be
                // produced, a commit refused) ends the consumer without committing past the
                // message; it starts again from the last commit after a pause.
                let mut pause = Duration::from_secs(1);
                loop {
                    let r = x12ingest::run_raw_consumer(
                        cfg.clone(),
                        Arc::clone(&st),
                        Arc::clone(&m),
                        stop_rx.clone(),
                    )
                    .await;
                    match r {
                        Ok(()) => break,
                        Err(e) => {
                            st.delivery_errors.fetch_add(1, Ordering::Relaxed);
                            m.delivery_error();
                            tracing::error!(error = %e, pause_ms = pause.as_millis() as u64, "raw X12 consumer failed; starting again from its last commit");
                        }
                    }
                    let mut stop = stop_rx.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                    pause = (pause * 2).min(Duration::from_secs(60));
                }
            }))
        } else {
            tracing::info!(topic = %shared.config.topics.raw_x12, "raw X12 topic absent: in-stream X12 parsing off");
            None
        };
        let mut endpoints = None;
        let http = match shared
            .config
            .http_listen
            .as_deref()
            .filter(|a| !a.is_empty())
        {
            Some(addr) => {
                let addr: std::net::SocketAddr = addr
                    .parse()
                    .map_err(|e| StartError::Config(format!("http_listen {addr}: {e}")))?;
                let st = Arc::clone(&status);
                let ready: crate::metrics::http::ReadyFn =
                    Arc::new(move || st.ready.load(Ordering::SeqCst));
                let mut stop_rx = stopped.clone();
                let directory = shared
                    .config
                    .api
                    .advertised_url
                    .as_ref()
                    .filter(|_| shared.config.api.enabled)
                    .map(|url| {
                        let me = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
                        let dir = Arc::new(crate::api::routing::Directory::new(me.clone()));
                        let stop_flag = Arc::new(AtomicBool::new(false));
                        let reader = crate::api::routing::read(
                            shared.config.auxiliary_consumer_properties(),
                            shared.config.topics.api_endpoints.clone(),
                            Arc::clone(&dir),
                            Arc::clone(&stop_flag),
                        );
                        let publisher = tokio::spawn(crate::api::routing::publish(
                            shared.producer.clone(),
                            shared.config.topics.api_endpoints.clone(),
                            me,
                            url.clone(),
                            shared.served.clone(),
                            stopped.clone(),
                        ));
                        endpoints = Some(Endpoints {
                            stop: stop_flag,
                            reader,
                            publisher,
                        });
                        dir
                    });
                let app = http_app(&shared, Arc::clone(&metrics), ready, directory)?;
                let api_cfg = &shared.config.api;
                let tls = api_cfg
                    .tls
                    .as_ref()
                    .map(crate::api::server::tls_acceptor)
                    .transpose()
                    .map_err(StartError::Config)?;
                let header_timeout = Duration::from_millis(api_cfg.header_read_timeout_ms);
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| StartError::Config(format!("http_listen {addr}: {e}")))?;
                Some(tokio::spawn(async move {
                    let shutdown = async move {
                        let _ = stop_rx.changed().await;
                    };
                    if let Err(e) =
                        crate::api::server::serve(listener, app, tls, header_timeout, shutdown)
                            .await
                    {
                        tracing::error!(error = %e, "HTTP server stopped");
                    }
                }))
            }
            None => None,
        };
        let reload = watcher.map(|w| {
            let every = Duration::from_millis(shared.config.model_reload_interval_ms);
            tokio::spawn(watch_models(
                w,
                shared.engine.scorer.clone(),
                shared.engine.memberrisk.clone(),
                Arc::clone(&metrics),
                every,
                stopped.clone(),
            ))
        });
        let trim_mib = shared.config.c_heap_trim_mib;
        let trim =
            (trim_mib > 0 && cfg!(all(target_os = "linux", target_env = "gnu"))).then(|| {
                tokio::spawn(trim_c_heap(
                    trim_mib << 20,
                    Arc::clone(&metrics),
                    stopped.clone(),
                ))
            });
        let main = tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = c.recv() => route_stray(&sh, &c, r),
                    _ = stopped.changed() => break,
                }
            }
        });
        Ok(Self {
            consumer,
            ctx_tasks: shared,
            status,
            main,
            x12,
            http,
            reload,
            trim,
            stop,
            metrics,
            served,
            endpoints,
        })
    }

    /// The demo's lifecycle tally and output counts per topic (unless started without them).
    pub fn take_tally(
        &self,
    ) -> Option<(OutputTally, std::collections::BTreeMap<&'static str, u64>)> {
        self.ctx_tasks
            .tally
            .as_ref()
            .and_then(|t| t.lock().ok().map(|mut t| std::mem::take(&mut *t)))
    }

    /// Stops fetching, checkpoints and commits every partition, leaves the group.
    pub async fn shutdown(self) -> Stopped {
        let deadline =
            Instant::now() + Duration::from_millis(self.ctx_tasks.config.shutdown_timeout_ms);
        let _ = self.stop.send(true);
        let _ = self.main.await;
        if let Some(x12) = self.x12 {
            // Its final commit waits for its deliveries: bounded by the deadline, like the
            // partitions' (what it has not committed is read again at the next start).
            let x12_deadline = tokio::time::Instant::from_std(deadline);
            if tokio::time::timeout_at(x12_deadline, x12).await.is_err() {
                tracing::warn!("raw X12 consumer did not stop by the deadline; its last messages are read again at the next start");
            }
        }
        if let Some(http) = self.http {
            let _ = http.await;
        }
        if let Some(reload) = self.reload {
            let _ = reload.await;
        }
        if let Some(trim) = self.trim {
            let _ = trim.await;
        }
        if let Some(e) = self.endpoints {
            // The publisher saw the stop and wrote its tombstone.
            let _ = e.publisher.await;
            e.stop.store(true, Ordering::Relaxed);
            let _ = tokio::task::spawn_blocking(move || e.reader.join()).await;
        }
        let consumer = self.consumer;
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Leaving the group can wait on an unreachable coordinator: bounded by the deadline (what
        // is left of it after the partitions' final checkpoints, at least a second).
        tokio::task::spawn_blocking(move || {
            let unclean = consumer.context().stop_tasks_by(None, deadline);
            let _ = tx.send(unclean);
            consumer.unsubscribe();
            drop(consumer);
        });
        let unclean = rx.await.unwrap_or_default();
        let producer = self.ctx_tasks.producer.clone();
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        let flushed = tokio::task::spawn_blocking(move || {
            use rdkafka::producer::Producer;
            producer.flush(left).is_ok()
        })
        .await
        .unwrap_or(false);
        if !flushed {
            tracing::warn!("the producer still held records at the deadline (outputs after the last checkpoint; the next owner produces them again)");
        }
        if unclean.is_empty() {
            tracing::info!("stopped: every partition checkpointed and committed");
        }
        Stopped { unclean }
    }
}

/// How [`Service::shutdown`] ended.
#[derive(Debug, Default)]
pub struct Stopped {
    /// Partitions whose final checkpoint failed or did not finish in time: the next owner
    /// re-processes what they handled since their last checkpoint.
    pub unclean: Vec<i32>,
}

/// Every [`config::C_HEAP_TRIM_INTERVAL`], samples glibc's free bytes and trims its heap when
/// [`crate::memory::TrimPolicy`] says so (`memory::trim_c_heap`), on a thread of lowered priority
/// so the walk over the arenas does not hold a runtime thread; times each trim.
async fn trim_c_heap(
    min_free: u64,
    metrics: Arc<crate::metrics::Metrics>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut policy = crate::memory::TrimPolicy::new(min_free);
    let mut tick = tokio::time::interval(config::C_HEAP_TRIM_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {},
            _ = stop.changed() => return,
        }
        let Some(free) = crate::memory::c_heap_free() else {
            return;
        };
        if !policy.due(free, Instant::now()) {
            continue;
        }
        let started = Instant::now();
        if background::run_lowered("c-heap-trim", crate::memory::trim_c_heap)
            .await
            .is_ok()
        {
            let took = started.elapsed();
            metrics.c_heap_trimmed(free, took);
            tracing::debug!(
                free_mib = free >> 20,
                took_ms = took.as_millis() as u64,
                "C heap trimmed"
            );
        }
    }
}

/// Polls the model directory every `every` and swaps changed, valid models into the scorer
/// shared by the partition tasks (see `score::reload`); refused files are logged and counted.
async fn watch_models(
    mut watcher: crate::score::reload::ModelWatcher,
    scorer: crate::score::Scorer,
    member_risk: crate::memberrisk::MemberRisk,
    metrics: Arc<crate::metrics::Metrics>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use crate::score::reload::ReloadOutcome;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate: the directory was just read
    loop {
        tokio::select! {
            _ = tick.tick() => {},
            _ = stop.changed() => return,
        }
        let s = scorer.clone();
        let m = member_risk.clone();
        let polled = tokio::task::spawn_blocking(move || {
            let outcomes = watcher.poll(&s, &m);
            (watcher, outcomes)
        })
        .await;
        let Ok((w, outcomes)) = polled else {
            tracing::error!("model directory poll panicked; hot reload stopped");
            return;
        };
        watcher = w;
        for o in outcomes {
            match o {
                ReloadOutcome::Loaded { kind, version } => {
                    metrics.model_reload(kind, true);
                    tracing::info!(model = kind.as_str(), version, "model reloaded");
                }
                ReloadOutcome::Refused { kind, reason } => {
                    metrics.model_reload(kind, false);
                    tracing::error!(
                        model = kind.as_str(),
                        error = %reason,
                        "new model file refused; the previous model keeps scoring"
                    );
                }
            }
        }
    }
}

/// The operations routes, plus the read API when enabled.
fn http_app(
    shared: &Shared,
    metrics: Arc<crate::metrics::Metrics>,
    ready: crate::metrics::http::ReadyFn,
    directory: Option<Arc<crate::api::routing::Directory>>,
) -> Result<axum::Router, StartError> {
    let ops = crate::metrics::http::router(metrics, ready);
    let cfg = &shared.config;
    let api = if cfg.api.enabled {
        let topics = crate::api::dto::SourceTopics {
            claims: cfg.topics.claims.clone(),
            acks: cfg.topics.acks.clone(),
            remits: cfg.topics.remits.clone(),
        };
        let state = crate::api::ApiState::new(
            &cfg.api,
            shared.served.clone(),
            shared.engine.clone(),
            topics,
        )
        .map_err(StartError::Config)?;
        let state = match directory {
            Some(d) => state.with_directory(d),
            None => state,
        };
        Some(crate::api::router(
            Arc::new(state),
            Duration::from_millis(cfg.api.request_timeout_ms),
        ))
    } else {
        None
    };
    Ok(crate::api::full_router(ops, api))
}

/// A record on the consumer's main queue belongs to a partition whose queue was split after it
/// was fetched; hand it to its task.
fn route_stray(
    shared: &Shared,
    consumer: &KafkaConsumer,
    r: Result<rdkafka::message::BorrowedMessage<'_>, KafkaError>,
) {
    use rdkafka::Message;
    let m = match r {
        Ok(m) => m,
        Err(KafkaError::PartitionEOF(_)) => return,
        Err(e) => {
            tracing::warn!(error = %e, "consumer error");
            shared.status.consume_errors.fetch_add(1, Ordering::Relaxed);
            shared.metrics.consume_error();
            return;
        }
    };
    let Some(input) = shared.inputs.iter().position(|(t, _)| t == m.topic()) else {
        return;
    };
    let spec = InputSpec {
        topic: shared.inputs[input].0.clone(),
        stream: shared.inputs[input].1,
    };
    let rec = task::decode_message(shared, &spec, &m);
    let tasks = consumer
        .context()
        .tasks
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    match tasks.get(&m.partition()) {
        Some(h) => {
            let _ = h.control.send(Control::Stray {
                topic: spec.topic,
                message: Box::new(rec),
            });
        }
        None => tracing::warn!(
            topic = m.topic(),
            partition = m.partition(),
            "record for a partition without a task; it will be re-read by its owner"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CoreConfig;
    use crate::score::{reload::ModelWatcher, LogisticModel, Models};

    /// The service's reload task: a new artifact is swapped into the scorer every partition task
    /// shares, a malformed one is counted as refused and leaves the model in use.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_reload_task_swaps_valid_models_and_counts_refused_ones() {
        let dir = tempfile::tempdir().unwrap();
        let shipped = Models::embedded().denial.unwrap();
        let path = dir.path().join("denial.json");
        std::fs::write(&path, serde_json::to_string(shipped.as_ref()).unwrap()).unwrap();
        let (watcher, models) = ModelWatcher::start(dir.path()).unwrap();
        let engine = Engine::with_models(CoreConfig::default(), RefData::shared(), models);
        let metrics = Arc::new(crate::metrics::Metrics::new().unwrap());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(watch_models(
            watcher,
            engine.scorer.clone(),
            engine.memberrisk.clone(),
            Arc::clone(&metrics),
            Duration::from_millis(20),
            stopped,
        ));
        let version = || {
            engine
                .scorer
                .models()
                .denial
                .as_ref()
                .unwrap()
                .version
                .clone()
        };
        let wait_for = |what: &str, ok: &dyn Fn() -> bool| {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !ok() {
                assert!(Instant::now() < deadline, "timed out waiting for {what}");
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        let mut v2 = LogisticModel::clone(&shipped);
        v2.version = "denial-lr-20990101-task".into();
        // Rename over the old file, as the README recommends.
        let tmp = dir.path().join(".denial.json.tmp");
        std::fs::write(&tmp, serde_json::to_string(&v2).unwrap()).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        wait_for("the reload", &|| version() == v2.version);
        std::fs::write(&path, "not a model").unwrap();
        wait_for("the refusal", &|| {
            metrics
                .render()
                .contains("claimwatch_model_reloads_total{model=\"denial\",outcome=\"refused\"} 1")
        });
        assert_eq!(version(), v2.version, "the previous model keeps scoring");
        assert!(metrics
            .render()
            .contains("claimwatch_model_reloads_total{model=\"denial\",outcome=\"loaded\"} 1"));
        let _ = stop.send(true);
        task.await.unwrap();
        assert!(ModelWatcher::start(&dir.path().join("absent")).is_err());
    }
}
