//! One task per assigned partition number: it owns that partition's state and the partition
//! queues of every consumed topic (all co-partitioned), merges them in event-time order, drives the
//! core, produces the outputs and checkpoints.
//!
//! **Order.** Records are taken by `(event time, topic index, offset)` (replay's order) once every
//! input has a buffered record or has reached its end; an input that stays empty for
//! `max_task_idle_ms` while others have data is passed over (latency over strict order, like Kafka
//! Streams' `max.task.idle.ms`). An input still catching up (it has not reached its end since the
//! partition was assigned or rewound) is a backlog whose next fetch is on its way, not a quiet
//! topic: it is waited for up to `max_task_idle_catch_up_ms`, so a restart replays its backlog in
//! replay's order instead of letting the inputs fetched first run event time ahead (which fired
//! retention timers before the slower input's records were read). A bad record sorts at its
//! input's last good event time.
//!
//! **Checkpoint** (every `checkpoint_interval_ms`, on revocation and at shutdown), in this order:
//! 1. await the broker's acknowledgement of every output produced so far (a failed dead-letter
//!    write stops here too);
//! 2. write the changed entries to the changelog topics and await them, then a checkpoint marker
//!    (the input offsets and the watermark) and await it;
//! 3. write the same entries, the input offsets and the watermark to sled in one atomic batch;
//! 4. commit the input offsets to the consumer group.
//!
//! The changelog before sled: a store reopened after a crash or a failed checkpoint holds no
//! change the changelog lacks (its unsent entries would never be sent again), and the marker
//! never reaches the changelog before the entries it stands for.
//!
//! The state's encoding is the part that holds the partition (the rest runs beside it as a job), so
//! an idle task encodes changed entries ahead of time, a chunk at a time; the checkpoint then
//! encodes only what changed again since.
//!
//! An input offset is therefore committed only after its outputs and its state are durable; after
//! a crash the partition resumes from its checkpoint and re-emits at most what came after it, with
//! the same output ids and versions. If an acknowledgement fails, the task rewinds to its last
//! checkpoint (state reloaded from sled, queues seeked back) and retries after a pause.
//!
//! **Exactly-once** (`processing_guarantee = exactly_once`): the task has its own transactional
//! producer, everything it produces between two checkpoints is one transaction, and a checkpoint
//! is 1, then 2 (entries and marker in the transaction), then the offsets into the transaction and its commit, then 3 (sled after the
//! commit, so disk never holds state a commit did not make visible). The task waits for the
//! commit; the sled write runs beside it, and the next checkpoint (or a recovery) waits for that
//! write first. A failure replaces the producer (its registration aborts the open transaction)
//! and rewinds.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::{wire, Ctx, Shared};
use crate::codec::DecodeError;
use crate::core::Partition;
use crate::model::{DeadLetter, InputEvent, InputStream, OutputEvent, Rekeyed};
use crate::state::StateChange;

pub(crate) type PartitionQueue = rdkafka::consumer::stream_consumer::StreamPartitionQueue<Ctx>;

/// Key of the checkpoint marker in the changelog (not a valid claim or member id: ids are
/// printable).
pub const CHECKPOINT_MARKER_KEY: &[u8] = b"\0checkpoint";

/// Header carrying the Kafka timestamp (ms, decimal) of the input message that caused an output.
pub const INPUT_TIMESTAMP_HEADER: &str = "claimwatch.input.timestamp";

/// Largest original payload copied into a dead letter; longer ones are cut (and say so).
pub(crate) const MAX_DEAD_LETTER_PAYLOAD: usize = 512 * 1024;

/// Records buffered per input before the task stops pulling from it (backpressure: librdkafka
/// then stops fetching the partition once its own queue is full).
const BUFFER_CAP: usize = 4096;

/// Capacity an input buffer keeps when a checkpoint trims it ([`trim_buffer`]).
const BUFFER_KEEP: usize = 256;

/// Shrinks an input buffer to what it holds (at least [`BUFFER_KEEP`]) when it has more than
/// twice that in capacity. A `VecDeque` never shrinks by itself, and a full one holds
/// [`BUFFER_CAP`] decoded records of ~470 bytes: the 14 inputs of a partition kept up to 27 MB
/// after their first backlog, idle or not. Called at every checkpoint (once a second).
fn trim_buffer<T>(buf: &mut VecDeque<T>) {
    let keep = buf.len().max(BUFFER_KEEP);
    if buf.capacity() > 2 * keep {
        buf.shrink_to(keep);
    }
}

/// Most records a task processes before it lets the runtime's other tasks run (the consumer's,
/// the producer's delivery futures, other partitions).
const BATCH_RECORDS: usize = 1024;

/// Longest a task processes before it lets the runtime's other tasks run: a tokio task is not
/// preempted, so a long batch on a worker delays every task queued behind it, and that delay is
/// end-to-end latency.
const BATCH_TIME: Duration = Duration::from_millis(2);

/// Changed state entries encoded per step while the partition is idle (about a millisecond).
const STAGE_CHUNK: usize = 256;

/// Exactly-once: how long the blocking transaction calls (init, offsets, commit, abort) may take.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// Messages to a running task.
pub(crate) enum Control {
    /// Checkpoint, commit synchronously and end; the sender learns when it is done.
    /// Final checkpoint and synchronous commit, then stop; answers whether they succeeded.
    Stop(std::sync::mpsc::Sender<bool>),
    /// A record that arrived on the consumer's main queue (fetched before its partition queue was
    /// split off); merged into the input's buffer by offset.
    Stray {
        topic: String,
        message: Box<RecordIn>,
    },
}

/// What the task needs of one consumed record.
pub(crate) struct RecordIn {
    offset: i64,
    /// The input message's Kafka timestamp (ms), copied to the outputs it causes as the
    /// `claimwatch.input.timestamp` header, for end-to-end latency.
    timestamp: Option<i64>,
    event_time: Option<i64>,
    body: Result<Body, DecodeError>,
    /// Original bytes, key and headers of a bad record (for the dead letter).
    raw: Option<Box<RawParts>>,
}

pub(crate) struct RawParts {
    payload: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
}

#[allow(clippy::large_enum_variant)] // the common case; boxing it would allocate per record
enum Body {
    Event(InputEvent),
    /// A record of an internal repartition topic.
    Rekeyed(Rekeyed),
}

/// One consumed topic of the task's partition.
pub(crate) struct InputSpec {
    pub topic: String,
    /// `None` for the internal repartition topic.
    pub stream: Option<InputStream>,
}

struct Buffered {
    rec: RecordIn,
    order_time: i64,
}

struct InputState {
    buf: VecDeque<Buffered>,
    eof: bool,
    /// The input has reached its end at least once since the partition was assigned or rewound:
    /// from then on it is live, and a quiet spell is passed over after `max_task_idle_ms`.
    caught_up: bool,
    /// Event time of the last good record (bad ones sort there).
    last_time: i64,
}

