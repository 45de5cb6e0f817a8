//! The transport-free engine: events in, state changes and output events out.
//!
//! A [`Partition`] owns the keyed state of one input partition (claim-keyed and member-keyed tables,
//! co-partitioned by their own keys), its event-time timers, its watermark and the input offsets its
//! state reflects. It is driven the same way by file replay, the Kafka runtime and the benchmarks:
//! [`Partition::apply`] for each input event, [`Partition::apply_rekeyed`] for records re-keyed from
//! the claim flow to the member flow (paid amounts) or the payer flow (payer monitor facts),
//! [`Partition::advance_to`] when the stream is quiet (wall-clock fallback), and
//! [`Partition::checkpoint`] to make state and offsets durable together.
//!
//! **Time.** Each partition's watermark is the largest `event_time` it has seen. Before an event is
//! applied the watermark moves up to the event's time and every timer due by then fires, so a
//! timer's effect lands in the same place relative to the partition's events on every run.
//! Timers are never stored: they are derived from state ([`Reconciler::next_timer`],
//! [`Detector::next_prune`], [`Monitor::next_timer`]) and the index is rebuilt when a partition is
//! loaded.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::caregaps::{CareGaps, GapMemberState};
use crate::cashflow::{self, CashClaim, CashForecaster, CashPayer};
use crate::config::CoreConfig;
use crate::enrolment::{self, EnrolmentState, PmpmAgg, PMPM_KEY};
use crate::memberrisk::{CostModel, MemberRisk, RiskState, Sketch};
use crate::model::{
    CashFact, EncounterCost, EpochMillis, Granularity, InputEvent, OutputEvent, PayerFact, Rekeyed,
};
use crate::monitor::{window_key, window_start, Applied, Monitor, WindowState};
use crate::population::{aggregate, facts, PopEntry, TrackedStays};
use crate::providers::{self, ProviderEntry, ProviderKpis, ProviderMember};
use crate::readmit::{Detector, MemberState};
use crate::reconcile::{ClaimInput, ClaimOutputs, ClaimState, ClaimTimer, Reconciler};
use crate::refdata::RefData;
use crate::score::{Models, ScoreTables, Scorer, TrainingExample};
use crate::state::{Checkpoint, CheckpointStats, PartitionStore, StateChange, StateError, Table};
use crate::utilization::{self, UtilEntry, UtilMember};

/// Marks the re-keyed facts whose flows keep a watermark over their sources (payer, cash and
/// provider facts) with the partition that produced them.
fn stamp_source(id: i32, records: &mut [Rekeyed]) {
    for r in records {
        match r {
            Rekeyed::Payer(f) => f.source_partition = id,
            Rekeyed::Cash(f) => f.source_partition = id,
            Rekeyed::Provider(f) => f.source_partition = id,
            _ => {}
        }
    }
}

/// Kafka's default partitioner for keyed records (murmur2, as the Java client and librdkafka's
/// `murmur2_random` compute it), so replay places keys where the service's producers do.
pub fn partition_for(key: &str, partitions: u32) -> i32 {
    let h = murmur2::murmur2(key.as_bytes(), murmur2::KAFKA_SEED) & 0x7fff_ffff;
    (h % partitions.max(1)) as i32
}

/// The keyed tables of a partition: (name, key prefix on disk). The changelog topic of a table is
/// `claimwatch.changelog.<name>`.
pub const TABLES: [(&str, u8); 19] = [
    ("claims", b'c'),
    ("members", b'm'),
    ("score_history", b'h'),
    ("score_pending_claims", b's'),
    ("score_pending_stays", b'r'),
    ("payer_windows", b'w'),
    ("population_stays", b'q'),
    ("population", b'v'),
    ("care_gaps", b'g'),
    ("member_risk", b'k'),
    ("risk_sketch", b'u'),
    ("cash_claims", b'o'),
    ("cash_payers", b'x'),
    ("provider_members", b'p'),
    ("provider_kpis", b'd'),
    ("enrolment", b'e'),
    ("pmpm", b'n'),
    ("utilization_members", b'f'),
    ("utilization", b'y'),
];

/// A partition checkpoint taken but not yet on disk (see [`Partition::prepare_checkpoint`]).
pub struct PreparedCheckpoint {
    store: PartitionStore,
    commit: crate::state::PreparedCommit,
    record: Checkpoint,
}

impl PreparedCheckpoint {
    /// The offsets, watermark and sequence this checkpoint records.
    pub fn record(&self) -> &Checkpoint {
        &self.record
    }

    /// Writes it atomically and flushes.
    pub fn write(self) -> Result<CheckpointStats, StateError> {
        self.store.apply(self.commit)
    }
}

/// The keyed tables of one partition before it is assembled.
struct Tables {
    claims: Table<ClaimState>,
    members: Table<MemberState>,
    score: ScoreTables,
    windows: Table<WindowState>,
    pop_stays: Table<TrackedStays>,
    population: Table<PopEntry>,
    care_gaps: Table<GapMemberState>,
    member_risk: Table<RiskState>,
    risk_sketch: Table<Sketch>,
    cash: CashTables,
    prov_members: Table<ProviderMember>,
    prov_kpis: Table<ProviderEntry>,
    enrol: EnrolTables,
    util: UtilTables,
}

/// The PMPM tables: members' enrolment (member flow) and the PMPM sums (population flow).
struct EnrolTables {
    members: Table<EnrolmentState>,
    pmpm: Table<PmpmAgg>,
}

impl EnrolTables {
    fn new(durable: bool) -> Self {
        let (mut members, mut pmpm) = (
            Table::new(TABLES[15].0, TABLES[15].1),
            Table::new(TABLES[16].0, TABLES[16].1),
        );
        if !durable {
            members = members.without_dirty_tracking();
            pmpm = pmpm.without_dirty_tracking();
        }
        Self { members, pmpm }
    }
}

/// The utilization forecast's tables: member-keyed and `<facility>|<service line>`-keyed
/// (`utilization` module).
struct UtilTables {
    members: Table<UtilMember>,
    keys: Table<UtilEntry>,
}

impl UtilTables {
    fn new(durable: bool) -> Self {
        let (mut members, mut keys) = (
            Table::new(TABLES[17].0, TABLES[17].1),
            Table::new(TABLES[18].0, TABLES[18].1),
        );
        if !durable {
            members = members.without_dirty_tracking();
            keys = keys.without_dirty_tracking();
        }
        Self { members, keys }
    }
}

/// The cash forecast's tables: claim-keyed and payer-keyed (`cashflow` module).
struct CashTables {
    claims: Table<CashClaim>,
    payers: Table<CashPayer>,
    /// The latest day every payer with a flow day was moved to (not persisted; `None` after a
    /// restore, so the first move looks at every payer). Flow days never go back and the
    /// watermark never does, so a move to a day not after it finds no payer behind: the scan
    /// of every payer per cash fact is skipped.
    advanced_to: Option<crate::model::EpochDay>,
}

impl CashTables {
    fn new(durable: bool) -> Self {
        let (mut claims, mut payers) = (
            Table::new(TABLES[11].0, TABLES[11].1),
            Table::new(TABLES[12].0, TABLES[12].1),
        );
        if !durable {
            claims = claims.without_dirty_tracking();
            payers = payers.without_dirty_tracking();
        }
        Self {
            claims,
            payers,
            advanced_to: None,
        }
    }
}

impl Tables {
    fn new(durable: bool) -> Self {
        let (mut claims, mut members) = (
            Table::new(TABLES[0].0, TABLES[0].1),
            Table::new(TABLES[1].0, TABLES[1].1),
        );
        if !durable {
            claims = claims.without_dirty_tracking();
            members = members.without_dirty_tracking();
        }
        let mut windows = Table::new(TABLES[5].0, TABLES[5].1);
        if !durable {
            windows = windows.without_dirty_tracking();
        }
        let mut pop_stays = Table::new(TABLES[6].0, TABLES[6].1);
        let mut population = Table::new(TABLES[7].0, TABLES[7].1);
        let mut care_gaps = Table::new(TABLES[8].0, TABLES[8].1);
        let mut prov_members = Table::new(TABLES[13].0, TABLES[13].1);
        let mut prov_kpis = Table::new(TABLES[14].0, TABLES[14].1);
        if !durable {
            pop_stays = pop_stays.without_dirty_tracking();
            population = population.without_dirty_tracking();
            care_gaps = care_gaps.without_dirty_tracking();
            prov_members = prov_members.without_dirty_tracking();
            prov_kpis = prov_kpis.without_dirty_tracking();
        }
        let mut member_risk = Table::new(TABLES[9].0, TABLES[9].1);
        let mut risk_sketch = Table::new(TABLES[10].0, TABLES[10].1);
        if !durable {
            member_risk = member_risk.without_dirty_tracking();
            risk_sketch = risk_sketch.without_dirty_tracking();
        }
        Self {
            claims,
            members,
            score: ScoreTables::new(durable),
            windows,
            pop_stays,
            population,
            care_gaps,
            member_risk,
            risk_sketch,
            cash: CashTables::new(durable),
            prov_members,
            prov_kpis,
            enrol: EnrolTables::new(durable),
            util: UtilTables::new(durable),
        }
    }

