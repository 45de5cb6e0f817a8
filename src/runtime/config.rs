//! Service configuration: one serde tree layered (with `figment`) from built-in defaults, an
//! optional TOML file, `CLAIMWATCH_*` environment variables (`__` separates levels, e.g.
//! `CLAIMWATCH_TOPICS__CLAIMS=prod.ehr.claims`) and command-line flags, in that order.
//!
//! Any librdkafka property can be passed through: `[kafka]` applies to every client, `[consumer]`
//! and `[producer]` to one kind (SASL/TLS settings go there: `security.protocol`,
//! `sasl.mechanisms`, `ssl.ca.location`, ...). The service's own delivery settings
//! (`enable.idempotence`, `acks`, manual commits) are applied last and cannot be weakened.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format as _, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::codec::Format;
use crate::config::CoreConfig;
use crate::model::InputStream;

/// The service consumer's default `queued.max.messages.kbytes`: the records librdkafka fetches
/// ahead, per partition queue (see [`RuntimeConfig::consumer_properties`]).
pub const QUEUED_MAX_KBYTES: u32 = 4096;

/// How often the service looks at glibc's free memory (`c_heap_trim_mib`).
pub const C_HEAP_TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Everything `claimwatch run` needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Consumer group id; every instance of one deployment uses the same.
    pub group_id: String,
    /// Directory of the durable state (sled); one per instance.
    pub state_dir: PathBuf,
    /// Cap of sled's page cache, MiB. Part of the process's memory: it fills as the store grows
    /// on disk (the hot view in `dashmap` is separate and holds every live entry regardless).
    pub state_cache_mib: u64,
    pub topics: Topics,
    /// Output payload formats, per output topic name (default Avro). Inputs are recognised per
    /// record: a Confluent-framed Avro datum (first byte 0) or a JSON object.
    pub output_formats: BTreeMap<String, Format>,
    /// The default output format.
    pub output_format: Format,
    /// librdkafka properties for every client.
    pub kafka: BTreeMap<String, String>,
    /// librdkafka properties for the consumers only.
    pub consumer: BTreeMap<String, String>,
    /// librdkafka properties for the producer only.
    pub producer: BTreeMap<String, String>,
    /// Take a checkpoint (await deliveries, write state, changelog, commit) at least this often.
    pub checkpoint_interval_ms: u64,
    /// How long a partition task waits for a quiet input before processing the others without
    /// it (the Kafka Streams `max.task.idle.ms` trade-off: order across topics vs latency).
    pub max_task_idle_ms: u64,
    /// The same wait for an input still catching up: one that has not reached its end since its
    /// partition was assigned (after a start, a restart or a rebalance). Its backlog is waited
    /// for, so a restart processes it in replay's order; the bound keeps a partition whose
    /// leader is unreachable from stalling the others for longer.
    pub max_task_idle_catch_up_ms: u64,
    /// When every input of a partition is idle, advance its event-time watermark to wall-clock
    /// time minus this lateness so timers (missing ack/remit) still fire. `None` (the default)
    /// keeps time purely event-driven, as replay does; set it for live feeds.
    pub idle_wall_clock_lateness_ms: Option<u64>,
    /// Graceful shutdown must finish (drain, checkpoint, commit) within this long.
    pub shutdown_timeout_ms: u64,
    /// At-least-once (the default: outputs carry deterministic ids, a crash re-emits at most what
    /// came after the last checkpoint) or exactly-once (Kafka transactions: each partition's
    /// outputs, internal facts, changelog records and input offsets of one checkpoint interval
    /// commit together or not at all; see README, "Delivery guarantee").
    pub processing_guarantee: ProcessingGuarantee,
    /// Exactly-once: each partition's producer has the transactional id
    /// `<prefix>-<partition>`, so the partition's next owner fences the previous one. Default:
    /// the group id. Every deployment sharing a cluster needs its own.
    pub transactional_id_prefix: Option<String>,
    /// Confluent-compatible Schema Registry; without it the ids in `schemas/` are used.
    pub schema_registry: Option<SchemaRegistryConfig>,
    /// HTTP listen address for `/metrics` and health; `None` disables the server.
    pub http_listen: Option<String>,
    /// Directory of the models (`denial.json`, `readmission.json`, `cost.json`, as `claimwatch
    /// train --out` writes them). `None`: the models compiled into the binary. A risk model absent
    /// from the directory is scored by its transparent fallback; an absent `cost.json` leaves the
    /// compiled-in cost model.
    pub model_dir: Option<PathBuf>,
    /// How often the model directory is checked for new artifacts (hot reload, see
    /// `score::reload`); 0 disables the reload.
    pub model_reload_interval_ms: u64,
    /// Every [`C_HEAP_TRIM_INTERVAL`], look at glibc's free bytes and give their pages back to the
    /// kernel when they exceed this many MiB (`memory::trim_c_heap`, when
    /// `memory::TrimPolicy` says so: librdkafka's pre-fetched records freed after a lag stay
    /// resident otherwise); 0 disables the trim. glibc only.
    pub c_heap_trim_mib: u64,
    /// The authenticated read API on the `http_listen` server (off by default).
    pub api: crate::api::ApiConfig,
    /// The transport-free core's settings (partitions must equal the input topics' count).
    pub core: CoreConfig,
}