pub(crate) fn decode_message(
    shared: &Shared,
    spec: &InputSpec,
    msg: &BorrowedMessage<'_>,
) -> RecordIn {
    let payload = msg.payload().unwrap_or_default();
    let started = Instant::now();
    let body = match spec.stream {
        Some(stream) => match &shared.registry {
            Some(registry) => wire::decode_input(registry, stream, payload),
            None => wire::decode_input(&shared.codec, stream, payload),
        }
        .map(Body::Event),
        None if spec.topic == shared.config.topics.payer_facts => {
            wire::decode_fact(&shared.codec, payload).map(|f| Body::Rekeyed(Rekeyed::Payer(f)))
        }
        None if spec.topic == shared.config.topics.population_facts => {
            wire::decode_stay_outcome(&shared.codec, payload)
                .map(|f| Body::Rekeyed(Rekeyed::Population(f)))
        }
        None if spec.topic == shared.config.topics.vaccine_doses => {
            wire::decode_dose(&shared.codec, payload).map(|d| Body::Rekeyed(Rekeyed::Vaccine(d)))
        }
        None if spec.topic == shared.config.topics.cash_facts => {
            wire::decode_cash_fact(&shared.codec, payload).map(|f| Body::Rekeyed(Rekeyed::Cash(f)))
        }
        None if spec.topic == shared.config.topics.provider_facts => {
            wire::decode_provider_fact(&shared.codec, payload)
                .map(|f| Body::Rekeyed(Rekeyed::Provider(f)))
        }
        None if spec.topic == shared.config.topics.member_paid => {
            wire::decode_member_paid(&shared.codec, payload)
                .map(|p| Body::Rekeyed(Rekeyed::MemberPaid(p)))
        }
        None if spec.topic == shared.config.topics.pmpm_facts => {
            wire::decode_pmpm_fact(&shared.codec, payload).map(|f| Body::Rekeyed(Rekeyed::Pmpm(f)))
        }
        None if spec.topic == shared.config.topics.utilization_facts => {
            wire::decode_utilization_fact(&shared.codec, payload)
                .map(|f| Body::Rekeyed(Rekeyed::Utilization(f)))
        }
        None => wire::decode_cost(&shared.codec, payload).map(|c| Body::Rekeyed(Rekeyed::Cost(c))),
    };
    shared
        .metrics
        .observe_stage(crate::metrics::Stage::Decode, started.elapsed());
    let event_time = match &body {
        Ok(Body::Event(e)) => Some(e.event_time()),
        Ok(Body::Rekeyed(r)) => Some(r.event_time()),
        Err(_) => None,
    };
    let raw = body.is_err().then(|| {
        let mut headers = Vec::new();
        if let Some(h) = msg.headers() {
            for hd in h.iter() {
                headers.push((hd.key.to_owned(), hd.value.unwrap_or_default().to_vec()));
            }
        }
        Box::new(RawParts {
            payload: payload.to_vec(),
            headers,
        })
    });
    RecordIn {
        offset: msg.offset(),
        timestamp: msg.timestamp().to_millis(),
        event_time,
        body,
        raw,
    }
}

#[derive(Debug, thiserror::Error)]
enum TaskError {
    #[error("delivery to the broker failed: {0}")]
    Delivery(KafkaError),
    #[error("delivery cancelled (producer closed)")]
    Cancelled,
    #[error("state store: {0}")]
    State(#[from] crate::state::StateError),
    #[error("commit: {0}")]
    Commit(KafkaError),
    #[error("transaction: {0}")]
    Transaction(KafkaError),
    #[error("the consumer has no group metadata for the transaction's offsets")]
    NoGroupMetadata,
}

pub(crate) struct Task {
    shared: Arc<Shared>,
    consumer: Arc<super::KafkaConsumer>,
    partition: Partition,
    specs: Vec<InputSpec>,
    queues: Vec<PartitionQueue>,
    inputs: Vec<InputState>,
    control: mpsc::UnboundedReceiver<Control>,
    pending: Vec<DeliveryFuture>,
    out: Vec<OutputEvent>,
    costs: Vec<Rekeyed>,
    /// PMPM and provider facts of the current batch, sent summed at its end.
    pmpm: Vec<crate::model::PmpmFact>,
    provider: Vec<crate::model::ProviderFact>,
    buf: Vec<u8>,
    /// Records handled since the last checkpoint.
    unsaved: u64,
    /// The partition's retention counts (`PartitionStats::expired`) last reported.
    expired_reported: [u64; 5],
    /// `PartitionStats::enrolment_dropped` last reported.
    enrolment_dropped_reported: u64,
    /// `PartitionStats::duplicates` last reported.
    duplicates_reported: u64,
    idle_since: Option<Instant>,
    /// An output that could not even be queued; the next checkpoint fails with it.
    failed_enqueue: Option<KafkaError>,
    /// Per consumed topic, resolved once.
    topic_metrics: Vec<crate::metrics::TopicMetrics>,
    /// The checkpoint job in flight, if any.
    in_flight: Option<tokio::task::JoinHandle<Result<(), TaskError>>>,
    /// Exactly-once: the partition's transactional producer (created when the task starts), and
    /// whether its transaction is open.
    txn: Option<FutureProducer>,
    txn_open: bool,
}

impl Drop for Task {
    /// A task dropped with a checkpoint job still running (aborted past the stop deadline, its
    /// partition about to move) aborts the job: left running, it could write changelog entries and
    /// a marker after the next owner's, and commit older offsets.
    fn drop(&mut self) {
        if let Some(job) = self.in_flight.take() {
            job.abort();
        }
    }
}

impl Task {
    pub(crate) fn new(
        shared: Arc<Shared>,
        consumer: Arc<super::KafkaConsumer>,
        partition: Partition,
        specs: Vec<InputSpec>,
        queues: Vec<PartitionQueue>,
        control: mpsc::UnboundedReceiver<Control>,
    ) -> Self {
        let topic_metrics = specs
            .iter()
            .map(|s| shared.metrics.topic(&s.topic))
            .collect();
        let inputs = specs
            .iter()
            .map(|_| InputState {
                buf: VecDeque::new(),
                eof: false,
                caught_up: false,
                last_time: i64::MIN,
            })
            .collect();
        let mut task = Self {
            shared,
            consumer,
            partition,
            specs,
            queues,
            inputs,
            control,
            pending: Vec::new(),
            out: Vec::with_capacity(16),
            costs: Vec::with_capacity(4),
            pmpm: Vec::new(),
            provider: Vec::new(),
            buf: Vec::with_capacity(4096),
            unsaved: 0,
            expired_reported: [0; 5],
            enrolment_dropped_reported: 0,
            duplicates_reported: 0,
            idle_since: None,
            failed_enqueue: None,
            topic_metrics,
            in_flight: None,
            txn: None,
            txn_open: false,
        };
        task.reported_from_state();
        task
    }

    /// The partition's counters come back with its state (they count from the start of the
    /// state): only what is counted from here on is new to the metrics.
    fn reported_from_state(&mut self) {
        let stats = self.partition.stats();
        for ((_, now), last) in stats
            .expired()
            .into_iter()
            .zip(self.expired_reported.iter_mut())
        {
            *last = now;
        }
        self.enrolment_dropped_reported = stats.enrolment_dropped;
        self.duplicates_reported = stats.duplicates;
    }