    fn load_encoded(&mut self, entries: &[(u8, String, Vec<u8>)]) -> Result<(), StateError> {
        fn of(
            entries: &[(u8, String, Vec<u8>)],
            prefix: u8,
        ) -> impl Iterator<Item = (&str, &[u8])> {
            entries
                .iter()
                .filter(move |(p, _, _)| *p == prefix)
                .map(|(_, k, v)| (k.as_str(), v.as_slice()))
        }
        self.claims
            .load_encoded(of(entries, self.claims.prefix()))?;
        self.members
            .load_encoded(of(entries, self.members.prefix()))?;
        let s = &mut self.score;
        s.history.load_encoded(of(entries, s.history.prefix()))?;
        s.claims.load_encoded(of(entries, s.claims.prefix()))?;
        s.stays.load_encoded(of(entries, s.stays.prefix()))?;
        self.windows
            .load_encoded(of(entries, self.windows.prefix()))?;
        self.pop_stays
            .load_encoded(of(entries, self.pop_stays.prefix()))?;
        self.population
            .load_encoded(of(entries, self.population.prefix()))?;
        self.care_gaps
            .load_encoded(of(entries, self.care_gaps.prefix()))?;
        self.member_risk
            .load_encoded(of(entries, self.member_risk.prefix()))?;
        self.risk_sketch
            .load_encoded(of(entries, self.risk_sketch.prefix()))?;
        let c = &mut self.cash;
        c.claims.load_encoded(of(entries, c.claims.prefix()))?;
        c.payers.load_encoded(of(entries, c.payers.prefix()))?;
        self.prov_members
            .load_encoded(of(entries, self.prov_members.prefix()))?;
        self.prov_kpis
            .load_encoded(of(entries, self.prov_kpis.prefix()))?;
        let e = &mut self.enrol;
        e.members.load_encoded(of(entries, e.members.prefix()))?;
        e.pmpm.load_encoded(of(entries, e.pmpm.prefix()))?;
        let u = &mut self.util;
        u.members.load_encoded(of(entries, u.members.prefix()))?;
        u.keys.load_encoded(of(entries, u.keys.prefix()))?;
        Ok(())
    }
}

/// The immutable logic shared by every partition.
#[derive(Debug, Clone)]
pub struct Engine {
    pub config: CoreConfig,
    pub refdata: Arc<RefData>,
    pub reconciler: Reconciler,
    pub detector: Detector,
    pub scorer: Scorer,
    pub monitor: Monitor,
    pub caregaps: CareGaps,
    pub memberrisk: MemberRisk,
    pub cashflow: CashForecaster,
    /// Provider and department KPIs (`providers` module).
    pub providers: ProviderKpis,
    /// Utilization forecast settings (`utilization` module).
    pub utilization: utilization::Utilization,
}

impl Engine {
    /// An engine scoring with the models compiled into the binary.
    pub fn new(config: CoreConfig, refdata: Arc<RefData>) -> Self {
        Self::with_models(config, refdata, Models::embedded())
    }