/// What a crash may do to the outputs (`processing_guarantee`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingGuarantee {
    /// Outputs after the last checkpoint may be emitted again, byte-identical.
    #[default]
    AtLeastOnce,
    /// Kafka transactions per partition and checkpoint: a `read_committed` subscriber sees each
    /// output once. Outputs become visible at the checkpoint that commits them (every
    /// `checkpoint_interval_ms`).
    ExactlyOnce,
}

/// Schema Registry access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    pub url: String,
    /// Register our output schemas under `<topic>-value` at start (else only look them up).
    #[serde(default)]
    pub auto_register: bool,
    #[serde(default)]
    pub basic_auth_user: Option<String>,
    #[serde(default)]
    pub basic_auth_password: Option<String>,
}

/// Topic names. Inputs, the internal repartition topic and changelogs must all have
/// `partitions` partitions (co-partitioning), which `topics create` does and `run` checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Topics {
    pub claims: String,
    pub encounters: String,
    pub acks: String,
    pub remits: String,
    /// Raw X12 interchanges (one per message); consumed once X12 ingestion is built in.
    pub raw_x12: String,
    /// Internal repartition topic: paid amounts re-keyed from claims to members.
    pub encounter_cost: String,
    /// Internal repartition topic: payer monitor facts re-keyed from claims to payers.
    pub payer_facts: String,
    /// Internal repartition topic: stay outcome facts re-keyed from members to the population
    /// (one key, so one partition aggregates them).
    pub population_facts: String,
    pub readmission_summary: String,
    pub intervention_roi: String,
    pub claim_lifecycle: String,
    pub readmissions: String,
    pub denial_risk: String,
    pub readmission_risk: String,
    pub high_risk_alerts: String,
    pub payer_kpis: String,
    pub payer_monitor_alerts: String,
    pub dead_letter: String,
    /// Internal repartition topic: vaccine doses re-keyed from claims to members.
    pub vaccine_doses: String,
    /// Immunization care gaps (member-keyed).
    pub care_gaps: String,
    /// High-cost members entering / leaving the top N % (member-keyed).
    pub member_risk: String,
    /// Internal repartition topic: claims' cash facts re-keyed from claims to payers.
    pub cash_facts: String,
    /// Cash forecast per payer and ISO week (keyed `<payer_id>:<iso week>`).
    pub cash_forecast: String,
    /// Internal repartition topic: provider facts re-keyed from members and claims to
    /// `provider:<id>` / `department:<name>`.
    pub provider_facts: String,
    /// Provider and department KPIs (keyed `provider:<id>` / `department:<name>`).
    pub provider_kpis: String,
    /// Input: 834-style enrolment spans (keyed by member id, co-partitioned with encounters).
    pub enrollment: String,
    /// Internal repartition topic: claims' paid amounts re-keyed from claims to members (PMPM).
    pub member_paid: String,
    /// Internal repartition topic: members' PMPM facts re-keyed to the population.
    pub pmpm_facts: String,
    /// Internal repartition topic: utilization facts re-keyed from members to
    /// `<facility>|<service line>`.
    pub utilization_facts: String,
    /// Utilization forecast per facility and service line (keyed `<facility>|<service line>`).
    pub utilization_forecast: String,
    /// Changelog topics are `<changelog_prefix><table>` (compacted).
    pub changelog_prefix: String,
    /// Where instances advertise their read-API URL and partitions (compacted, keyed by
    /// instance id; read by every instance to forward requests to a key's owner).
    pub api_endpoints: String,
    /// Partitions of the keyed topics, created by `topics create`.
    pub partitions: i32,
    pub replication_factor: i32,
}

impl Default for Topics {
    fn default() -> Self {
        Self {
            claims: InputStream::Claims.name().into(),
            encounters: InputStream::Encounters.name().into(),
            acks: InputStream::Acks.name().into(),
            remits: InputStream::Remits.name().into(),
            raw_x12: "x12.raw".into(),
            encounter_cost: "claimwatch.internal.encounter-cost".into(),
            payer_facts: "claimwatch.internal.payer-facts".into(),
            population_facts: "claimwatch.internal.population-facts".into(),
            readmission_summary: "claimwatch.readmission-summary".into(),
            intervention_roi: "claimwatch.intervention-roi".into(),
            claim_lifecycle: "claimwatch.claim-lifecycle".into(),
            readmissions: "claimwatch.readmissions".into(),
            denial_risk: "claimwatch.denial-risk".into(),
            readmission_risk: "claimwatch.readmission-risk".into(),
            high_risk_alerts: "claimwatch.alerts.high-risk-discharge".into(),
            payer_kpis: "claimwatch.payer-kpis".into(),
            payer_monitor_alerts: "claimwatch.alerts.payer-monitor".into(),
            dead_letter: "claimwatch.dead-letter".into(),
            vaccine_doses: "claimwatch.internal.vaccine-doses".into(),
            care_gaps: "claimwatch.care-gaps".into(),
            member_risk: "claimwatch.member-risk".into(),
            cash_facts: "claimwatch.internal.cash-facts".into(),
            cash_forecast: "claimwatch.cash-forecast".into(),
            provider_facts: "claimwatch.internal.provider-facts".into(),
            provider_kpis: "claimwatch.provider-kpis".into(),
            enrollment: InputStream::Enrollment.name().into(),
            member_paid: "claimwatch.internal.member-paid".into(),
            pmpm_facts: "claimwatch.internal.pmpm-facts".into(),
            utilization_facts: "claimwatch.internal.utilization-facts".into(),
            utilization_forecast: "claimwatch.utilization-forecast".into(),
            changelog_prefix: "claimwatch.changelog.".into(),
            api_endpoints: "claimwatch.internal.api-endpoints".into(),
            partitions: 4,
            replication_factor: 1,
        }
    }
}