    fn exactly_once(&self) -> bool {
        self.shared.config.processing_guarantee == super::config::ProcessingGuarantee::ExactlyOnce
    }

    /// The producer of this task's records: its own transactional one, else the service's.
    fn producer(&self) -> &FutureProducer {
        self.txn.as_ref().unwrap_or(&self.shared.producer)
    }

    /// Exactly-once: creates the partition's transactional producer and registers its id with
    /// the coordinator (which fences a previous owner of the partition), retrying while the
    /// broker is unavailable. False if the task was stopped meanwhile.
    async fn init_transactions(&mut self) -> bool {
        let props = self
            .shared
            .config
            .transactional_producer_properties(self.id());
        let mut pause = Duration::from_millis(500);
        loop {
            let producer = super::config::client_config(&props).create::<FutureProducer>();
            let r = match producer {
                Ok(p) => {
                    let init = p.clone();
                    match tokio::task::spawn_blocking(move || init.init_transactions(TXN_TIMEOUT))
                        .await
                    {
                        Ok(Ok(())) => Ok(p),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(e) => Err(e.to_string()),
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            match r {
                Ok(p) => {
                    tracing::info!(partition = self.id(), "transactional producer ready");
                    self.txn = Some(p);
                    self.txn_open = false;
                    return true;
                }
                Err(e) => {
                    tracing::warn!(partition = self.id(), error = %e, "initialising the transactional producer failed; retrying");
                }
            }
            tokio::select! {
                c = self.control.recv() => {
                    if !self.control_or_end(c).await {
                        return false;
                    }
                }
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(10));
        }
    }

    /// Exactly-once: opens the partition's transaction before its first record since the last
    /// commit.
    fn ensure_transaction(&mut self) -> Result<(), KafkaError> {
        if let (Some(p), false) = (&self.txn, self.txn_open) {
            p.begin_transaction()?;
            self.txn_open = true;
        }
        Ok(())
    }

    fn id(&self) -> i32 {
        self.partition.id()
    }

    /// Runs until stopped.
    pub(crate) async fn run(mut self) {
        if self.exactly_once() && !self.init_transactions().await {
            return;
        }
        let every = Duration::from_millis(self.shared.config.checkpoint_interval_ms);
        let mut next_checkpoint = tokio::time::Instant::now() + every;
        loop {
            self.pull_ready();
            let processed = self.process_batch();
            if tokio::time::Instant::now() >= next_checkpoint {
                next_checkpoint = tokio::time::Instant::now() + every;
                if let Err(e) = self.checkpoint(CommitMode::Async).await {
                    if !self.recover(e).await {
                        return;
                    }
                    continue;
                }
            }
            // Control messages first: a stop must not wait behind a busy stream.
            while let Ok(c) = self.control.try_recv() {
                if self.handle_control(c).await {
                    return;
                }
            }
            if processed > 0 {
                tokio::task::yield_now().await;
                continue;
            }
            // Idle: encode changed state ahead of the checkpoint, a chunk at a time, looking for
            // records between chunks, so the checkpoint holds the partition only for what
            // changed since (its `snapshot` stage).
            if self.partition.stage_changes(STAGE_CHUNK) > 0 {
                tokio::task::yield_now().await;
                continue;
            }
            if !self.await_work(next_checkpoint).await {
                return;
            }
        }
    }

    /// Takes whatever the partition queues hold without waiting.
    fn pull_ready(&mut self) {
        for i in 0..self.queues.len() {
            while self.inputs[i].buf.len() < BUFFER_CAP {
                let Some(r) = self.queues[i].recv().now_or_never() else {
                    break;
                };
                let rec = match r {
                    Ok(m) => Some(decode_message(&self.shared, &self.specs[i], &m)),
                    Err(e) => {
                        self.on_queue_error(i, e);
                        None
                    }
                };
                if let Some(rec) = rec {
                    self.push(i, rec);
                }
            }
        }
    }

    /// Gives back the input buffers' capacity that a burst left behind (see [`trim_buffer`]).
    fn trim_buffers(&mut self) {
        for input in &mut self.inputs {
            trim_buffer(&mut input.buf);
        }
    }

    fn on_queue_error(&mut self, i: usize, e: KafkaError) {
        match e {
            KafkaError::PartitionEOF(_) => {
                self.inputs[i].eof = true;
                self.inputs[i].caught_up = true;
            }
            e => {
                // Fetch errors are retried by librdkafka; report and keep going.
                tracing::warn!(partition = self.id(), topic = %self.specs[i].topic, error = %e, "consume error");
                self.shared
                    .status
                    .consume_errors
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn push(&mut self, i: usize, rec: RecordIn) {
        let input = &mut self.inputs[i];
        input.eof = false;
        if let Some(t) = rec.event_time {
            input.last_time = input.last_time.max(t);
        }
        let order_time = rec.event_time.unwrap_or(input.last_time);
        // Records normally arrive in offset order; a stray from the main queue may not.
        match input.buf.back() {
            Some(b) if b.rec.offset >= rec.offset => {
                if input.buf.iter().any(|b| b.rec.offset == rec.offset) {
                    return;
                }
                let at = input.buf.partition_point(|b| b.rec.offset < rec.offset);
                input.buf.insert(at, Buffered { rec, order_time });
            }
            _ => input.buf.push_back(Buffered { rec, order_time }),
        }
    }

    /// How long the merge waits for the inputs that have nothing buffered and have not reached
    /// their end: `max_task_idle_catch_up_ms` if one of them is still catching up, else
    /// `max_task_idle_ms`.
    fn idle_wait(&self) -> Duration {
        let config = &self.shared.config;
        let catching_up = self
            .inputs
            .iter()
            .any(|i| i.buf.is_empty() && !i.eof && !i.caught_up);
        let ms = if catching_up {
            config
                .max_task_idle_catch_up_ms
                .max(config.max_task_idle_ms)
        } else {
            config.max_task_idle_ms
        };
        Duration::from_millis(ms)
    }

    /// The input whose head comes first, if the merge may proceed.
    fn next_input(&mut self) -> Option<usize> {
        let all_ready = self.inputs.iter().all(|i| !i.buf.is_empty() || i.eof);
        let any = self.inputs.iter().any(|i| !i.buf.is_empty());
        if !any {
            self.idle_since = None;
            return None;
        }
        if !all_ready {
            let idle = self.idle_wait();
            let since = *self.idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() < idle {
                return None;
            }
            // Passed over: an input that is still empty after the catch-up wait (its leader
            // unreachable, say) is treated as live from here on, so the next gap costs
            // `max_task_idle_ms`, not the catch-up wait again.
            for input in self.inputs.iter_mut() {
                if input.buf.is_empty() && !input.eof {
                    input.caught_up = true;
                }
            }
        } else {
            self.idle_since = None;
        }
        (0..self.inputs.len())
            .filter(|i| !self.inputs[*i].buf.is_empty())
            .min_by_key(|i| {
                let h = &self.inputs[*i].buf[0];
                (h.order_time, *i, h.rec.offset)
            })
    }

    /// Processes records while the merge allows, up to a batch of [`BATCH_RECORDS`] or
    /// [`BATCH_TIME`], whichever comes first.
    fn process_batch(&mut self) -> usize {
        let started = Instant::now();
        let mut n = 0;
        while n < BATCH_RECORDS && (n % 16 != 0 || started.elapsed() < BATCH_TIME) {
            let Some(i) = self.next_input() else { break };
            let Some(b) = self.inputs[i].buf.pop_front() else {
                break;
            };
            self.process(i, b);
            n += 1;
        }
        self.flush_summed();
        n
    }

    fn process(&mut self, i: usize, b: Buffered) {
        let shared = Arc::clone(&self.shared);
        let engine = &shared.engine;
        let topic = self.specs[i].topic.as_str();
        let rec = b.rec;
        let input_ts = rec.timestamp;
        self.unsaved += 1;
        if self.specs[i].stream.is_some() {
            shared.status.consumed.fetch_add(1, Ordering::Relaxed);
        } else {
            shared.status.rekeyed.fetch_add(1, Ordering::Relaxed);
        }
        self.topic_metrics[i].consumed.inc();
        let core_started = Instant::now();
        match rec.body {
            Ok(Body::Event(event)) => {
                self.partition.apply(
                    engine,
                    &event,
                    topic,
                    rec.offset,
                    &mut self.out,
                    &mut self.costs,
                );
            }
            Ok(Body::Rekeyed(r)) => {
                let before = self.partition.stats().monitor_facts_dropped;
                let late = late_drops(self.partition.stats());
                self.partition.apply_rekeyed(engine, &r, &mut self.out);
                self.partition.take_rekeyed(&mut self.costs);
                let now = late_drops(self.partition.stats());
                if now != late {
                    shared.metrics.observe_late_drops(
                        now.0 - late.0,
                        now.1 - late.1,
                        now.2 - late.2,
                    );
                }
                let after = self.partition.stats().monitor_facts_dropped;
                if after != before {
                    let mut delta = [[0u64; 6]; 2];
                    for (g, row) in delta.iter_mut().enumerate() {
                        for (p, d) in row.iter_mut().enumerate() {
                            *d = after[g][p] - before[g][p];
                        }
                    }
                    shared.metrics.observe_monitor_dropped(&delta);
                }
                self.partition.note_offset(topic, rec.offset);
            }
            Err(e) => {
                self.partition.note_offset(topic, rec.offset);
                let raw = rec.raw.map(|r| *r).unwrap_or(RawParts {
                    payload: Vec::new(),
                    headers: Vec::new(),
                });
                self.dead_letter(i, rec.offset, b.order_time, &e, raw);
            }
        }
        shared
            .metrics
            .observe_stage(crate::metrics::Stage::Core, core_started.elapsed());
        let outs = std::mem::take(&mut self.out);
        if !outs.is_empty() {
            let ts = input_ts.map(|t| t.to_string());
            for o in &outs {
                let headers = ts.as_deref().map(|t| {
                    OwnedHeaders::new_with_capacity(1).insert(Header {
                        key: INPUT_TIMESTAMP_HEADER,
                        value: Some(t),
                    })
                });
                self.send_output(o, headers);
            }
        }
        self.out = outs;
        self.out.clear();
        let mut costs = std::mem::take(&mut self.costs);
        for c in costs.drain(..) {
            match c {
                // Summed per batch: see `flush_summed`.
                Rekeyed::Pmpm(f) => self.pmpm.push(f),
                Rekeyed::Provider(f) => self.provider.push(f),
                c => self.send_cost(&c),
            }
        }
        self.costs = costs;
    }

    /// Sends the batch's additive facts summed: the PMPM facts as one (`enrolment::coalesce`:
    /// the population flow is a single key, and a member's change alone is two facts), the
    /// provider facts as one per key, day and source (`providers::facts::coalesce`). Called at
    /// the end of every batch, so nothing waits here across a checkpoint.
    fn flush_summed(&mut self) {
        if let Some(f) = crate::enrolment::coalesce(&self.pmpm) {
            self.send_cost(&Rekeyed::Pmpm(f));
        }
        self.pmpm.clear();
        if !self.provider.is_empty() {
            for f in crate::providers::facts::coalesce(&self.provider) {
                self.send_cost(&Rekeyed::Provider(f));
            }
            self.provider.clear();
        }
    }

    fn dead_letter(
        &mut self,
        i: usize,
        offset: i64,
        order_time: i64,
        e: &DecodeError,
        raw: RawParts,
    ) {
        let status = &self.shared.status;
        status.dead_letters.fetch_add(1, Ordering::Relaxed);
        let topic = self.specs[i].topic.clone();
        tracing::debug!(partition = self.id(), %topic, offset, kind = e.code(), error = %e, "dead-lettered input record");
        let mut message = e.to_string();
        let mut payload = raw.payload;
        if payload.len() > MAX_DEAD_LETTER_PAYLOAD {
            message.push_str(&format!(
                " (payload of {} bytes cut to {MAX_DEAD_LETTER_PAYLOAD})",
                payload.len()
            ));
            payload.truncate(MAX_DEAD_LETTER_PAYLOAD);
        }
        let dl = OutputEvent::DeadLetter(DeadLetter {
            source: topic.clone(),
            partition: self.id(),
            offset,
            error_kind: e.code().to_owned(),
            message,
            payload,
            event_time: if order_time == i64::MIN {
                0
            } else {
                order_time
            },
        });
        let mut headers = OwnedHeaders::new();
        for (k, v) in &raw.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let partition = self.id().to_string();
        let offset_s = offset.to_string();
        for (k, v) in [
            ("claimwatch.source.topic", topic.as_str()),
            ("claimwatch.source.partition", partition.as_str()),
            ("claimwatch.source.offset", offset_s.as_str()),
            ("claimwatch.error.kind", e.code()),
        ] {
            headers = headers.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        self.send_output(&dl, Some(headers));
    }

    fn send_output(&mut self, event: &OutputEvent, headers: Option<OwnedHeaders>) {
        let shared = Arc::clone(&self.shared);
        let topic = shared.config.topics.output(event.topic());
        let format = shared.config.format_of(topic);
        self.buf.clear();
        let started = Instant::now();
        let encoded = wire::encode_output(&shared.codec, event, format, &mut self.buf);
        shared
            .metrics
            .observe_stage(crate::metrics::Stage::Encode, started.elapsed());
        if let Err(e) = encoded {
            // Our own outputs always fit our own schemas (tested); this is a defect.
            tracing::error!(topic, error = %e, "output does not fit its schema; skipped");
            return;
        }
        if let Some(t) = &shared.tally {
            if let Ok(mut t) = t.lock() {
                t.0.observe(event);
                *t.1.entry(event.topic()).or_default() += 1;
            }
        }
        let payload = std::mem::take(&mut self.buf);
        self.produce(topic, event.key().as_bytes(), Some(&payload), None, headers);
        self.buf = payload;
        shared.status.produced.fetch_add(1, Ordering::Relaxed);
        shared.metrics.observe_output(event);
    }

    /// Sends a re-keyed record to its internal topic, in the partition that owns its key.
    fn send_cost(&mut self, record: &Rekeyed) {
        let shared = Arc::clone(&self.shared);
        self.buf.clear();
        let started = Instant::now();
        let topic = match record {
            Rekeyed::Cost(c) => {
                wire::encode_cost(&shared.codec, c, &mut self.buf);
                &shared.config.topics.encounter_cost
            }
            Rekeyed::Payer(f) => {
                wire::encode_fact(&shared.codec, f, &mut self.buf);
                &shared.config.topics.payer_facts
            }
            Rekeyed::Population(f) => {
                wire::encode_stay_outcome(&shared.codec, f, &mut self.buf);
                &shared.config.topics.population_facts
            }
            Rekeyed::Vaccine(d) => {
                wire::encode_dose(&shared.codec, d, &mut self.buf);
                &shared.config.topics.vaccine_doses
            }
            Rekeyed::Cash(f) => {
                wire::encode_cash_fact(&shared.codec, f, &mut self.buf);
                &shared.config.topics.cash_facts
            }
            Rekeyed::Provider(f) => {
                wire::encode_provider_fact(&shared.codec, f, &mut self.buf);
                &shared.config.topics.provider_facts
            }
            Rekeyed::MemberPaid(p) => {
                wire::encode_member_paid(&shared.codec, p, &mut self.buf);
                &shared.config.topics.member_paid
            }
            Rekeyed::Pmpm(f) => {
                wire::encode_pmpm_fact(&shared.codec, f, &mut self.buf);
                &shared.config.topics.pmpm_facts
            }
            Rekeyed::Utilization(f) => {
                wire::encode_utilization_fact(&shared.codec, f, &mut self.buf);
                &shared.config.topics.utilization_facts
            }
        };
        shared
            .metrics
            .observe_stage(crate::metrics::Stage::Encode, started.elapsed());
        let key = record.key();
        let target = crate::core::partition_for(key, shared.config.core.partitions);
        let payload = std::mem::take(&mut self.buf);
        self.produce(topic, key.as_bytes(), Some(&payload), Some(target), None);
        self.buf = payload;
    }

    /// Queues one record; waits (without blocking the thread) while librdkafka's queue is full.
    fn produce(
        &mut self,
        topic: &str,
        key: &[u8],
        payload: Option<&[u8]>,
        partition: Option<i32>,
        headers: Option<OwnedHeaders>,
    ) {
        let started = Instant::now();
        self.enqueue(topic, key, payload, partition, headers);
        self.shared
            .metrics
            .observe_stage(crate::metrics::Stage::Produce, started.elapsed());
    }

    fn enqueue(
        &mut self,
        topic: &str,
        key: &[u8],
        payload: Option<&[u8]>,
        partition: Option<i32>,
        headers: Option<OwnedHeaders>,
    ) {
        if let Err(e) = self.ensure_transaction() {
            tracing::error!(topic, error = %e, "could not open the transaction");
            self.failed_enqueue = Some(e);
            return;
        }
        let mut attempt = 0u32;
        loop {
            let mut record = FutureRecord::<[u8], [u8]>::to(topic).key(key);
            if let Some(p) = payload {
                record = record.payload(p);
            }
            if let Some(p) = partition {
                record = record.partition(p);
            }
            if let Some(h) = headers.clone() {
                record = record.headers(h);
            }
            match self.producer().send_result(record) {
                Ok(f) => {
                    self.pending.push(f);
                    return;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // The producer's own thread delivers; give it a moment. Blocking here is the
                    // backpressure: the task stops consuming while the producer is saturated.
                    // `block_in_place` lets the runtime move its other tasks (the signal handler,
                    // the HTTP server, the other partitions) off this worker meanwhile.
                    attempt += 1;
                    let pause = Duration::from_micros(200 * u64::from(attempt.min(50)));
                    tokio::task::block_in_place(|| std::thread::sleep(pause));
                }
                Err((e, _)) => {
                    // Not retriable at enqueue time (e.g. record too large): a failed delivery
                    // that the next checkpoint reports, so the offset is not committed.
                    tracing::error!(topic, error = %e, "could not enqueue output");
                    self.shared
                        .status
                        .delivery_errors
                        .fetch_add(1, Ordering::Relaxed);
                    self.failed_enqueue = Some(e);
                    return;
                }
            }
        }
    }

    /// Waits for input, a control message or the next checkpoint. False when the task must end.
    async fn await_work(&mut self, next_checkpoint: tokio::time::Instant) -> bool {
        let idle_wait = self.idle_wait();
        let idle_deadline = self
            .idle_since
            .map(|s| tokio::time::Instant::from_std(s + idle_wait));
        let wake_at = match idle_deadline {
            Some(d) => d.min(next_checkpoint),
            None => next_checkpoint,
        };
        #[allow(clippy::large_enum_variant)] // lives for one wake-up on the stack
        enum Woke {
            Record(usize, Result<RecordIn, KafkaError>),
            Control(Option<Control>),
            Timer,
        }
        let woke = {
            let shared = &self.shared;
            let specs = &self.specs;
            let inputs = &self.inputs;
            let control = &mut self.control;
            let waits: Vec<_> = self
                .queues
                .iter()
                .enumerate()
                .filter(|(i, _)| inputs[*i].buf.len() < BUFFER_CAP)
                .map(|(i, q)| {
                    async move {
                        let r = q.recv().await;
                        (i, r.map(|m| decode_message(shared, &specs[i], &m)))
                    }
                    .boxed()
                })
                .collect();
            if waits.is_empty() {
                tokio::select! {
                    c = control.recv() => Woke::Control(c),
                    _ = tokio::time::sleep_until(wake_at) => Woke::Timer,
                }
            } else {
                tokio::select! {
                    ((i, r), _, _) = futures::future::select_all(waits) => Woke::Record(i, r),
                    c = control.recv() => Woke::Control(c),
                    _ = tokio::time::sleep_until(wake_at) => Woke::Timer,
                }
            }
        };
        match woke {
            Woke::Record(i, Ok(rec)) => self.push(i, rec),
            Woke::Record(i, Err(e)) => self.on_queue_error(i, e),
            Woke::Control(c) => return self.control_or_end(c).await,
            Woke::Timer => {
                self.maybe_flush_population();
                self.maybe_advance_wall_clock();
            }
        }
        true
    }

    async fn control_or_end(&mut self, c: Option<Control>) -> bool {
        match c {
            Some(c) => !self.handle_control(c).await,
            // The service dropped the handle: end without a final checkpoint.
            None => false,
        }
    }

    /// True when the task ends.
    async fn handle_control(&mut self, c: Control) -> bool {
        match c {
            Control::Stop(done) => {
                // One attempt. A failed checkpoint has already given up what it failed on (an
                // output that was not delivered, a job whose writes did not all land): a second
                // attempt would commit the offsets past it. The offsets stay at the last good
                // checkpoint and the next owner processes again from there.
                let clean = match self.checkpoint(CommitMode::Sync).await {
                    Ok(()) => true,
                    Err(e) => {
                        self.shared.metrics.checkpoint_failed();
                        tracing::error!(partition = self.id(), error = %e, "final checkpoint failed; the next owner resumes from the previous one");
                        false
                    }
                };
                if let Ok(mut s) = self.shared.status.partition_stats.lock() {
                    s.insert(self.id(), self.partition.stats().clone());
                }
                let _ = done.send(clean);
                true
            }
            Control::Stray { topic, message } => {
                if let Some(i) = self.specs.iter().position(|s| s.topic == topic) {
                    self.push(i, *message);
                }
                false
            }
        }
    }

    /// With every input (internal topics included) at its end, emits the population groups
    /// changed since their last emission: the population flow's fallback on a quiet stream (in
    /// replay, the end of the input).
    fn maybe_flush_population(&mut self) {
        if !self.inputs.iter().all(|i| i.eof && i.buf.is_empty()) {
            return;
        }
        let shared = Arc::clone(&self.shared);
        self.partition
            .flush_population(&shared.engine, &mut self.out);
        self.partition.flush_cash(&shared.engine, &mut self.out);
        self.partition
            .refresh_provider_kpis(&shared.engine, &mut self.out);
        if self.out.is_empty() {
            return;
        }
        self.unsaved += 1;
        let outs = std::mem::take(&mut self.out);
        for o in &outs {
            self.send_output(o, None);
        }
        self.out = outs;
        self.out.clear();
    }

    /// With `idle_wall_clock_lateness_ms` set and every input at its end, moves event time to
    /// wall-clock time minus the lateness so timers fire on a quiet stream.
    fn maybe_advance_wall_clock(&mut self) {
        let Some(lateness) = self.shared.config.idle_wall_clock_lateness_ms else {
            return;
        };
        if !self.inputs.iter().all(|i| i.eof && i.buf.is_empty()) {
            return;
        }
        let now = chrono::Utc::now().timestamp_millis() - lateness as i64;
        if now > self.partition.watermark() {
            let shared = Arc::clone(&self.shared);
            self.partition
                .advance_to(&shared.engine, now, &mut self.out, &mut self.costs);
            self.partition
                .advance_payer_flow_to(&shared.engine, now, &mut self.out);
            self.unsaved += 1;
            let outs = std::mem::take(&mut self.out);
            for o in &outs {
                self.send_output(o, None);
            }
            let costs = std::mem::take(&mut self.costs);
            for c in &costs {
                self.send_cost(c);
            }
        }
    }

    /// Makes everything handled so far durable and commits it (see the module docs). The state is
    /// snapshotted here; waiting for acknowledgements, the sled write, the changelog and the commit
    /// run as a job beside the task, which goes on processing. One job at a time: the next
    /// checkpoint first waits for the previous one. With [`CommitMode::Sync`] it also waits for
    /// its own job (revocation, shutdown).
    async fn checkpoint(&mut self, mode: CommitMode) -> Result<(), TaskError> {
        self.trim_buffers();
        // Awaited in place (not taken): a task aborted meanwhile (a stop past its deadline)
        // aborts its job on drop instead of leaving it to write after the next owner.
        if let Some(job) = self.in_flight.as_mut() {
            let r = job.await;
            self.in_flight = None;
            r.map_err(|_| TaskError::Cancelled)??;
        }
        if let Some(e) = self.failed_enqueue.take() {
            return Err(TaskError::Delivery(e));
        }
        if self.unsaved == 0 && self.pending.is_empty() {
            // Nothing new since the last checkpoint: the durable state is current, which is what
            // the last-success time tells (an idle partition is not a stale one).
            self.shared.metrics.checkpoint_current();
            return Ok(());
        }
        let exactly_once = self.txn.is_some();
        if exactly_once {
            // The offsets go into the transaction even when nothing was produced.
            self.ensure_transaction().map_err(TaskError::Transaction)?;
        }
        let snapshot_started = Instant::now();
        let prepared =
            tokio::task::block_in_place(|| self.partition.prepare_checkpoint(&BTreeMap::new()))?;
        // The model monitoring windows as of this checkpoint (a scrape merges the partitions').
        self.shared
            .metrics
            .set_partition_monitor(self.id(), self.partition.score_tables().monitor.snapshot());
        let changes = self.partition.take_changes();
        self.unsaved = 0;
        self.report_state_entries();
        self.shared
            .metrics
            .observe_stage(crate::metrics::Stage::Snapshot, snapshot_started.elapsed());
        let job = CheckpointJob {
            shared: Arc::clone(&self.shared),
            consumer: Arc::clone(&self.consumer),
            partition: self.id(),
            outputs: std::mem::take(&mut self.pending),
            prepared,
            changes,
            mode,
            started: Instant::now(),
            producer: self.producer().clone(),
            exactly_once,
        };
        if exactly_once {
            // The next records belong to the next transaction, which opens after this commit;
            // the sled write that follows the commit runs beside the task (waited for here only
            // on revocation and shutdown).
            let tail = tokio::spawn(job.run())
                .await
                .map_err(|_| TaskError::Cancelled)??;
            self.txn_open = false;
            match (mode, tail) {
                (CommitMode::Sync, Some(write)) => {
                    write.await.map_err(|_| TaskError::Cancelled)??;
                }
                (_, tail) => self.in_flight = tail,
            }
            return Ok(());
        }
        let job = self
            .in_flight
            .insert(tokio::spawn(async move { job.run().await.map(|_| ()) }));
        if matches!(mode, CommitMode::Sync) {
            let r = job.await;
            self.in_flight = None;
            r.map_err(|_| TaskError::Cancelled)??;
        }
        Ok(())
    }

    /// Keys held in each of the partition's tables (`claimwatch_state_entries`), at each
    /// checkpoint: `len` of a table is a sum over its shards, cheap at this rate; and, since the
    /// last report, the entries that left by retention (`claimwatch_state_expired_total`), the
    /// enrolment records dropped as too late (`claimwatch_pmpm_enrollment_dropped_total`) and the
    /// input records ignored as repeats (`claimwatch_pipeline_duplicates_total`).
    fn report_state_entries(&mut self) {
        let (p, m) = (&self.partition, &self.shared.metrics);
        for (table, n) in p.table_sizes() {
            m.set_state_entries(table, self.id(), n);
        }
        for ((table, now), last) in p
            .stats()
            .expired()
            .into_iter()
            .zip(self.expired_reported.iter_mut())
        {
            let new = advance(last, now);
            if new > 0 {
                m.state_expired(table, new);
            }
        }
        let dropped = advance(
            &mut self.enrolment_dropped_reported,
            p.stats().enrolment_dropped,
        );
        if dropped > 0 {
            m.observe_enrollment_dropped(dropped);
        }
        let repeats = advance(&mut self.duplicates_reported, p.stats().duplicates);
        if repeats > 0 {
            m.observe_duplicates(repeats);
        }
    }

    /// After a failed checkpoint: drop what is not durable, reload the last checkpoint and read
    /// again from its offsets. False when the task was stopped meanwhile.
    async fn recover(&mut self, e: TaskError) -> bool {
        let status = &self.shared.status;
        status.recoveries.fetch_add(1, Ordering::Relaxed);
        self.shared.metrics.checkpoint_failed();
        self.shared.metrics.recovery();
        tracing::error!(partition = self.id(), error = %e, "checkpoint failed; rewinding to the last durable checkpoint");
        if let Some(job) = self.in_flight.take() {
            if self.txn.is_some() {
                // Exactly-once: only the sled write of a committed transaction can be in flight.
                // Let it finish, so the state reopened below is the committed one (reopening an
                // older one would process the committed inputs again, in a new transaction).
                if let Ok(Err(e)) = job.await {
                    tracing::error!(partition = self.id(), error = %e, "state write after a commit failed; the reopened state is older than that commit");
                }
            } else {
                job.abort();
            }
        }
        self.pending.clear();
        self.unsaved = 0;
        if self.txn.is_some() {
            self.reset_transactions().await;
        }
        let id = self.id();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let reopened = tokio::task::block_in_place(|| {
                let store = self.shared.db.partition(id)?;
                let mut p = Partition::open(id, store, &self.shared.engine)?;
                p.capture_changes();
                Ok::<_, crate::state::StateError>(p)
            });
            match reopened {
                Ok(p) => {
                    // The reopened state has new hot views: readers must follow.
                    self.shared.served.ready(id, crate::api::Views::of(&p));
                    self.partition = p;
                    self.reported_from_state();
                    break;
                }
                Err(e) => tracing::error!(partition = id, error = %e, "reopening state failed"),
            }
        }
        for (i, spec) in self.specs.iter().enumerate() {
            self.inputs[i].buf.clear();
            self.inputs[i].eof = false;
            self.inputs[i].caught_up = false;
            let offset = self
                .partition
                .offsets()
                .get(&spec.topic)
                .map_or(Offset::Beginning, |o| Offset::Offset(*o));
            // Until the seek holds: without it the queue would go on from where it was, past
            // records the reopened state never saw, and the next checkpoint would commit them.
            let mut pause = Duration::from_secs(1);
            while let Err(e) = self
                .consumer
                .seek(&spec.topic, id, offset, Duration::from_secs(10))
            {
                tracing::error!(partition = id, topic = %spec.topic, error = %e, "seek failed; retrying");
                while let Ok(c) = self.control.try_recv() {
                    match c {
                        Control::Stop(done) => {
                            // Nothing after the reopened checkpoint was committed.
                            let _ = done.send(false);
                            return false;
                        }
                        Control::Stray { .. } => {}
                    }
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        }
        true
    }
}

impl Task {
    /// Exactly-once, after a failure: replaces the partition's transactional producer. The new
    /// one registers the same transactional id, which aborts whatever the old one left open (its
    /// records are never seen by `read_committed` readers) and fences it, whether the old one
    /// failed on a delivery, on the commit, or was itself fenced by another producer of that id.
    async fn reset_transactions(&mut self) {
        let Some(old) = self.txn.take() else { return };
        self.txn_open = false;
        // Its queued records are refused once the new producer has registered.
        tokio::task::spawn_blocking(move || drop(old)).await.ok();
        // Retries until it succeeds or the task is stopped (then the stop ends the task).
        self.init_transactions().await;
    }
}

/// The part of a checkpoint that waits: see [`Task::checkpoint`].
struct CheckpointJob {
    shared: Arc<Shared>,
    consumer: Arc<super::KafkaConsumer>,
    partition: i32,
    /// Deliveries of every output produced before the snapshot.
    outputs: Vec<DeliveryFuture>,
    prepared: crate::core::PreparedCheckpoint,
    changes: Vec<StateChange>,
    mode: CommitMode,
    started: Instant,
    /// The producer of the partition's records (the transactional one with exactly-once).
    producer: FutureProducer,
    /// Exactly-once: the changelog and the offsets go into the transaction, which commits
    /// before the state is written to disk (so disk never holds state that a commit did not
    /// make visible).
    exactly_once: bool,
}

async fn settle(futures: Vec<DeliveryFuture>) -> Result<(), TaskError> {
    for f in futures {
        match f.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(TaskError::Delivery(e)),
            Err(_) => return Err(TaskError::Cancelled),
        }
    }
    Ok(())
}

/// What a checkpoint job leaves running when it returns: with exactly-once, the sled write that
/// follows the transaction's commit (the task goes on meanwhile; the next checkpoint waits for
/// it before anything else).
type WriteTail = Option<tokio::task::JoinHandle<Result<(), TaskError>>>;

impl CheckpointJob {
    async fn run(self) -> Result<WriteTail, TaskError> {
        let CheckpointJob {
            shared,
            consumer,
            partition,
            outputs,
            prepared,
            changes,
            mode,
            started,
            producer,
            exactly_once,
        } = self;
        // 1. Every output up to the snapshot is acknowledged.
        let waiting = Instant::now();
        settle(outputs).await?;
        let mut delivered = waiting.elapsed();
        // 2. The changed entries on the changelog, then (once they are all acknowledged) the
        // marker: a marker is never ahead of the entries it stands for.
        let record = prepared.record().clone();
        let mut prepared = Some(prepared);
        let handing = Instant::now();
        let mut acks = Vec::with_capacity(changes.len() + 1);
        for c in &changes {
            let topic = shared.config.topics.changelog(c.table);
            acks.push(
                enqueue(
                    &shared,
                    &producer,
                    &topic,
                    c.key.as_bytes(),
                    c.value.as_deref(),
                    partition,
                )
                .await?,
            );
        }
        if !exactly_once {
            // (Exactly-once: the transaction's commit makes entries and marker visible
            // together.)
            shared
                .metrics
                .observe_stage(crate::metrics::Stage::Changelog, handing.elapsed());
            let waiting = Instant::now();
            settle(std::mem::take(&mut acks)).await?;
            delivered += waiting.elapsed();
        }
        let marker = crate::state::encode_checkpoint(&record);
        let topic = shared.config.topics.changelog(crate::core::TABLES[0].0);
        acks.push(
            enqueue(
                &shared,
                &producer,
                &topic,
                CHECKPOINT_MARKER_KEY,
                Some(&marker),
                partition,
            )
            .await?,
        );
        if exactly_once {
            shared
                .metrics
                .observe_stage(crate::metrics::Stage::Changelog, handing.elapsed());
        }
        let waiting = Instant::now();
        settle(acks).await?;
        delivered += waiting.elapsed();
        shared
            .metrics
            .observe_stage(crate::metrics::Stage::Deliver, delivered);
        // 3. State and offsets on disk, atomically, after the changelog holds them: the local
        // store is never ahead of the changelog, so a store reopened after a crash or a failed
        // checkpoint has no change the changelog lacks (exactly-once: after the commit, step 4).
        let mut stats = None;
        if !exactly_once {
            let p = prepared.take().expect("not yet written");
            stats = Some(write_state(&shared, p).await?);
        }
        // 4. The offsets, to the group.
        let mut tpl = TopicPartitionList::new();
        for (topic, offset) in &record.offsets {
            tpl.add_partition_offset(topic, partition, Offset::Offset(*offset))
                .map_err(TaskError::Commit)?;
        }
        if exactly_once {
            // The offsets join the transaction, which then commits: outputs, internal facts,
            // changelog and offsets become visible together.
            let group = consumer.group_metadata().ok_or(TaskError::NoGroupMetadata);
            let txn = producer.clone();
            let committing = Instant::now();
            let r = tokio::task::spawn_blocking(move || {
                let group = group?;
                if tpl.count() > 0 {
                    txn.send_offsets_to_transaction(&tpl, &group, TXN_TIMEOUT)
                        .map_err(TaskError::Transaction)?;
                }
                txn.commit_transaction(TXN_TIMEOUT)
                    .map_err(TaskError::Transaction)
            })
            .await
            .map_err(|_| TaskError::Cancelled)?;
            shared
                .metrics
                .observe_stage(crate::metrics::Stage::Commit, committing.elapsed());
            shared.metrics.commit(r.is_ok());
            r?;
            // Disk follows the commit, beside the task: a crash before this write completes
            // leaves the store behind the committed offsets, and the partition is then restored
            // from the (committed) changelog.
            let p = prepared.take().expect("written after the commit");
            let records = changes.len();
            return Ok(Some(tokio::spawn(async move {
                let stats = write_state(&shared, p).await?;
                checkpoint_done(&shared, partition, records, started, stats);
                Ok(())
            })));
        } else if tpl.count() > 0 {
            // Synchronous, on a blocking thread beside the task: the group coordinator's answer
            // is what gets counted. An asynchronous commit's answer never reaches the context's
            // commit callback with rdkafka 0.39 (fede1024/rust-rdkafka#856), so refused commits
            // used to be counted as successes.
            let committing = Instant::now();
            let c = Arc::clone(&consumer);
            let r = tokio::task::spawn_blocking(move || c.commit(&tpl, CommitMode::Sync))
                .await
                .map_err(|_| TaskError::Cancelled)?;
            shared
                .metrics
                .observe_stage(crate::metrics::Stage::Commit, committing.elapsed());
            shared.metrics.commit(r.is_ok());
            match (r, mode) {
                (Ok(()), _) => {}
                // A final checkpoint (revocation, shutdown) must commit.
                (Err(e), CommitMode::Sync) => return Err(TaskError::Commit(e)),
                // A routine one loses nothing when the coordinator refuses (a rebalance in
                // between, the coordinator unreachable): state and outputs are durable and the
                // next checkpoint commits later offsets; no rewind.
                (Err(e), CommitMode::Async) => {
                    tracing::warn!(partition, error = %e, "offset commit refused; the next checkpoint commits again");
                }
            }
        }
        let stats = stats.expect("state written");
        checkpoint_done(&shared, partition, changes.len(), started, stats);
        Ok(None)
    }
}

/// Writes a checkpoint's state and offsets to sled (the `write` stage), beside the task and at a
/// lower CPU priority ([`super::background`]).
async fn write_state(
    shared: &Shared,
    p: crate::core::PreparedCheckpoint,
) -> Result<crate::state::CheckpointStats, TaskError> {
    let writing = Instant::now();
    // On a thread of its own at a lower priority: the tasks' records go first.
    let stats = super::background::run_lowered("claimwatch-write", move || p.write())
        .await
        .map_err(|e| {
            crate::state::StateError::Io(format!("cannot start the state writer thread: {e}"))
        })?
        .ok_or(TaskError::Cancelled)??;
    shared
        .metrics
        .observe_stage(crate::metrics::Stage::Write, writing.elapsed());
    Ok(stats)
}

/// Counts and logs a completed checkpoint.
fn checkpoint_done(
    shared: &Shared,
    partition: i32,
    changelog_records: usize,
    started: Instant,
    stats: crate::state::CheckpointStats,
) {
    let status = &shared.status;
    status.checkpoints.fetch_add(1, Ordering::Relaxed);
    status
        .changelog_records
        .fetch_add(changelog_records as u64, Ordering::Relaxed);
    shared
        .metrics
        .checkpoint_done(started.elapsed(), stats.bytes);
    shared
        .metrics
        .set_state_disk_bytes(tokio::task::block_in_place(|| shared.db.size_on_disk()));
    tracing::debug!(
        partition,
        written = stats.written,
        removed = stats.removed,
        bytes = stats.bytes,
        ms = started.elapsed().as_millis() as u64,
        "checkpoint"
    );
}

/// Queues one record on the producer, waiting while its queue is full.
async fn enqueue(
    shared: &Shared,
    producer: &FutureProducer,
    topic: &str,
    key: &[u8],
    payload: Option<&[u8]>,
    partition: i32,
) -> Result<DeliveryFuture, TaskError> {
    loop {
        let mut record = FutureRecord::<[u8], [u8]>::to(topic)
            .key(key)
            .partition(partition);
        if let Some(p) = payload {
            record = record.payload(p);
        }
        match producer.send_result(record) {
            Ok(f) => return Ok(f),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err((e, _)) => {
                shared.metrics.delivery_error();
                return Err(TaskError::Delivery(e));
            }
        }
    }
}

/// The re-keyed records dropped as too late for their member's retention so far: (PMPM paid
/// amounts for a closed month, vaccine doses for a settled season, encounter costs of stays that
/// left the look-back).
fn late_drops(s: &crate::core::PartitionStats) -> (u64, u64, u64) {
    (s.pmpm_paid_dropped, s.care_gap_doses_dropped, s.stale_costs)
}

/// The increase of a partition counter since `last`, which it then becomes. A counter below
/// `last` has restarted (from zero) and counts in full.
fn advance(last: &mut u64, now: u64) -> u64 {
    let new = if now >= *last { now - *last } else { now };
    *last = now;
    new
}

#[cfg(test)]
mod buffer_tests {
    use super::*;

    /// Counter deltas: the increase since the last report, and a restarted counter (a reopened
    /// partition) counts from zero.
    #[test]
    fn counters_report_their_increase_and_survive_a_restart() {
        let mut last = 0;
        assert_eq!(advance(&mut last, 5), 5);
        assert_eq!(advance(&mut last, 5), 0);
        assert_eq!(advance(&mut last, 8), 3);
        assert_eq!(advance(&mut last, 2), 2, "restarted from zero");
        assert_eq!(last, 2);
    }

    /// A burst's capacity goes back once the buffer drained, not while it still holds records.
    #[test]
    fn a_drained_buffer_gives_its_capacity_back() {
        let mut buf: VecDeque<u64> = (0..BUFFER_CAP as u64).collect();
        assert!(buf.capacity() >= BUFFER_CAP);
        trim_buffer(&mut buf);
        assert!(buf.capacity() >= BUFFER_CAP, "full: nothing to give back");
        buf.drain(..BUFFER_CAP - 3000);
        trim_buffer(&mut buf);
        assert!(buf.capacity() >= BUFFER_CAP, "3000 of 4096 held: kept");
        buf.drain(..2990);
        trim_buffer(&mut buf);
        assert!(buf.capacity() < 2 * BUFFER_KEEP, "{}", buf.capacity());
        assert_eq!(
            buf.iter().copied().collect::<Vec<_>>(),
            (4086..4096).collect::<Vec<u64>>()
        );
        // Small buffers are left alone (no reallocation at every checkpoint).
        let before = buf.capacity();
        trim_buffer(&mut buf);
        assert_eq!(buf.capacity(), before);
    }
}