    /// An engine scoring with the given models (`Models::none()`: transparent fallback only).
    pub fn with_models(config: CoreConfig, refdata: Arc<RefData>, models: Models) -> Self {
        let cost = models
            .cost
            .clone()
            .unwrap_or_else(|| Arc::new(CostModel::embedded()));
        Self {
            reconciler: Reconciler::new(Arc::clone(&refdata), &config),
            detector: Detector::new(Arc::clone(&refdata), &config),
            scorer: Scorer::new(Arc::clone(&refdata), &config, models),
            monitor: Monitor::new(&config.monitor),
            caregaps: CareGaps::new(Arc::clone(&refdata), &config),
            memberrisk: MemberRisk::new(Arc::clone(&refdata), &config, cost),
            cashflow: CashForecaster::new(&config.cash_forecast),
            providers: ProviderKpis::new(&config.provider_kpis),
            utilization: config.utilization.clone(),
            config,
            refdata,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum TimerOwner {
    Claim,
    Member,
    /// A payer monitor window (close, then expire).
    Window,
    /// A member's care gaps (due dates, season ends, retention).
    CareGap,
    /// A departed member's enrolment entry (retirement, see `enrolment::retire_at`).
    Enrolment,
}

/// Counters of one partition, for summaries and metrics. Kept in every checkpoint
/// ([`Checkpoint::counters`]): they count from the start of the partition's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionStats {
    pub events: u64,
    pub duplicates: u64,
    pub timers_fired: u64,
    pub claims_expired: u64,
    pub members_expired: u64,
    pub checkpoints: u64,
    /// Re-keyed costs dropped because their member had left state long before they arrived.
    pub stale_costs: u64,
    /// Payer facts applied (each updates one hourly and one daily window).
    pub monitor_facts: u64,
    /// Window updates dropped because the window was older than the monitor retention, by
    /// granularity (`Granularity::ALL` order) and payer category (`PayerCategory::ALL` order).
    pub monitor_facts_dropped: [[u64; 6]; 2],
    /// Monitor windows that left state after their retention.
    pub monitor_windows_expired: u64,
    /// Care-gap timers fired (not in `timers_fired`, which predates them).
    pub care_gap_timers: u64,
    /// Members' care-gap state that left after its retention.
    pub care_gap_members_expired: u64,
    /// Vaccine doses dropped because they could count only for seasons already settled for the
    /// member (`caregaps` module doc).
    pub care_gap_doses_dropped: u64,
    /// Cash facts applied on the payer flow.
    pub cash_facts: u64,
    /// Paid amounts dropped on the member flow because their service month was closed for the
    /// member (`enrolment` module doc).
    pub pmpm_paid_dropped: u64,
    /// Enrolment records dropped because they reached a member without an entry and describe a
    /// span that ended in a month closed at the watermark (see `enrolment`, "Departed members").
    pub enrolment_dropped: u64,
    /// Departed members' enrolment entries that left the state.
    pub enrolment_retired: u64,
    /// Index stays that left the members' state with the look-back, and their outcomes (the
    /// replay summary adds them to the stays still in state).
    pub readmissions_aged_out: crate::readmit::AgedOut,
}

impl PartitionStats {
    /// The counters a checkpoint kept (none: zero). Unreadable counters are not a reason to
    /// refuse the state they came with: they start again from zero, and a warning says so.
    fn of_checkpoint(partition: i32, checkpoint: &Checkpoint) -> Self {
        if checkpoint.counters.is_empty() {
            return Self::default();
        }
        crate::state::decode_plain("partition counters", &checkpoint.counters).unwrap_or_else(
            |e| {
                tracing::warn!(partition, error = %e, "partition counters unreadable; they count from zero again");
                Self::default()
            },
        )
    }

    /// Entries that left the state by retention so far, by table (`TABLES` names): expired
    /// claims, members whose look-back emptied, care-gap histories, retired enrolment entries and
    /// payer monitor windows.
    pub fn expired(&self) -> [(&'static str, u64); 5] {
        [
            ("claims", self.claims_expired),
            ("members", self.members_expired),
            ("care_gaps", self.care_gap_members_expired),
            ("enrolment", self.enrolment_retired),
            ("payer_windows", self.monitor_windows_expired),
        ]
    }
}

/// The state and timers of one partition.
pub struct Partition {
    id: i32,
    store: PartitionStore,
    claims: Table<ClaimState>,
    members: Table<MemberState>,
    /// A restore's background write to disk (see [`Partition::open_restored`]).
    restore_writer: Option<std::thread::JoinHandle<Result<usize, StateError>>>,
    /// Entries written by checkpoints since the last [`Partition::take_changes`], when a changelog
    /// is kept.
    changes: Option<Vec<StateChange>>,
    /// Due timers in a deterministic order: (due, owner, stable hash of the key) -> keys (sorted;
    /// almost always one). Ordering by a stable hash rather than the key lets a timer be found and
    /// moved by `&str` without allocating, and keeps the firing order identical after a restart.
    timers: BTreeMap<(EpochMillis, TimerOwner, u64), Vec<String>>,
    /// The payer monitor windows' timers, in the same form; they fire on the payer flow's
    /// watermark, not the partition's.
    window_timers: BTreeMap<(EpochMillis, TimerOwner, u64), Vec<String>>,
    /// When each key's timer is due, per owner; looked up by `&str`.
    scheduled: [HashMap<String, EpochMillis, ahash::RandomState>; 5],
    checkpoint: Checkpoint,
    since_checkpoint: u64,
    stats: PartitionStats,
    claim_out: ClaimOutputs,
    score: ScoreTables,
    /// Payer monitor windows.
    windows: Table<WindowState>,
    /// Members' immunization care gaps.
    care_gaps: Table<GapMemberState>,
    /// Reused for window keys (no allocation per fact).
    key_buf: String,
    /// Matured training examples not yet taken by the caller.
    training: Vec<TrainingExample>,
    /// Matured index stays per member (population facts, member flow).
    pop_stays: Table<TrackedStays>,
    /// Population aggregates (population flow).
    population: Table<PopEntry>,
    /// Population groups changed since their last emission.
    pop_dirty: BTreeSet<String>,
    /// Population facts produced outside [`Partition::apply`] / [`Partition::advance_to`]
    /// (by re-keyed costs), until [`Partition::take_rekeyed`].
    pending_rekeyed: Vec<Rekeyed>,
    /// Members' latest predicted cost and flag (`memberrisk`).
    member_risk: Table<RiskState>,
    /// The partition's sketch of the latest predictions (`memberrisk`).
    risk_sketch: Table<Sketch>,
    /// The cash forecast's tables.
    cash: CashTables,
    /// Encounters per member and the provider facts sent for them (member flow).
    prov_members: Table<ProviderMember>,
    /// Provider and department daily sums (provider flow).
    prov_kpis: Table<ProviderEntry>,
    /// Members' enrolment and PMPM sums (`enrolment` module).
    enrol: EnrolTables,
    /// The utilization forecast's tables (member flow and utilization flow).
    util: UtilTables,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("id", &self.id)
            .field("claims", &self.claims.len())
            .field("members", &self.members.len())
            .field("timers", &self.timers.len())
            .field("watermark", &self.checkpoint.watermark)
            .finish()
    }
}

impl Partition {
    /// Opens a partition over `store`, restoring state, offsets, watermark and timers from the last
    /// checkpoint when the store is durable.
    pub fn open(id: i32, store: PartitionStore, engine: &Engine) -> Result<Self, StateError> {
        let mut tables = Tables::new(store.is_durable());
        store.load(&mut tables.claims)?;
        store.load(&mut tables.members)?;
        store.load(&mut tables.score.history)?;
        store.load(&mut tables.score.claims)?;
        store.load(&mut tables.score.stays)?;
        store.load(&mut tables.windows)?;
        store.load(&mut tables.pop_stays)?;
        store.load(&mut tables.population)?;
        store.load(&mut tables.care_gaps)?;
        store.load(&mut tables.member_risk)?;
        store.load(&mut tables.risk_sketch)?;
        store.load(&mut tables.cash.claims)?;
        store.load(&mut tables.cash.payers)?;
        store.load(&mut tables.prov_members)?;
        store.load(&mut tables.prov_kpis)?;
        store.load(&mut tables.enrol.members)?;
        store.load(&mut tables.enrol.pmpm)?;
        store.load(&mut tables.util.members)?;
        store.load(&mut tables.util.keys)?;
        let checkpoint = store.checkpoint()?.unwrap_or_default();
        Ok(Self::assemble(id, store, engine, tables, checkpoint))
    }

    /// Opens a partition from restored entries `(table prefix, key, encoded value)` (a changelog
    /// read), replacing what `store` held. The entries are decoded into the hot view here, then
    /// written to disk by a background thread: the partition can process events at once, and its
    /// first [`Partition::checkpoint`] waits for that write before it records anything, so disk
    /// never holds offsets newer than its state.
    pub fn open_restored(
        id: i32,
        store: PartitionStore,
        engine: &Engine,
        entries: Vec<(u8, String, Vec<u8>)>,
        checkpoint: &Checkpoint,
    ) -> Result<Self, StateError> {
        let mut tables = Tables::new(store.is_durable());
        tables.load_encoded(&entries)?;
        let mut p = Self::assemble(id, store.clone(), engine, tables, checkpoint.clone());
        // The disk write starts once the hot view is built: on two cores, decoding alone is what
        // stands between the assignment and processing.
        let cp = checkpoint.clone();
        let writer = std::thread::Builder::new()
            .name(format!("restore-p{id}"))
            .spawn(move || {
                store.restore(
                    entries
                        .iter()
                        .map(|(p, k, v)| (*p, k.as_str(), v.as_slice())),
                    &cp,
                )
            })
            .map_err(|e| StateError::Io(e.to_string()))?;
        p.restore_writer = Some(writer);
        Ok(p)
    }

    /// Waits for a restore's background write to disk, if one is running.
    pub fn wait_for_restore_write(&mut self) -> Result<(), StateError> {
        if let Some(w) = self.restore_writer.take() {
            w.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
        }
        Ok(())
    }

    fn assemble(
        id: i32,
        store: PartitionStore,
        engine: &Engine,
        tables: Tables,
        checkpoint: Checkpoint,
    ) -> Self {
        let Tables {
            claims,
            members,
            score,
            windows,
            pop_stays,
            population,
            care_gaps,
            member_risk,
            risk_sketch,
            cash,
            prov_members,
            prov_kpis,
            enrol,
            util,
        } = tables;
        let pop_dirty = aggregate::dirty_keys(&population);
        let mut p = Self {
            id,
            store,
            claims,
            members,
            timers: BTreeMap::new(),
            window_timers: BTreeMap::new(),
            scheduled: [
                HashMap::with_hasher(ahash::RandomState::new()),
                HashMap::with_hasher(ahash::RandomState::new()),
                HashMap::with_hasher(ahash::RandomState::new()),
                HashMap::with_hasher(ahash::RandomState::new()),
                HashMap::with_hasher(ahash::RandomState::new()),
            ],
            stats: PartitionStats::of_checkpoint(id, &checkpoint),
            checkpoint,
            since_checkpoint: 0,
            claim_out: ClaimOutputs::default(),
            changes: None,
            score,
            windows,
            care_gaps,
            key_buf: String::with_capacity(64),
            training: Vec::new(),
            restore_writer: None,
            pop_stays,
            population,
            pop_dirty,
            pending_rekeyed: Vec::new(),
            member_risk,
            risk_sketch,
            cash,
            prov_members,
            prov_kpis,
            enrol,
            util,
        };
        // One pass over the claims computes every due time (no second lookup per key).
        let dues: Vec<(String, EpochMillis)> = p
            .claims
            .iter()
            .map(|e| (e.key().clone(), engine.reconciler.next_timer(e.value()).0))
            .collect();
        for (key, due) in dues {
            p.schedule(TimerOwner::Claim, &key, Some(due));
        }
        for key in p.members.keys().into_iter().chain(p.score.stays.keys()) {
            p.reschedule_member(engine, &key);
        }
        let dues: Vec<(String, EpochMillis)> = p
            .windows
            .iter()
            .map(|e| (e.key().clone(), engine.monitor.next_timer(e.value()).0))
            .collect();
        for (key, due) in dues {
            p.schedule(TimerOwner::Window, &key, Some(due));
        }
        let dues: Vec<(String, EpochMillis)> = p
            .care_gaps
            .iter()
            .map(|e| (e.key().clone(), engine.caregaps.next_timer(e.value())))
            .collect();
        for (key, due) in dues {
            p.schedule(TimerOwner::CareGap, &key, Some(due));
        }
        let dues: Vec<(String, EpochMillis)> = p
            .enrol
            .members
            .iter()
            .filter_map(|e| enrolment::retire_at(e.value()).map(|due| (e.key().clone(), due)))
            .collect();
        for (key, due) in dues {
            p.schedule(TimerOwner::Enrolment, &key, Some(due));
        }
        p
    }

    pub fn id(&self) -> i32 {
        self.id
    }

    /// Keeps what each checkpoint writes, for a changelog (see [`Partition::take_changes`]).
    pub fn capture_changes(&mut self) {
        self.changes.get_or_insert_with(Vec::new);
    }

    /// What the checkpoints since the last call wrote or removed, in write order.
    pub fn take_changes(&mut self) -> Vec<StateChange> {
        self.changes
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The last checkpoint record (offsets, watermark, sequence).
    pub fn checkpoint_record(&self) -> &Checkpoint {
        &self.checkpoint
    }

    pub fn watermark(&self) -> EpochMillis {
        self.checkpoint.watermark
    }

    /// Next offset to read per source, as of the last applied event.
    pub fn offsets(&self) -> &BTreeMap<String, i64> {
        &self.checkpoint.offsets
    }

    /// Sink positions recorded in the last checkpoint.
    pub fn sinks(&self) -> &BTreeMap<String, u64> {
        &self.checkpoint.sinks
    }

    pub fn stats(&self) -> &PartitionStats {
        &self.stats
    }

    pub fn claims(&self) -> &Table<ClaimState> {
        &self.claims
    }

    pub fn members(&self) -> &Table<MemberState> {
        &self.members
    }

    /// The payer monitor windows.
    pub fn windows(&self) -> &Table<WindowState> {
        &self.windows
    }

    /// Members' immunization care-gap state.
    pub fn care_gaps(&self) -> &Table<GapMemberState> {
        &self.care_gaps
    }

    /// Keys held in each table, with the table's own name (one entry per table of [`TABLES`]:
    /// the array's length is checked against it at compile time).
    pub fn table_sizes(&self) -> [(&'static str, usize); TABLES.len()] {
        fn size<V>(t: &Table<V>) -> (&'static str, usize) {
            (t.name(), t.len())
        }
        [
            size(&self.claims),
            size(&self.members),
            size(&self.score.history),
            size(&self.score.claims),
            size(&self.score.stays),
            size(&self.windows),
            size(&self.pop_stays),
            size(&self.population),
            size(&self.care_gaps),
            size(&self.member_risk),
            size(&self.risk_sketch),
            size(&self.cash.claims),
            size(&self.cash.payers),
            size(&self.prov_members),
            size(&self.prov_kpis),
            size(&self.enrol.members),
            size(&self.enrol.pmpm),
            size(&self.util.members),
            size(&self.util.keys),
        ]
    }

    /// Takes the training examples matured since the last call (the training store's sink).
    pub fn take_training(&mut self) -> Vec<TrainingExample> {
        std::mem::take(&mut self.training)
    }

    /// The scoring tables (rolling history, pending scores).
    pub fn score_tables(&self) -> &ScoreTables {
        &self.score
    }

    pub fn pending_timers(&self) -> usize {
        self.timers.len() + self.window_timers.len()
    }

    /// Events applied since the last checkpoint.
    pub fn since_checkpoint(&self) -> u64 {
        self.since_checkpoint
    }

    /// Records that the record at `offset` of `source` has been dealt with (e.g. dead-lettered)
    /// without reaching this partition's state.
    pub fn note_offset(&mut self, source: &str, offset: i64) {
        match self.checkpoint.offsets.get_mut(source) {
            Some(o) => *o = (*o).max(offset + 1),
            None => {
                self.checkpoint
                    .offsets
                    .insert(source.to_owned(), offset + 1);
            }
        }
    }

    /// Applies one validated input event read from `source` at `offset`. Outputs go to `out`;
    /// records for the member and payer flows (which may live in another partition) go to `costs`.
    pub fn apply(
        &mut self,
        engine: &Engine,
        event: &InputEvent,
        source: &str,
        offset: i64,
        out: &mut Vec<OutputEvent>,
        costs: &mut Vec<Rekeyed>,
    ) {
        if let InputEvent::Enrollment(e) = event {
            return self.apply_enrollment(e, source, offset, costs);
        }
        self.advance_to(engine, event.event_time(), out, costs);
        self.stats.events += 1;
        self.since_checkpoint += 1;
        match self.checkpoint.offsets.get_mut(source) {
            Some(o) => *o = (*o).max(offset + 1),
            None => {
                self.checkpoint
                    .offsets
                    .insert(source.to_owned(), offset + 1);
            }
        }
        let input = match event {
            InputEvent::Claim(c) => ClaimInput::Submitted(c),
            InputEvent::Ack(a) => ClaimInput::Ack(a),
            InputEvent::Remit(r) => ClaimInput::Remit(r),
            InputEvent::Enrollment(_) => return,
            InputEvent::Encounter(e) => {
                let key = e.member_id.as_str();
                let detector = &engine.detector;
                let first_out = out.len();
                self.members
                    .update(key, |st| detector.apply(st, key, e, out));
                if let Some(st) = self.members.get(key) {
                    engine
                        .scorer
                        .on_encounter(&mut self.score, key, e, &st, detector, out);
                }
                self.refresh_population(engine, key, e.event_time);
                self.refresh_member_risk(engine, key, e.event_time, out);
                self.provider_encounter(engine, key, e);
                self.utilization_encounter(engine, key, e);
                self.reschedule_member(engine, key);
                stamp_source(self.id, &mut self.pending_rekeyed);
                costs.append(&mut self.pending_rekeyed);
                self.care_gap_encounter(engine, key, e, first_out, out);
                return;
            }
        };
        let key = event.key();
        let reconciler = &engine.reconciler;
        let claim_out = &mut self.claim_out;
        let applied = self.claims.update(key, |st| {
            reconciler.apply_at(st, key, input, offset, claim_out)
        });
        if !applied {
            self.stats.duplicates += 1;
        } else {
            self.score_claim_event(engine, key, event);
            self.cash_claim(engine, key, event.event_time());
            if let InputEvent::Claim(c) = event {
                if engine.caregaps.enabled() {
                    costs.extend(
                        engine
                            .caregaps
                            .doses_of(c)
                            .into_iter()
                            .map(Rekeyed::Vaccine),
                    );
                }
            }
        }
        out.append(&mut self.claim_out.events);
        self.provider_claim_facts(engine, key);
        self.stamp_facts();
        costs.append(&mut self.claim_out.costs);
        self.reschedule_claim(engine, key);
    }

    /// Marks the payer and cash facts just produced with this partition as their source.
    fn stamp_facts(&mut self) {
        stamp_source(self.id, &mut self.claim_out.costs);
    }

    /// Scores a submission and matures a pending denial label when the outcome became final.
    fn score_claim_event(&mut self, engine: &Engine, key: &str, event: &InputEvent) {
        if !engine.config.scoring.enabled {
            return;
        }
        let denial_category = self.claim_out.events.iter().rev().find_map(|o| match o {
            OutputEvent::ClaimLifecycle(u) => Some(u.denial_category.clone()),
            _ => None,
        });
        let denial_category = denial_category.flatten();
        let Some(st) = self.claims.get(key) else {
            return;
        };
        let scorer = &engine.scorer;
        match event {
            InputEvent::Claim(c) => {
                let mut scored = Vec::with_capacity(1);
                scorer.on_claim(
                    &mut self.score,
                    c,
                    Some(&st),
                    denial_category.as_deref(),
                    &mut scored,
                    &mut self.training,
                );
                drop(st);
                self.claim_out.events.append(&mut scored);
            }
            _ => scorer.on_claim_outcome(
                &mut self.score,
                key,
                &st,
                event.event_time(),
                denial_category.as_deref(),
                &mut self.training,
            ),
        }
    }

    /// Applies a record re-keyed from the claim flow (its key must hash to this partition).
    pub fn apply_rekeyed(&mut self, engine: &Engine, record: &Rekeyed, out: &mut Vec<OutputEvent>) {
        match record {
            Rekeyed::Cost(c) => self.apply_cost(engine, c, out),
            Rekeyed::Payer(f) => self.apply_fact(engine, f, out),
            Rekeyed::Population(f) => aggregate::apply(
                &mut self.population,
                &mut self.pop_dirty,
                &engine.config.scoring.interventions,
                self.enrol.pmpm.get(PMPM_KEY).as_deref(),
                f,
                out,
            ),
            Rekeyed::Vaccine(v) => self.apply_dose(engine, v, out),
            Rekeyed::Cash(f) => self.apply_cash(engine, f, out),
            Rekeyed::Provider(f) => self.apply_provider_fact(engine, f, out),
            Rekeyed::MemberPaid(p) => self.apply_member_paid(p),
            Rekeyed::Pmpm(f) => self.apply_pmpm_fact(f),
            Rekeyed::Utilization(f) => self.apply_utilization_fact(engine, f, out),
        }
    }

    /// Applies an enrolment record to its member (`enrolment` module). Enrolment does not move
    /// the watermark and fires no timer; the PMPM facts it produces go to `costs`.
    fn apply_enrollment(
        &mut self,
        e: &crate::model::MemberEnrollment,
        source: &str,
        offset: i64,
        costs: &mut Vec<Rekeyed>,
    ) {
        self.stats.events += 1;
        self.since_checkpoint += 1;
        self.note_offset(source, offset);
        let at = e.event_time;
        if enrolment::enrollment_too_late(e, self.checkpoint.watermark)
            && self.enrol.members.get(&e.member_id).is_none()
        {
            self.stats.enrolment_dropped += 1;
            return;
        }
        let applied = self.enrol.members.update(&e.member_id, |st| {
            enrolment::apply_enrollment(st, e) && {
                enrolment::refresh(st, at, costs);
                true
            }
        });
        if applied {
            self.reschedule_enrolment(&e.member_id);
        } else {
            self.stats.duplicates += 1;
        }
    }

    /// Schedules the retirement of a member's enrolment entry, or cancels it (an open span).
    fn reschedule_enrolment(&mut self, key: &str) {
        let due = self
            .enrol
            .members
            .get(key)
            .and_then(|st| enrolment::retire_at(&st));
        self.schedule(TimerOwner::Enrolment, key, due);
    }

    /// A departed member's retirement is due: the entry leaves the state (its contribution stays
    /// in the sums), unless a record since moved it.
    fn fire_enrolment(&mut self, key: &str, due: EpochMillis) {
        let Some(next) = self
            .enrol
            .members
            .get(key)
            .map(|st| enrolment::retire_at(&st))
        else {
            return;
        };
        if next.is_some_and(|n| n <= due) {
            self.enrol.members.remove(key);
            self.stats.enrolment_retired += 1;
        } else {
            self.reschedule_enrolment(key);
        }
    }

    /// Applies a claim's paid amount to its member (the member must hash to this partition).
    pub fn apply_member_paid(&mut self, p: &crate::model::MemberPaid) {
        if enrolment::closed_at(self.checkpoint.watermark, p.service_date)
            && self.enrol.members.get(&p.member_id).is_none()
        {
            // The member's entry was retired (or never held this month): see the module doc.
            self.stats.pmpm_paid_dropped += 1;
            return;
        }
        let out = &mut self.pending_rekeyed;
        let outcome = self.enrol.members.update(&p.member_id, |st| {
            let outcome = enrolment::apply_paid(st, p);
            if outcome == enrolment::PaidOutcome::Applied {
                enrolment::refresh(st, p.event_time, out);
            }
            outcome
        });
        match outcome {
            enrolment::PaidOutcome::Closed => self.stats.pmpm_paid_dropped += 1,
            enrolment::PaidOutcome::Applied => self.reschedule_enrolment(&p.member_id),
            enrolment::PaidOutcome::Unchanged => {}
        }
    }

    /// Applies a PMPM fact to the sums (population flow); marks the `all` summary changed when
    /// the fact carries member months or paid amounts inside eligibility.
    pub fn apply_pmpm_fact(&mut self, f: &crate::model::PmpmFact) {
        let relevant = self
            .enrol
            .pmpm
            .update(PMPM_KEY, |agg| enrolment::apply_fact(agg, f));
        if relevant {
            aggregate::mark_all(&mut self.population, &mut self.pop_dirty);
        }
    }

    /// Members' enrolment spans and paid claims (member flow).
    pub fn enrolment(&self) -> &Table<EnrolmentState> {
        &self.enrol.members
    }

    /// The PMPM sums (population flow).
    pub fn pmpm(&self) -> &Table<PmpmAgg> {
        &self.enrol.pmpm
    }

    /// Applies an encounter to the member's care gaps, with the readmission risk score it produced
    /// (in `out` from `first_out` on), if any.
    fn care_gap_encounter(
        &mut self,
        engine: &Engine,
        key: &str,
        e: &crate::model::Encounter,
        first_out: usize,
        out: &mut Vec<OutputEvent>,
    ) {
        if !engine.caregaps.enabled() {
            return;
        }
        let risk = out[first_out..].iter().rev().find_map(|o| match o {
            OutputEvent::ReadmissionRisk(r) if r.member_id == key => {
                Some((r.event_time, r.probability, r.tier))
            }
            _ => None,
        });
        let now = self.checkpoint.watermark;
        let caregaps = &engine.caregaps;
        self.care_gaps
            .update(key, |st| caregaps.on_encounter(st, key, e, risk, now, out));
        self.reschedule_care_gap(engine, key);
    }

    /// Applies a vaccine dose re-keyed from the claim flow (the member must hash to this
    /// partition). Doses do not move the watermark; a member not yet known keeps the dose until it
    /// is (or until its retention).
    pub fn apply_dose(
        &mut self,
        engine: &Engine,
        dose: &crate::model::VaccineDose,
        out: &mut Vec<OutputEvent>,
    ) {
        if !engine.caregaps.enabled() {
            return;
        }
        let key = dose.member_id.as_str();
        let now = self.checkpoint.watermark;
        let caregaps = &engine.caregaps;
        let applied = self
            .care_gaps
            .update(key, |st| caregaps.on_dose(st, key, dose, now, out));
        if !applied {
            self.stats.care_gap_doses_dropped += 1;
        }
        self.reschedule_care_gap(engine, key);
    }

    fn reschedule_care_gap(&mut self, engine: &Engine, key: &str) {
        let due = self
            .care_gaps
            .get(key)
            .map(|st| engine.caregaps.next_timer(&st));
        self.schedule(TimerOwner::CareGap, key, due);
    }

    fn fire_care_gap(
        &mut self,
        engine: &Engine,
        key: &str,
        due: EpochMillis,
        out: &mut Vec<OutputEvent>,
    ) {
        let caregaps = &engine.caregaps;
        let Some(next) = self.care_gaps.get(key).map(|st| caregaps.next_timer(&st)) else {
            return;
        };
        if next > due {
            self.reschedule_care_gap(engine, key);
            return;
        }
        let keep = self
            .care_gaps
            .update(key, |st| caregaps.fire(st, key, due, out));
        if keep {
            self.reschedule_care_gap(engine, key);
        } else {
            self.care_gaps.remove(key);
            self.stats.care_gap_members_expired += 1;
        }
    }

    /// Recomputes a claim's cash content after a change (the lifecycle update and denial-risk
    /// score just produced, in `claim_out`) and queues the difference for its payer.
    fn cash_claim(&mut self, engine: &Engine, key: &str, at: EpochMillis) {
        if !engine.cashflow.enabled() {
            return;
        }
        let (mut view, mut score) = (None, None);
        for o in self.claim_out.events.iter().rev() {
            match o {
                OutputEvent::ClaimLifecycle(u) if view.is_none() => view = Some(u),
                OutputEvent::DenialRisk(s) if score.is_none() => score = Some(s.probability),
                _ => {}
            }
        }
        if view.is_none() && score.is_none() {
            return;
        }
        let Some(st) = self.claims.get(key) else {
            return;
        };
        let computed;
        let view = match view {
            Some(v) => v,
            None => {
                computed = engine.reconciler.view(&st, key);
                &computed
            }
        };
        let costs = &mut self.claim_out.costs;
        self.cash.claims.update(key, |c| {
            if let Some(p) = score {
                c.paid_probability_micros = Some(cashflow::micros(1.0 - p));
            }
            let now = cashflow::content(view, &st, c.paid_probability_micros);
            cashflow::refresh(c, now, at, costs);
        });
    }

    /// Applies a cash fact to its payer's aggregate (the payer must hash to this partition).
    pub fn apply_cash(&mut self, engine: &Engine, fact: &CashFact, out: &mut Vec<OutputEvent>) {
        if !engine.cashflow.enabled() {
            return;
        }
        self.stats.cash_facts += 1;
        // The flow's watermark: the minimum over the source partitions of their latest cash-fact
        // time, once all have been heard from (each sends in event-time order). In Kafka the
        // claim partitions run at different speeds; a payer's week frozen on its latest fact
        // alone would miss a slower partition's open claims.
        let cp = &mut self.checkpoint;
        let n = engine.config.partitions as usize;
        if cp.cash_sources.len() != n {
            cp.cash_sources.resize(n, i64::MIN);
        }
        cp.cash_latest = Some(
            cp.cash_latest
                .map_or(fact.event_time, |t| t.max(fact.event_time)),
        );
        let watermark = match usize::try_from(fact.source_partition)
            .ok()
            .and_then(|i| cp.cash_sources.get_mut(i))
        {
            Some(s) => {
                *s = (*s).max(fact.event_time);
                let min = cp.cash_sources.iter().copied().min().unwrap_or(i64::MIN);
                (min != i64::MIN).then_some(min)
            }
            // No source (a fact written by hand or by an older version): its own time.
            None => Some(fact.event_time),
        };
        let flow = watermark.map(crate::model::day_of);
        if let Some(day) = flow {
            self.advance_cash_to(engine, day, out);
        }
        let cf = &engine.cashflow;
        self.cash
            .payers
            .update(&fact.payer_id, |p| cf.apply_at(p, fact, flow, out));
    }

    /// Moves every payer's cash flow to `day` (the partition's cash watermark entered it).
    fn advance_cash_to(
        &mut self,
        engine: &Engine,
        day: crate::model::EpochDay,
        out: &mut Vec<OutputEvent>,
    ) {
        if self.cash.advanced_to.is_some_and(|d| day <= d) {
            return;
        }
        let behind = |p: &CashPayer| p.flow_day.is_some_and(|d| d < day);
        let mut keys: Vec<String> = self
            .cash
            .payers
            .keys()
            .into_iter()
            .filter(|k| self.cash.payers.get(k).is_some_and(|p| behind(&p)))
            .collect();
        keys.sort();
        let cf = &engine.cashflow;
        for key in keys {
            self.cash
                .payers
                .update(&key, |p| cf.advance_to(p, day, out));
        }
        self.cash.advanced_to = Some(day);
    }

    /// The end of a replay: every payer's cash flow moves to the day of the latest cash fact,
    /// then every changed week is emitted, the one in progress included.
    pub fn close_cash(&mut self, engine: &Engine, out: &mut Vec<OutputEvent>) {
        if !engine.cashflow.enabled() {
            return;
        }
        if let Some(latest) = self.checkpoint.cash_latest {
            self.advance_cash_to(engine, crate::model::day_of(latest), out);
        }
        self.flush_cash(engine, out);
    }

    /// Emits every payer week changed since its last emission, the week in progress included:
    /// the end of a replay.
    pub fn flush_cash(&mut self, engine: &Engine, out: &mut Vec<OutputEvent>) {
        if !engine.cashflow.enabled() {
            return;
        }
        let cf = &engine.cashflow;
        let mut keys = self.cash.payers.keys();
        keys.sort();
        for key in keys {
            self.cash.payers.update(&key, |p| cf.flush(p, out));
        }
    }

    /// The payers' cash aggregates (payer flow).
    pub fn cash_payers(&self) -> &Table<CashPayer> {
        &self.cash.payers
    }

    /// The claims' cash contents (claim flow).
    pub fn cash_claims(&self) -> &Table<CashClaim> {
        &self.cash.claims
    }

    /// Moves the re-keyed records that [`Partition::apply_rekeyed`] produced (population facts
    /// after a re-keyed cost) to `into`; the caller routes them like those of
    /// [`Partition::apply`].
    pub fn take_rekeyed(&mut self, into: &mut Vec<Rekeyed>) {
        stamp_source(self.id, &mut self.pending_rekeyed);
        into.append(&mut self.pending_rekeyed);
    }

    /// Emits every population group changed since its last emission (and the ROI records): the
    /// end of a replay, or a quiet stream in the service.
    pub fn flush_population(&mut self, engine: &Engine, out: &mut Vec<OutputEvent>) {
        aggregate::flush(
            &mut self.population,
            &mut self.pop_dirty,
            &engine.config.scoring.interventions,
            self.enrol.pmpm.get(PMPM_KEY).as_deref(),
            out,
        );
    }

    /// The end of a replay: the provider flow closes up to its latest fact and emits every key
    /// whose windows changed (see [`providers::aggregate::close`]; not on a quiet stream in the
    /// service, where a slow partition may still send older facts).
    pub fn close_providers(&mut self, engine: &Engine, out: &mut Vec<OutputEvent>) {
        if engine.providers.enabled {
            providers::aggregate::close(&mut self.prov_kpis, &engine.providers, out);
        }
    }

    /// A quiet stream in the service: the provider flow re-emits, as of its last emitted day, the
    /// keys whose figures changed since (see [`providers::aggregate::refresh`]).
    pub fn refresh_provider_kpis(&mut self, engine: &Engine, out: &mut Vec<OutputEvent>) {
        if engine.providers.enabled {
            providers::aggregate::refresh(&mut self.prov_kpis, &engine.providers, out);
        }
        if engine.utilization.enabled {
            let n = engine.config.partitions;
            utilization::aggregate::flush(&mut self.util.keys, &engine.utilization, n, out);
        }
    }

    /// The latest utilization fact time this partition's flow has seen (the end of a replay takes
    /// the latest over all partitions).
    pub fn latest_utilization_fact(&self) -> Option<EpochMillis> {
        utilization::aggregate::latest_fact(&self.util.keys)
    }

    /// The end of a replay: closes the utilization weeks up to `latest`, the latest fact time of
    /// any partition (see [`utilization::aggregate::finish`]), and emits them.
    pub fn finish_utilization(
        &mut self,
        engine: &Engine,
        latest: EpochMillis,
        out: &mut Vec<OutputEvent>,
    ) {
        if engine.utilization.enabled {
            utilization::aggregate::finish(&mut self.util.keys, &engine.utilization, latest, out);
        }
    }

    /// The weekly counts and forecasts per facility and service line (utilization flow).
    pub fn utilization(&self) -> &Table<UtilEntry> {
        &self.util.keys
    }

    /// Applies a utilization fact (its key must hash to this partition).
    pub fn apply_utilization_fact(
        &mut self,
        engine: &Engine,
        fact: &crate::model::UtilizationFact,
        out: &mut Vec<OutputEvent>,
    ) {
        if engine.utilization.enabled {
            let n = engine.config.partitions;
            utilization::aggregate::apply(&mut self.util.keys, &engine.utilization, n, fact, out);
        }
    }

    /// Sends the change of an encounter's utilization fact (admission / ED visit).
    fn utilization_encounter(&mut self, engine: &Engine, key: &str, e: &crate::model::Encounter) {
        if !engine.utilization.enabled {
            return;
        }
        let member = self.members.get(key);
        if member.is_none() && self.util.members.get(key).is_none() {
            return;
        }
        let (out, source) = (&mut self.pending_rekeyed, self.id);
        let keep = self.util.members.update(key, |t| {
            utilization::facts::refresh(
                member.as_deref(),
                t,
                &e.encounter_id,
                e.event_time,
                source,
                out,
            )
        });
        drop(member);
        if !keep {
            self.util.members.remove(key);
        }
    }

    /// The provider and department daily sums (provider flow).
    pub fn provider_kpis(&self) -> &Table<ProviderEntry> {
        &self.prov_kpis
    }

    /// Applies a provider fact (its key must hash to this partition).
    pub fn apply_provider_fact(
        &mut self,
        engine: &Engine,
        fact: &crate::model::ProviderFact,
        out: &mut Vec<OutputEvent>,
    ) {
        if engine.providers.enabled {
            providers::aggregate::apply(
                &mut self.prov_kpis,
                &engine.providers,
                fact,
                engine.config.partitions,
                out,
            );
        }
    }

    /// Notes an encounter record's attending provider and sends the member's provider facts.
    fn provider_encounter(&mut self, engine: &Engine, key: &str, e: &crate::model::Encounter) {
        if !engine.providers.enabled {
            return;
        }
        if let Some(member) = self.members.get(key) {
            let record = crate::reconcile::record_id(&e.event_id);
            self.prov_members.update(key, |t| {
                providers::facts::note_attending(
                    t,
                    &member,
                    &e.encounter_id,
                    e.event_time,
                    record,
                    e.attending_provider_id.as_deref(),
                )
            });
        }
        self.refresh_providers(engine, key, e.event_time);
    }

    /// Recomputes a member's provider facts and queues the changes.
    fn refresh_providers(&mut self, engine: &Engine, key: &str, at: EpochMillis) {
        if !engine.providers.enabled {
            return;
        }
        let member = self.members.get(key);
        if member.is_none() && self.prov_members.get(key).is_none() {
            return;
        }
        let tracked = self.pop_stays.get(key);
        let out = &mut self.pending_rekeyed;
        let window = engine.config.readmission_window_days as i32;
        let keep = self.prov_members.update(key, |t| {
            providers::facts::refresh(member.as_deref(), tracked.as_deref(), t, window, at, out)
        });
        drop((member, tracked));
        if !keep {
            self.prov_members.remove(key);
        }
    }

    /// Counts the claim adjudications just reported (as payer facts) on the claim's provider
    /// and department.
    fn provider_claim_facts(&mut self, engine: &Engine, key: &str) {
        if !engine.providers.enabled
            || !self
                .claim_out
                .costs
                .iter()
                .any(|r| matches!(r, Rekeyed::Payer(_)))
        {
            return;
        }
        let Some(st) = self.claims.get(key) else {
            return;
        };
        let Some(sub) = st.current_submission() else {
            return;
        };
        let mut facts = Vec::new();
        providers::facts::claim_facts(
            &sub.provider_id,
            &sub.department,
            &self.claim_out.costs,
            &mut facts,
        );
        drop(st);
        self.claim_out.costs.append(&mut facts);
    }

    /// The population aggregates (population flow).
    pub fn population(&self) -> &Table<PopEntry> {
        &self.population
    }

    /// Recomputes the outcomes of a member's matured index stays and queues the changes as
    /// population facts.
    fn refresh_population(&mut self, engine: &Engine, key: &str, at: EpochMillis) {
        if self.pop_stays.get(key).is_none() {
            return;
        }
        let member = self.members.get(key);
        let out = &mut self.pending_rekeyed;
        self.pop_stays.update(key, |t| {
            facts::refresh(
                &engine.refdata,
                &engine.detector,
                member.as_deref(),
                t,
                at,
                out,
            )
        });
    }

    /// Applies a payer fact to its hourly and daily windows (the payer must hash to this
    /// partition). Facts do not move the partition's watermark; they move the payer flow's, which
    /// closes and expires the windows: the minimum over the source partitions of the latest fact
    /// time from each (so it stays put until every source partition has sent a fact). A separate watermark because facts reach the partition through
    /// a topic: in Kafka the partition's own inputs, and other source partitions, can be far
    /// ahead in event time of the facts a slower partition is still producing, and would
    /// otherwise close (and expire) windows before their facts arrive.
    pub fn apply_fact(&mut self, engine: &Engine, fact: &PayerFact, out: &mut Vec<OutputEvent>) {
        if !engine.monitor.enabled() {
            return;
        }
        self.stats.monitor_facts += 1;
        let now = self.payer_flow_time(engine, fact);
        self.advance_payer_flow_to(engine, now, out);
        let watermark = self.checkpoint.payer_watermark;
        let mut key = std::mem::take(&mut self.key_buf);
        for (gi, g) in Granularity::ALL.into_iter().enumerate() {
            let start = window_start(fact.event_time, g);
            window_key(&mut key, &fact.payer_id, g, start);
            match engine
                .monitor
                .apply(&mut self.windows, &key, fact, g, start, watermark, out)
            {
                Applied::Dropped => {
                    self.stats.monitor_facts_dropped[gi][fact.payer_category as usize] += 1;
                }
                Applied::Open | Applied::Emitted => self.reschedule_window(engine, &key),
            }
        }
        self.key_buf = key;
    }

    /// Applies a record re-keyed from the claim flow (the member must hash to this partition).
    pub fn apply_cost(
        &mut self,
        engine: &Engine,
        cost: &EncounterCost,
        out: &mut Vec<OutputEvent>,
    ) {
        let key = cost.member_id.as_str();
        // A cost that arrives (through the repartition topic) after the member's stays have left
        // the look-back would only recreate an empty member: replay, which applies costs at their
        // own time, pruned it together with the stays.
        let lookback_ms = i64::from(engine.config.member_lookback_days) * crate::model::DAY_MS;
        if cost.event_time < self.checkpoint.watermark.saturating_sub(lookback_ms)
            && self.members.get(key).is_none()
        {
            self.stats.stale_costs += 1;
            return;
        }
        let detector = &engine.detector;
        self.members
            .update(key, |st| detector.apply_cost(st, key, cost, out));
        self.refresh_population(engine, key, cost.event_time);
        self.refresh_member_risk(engine, key, cost.event_time, out);
        self.refresh_providers(engine, key, cost.event_time);
        self.reschedule_member(engine, key);
        // Costs do not move the watermark, so a prune already due (a member with no stays in
        // the look-back) is done now rather than at the next event: the partition's state is then
        // the same whenever the cost arrived.
        let watermark = self.checkpoint.watermark;
        if let Some(&due) = self.scheduled[TimerOwner::Member as usize].get(key) {
            if due <= watermark {
                self.schedule(TimerOwner::Member, key, None);
                self.fire_member(engine, key, watermark, out);
            }
        }
    }

    /// Moves the watermark to `now` (if later) and fires every timer due by then.
    pub fn advance_to(
        &mut self,
        engine: &Engine,
        now: EpochMillis,
        out: &mut Vec<OutputEvent>,
        costs: &mut Vec<Rekeyed>,
    ) {
        if now <= self.checkpoint.watermark {
            return;
        }
        self.checkpoint.watermark = now;
        while let Some(((due, _, _), _)) = self.timers.first_key_value() {
            if *due > now {
                break;
            }
            let Some(((due, owner, _), keys)) = self.timers.pop_first() else {
                break;
            };
            for key in keys {
                self.scheduled[owner as usize].remove(&key);
                if owner == TimerOwner::CareGap {
                    self.stats.care_gap_timers += 1;
                } else {
                    self.stats.timers_fired += 1;
                }
                match owner {
                    TimerOwner::Claim => self.fire_claim(engine, &key, due, out, costs),
                    TimerOwner::Member => self.fire_member(engine, &key, due, out),
                    TimerOwner::Window => {}
                    TimerOwner::CareGap => self.fire_care_gap(engine, &key, due, out),
                    TimerOwner::Enrolment => self.fire_enrolment(&key, due),
                }
            }
        }
        stamp_source(self.id, &mut self.pending_rekeyed);
        costs.append(&mut self.pending_rekeyed);
    }

    fn fire_claim(
        &mut self,
        engine: &Engine,
        key: &str,
        due: EpochMillis,
        out: &mut Vec<OutputEvent>,
        costs: &mut Vec<Rekeyed>,
    ) {
        let reconciler = &engine.reconciler;
        let Some(timer) = self.claims.get(key).map(|st| reconciler.next_timer(&st)) else {
            return;
        };
        if timer.0 > due {
            // The state moved on since this was scheduled.
            self.reschedule_claim(engine, key);
            return;
        }
        let retired = self.claims.get(key).is_some_and(|st| st.is_retired());
        let claim_out = &mut self.claim_out;
        let keep = self.claims.update(key, |st| {
            reconciler.fire_timer(st, key, timer.1, due, claim_out)
        });
        if keep {
            self.cash_claim(engine, key, due);
        }
        out.append(&mut self.claim_out.events);
        self.provider_claim_facts(engine, key);
        self.stamp_facts();
        costs.append(&mut self.claim_out.costs);
        if keep {
            self.reschedule_claim(engine, key);
        } else if retired {
            // The retired claim's version is forgotten.
            self.claims.remove(key);
        } else {
            debug_assert_eq!(timer.1, ClaimTimer::Expire);
            if reconciler.keeps_versions() {
                self.claims.update(key, |st| *st = st.retired());
                self.reschedule_claim(engine, key);
            } else {
                self.claims.remove(key);
            }
            self.score.claims.remove(key);
            self.cash.claims.remove(key);
            self.stats.claims_expired += 1;
        }
    }

    fn fire_member(
        &mut self,
        engine: &Engine,
        key: &str,
        due: EpochMillis,
        out: &mut Vec<OutputEvent>,
    ) {
        let detector = &engine.detector;
        if engine
            .scorer
            .next_due(&self.score, key)
            .is_some_and(|d| d <= due)
        {
            let member = self.members.get(key).map(|m| m.clone());
            let matured = engine.scorer.mature_stays(
                &mut self.score,
                key,
                member.as_ref(),
                detector,
                due,
                &mut self.training,
            );
            if !matured.is_empty() && engine.config.population.enabled {
                self.pop_stays.update(key, |t| facts::track(t, &matured));
            }
        }
        self.refresh_population(engine, key, due);
        self.refresh_providers(engine, key, due);
        if self.members.get(key).is_none() {
            self.pop_stays.remove(key);
            self.refresh_member_risk(engine, key, due, out);
            self.prov_members.remove(key);
            self.reschedule_member(engine, key);
            return;
        }
        let aged_out = &mut self.stats.readmissions_aged_out;
        let keep = self
            .members
            .update(key, |st| detector.prune_counting(st, due, aged_out));
        if self.pop_stays.get(key).is_some() {
            // Frozen 31 days before the stays leave the look-back (see `population`).
            let cfg = &engine.config;
            let keep_from = crate::model::day_of(due) - cfg.member_lookback_days as i32
                + cfg.readmission_window_days as i32
                + 1;
            if !keep
                || !self
                    .pop_stays
                    .update(key, |t| facts::freeze_before(t, keep_from))
            {
                self.pop_stays.remove(key);
            }
        }
        if keep {
            self.reschedule_member(engine, key);
            // Encounters that left the look-back are forgotten (their facts stay as sent).
            self.refresh_providers(engine, key, due);
        } else {
            self.members.remove(key);
            self.prov_members.remove(key);
            self.stats.members_expired += 1;
            // The scoring entry may outlive the member (its scored stays' guard).
            self.reschedule_member(engine, key);
        }
        self.refresh_member_risk(engine, key, due, out);
        if self.members.get(key).is_none() {
            self.util.members.remove(key);
        }
    }

    /// Recomputes a member's predicted cost and top-N % flag (`memberrisk`).
    fn refresh_member_risk(
        &mut self,
        engine: &Engine,
        key: &str,
        at: EpochMillis,
        out: &mut Vec<OutputEvent>,
    ) {
        let member = self.members.get(key);
        engine.memberrisk.refresh(
            &mut self.member_risk,
            &mut self.risk_sketch,
            key,
            member.as_deref(),
            at,
            out,
        );
    }

    /// Members' latest predicted cost and top-N % flag.
    pub fn member_risk(&self) -> &Table<RiskState> {
        &self.member_risk
    }

    /// The partition's sketch of the latest predicted costs.
    pub fn risk_sketch(&self) -> &Table<Sketch> {
        &self.risk_sketch
    }

    /// Records `fact`'s time for its source partition; returns the payer flow's time.
    fn payer_flow_time(&mut self, engine: &Engine, fact: &PayerFact) -> EpochMillis {
        let sources = &mut self.checkpoint.payer_sources;
        let n = engine.config.partitions as usize;
        if sources.len() != n {
            sources.resize(n, i64::MIN);
        }
        if let Some(s) = usize::try_from(fact.source_partition)
            .ok()
            .and_then(|i| sources.get_mut(i))
        {
            *s = (*s).max(fact.event_time);
        }
        // Until every source has been heard from, nothing is known about the silent ones: in
        // Kafka a fast partition's facts can arrive months (of event time) before a slow one's
        // first.
        sources.iter().copied().min().unwrap_or(i64::MIN)
    }

    /// Moves the payer flow's watermark to `now` (if later) and fires every window timer due by
    /// then. Facts do it themselves; the runtime calls it with wall-clock time on a quiet stream.
    pub fn advance_payer_flow_to(
        &mut self,
        engine: &Engine,
        now: EpochMillis,
        out: &mut Vec<OutputEvent>,
    ) {
        if now <= self.checkpoint.payer_watermark {
            return;
        }
        self.checkpoint.payer_watermark = now;
        while let Some(((due, _, _), _)) = self.window_timers.first_key_value() {
            if *due > now {
                break;
            }
            let Some(((due, owner, _), keys)) = self.window_timers.pop_first() else {
                break;
            };
            for key in keys {
                self.scheduled[owner as usize].remove(&key);
                // Not in `timers_fired`: when window timers fire depends on how facts from
                // several partitions interleave, which differs between Kafka and replay.
                self.fire_window(engine, &key, due, out);
            }
        }
    }

    /// The end of a replay's input: emits every payer-monitor window not emitted yet (their
    /// grace has not passed), oldest first, so the data's last hours and day are reported. The
    /// service does not call it: its windows close as its watermark passes them.
    pub fn close_payer_windows(&mut self, engine: &Engine, out: &mut Vec<OutputEvent>) {
        if !engine.monitor.enabled() {
            return;
        }
        let mut open: Vec<(EpochMillis, String)> = self
            .windows
            .iter()
            .filter(|e| e.value().version == 0)
            .map(|e| (e.value().start, e.key().clone()))
            .collect();
        open.sort();
        for (_, key) in open {
            if engine.monitor.close(&mut self.windows, &key, out) {
                self.reschedule_window(engine, &key);
            }
        }
    }

    /// The payer flow's watermark (see [`Partition::apply_fact`]).
    pub fn payer_watermark(&self) -> EpochMillis {
        self.checkpoint.payer_watermark
    }

    fn fire_window(
        &mut self,
        engine: &Engine,
        key: &str,
        due: EpochMillis,
        out: &mut Vec<OutputEvent>,
    ) {
        let monitor = &engine.monitor;
        let Some(timer) = self.windows.get(key).map(|w| monitor.next_timer(&w)) else {
            return;
        };
        if timer.0 > due {
            self.reschedule_window(engine, key);
            return;
        }
        if monitor.fire(&mut self.windows, key, timer.1, out) {
            self.reschedule_window(engine, key);
        } else {
            self.windows.remove(key);
            self.stats.monitor_windows_expired += 1;
        }
    }

    fn reschedule_window(&mut self, engine: &Engine, key: &str) {
        let due = self
            .windows
            .get(key)
            .map(|w| engine.monitor.next_timer(&w).0);
        self.schedule(TimerOwner::Window, key, due);
    }

    fn schedule(&mut self, owner: TimerOwner, key: &str, due: Option<EpochMillis>) {
        let slots = &mut self.scheduled[owner as usize];
        let timers = if owner == TimerOwner::Window {
            &mut self.window_timers
        } else {
            &mut self.timers
        };
        let old = slots.get(key).copied();
        if old == due {
            return;
        }
        let hash = crate::reconcile::record_id(key);
        // Take the key string (and, when it empties, the vector) of the timer being moved, so a
        // reschedule allocates nothing.
        let mut reuse: Option<(String, Vec<String>)> = None;
        if let Some(old) = old {
            if let std::collections::btree_map::Entry::Occupied(mut entry) =
                timers.entry((old, owner, hash))
            {
                if let Some(pos) = entry.get().iter().position(|k| k == key) {
                    let taken = entry.get_mut().remove(pos);
                    let spare = if entry.get().is_empty() {
                        entry.remove()
                    } else {
                        Vec::new()
                    };
                    reuse = Some((taken, spare));
                }
            }
        }
        match due {
            Some(due) => {
                match slots.get_mut(key) {
                    Some(slot) => *slot = due,
                    None => {
                        slots.insert(key.to_owned(), due);
                    }
                }
                let (owned, spare) = reuse.unwrap_or_else(|| (key.to_owned(), Vec::new()));
                let keys = timers.entry((due, owner, hash)).or_insert(spare);
                let pos = keys.binary_search(&owned).unwrap_or_else(|p| p);
                keys.insert(pos, owned);
            }
            None => {
                slots.remove(key);
            }
        }
    }

    fn reschedule_claim(&mut self, engine: &Engine, key: &str) {
        let due = self
            .claims
            .get(key)
            .map(|st| engine.reconciler.next_timer(&st).0);
        self.schedule(TimerOwner::Claim, key, due);
    }

    fn reschedule_member(&mut self, engine: &Engine, key: &str) {
        let prune = self
            .members
            .get(key)
            .map(|st| engine.detector.next_prune(&st));
        let mature = engine.scorer.next_due(&self.score, key);
        let due = match (prune, mature) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.schedule(TimerOwner::Member, key, due);
    }

    /// Writes dirty state, offsets, watermark and `sinks` atomically (and flushes).
    pub fn checkpoint(
        &mut self,
        sinks: &BTreeMap<String, u64>,
    ) -> Result<CheckpointStats, StateError> {
        self.prepare_checkpoint(sinks)?.write()
    }

    /// Every durable table, in checkpoint order (the list [`TABLES`] names).
    fn tables_mut(&mut self) -> [&mut dyn crate::state::Persist; TABLES.len()] {
        [
            &mut self.claims,
            &mut self.members,
            &mut self.score.history,
            &mut self.score.claims,
            &mut self.score.stays,
            &mut self.windows,
            &mut self.pop_stays,
            &mut self.population,
            &mut self.care_gaps,
            &mut self.member_risk,
            &mut self.risk_sketch,
            &mut self.cash.claims,
            &mut self.cash.payers,
            &mut self.prov_members,
            &mut self.prov_kpis,
            &mut self.enrol.members,
            &mut self.enrol.pmpm,
            &mut self.util.members,
            &mut self.util.keys,
        ]
    }

    /// Encodes up to `budget` changed entries ahead of the next checkpoint (see
    /// [`crate::state::Persist::stage`]); returns how many. The runtime calls it while the
    /// partition waits for records, so a checkpoint holds the partition only for what changed
    /// since. Nothing to do without a durable store.
    pub fn stage_changes(&mut self, mut budget: usize) -> usize {
        let mut n = 0;
        for t in self.tables_mut() {
            if budget == 0 {
                break;
            }
            let k = t.stage(budget);
            n += k;
            budget -= k;
        }
        n
    }

    /// Takes a checkpoint of the current state without writing it: the partition can go on
    /// processing while [`PreparedCheckpoint::write`] runs elsewhere. Checkpoints must be written
    /// in the order they were prepared.
    pub fn prepare_checkpoint(
        &mut self,
        sinks: &BTreeMap<String, u64>,
    ) -> Result<PreparedCheckpoint, StateError> {
        self.wait_for_restore_write()?;
        self.checkpoint.sinks = sinks.clone();
        self.checkpoint.sequence += 1;
        self.stats.checkpoints += 1;
        self.checkpoint.counters = crate::state::encode_plain(&self.stats);
        let (store, record) = (self.store.clone(), self.checkpoint.clone());
        let mut changes = self.changes.take();
        let commit = store.prepare(&mut self.tables_mut(), &record, changes.as_mut());
        self.changes = changes;
        self.since_checkpoint = 0;
        Ok(PreparedCheckpoint {
            store,
            commit,
            record,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{ack, claim, remit, stay, t};
    use crate::model::{AdjustmentGroup::CO, ClaimAlert, ClaimStatus, DAY_MS};
    use crate::state::StateDb;

    #[test]
    fn partitioner_matches_kafka_murmur2() {
        // Vectors from the Java client's UtilsTest (murmur2 of the UTF-8 bytes).
        assert_eq!(
            murmur2::murmur2(b"21", murmur2::KAFKA_SEED) as i32,
            -973_932_308
        );
        assert_eq!(
            murmur2::murmur2(b"foobar", murmur2::KAFKA_SEED) as i32,
            -790_332_482
        );
        assert_eq!(
            murmur2::murmur2(b"a-little-bit-long-string", murmur2::KAFKA_SEED) as i32,
            -985_981_536
        );
        for n in [1, 4, 12] {
            assert!((0..n as i32).contains(&partition_for("C00001", n)));
        }
    }

    fn engine() -> Engine {
        Engine::new(CoreConfig::default(), RefData::shared())
    }

    /// `claimwatch_state_entries` reports each table under its own name: every table once.
    #[test]
    fn retention_counts_are_named_after_tables() {
        let stats = PartitionStats {
            enrolment_retired: 7,
            ..Default::default()
        };
        for (name, _) in stats.expired() {
            assert!(TABLES.iter().any(|(t, _)| *t == name), "{name}");
        }
        assert!(stats.expired().contains(&("enrolment", 7)));
    }

    #[test]
    fn table_sizes_name_every_table_once() {
        let e = engine();
        let mut p = Partition::open(0, PartitionStore::hot_only(0), &e).unwrap();
        let (mut out, mut costs) = (Vec::new(), Vec::new());
        let c = InputEvent::Claim(claim("C1", "2024-03-01"));
        p.apply(&e, &c, "ehr.claims", 0, &mut out, &mut costs);
        let sizes = p.table_sizes();
        let mut names: Vec<&str> = sizes.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        let mut want: Vec<&str> = TABLES.iter().map(|(n, _)| *n).collect();
        want.sort_unstable();
        assert_eq!(names, want);
        assert!(sizes.contains(&("claims", 1)), "{sizes:?}");
    }

    fn lifecycle(out: &[OutputEvent]) -> Vec<(ClaimStatus, Vec<ClaimAlert>)> {
        out.iter()
            .filter_map(|o| match o {
                OutputEvent::ClaimLifecycle(u) => Some((u.status, u.alerts.clone())),
                _ => None,
            })
            .collect()
    }

    /// Lifecycle updates as (output id, version, previous status, status).
    fn ids(out: &[OutputEvent]) -> Vec<(String, i64, Option<ClaimStatus>, ClaimStatus)> {
        out.iter()
            .filter_map(|o| match o {
                OutputEvent::ClaimLifecycle(u) => {
                    Some((u.output_id.clone(), u.version, u.previous_status, u.status))
                }
                _ => None,
            })
            .collect()
    }

    /// A claim paid, retired by retention, then reversed a year later.
    fn late_reversal(engine: &Engine) -> (Partition, Vec<OutputEvent>) {
        let mut p = Partition::open(0, PartitionStore::hot_only(0), engine).unwrap();
        let (mut out, mut costs) = (Vec::new(), Vec::new());
        let events = [
            InputEvent::Claim(claim("C1", "2024-03-01")),
            InputEvent::Remit(remit(
                "C1",
                "2024-03-20",
                "1",
                60_000,
                &[(CO, "45", 40_000)],
            )),
        ];
        for (i, e) in events.iter().enumerate() {
            p.apply(engine, e, "ehr.claims", i as i64, &mut out, &mut costs);
        }
        // 130 days later (past the 120 days of a closed claim) the claim has left state.
        p.advance_to(engine, t("2024-03-20") + 130 * DAY_MS, &mut out, &mut costs);
        let mut rev = remit("C1", "2025-03-20", "22", -60_000, &[(CO, "45", -40_000)]);
        rev.event_id = "rmt-C1-rev".into();
        out.clear();
        p.apply(
            engine,
            &InputEvent::Remit(rev),
            "x12.835",
            9,
            &mut out,
            &mut costs,
        );
        (p, out)
    }

    #[test]
    fn a_claim_back_after_retention_continues_its_versions() {
        let engine = engine();
        let (mut p, out) = late_reversal(&engine);
        let seen = ids(&out);
        assert_eq!(seen.len(), 1, "{seen:?}");
        let (id, version, previous, status) = &seen[0];
        assert!(
            *version > 2 && *id == format!("C1:{version}"),
            "the first lifecycle used C1:1 and C1:2; the returning one must not repeat them: {seen:?}"
        );
        assert_eq!(*previous, Some(ClaimStatus::Paid));
        assert_eq!(*status, ClaimStatus::Reversed);
        assert_eq!(p.stats().claims_expired, 1);
        // The version itself is forgotten after claim_version_retention_days more.
        let (mut out, mut costs) = (Vec::new(), Vec::new());
        p.advance_to(
            &engine,
            t("2025-03-20") + 1000 * DAY_MS,
            &mut out,
            &mut costs,
        );
        assert_eq!(p.claims().len(), 0);
        assert_eq!(
            p.stats().claims_expired,
            2,
            "the returned claim expired too"
        );
    }

    #[test]
    fn without_version_retention_a_returning_claim_starts_again() {
        let cfg = CoreConfig {
            claim_version_retention_days: 0,
            ..CoreConfig::default()
        };
        let engine = Engine::new(cfg, RefData::shared());
        let (p, out) = late_reversal(&engine);
        assert_eq!(ids(&out)[0].0, "C1:1");
        assert_eq!(ids(&out)[0].2, None);
        assert_eq!(p.claims().len(), 1);
    }

    #[test]
    fn timers_fire_on_event_time_before_the_event_that_passes_them() {
        let engine = engine();
        let mut p = Partition::open(0, PartitionStore::hot_only(0), &engine).unwrap();
        let (mut out, mut costs) = (Vec::new(), Vec::new());
        p.apply(
            &engine,
            &InputEvent::Claim(claim("C1", "2024-03-01")),
            "ehr.claims",
            0,
            &mut out,
            &mut costs,
        );
        // Another claim's event 10 days later moves the watermark past C1's ack deadline.
        p.apply(
            &engine,
            &InputEvent::Claim(claim("C2", "2024-03-11")),
            "ehr.claims",
            1,
            &mut out,
            &mut costs,
        );
        let seen = lifecycle(&out);
        assert_eq!(
            seen[1],
            (ClaimStatus::Submitted, vec![ClaimAlert::MissingAck])
        );
        // The wall-clock fallback fires the remit timer on a quiet stream.
        out.clear();
        p.advance_to(&engine, t("2024-03-01") + 46 * DAY_MS, &mut out, &mut costs);
        assert!(lifecycle(&out)
            .iter()
            .any(|(_, a)| a.contains(&ClaimAlert::MissingRemit)));
    }

    #[test]
    fn restart_restores_state_offsets_and_timers() {
        let engine = engine();
        let db = StateDb::temporary().unwrap();
        let (mut out, mut costs) = (Vec::new(), Vec::new());
        {
            let mut p = Partition::open(2, db.partition(2).unwrap(), &engine).unwrap();
            p.apply(
                &engine,
                &InputEvent::Claim(claim("C1", "2024-03-01")),
                "ehr.claims",
                7,
                &mut out,
                &mut costs,
            );
            p.apply(
                &engine,
                &InputEvent::Ack(ack("C1", "2024-03-02", "A2", "20")),
                "x12.277ca",
                3,
                &mut out,
                &mut costs,
            );
            p.apply(
                &engine,
                &InputEvent::Encounter(stay(
                    "M1",
                    "E1",
                    "F1",
                    "2024-01-01",
                    "2024-01-05",
                    "01",
                    "I5023",
                )),
                "ehr.encounters",
                0,
                &mut out,
                &mut costs,
            );
            p.checkpoint(&BTreeMap::new()).unwrap();
            // Not checkpointed: lost on restart, re-read from offset 8.
            p.apply(
                &engine,
                &InputEvent::Claim(claim("C9", "2024-03-02")),
                "ehr.claims",
                8,
                &mut out,
                &mut costs,
            );
        }
        let mut p = Partition::open(2, db.partition(2).unwrap(), &engine).unwrap();
        assert_eq!(p.offsets()["ehr.claims"], 8);
        assert_eq!(p.offsets()["x12.277ca"], 4);
        assert_eq!(p.claims().len(), 1);
        assert_eq!(p.members().len(), 1);
        assert_eq!(
            p.pending_timers(),
            3,
            "C1's remit timer, M1's prune timer and M1's care-gap timer"
        );
        assert_eq!(p.watermark(), t("2024-03-02"));
        out.clear();
        p.apply(
            &engine,
            &InputEvent::Remit(remit(
                "C1",
                "2024-03-20",
                "1",
                60_000,
                &[(CO, "45", 40_000)],
            )),
            "x12.835",
            0,
            &mut out,
            &mut costs,
        );
        assert_eq!(lifecycle(&out), vec![(ClaimStatus::Paid, vec![])]);
    }
}