/// The consumer group whose internal and changelog topics keep their default names.
pub const DEFAULT_GROUP: &str = "claimwatch";

impl Topics {
    /// The internal topics (repartition, read-API endpoints), by their fields.
    fn internal_mut(&mut self) -> [&mut String; 10] {
        [
            &mut self.encounter_cost,
            &mut self.payer_facts,
            &mut self.population_facts,
            &mut self.vaccine_doses,
            &mut self.cash_facts,
            &mut self.provider_facts,
            &mut self.member_paid,
            &mut self.pmpm_facts,
            &mut self.utilization_facts,
            &mut self.api_endpoints,
        ]
    }

    /// Gives the internal and changelog topics that still have their default names the names
    /// of `group`'s own: `claimwatch.<group>.internal.*` and `claimwatch.<group>.changelog.*`
    /// (characters a topic name cannot hold become `_`); [`DEFAULT_GROUP`] keeps the defaults.
    /// These topics belong to one deployment, as a Kafka Streams application's belong to its
    /// application id: a second group on the same cluster (a staging deployment, a replay from
    /// scratch under a new group) read and wrote the first one's, double-counting its internal
    /// facts and mixing its changelogs. A name set explicitly is left as it is.
    pub fn scope_to_group(&mut self, group: &str) {
        if group == DEFAULT_GROUP {
            return;
        }
        let g: String = group
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut defaults = Topics::default();
        for (topic, default) in self.internal_mut().into_iter().zip(defaults.internal_mut()) {
            if *topic == *default {
                if let Some(rest) = default.strip_prefix("claimwatch.") {
                    *topic = format!("claimwatch.{g}.{rest}");
                }
            }
        }
        if self.changelog_prefix == defaults.changelog_prefix {
            self.changelog_prefix = format!("claimwatch.{g}.changelog.");
        }
    }

    /// The topic an input stream is read from.
    pub fn input(&self, stream: InputStream) -> &str {
        match stream {
            InputStream::Claims => &self.claims,
            InputStream::Encounters => &self.encounters,
            InputStream::Acks => &self.acks,
            InputStream::Remits => &self.remits,
            InputStream::Enrollment => &self.enrollment,
        }
    }

    /// The configured name of an output topic given its default name ([`crate::model::OutputEvent::topic`]).
    pub fn output(&self, default_name: &str) -> &str {
        match default_name {
            "claimwatch.claim-lifecycle" => &self.claim_lifecycle,
            "claimwatch.readmissions" => &self.readmissions,
            "claimwatch.denial-risk" => &self.denial_risk,
            "claimwatch.readmission-risk" => &self.readmission_risk,
            "claimwatch.alerts.high-risk-discharge" => &self.high_risk_alerts,
            "claimwatch.payer-kpis" => &self.payer_kpis,
            "claimwatch.alerts.payer-monitor" => &self.payer_monitor_alerts,
            "claimwatch.dead-letter" => &self.dead_letter,
            "claimwatch.readmission-summary" => &self.readmission_summary,
            "claimwatch.intervention-roi" => &self.intervention_roi,
            "claimwatch.care-gaps" => &self.care_gaps,
            "claimwatch.member-risk" => &self.member_risk,
            "claimwatch.cash-forecast" => &self.cash_forecast,
            "claimwatch.provider-kpis" => &self.provider_kpis,
            "claimwatch.utilization-forecast" => &self.utilization_forecast,
            _ => &self.dead_letter,
        }
    }

    /// The changelog topic of a state table.
    pub fn changelog(&self, table: &str) -> String {
        format!("{}{table}", self.changelog_prefix)
    }

    /// Topics a partition task consumes, in merge order (ties in event time go to the earlier).
    /// The input streams come first in [`InputStream::ALL`] order, as replay merges them.
    pub fn consumed(&self) -> Vec<String> {
        let mut v: Vec<String> = InputStream::ALL
            .iter()
            .map(|s| self.input(*s).to_owned())
            .collect();
        v.push(self.encounter_cost.clone());
        v.push(self.payer_facts.clone());
        v.push(self.population_facts.clone());
        v.push(self.vaccine_doses.clone());
        v.push(self.cash_facts.clone());
        v.push(self.provider_facts.clone());
        v.push(self.member_paid.clone());
        v.push(self.pmpm_facts.clone());
        v.push(self.utilization_facts.clone());
        v
    }

    /// Every output topic (keyed by claim, member or payer; any partition count).
    pub fn outputs(&self) -> Vec<String> {
        vec![
            self.claim_lifecycle.clone(),
            self.readmissions.clone(),
            self.denial_risk.clone(),
            self.readmission_risk.clone(),
            self.high_risk_alerts.clone(),
            self.payer_kpis.clone(),
            self.payer_monitor_alerts.clone(),
            self.dead_letter.clone(),
            self.readmission_summary.clone(),
            self.intervention_roi.clone(),
            self.care_gaps.clone(),
            self.member_risk.clone(),
            self.cash_forecast.clone(),
            self.provider_kpis.clone(),
            self.utilization_forecast.clone(),
        ]
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            brokers: "localhost:9092".into(),
            group_id: DEFAULT_GROUP.into(),
            state_dir: PathBuf::from("claimwatch-state"),
            state_cache_mib: crate::state::DEFAULT_CACHE_BYTES >> 20,
            topics: Topics::default(),
            output_formats: BTreeMap::new(),
            output_format: Format::Avro,
            kafka: BTreeMap::new(),
            consumer: BTreeMap::new(),
            producer: BTreeMap::new(),
            // Bounds the re-emission after a crash and the commit latency; a checkpoint costs one
            // sled flush and one produce round trip per partition.
            checkpoint_interval_ms: 1_000,
            max_task_idle_ms: 200,
            max_task_idle_catch_up_ms: 10_000,
            idle_wall_clock_lateness_ms: None,
            shutdown_timeout_ms: 30_000,
            processing_guarantee: ProcessingGuarantee::AtLeastOnce,
            transactional_id_prefix: None,
            schema_registry: None,
            http_listen: Some("127.0.0.1:9464".into()),
            model_dir: None,
            // A new model is picked up within seconds of being written; two stat calls a poll.
            model_reload_interval_ms: 10_000,
            c_heap_trim_mib: 64,
            api: crate::api::ApiConfig::default(),
            core: CoreConfig::default(),
        }
    }
}

const ENV_PREFIX: &str = "CLAIMWATCH_";

/// `CLAIMWATCH_*` variables that are not configuration keys: `main` reads them itself, before the
/// configuration (JSON logs, heap counting, the audit log's file).
const READ_BY_MAIN: &[&str] = &["log_json", "count_heap", "audit_log"];

/// Whether `key` (a `CLAIMWATCH_` variable's name without the prefix, lowercase, `__` made `.`)
/// sets a configuration key: its first part is a top-level key. Only those reach the
/// configuration, which refuses unknown fields below the top level (a misspelt
/// `CLAIMWATCH_TOPICS__REMITZ` is an error). Other `CLAIMWATCH_` variables are not ours to refuse:
/// Kubernetes, for one, sets `CLAIMWATCH_PORT`, `CLAIMWATCH_SERVICE_HOST`, ... in every pod of a
/// namespace with a Service named `claimwatch`, and refusing them kept the pods from starting.
fn is_config_key(top_level: &[String], key: &str) -> bool {
    let first = key.split('.').next().unwrap_or(key);
    !READ_BY_MAIN.contains(&key) && top_level.iter().any(|k| k.eq_ignore_ascii_case(first))
}

/// A variable's name after `CLAIMWATCH_` (any case), if it has the prefix.
fn without_prefix(name: &str) -> Option<&str> {
    name.get(..ENV_PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
        .map(|_| &name[ENV_PREFIX.len()..])
}

/// The client property maps a `CLAIMWATCH_<MAP>__<PROPERTY>` variable can set; see
/// [`RuntimeConfig::client_properties_from_env`].
const CLIENT_MAPS: [&str; 3] = ["kafka", "consumer", "producer"];

/// `(map, librdkafka property)` set by a variable named `key` (without the prefix), if any:
/// `KAFKA__SASL_PASSWORD` sets `sasl.password` of `[kafka]`.
fn client_property(key: &str) -> Option<(&'static str, String)> {
    let (map, property) = key.split_once("__")?;
    let map = CLIENT_MAPS
        .into_iter()
        .find(|m| m.eq_ignore_ascii_case(map))?;
    (!property.is_empty()).then(|| (map, property.to_ascii_lowercase().replace('_', ".")))
}

impl RuntimeConfig {
    /// Defaults, then `file` (TOML), then `CLAIMWATCH_*` variables. Flags are merged by the caller
    /// with [`RuntimeConfig::figment`].
    pub fn figment(file: Option<&Path>) -> Figment {
        let mut f = Figment::from(Serialized::defaults(RuntimeConfig::default()));
        if let Some(path) = file {
            f = f.merge(Toml::file_exact(path));
        }
        let keys = Self::top_level_keys();
        f.merge(
            Env::prefixed(ENV_PREFIX)
                .split("__")
                .filter(move |k| is_config_key(&keys, k.as_str()))
                // Set by `client_properties_from_env`: property names have dots.
                .filter(|k| {
                    let first = k.as_str().split('.').next().unwrap_or_default();
                    !CLIENT_MAPS.iter().any(|m| m.eq_ignore_ascii_case(first))
                }),
        )
    }

    /// Sets librdkafka properties from `CLAIMWATCH_KAFKA__<P>`, `CLAIMWATCH_CONSUMER__<P>` and
    /// `CLAIMWATCH_PRODUCER__<P>` variables, `<P>` being the property's name with `_` for `.`
    /// (`CLAIMWATCH_KAFKA__SASL_PASSWORD` sets `sasl.password`; librdkafka's string properties
    /// have no `_` in their names). A variable name cannot hold the dots, and a secret (a SASL
    /// password, a key's passphrase) is best passed this way: from a Kubernetes Secret, never in
    /// a file or on the command line. Overrides the file; `-X` flags override these.
    pub fn client_properties_from_env(&mut self) {
        let mut vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        vars.sort();
        for (k, v) in vars {
            if let Some((map, property)) = without_prefix(&k).and_then(client_property) {
                let map = match map {
                    "kafka" => &mut self.kafka,
                    "consumer" => &mut self.consumer,
                    _ => &mut self.producer,
                };
                map.insert(property, v.trim().to_owned());
            }
        }
    }

    /// The configuration's top-level keys (`brokers`, `topics`, `core`, ...), as serialised.
    fn top_level_keys() -> Vec<String> {
        match serde_json::to_value(RuntimeConfig::default()) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// `CLAIMWATCH_*` variables in the environment that set no configuration key and that `main`
    /// does not read either: left out of the configuration (a typo among them is worth a warning;
    /// names only, never values).
    pub fn ignored_env_vars() -> Vec<String> {
        let keys = Self::top_level_keys();
        let mut v: Vec<String> = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter(|k| {
                let Some(rest) = without_prefix(k) else {
                    return false;
                };
                let key = rest.replace("__", ".").to_ascii_lowercase();
                !is_config_key(&keys, &key)
                    && !READ_BY_MAIN.contains(&key.as_str())
                    && client_property(rest).is_none()
            })
            .collect();
        v.sort();
        v
    }

    /// `state_cache_mib` in bytes (saturating).
    pub fn state_cache_bytes(&self) -> u64 {
        self.state_cache_mib.saturating_mul(1 << 20)
    }

    /// Loads the layered configuration and validates it.
    pub fn load(figment: Figment) -> Result<Self, String> {
        let mut c: RuntimeConfig = figment.extract().map_err(|e| {
            e.into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        c.client_properties_from_env();
        c.topics.scope_to_group(&c.group_id);
        c.validate().map_err(|p| p.join("; "))?;
        Ok(c)
    }

    /// Every problem, not just the first.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = match self.core.validate() {
            Ok(()) => Vec::new(),
            Err(p) => p,
        };
        if self.brokers.trim().is_empty() {
            problems.push("brokers must not be empty".into());
        }
        if self.group_id.trim().is_empty() {
            problems.push("group_id must not be empty".into());
        }
        if self.topics.partitions <= 0 {
            problems.push("topics.partitions must be > 0".into());
        }
        if self.core.partitions as i32 != self.topics.partitions {
            problems.push(format!(
                "core.partitions ({}) must equal topics.partitions ({}): replay and the service hash keys the same way",
                self.core.partitions, self.topics.partitions
            ));
        }
        if self.processing_guarantee == ProcessingGuarantee::ExactlyOnce {
            let txn_timeout = self
                .producer_properties()
                .get("transaction.timeout.ms")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(60_000);
            if self.checkpoint_interval_ms >= txn_timeout {
                problems.push(format!(
                    "exactly-once: checkpoint_interval_ms ({}) must be below transaction.timeout.ms ({txn_timeout}): a checkpoint commits the partition's transaction",
                    self.checkpoint_interval_ms
                ));
            }
            if self
                .transactional_id_prefix
                .as_deref()
                .is_some_and(|p| p.trim().is_empty())
            {
                problems.push("transactional_id_prefix must not be empty".into());
            }
        }
        self.api.validate(&mut problems);
        if self.api.enabled && self.http_listen.as_deref().is_none_or(str::is_empty) {
            problems.push("api.enabled needs http_listen".into());
        }
        if self.state_cache_mib == 0 {
            problems.push("state_cache_mib must be > 0".into());
        }
        if self.checkpoint_interval_ms == 0 {
            problems.push("checkpoint_interval_ms must be > 0".into());
        }
        let mut names = self.topics.consumed();
        names.extend(self.topics.outputs());
        let mut seen = std::collections::BTreeSet::new();
        for n in &names {
            if n.is_empty() {
                problems.push("topic names must not be empty".into());
            } else if !seen.insert(n) {
                problems.push(format!("topic {n} is configured twice"));
            }
        }
        for key in self.kafka.keys().chain(self.consumer.keys()) {
            if matches!(
                key.as_str(),
                "enable.auto.commit" | "enable.auto.offset.store" | "group.id"
            ) {
                problems.push(format!(
                    "{key} is managed by claimwatch (offsets are committed after checkpoints)"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The output format of a topic.
    pub fn format_of(&self, topic: &str) -> Format {
        self.output_formats
            .get(topic)
            .copied()
            .unwrap_or(self.output_format)
    }

    /// Properties of the service's auxiliary consumers (the changelog restore reader, the read
    /// API's endpoint reader, topic administration): the consumer properties without librdkafka
    /// statistics, which only the service's consumer and the raw X12 consumer turn into metrics
    /// (`claimwatch_kafka_consumer_lag_records`). With statistics on, a client with the default
    /// context logs each report (~10 KB) at INFO.
    pub fn auxiliary_consumer_properties(&self) -> BTreeMap<String, String> {
        let mut p = self.consumer_properties();
        p.insert("statistics.interval.ms".into(), "0".into());
        p
    }

    /// Consumer properties: pass-through first, then ours.
    pub fn consumer_properties(&self) -> BTreeMap<String, String> {
        let mut p = self.kafka.clone();
        p.extend(self.consumer.clone());
        p.insert("bootstrap.servers".into(), self.brokers.clone());
        p.insert("group.id".into(), self.group_id.clone());
        p.insert("enable.auto.commit".into(), "false".into());
        p.insert("enable.auto.offset.store".into(), "false".into());
        p.insert("enable.partition.eof".into(), "true".into());
        // Co-partitioning: the range assignor gives one consumer the same partition number of
        // every input topic (they all have the same count); sticky/round-robin would not.
        p.insert("partition.assignment.strategy".into(), "range".into());
        p.entry("auto.offset.reset".into())
            .or_insert_with(|| "earliest".into());
        p.entry("session.timeout.ms".into())
            .or_insert_with(|| "10000".into());
        p.entry("heartbeat.interval.ms".into())
            .or_insert_with(|| "1000".into());
        // How long the broker may hold a fetch that has no data yet. It bounds the wait for the
        // next record on a caught-up input, so it sits in the end-to-end latency (50 ms gave a
        // p50 of 51-68 ms in the load test, 5-10 ms gave 21-22 ms: BENCHMARKS.md); the cost is
        // up to 100 empty fetches per second per broker connection while the inputs are idle.
        p.entry("fetch.wait.max.ms".into())
            .or_insert_with(|| "10".into());
        // The pre-fetch queue of each partition. The service reads every partition through a
        // queue of its own (`split_partition_queue`), and then librdkafka applies this bound per
        // partition, not per consumer: its default of 64 MiB let a catching-up instance with 14
        // consumed topics of 4 partitions hold gigabytes of fetched records (a heap profile of a
        // lagging soak found 210 MB of them, BENCHMARKS.md). 4 MiB is a few seconds of a
        // partition's records at the pipeline's rate, so fetching keeps ahead of processing.
        // The auxiliary consumers that read through one queue (the raw X12 reader, the read
        // API's reader) get it as their whole pre-fetch, which their low rates leave idle; the
        // changelog restore sets its own.
        p.entry("queued.max.messages.kbytes".into())
            .or_insert_with(|| QUEUED_MAX_KBYTES.to_string());
        // Consumer lag per partition for the metrics.
        p.entry("statistics.interval.ms".into())
            .or_insert_with(|| "15000".into());
        p
    }

    /// The transactional producer of partition `p` (exactly-once): the producer properties with
    /// its transactional id. An infinite `message.timeout.ms` (our at-least-once default) does
    /// not fit a transaction: unless configured explicitly, librdkafka then derives it from
    /// `transaction.timeout.ms`.
    pub fn transactional_producer_properties(&self, p: i32) -> BTreeMap<String, String> {
        let mut props = self.producer_properties();
        let explicit = |k: &str| self.kafka.contains_key(k) || self.producer.contains_key(k);
        if !explicit("message.timeout.ms") {
            props.remove("message.timeout.ms");
        }
        let prefix = self
            .transactional_id_prefix
            .as_deref()
            .unwrap_or(&self.group_id);
        props.insert("transactional.id".into(), format!("{prefix}-{p}"));
        props
    }

    /// Producer properties: pass-through first, then the delivery guarantees.
    pub fn producer_properties(&self) -> BTreeMap<String, String> {
        let mut p = self.kafka.clone();
        p.extend(self.producer.clone());
        p.insert("bootstrap.servers".into(), self.brokers.clone());
        p.insert("enable.idempotence".into(), "true".into());
        p.insert("acks".into(), "all".into());
        // Java-compatible key placement, so our outputs land where a Java producer's would.
        p.entry("partitioner".into())
            .or_insert_with(|| "murmur2_random".into());
        p.entry("linger.ms".into()).or_insert_with(|| "5".into());
        p.entry("compression.type".into())
            .or_insert_with(|| "lz4".into());
        // Keep retrying through broker outages; the checkpoint waits for the acknowledgements.
        p.entry("message.timeout.ms".into())
            .or_insert_with(|| "0".into());
        p
    }
}

/// Builds an rdkafka client config from properties.
pub fn client_config(props: &BTreeMap<String, String>) -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    for (k, v) in props {
        c.set(k, v);
    }
    c
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail API
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        RuntimeConfig::default().validate().unwrap();
    }

    #[test]
    fn layers_file_then_env() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "cw.toml",
                r#"
                brokers = "file:9092"
                group_id = "from-file"
                [topics]
                claims = "prod.claims"
                [kafka]
                "security.protocol" = "SASL_SSL"
                "#,
            )?;
            jail.set_env("CLAIMWATCH_GROUP_ID", "from-env");
            jail.set_env("CLAIMWATCH_TOPICS__REMITS", "prod.835");
            let c = RuntimeConfig::load(RuntimeConfig::figment(Some(Path::new("cw.toml"))))
                .map_err(|e| e.to_string())?;
            assert_eq!(c.brokers, "file:9092");
            assert_eq!(c.group_id, "from-env");
            assert_eq!(c.topics.claims, "prod.claims");
            assert_eq!(c.topics.remits, "prod.835");
            assert_eq!(c.consumer_properties()["security.protocol"], "SASL_SSL");
            assert_eq!(c.producer_properties()["enable.idempotence"], "true");
            Ok(())
        });
    }

    /// librdkafka properties (dotted names) from variables: secrets come this way from a
    /// Kubernetes Secret. A misspelt key below the top level is still refused.
    #[test]
    fn client_properties_and_misspelt_keys_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("cw.toml", "[kafka]\n\"sasl.password\" = \"from-file\"\n")?;
            jail.set_env("CLAIMWATCH_KAFKA__SASL_PASSWORD", "s3cret");
            jail.set_env("CLAIMWATCH_KAFKA__SECURITY_PROTOCOL", "SASL_SSL");
            jail.set_env("CLAIMWATCH_CONSUMER__FETCH_WAIT_MAX_MS", "25");
            jail.set_env("CLAIMWATCH_PRODUCER__LINGER_MS", "2");
            let c = RuntimeConfig::load(RuntimeConfig::figment(Some(Path::new("cw.toml"))))
                .map_err(|e| e.to_string())?;
            assert_eq!(c.kafka["sasl.password"], "s3cret");
            assert_eq!(c.consumer_properties()["security.protocol"], "SASL_SSL");
            assert_eq!(c.consumer_properties()["fetch.wait.max.ms"], "25");
            assert_eq!(c.producer_properties()["linger.ms"], "2");
            assert!(RuntimeConfig::ignored_env_vars().is_empty());
            jail.set_env("CLAIMWATCH_TOPICS__REMITZ", "prod.835");
            let e = RuntimeConfig::load(RuntimeConfig::figment(None)).unwrap_err();
            assert!(e.contains("remitz"), "{e}");
            Ok(())
        });
    }

    /// A group other than the default gets internal and changelog topics of its own; explicit
    /// names and the shared input and output topics stay as they are.
    #[test]
    fn internal_topics_belong_to_their_group() {
        let mut t = Topics::default();
        t.scope_to_group(DEFAULT_GROUP);
        assert_eq!(t.encounter_cost, "claimwatch.internal.encounter-cost");
        let mut t = Topics {
            payer_facts: "mine.payer-facts".into(),
            ..Topics::default()
        };
        t.scope_to_group("billing staging");
        assert_eq!(
            t.encounter_cost,
            "claimwatch.billing_staging.internal.encounter-cost"
        );
        assert_eq!(
            t.api_endpoints,
            "claimwatch.billing_staging.internal.api-endpoints"
        );
        assert_eq!(
            t.changelog("claims"),
            "claimwatch.billing_staging.changelog.claims"
        );
        assert_eq!(t.payer_facts, "mine.payer-facts");
        assert_eq!(t.claim_lifecycle, "claimwatch.claim-lifecycle");
        assert_eq!(t.claims, "ehr.claims");
        figment::Jail::expect_with(|jail| {
            jail.set_env("CLAIMWATCH_GROUP_ID", "g9");
            let c = RuntimeConfig::load(RuntimeConfig::figment(None)).map_err(|e| e.to_string())?;
            assert_eq!(c.topics.cash_facts, "claimwatch.g9.internal.cash-facts");
            Ok(())
        });
    }

    /// Statistics feed the metrics from the service's consumer; the auxiliary consumers keep
    /// every other setting (security included) but report none, even when asked for globally.
    #[test]
    fn auxiliary_consumers_have_no_statistics() {
        let mut c = RuntimeConfig::default();
        c.kafka
            .insert("security.protocol".into(), "SASL_SSL".into());
        assert_eq!(c.consumer_properties()["statistics.interval.ms"], "15000");
        c.kafka
            .insert("statistics.interval.ms".into(), "5000".into());
        let aux = c.auxiliary_consumer_properties();
        assert_eq!(aux["statistics.interval.ms"], "0");
        assert_eq!(aux["security.protocol"], "SASL_SSL");
        assert_eq!(c.consumer_properties()["statistics.interval.ms"], "5000");
    }

    /// The pre-fetch bound is ours unless the operator sets it, in `[kafka]` or `[consumer]`.
    #[test]
    fn the_prefetch_queue_is_bounded_unless_configured() {
        let mut c = RuntimeConfig::default();
        assert_eq!(
            c.consumer_properties()["queued.max.messages.kbytes"],
            "4096"
        );
        c.kafka
            .insert("queued.max.messages.kbytes".into(), "1024".into());
        assert_eq!(
            c.consumer_properties()["queued.max.messages.kbytes"],
            "1024"
        );
        c.consumer
            .insert("queued.max.messages.kbytes".into(), "65536".into());
        assert_eq!(
            c.consumer_properties()["queued.max.messages.kbytes"],
            "65536"
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let mut c = RuntimeConfig::default();
        c.brokers.clear();
        c.topics.remits = c.topics.claims.clone();
        c.core.partitions = 8;
        c.kafka.insert("enable.auto.commit".into(), "true".into());
        c.state_cache_mib = 0;
        let p = c.validate().unwrap_err();
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(p.iter().any(|m| m.contains("state_cache_mib")), "{p:?}");
    }

    #[test]
    fn state_cache_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CLAIMWATCH_STATE_CACHE_MIB", "64");
            // Variables `main` reads itself are not configuration keys (else: unknown field).
            jail.set_env("CLAIMWATCH_COUNT_HEAP", "1");
            jail.set_env("CLAIMWATCH_LOG_JSON", "true");
            jail.set_env("CLAIMWATCH_AUDIT_LOG", "/var/log/claimwatch/audit.jsonl");
            // What Kubernetes sets for a Service named `claimwatch`: not configuration keys.
            jail.set_env("CLAIMWATCH_PORT", "tcp://10.0.0.7:9464");
            jail.set_env("CLAIMWATCH_SERVICE_HOST", "10.0.0.7");
            jail.set_env("CLAIMWATCH_PORT_9464_TCP_ADDR", "10.0.0.7");
            let c = RuntimeConfig::load(RuntimeConfig::figment(None)).map_err(|e| e.to_string())?;
            assert_eq!(
                RuntimeConfig::ignored_env_vars(),
                [
                    "CLAIMWATCH_PORT",
                    "CLAIMWATCH_PORT_9464_TCP_ADDR",
                    "CLAIMWATCH_SERVICE_HOST"
                ]
            );
            assert_eq!(c.state_cache_mib, 64);
            assert_eq!(c.state_cache_bytes(), 64 << 20);
            assert_eq!(
                RuntimeConfig::default().state_cache_bytes(),
                crate::state::DEFAULT_CACHE_BYTES
            );
            Ok(())
        });
    }

    #[test]
    fn exactly_once_from_the_environment_with_its_transactional_ids() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CLAIMWATCH_PROCESSING_GUARANTEE", "exactly_once");
            jail.set_env("CLAIMWATCH_GROUP_ID", "billing");
            let c = RuntimeConfig::load(RuntimeConfig::figment(None)).map_err(|e| e.to_string())?;
            assert_eq!(c.processing_guarantee, ProcessingGuarantee::ExactlyOnce);
            let p = c.transactional_producer_properties(3);
            assert_eq!(p["transactional.id"], "billing-3");
            assert_eq!(p["enable.idempotence"], "true");
            // The at-least-once default (infinite) does not fit a transaction.
            assert!(!p.contains_key("message.timeout.ms"));
            assert_eq!(c.producer_properties()["message.timeout.ms"], "0");
            Ok(())
        });
        let mut c = RuntimeConfig {
            processing_guarantee: ProcessingGuarantee::ExactlyOnce,
            transactional_id_prefix: Some("cw-prod".into()),
            ..RuntimeConfig::default()
        };
        c.producer
            .insert("message.timeout.ms".into(), "30000".into());
        let p = c.transactional_producer_properties(0);
        assert_eq!(p["transactional.id"], "cw-prod-0");
        assert_eq!(p["message.timeout.ms"], "30000", "explicit settings stay");
        c.validate().unwrap();
        // A checkpoint commits the transaction: it must come before the broker aborts it.
        c.checkpoint_interval_ms = 60_000;
        c.transactional_id_prefix = Some(" ".into());
        let problems = c.validate().unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("transaction.timeout.ms"),
            "{problems:?}"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("cw.toml", "brokerz = \"x\"\n")?;
            let e = RuntimeConfig::load(RuntimeConfig::figment(Some(Path::new("cw.toml"))))
                .unwrap_err();
            assert!(e.contains("brokerz"), "{e}");
            Ok(())
        });
    }
}
