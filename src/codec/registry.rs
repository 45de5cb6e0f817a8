//! Confluent-compatible Schema Registry: a small blocking client, schema ids for our own schemas,
//! and decoding of messages written with another (compatible) version of one of our schemas.
//!
//! Subjects follow the TopicNameStrategy: the value schema of topic `t` is subject `t-value`
//! ([`topic_subject`]).
//!
//! Decoding ([`RegistryCodec::decode_framed`]) has two paths:
//! - fast: the frame carries the id our own schema has in the registry, and the datum is read
//!   straight into our types by `serde_avro_fast`, exactly as without a registry;
//! - resolution: any other id is fetched from the registry (once; parsed writer schemas are
//!   cached by id), checked to be readable as our schema, and the datum is read with apache-avro's
//!   schema resolution (writer schema -> our reader schema).
//!
//! Errors never carry payload data: registry errors hold status codes, the registry's numeric
//! error code and subject names; decode errors on the resolution path hold fixed texts and schema
//! compatibility reasons (which name fields and types, never values).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::avro::{unframe, AvroCodec, SchemaKind};
use super::DecodeError;

/// Content type of Schema Registry request bodies.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
const ACCEPT: &str =
    "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json";
/// Largest response body read (schemas are a few KiB).
const MAX_RESPONSE_BYTES: u64 = 8 << 20;
/// Default per-request time limit (connect, send and receive together).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The id [`SchemaIds::codec`] gives a schema that is not in the registry. Registries assign ids
/// from 1, so no message carries it; decoding such a kind always takes the resolution path.
pub const UNREGISTERED: u32 = 0;

/// The schemas claimwatch writes: it owns these subjects, so it registers them (with
/// `auto_register`) or requires them to be registered. The others are inputs, whose subjects
/// belong to their producers and are only looked up.
pub const WRITTEN: [SchemaKind; 24] = [
    SchemaKind::ClaimLifecycleUpdate,
    SchemaKind::ReadmissionEvent,
    SchemaKind::DeadLetter,
    SchemaKind::DenialRiskScore,
    SchemaKind::ReadmissionRiskScore,
    SchemaKind::HighRiskAlert,
    SchemaKind::PayerKpi,
    SchemaKind::EncounterCost,
    SchemaKind::PayerFact,
    SchemaKind::PayerMonitorAlert,
    SchemaKind::ReadmissionSummary,
    SchemaKind::InterventionRoi,
    SchemaKind::StayOutcome,
    SchemaKind::CareGapEvent,
    SchemaKind::VaccineDose,
    SchemaKind::MemberRiskEvent,
    SchemaKind::CashFact,
    SchemaKind::CashForecast,
    SchemaKind::ProviderFact,
    SchemaKind::ProviderKpi,
    SchemaKind::MemberPaid,
    SchemaKind::PmpmFact,
    SchemaKind::UtilizationFact,
    SchemaKind::UtilizationForecast,
];

/// The subject of a topic's value schema (TopicNameStrategy).
pub fn topic_subject(topic: &str) -> String {
    format!("{topic}-value")
}

/// Why a Schema Registry request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("schema registry url must be an http:// or https:// address")]
    InvalidUrl,
    #[error("schema registry: no schema with id {0}")]
    IdNotFound(u32),
    #[error("schema registry: schema id {0} is not an Avro schema")]
    NotAvro(u32),
    #[error(
        "schema registry: subject {subject}: schema is incompatible with the registered versions"
    )]
    Incompatible { subject: String },
    #[error(
        "schema registry: subject {subject}: schema rejected as invalid (error code {code:?})"
    )]
    InvalidSchema { subject: String, code: Option<u32> },
    #[error(
        "schema registry: subject {subject}: our schema is not registered and auto_register is off"
    )]
    NotRegistered { subject: String },
    #[error("schema registry: authentication or authorization failed (HTTP {status})")]
    Unauthorized { status: u16 },
    #[error("schema registry: HTTP {status} (error code {code:?})")]
    Http { status: u16, code: Option<u32> },
    #[error("schema registry: no answer within {0:?}")]
    Timeout(Duration),
    #[error("schema registry: transport: {0}")]
    Transport(String),
    #[error("schema registry: unexpected response: {0}")]
    BadResponse(&'static str),
}

impl RegistryError {
    /// True when the same request may succeed later (outage, overload, time-out).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::Transport(_) => true,
            Self::Http { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

#[derive(Deserialize)]
struct IdBody {
    id: u32,
}

#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: Option<u32>,
}

fn error_code(body: &str) -> Option<u32> {
    serde_json::from_str::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.error_code)
}

/// Percent-encodes a path segment (everything but RFC 3986 unreserved characters).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A blocking Schema Registry client with caches: ids of (subject, schema) pairs registered or
/// looked up, and schema texts by id. Both are immutable facts in a registry, so they are kept
/// for the client's lifetime; misses are not cached. Safe to share between threads.
pub struct RegistryClient {
    base: String,
    agent: ureq::Agent,
    timeout: Duration,
    authorization: Option<String>,
    ids: RwLock<HashMap<(String, String), u32>>,
    texts: RwLock<HashMap<u32, Arc<str>>>,
}

impl std::fmt::Debug for RegistryClient {
    // The authorization header stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .field("basic_auth", &self.authorization.is_some())
            .finish()
    }
}

enum Method {
    Get,
    Post(String),
}

impl RegistryClient {
    /// A client for the registry at `url` (e.g. `http://registry:8081`), with HTTP basic auth
    /// when `basic_auth` is `(user, password)`, and `timeout` for each request.
    pub fn new(
        url: &str,
        basic_auth: Option<(&str, &str)>,
        timeout: Duration,
    ) -> Result<Self, RegistryError> {
        let base = url.trim_end_matches('/');
        let rest = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"))
            .ok_or(RegistryError::InvalidUrl)?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(RegistryError::InvalidUrl);
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("claimwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let authorization = basic_auth.map(|(user, password)| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {token}")
        });
        Ok(Self {
            base: base.to_owned(),
            agent,
            timeout,
            authorization,
            ids: RwLock::default(),
            texts: RwLock::default(),
        })
    }

    fn transport(&self, e: ureq::Error) -> RegistryError {
        match e {
            ureq::Error::Timeout(_) => RegistryError::Timeout(self.timeout),
            ureq::Error::Io(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                RegistryError::Timeout(self.timeout)
            }
            ureq::Error::BadUri(_) => RegistryError::InvalidUrl,
            other => RegistryError::Transport(other.to_string()),
        }
    }

    /// One request; returns the status and the body text.
    fn request(&self, method: Method, path: &str) -> Result<(u16, String), RegistryError> {
        let url = format!("{}{path}", self.base);
        let result = match method {
            Method::Get => {
                let mut r = self.agent.get(&url).header("Accept", ACCEPT);
                if let Some(a) = &self.authorization {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            Method::Post(body) => {
                let mut r = self
                    .agent
                    .post(&url)
                    .header("Accept", ACCEPT)
                    .header("Content-Type", CONTENT_TYPE);
                if let Some(a) = &self.authorization {
                    r = r.header("Authorization", a);
                }
                r.send(body)
            }
        };
        let mut response = result.map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(|e| self.transport(e))?;
        Ok((status, text))
    }

    fn other_status(status: u16, body: &str) -> RegistryError {
        match status {
            401 | 403 => RegistryError::Unauthorized { status },
            _ => RegistryError::Http {
                status,
                code: error_code(body),
            },
        }
    }

    fn schema_body(schema: &str) -> String {
        serde_json::json!({ "schema": schema }).to_string()
    }

    fn cached_id(&self, subject: &str, schema: &str) -> Option<u32> {
        self.ids
            .read()
            .ok()?
            .get(&(subject.to_owned(), schema.to_owned()))
            .copied()
    }

    fn remember(&self, subject: &str, schema: &str, id: u32) {
        if let Ok(mut ids) = self.ids.write() {
            ids.insert((subject.to_owned(), schema.to_owned()), id);
        }
        if let Ok(mut texts) = self.texts.write() {
            texts.entry(id).or_insert_with(|| Arc::from(schema));
        }
    }

    /// Registers `schema` (Avro) under `subject` and returns its id; registering a schema that
    /// is already there returns its existing id (`POST /subjects/{subject}/versions`).
    pub fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        if let Some(id) = self.cached_id(subject, schema) {
            return Ok(id);
        }
        let path = format!("/subjects/{}/versions", encode_segment(subject));
        let (status, body) = self.request(Method::Post(Self::schema_body(schema)), &path)?;
        match status {
            200..=299 => {
                let id = serde_json::from_str::<IdBody>(&body)
                    .map_err(|_| RegistryError::BadResponse("register: no id in the answer"))?
                    .id;
                self.remember(subject, schema, id);
                Ok(id)
            }
            409 => Err(RegistryError::Incompatible {
                subject: subject.to_owned(),
            }),
            422 => Err(RegistryError::InvalidSchema {
                subject: subject.to_owned(),
                code: error_code(&body),
            }),
            _ => Err(Self::other_status(status, &body)),
        }
    }

    /// The id of `schema` under `subject`, or `None` when the subject or the schema under it is
    /// not registered (`POST /subjects/{subject}`).
    pub fn lookup(&self, subject: &str, schema: &str) -> Result<Option<u32>, RegistryError> {
        if let Some(id) = self.cached_id(subject, schema) {
            return Ok(Some(id));
        }
        let path = format!("/subjects/{}", encode_segment(subject));
        let (status, body) = self.request(Method::Post(Self::schema_body(schema)), &path)?;
        match status {
            200..=299 => {
                let id = serde_json::from_str::<IdBody>(&body)
                    .map_err(|_| RegistryError::BadResponse("lookup: no id in the answer"))?
                    .id;
                self.remember(subject, schema, id);
                Ok(Some(id))
            }
            404 => Ok(None),
            422 => Err(RegistryError::InvalidSchema {
                subject: subject.to_owned(),
                code: error_code(&body),
            }),
            _ => Err(Self::other_status(status, &body)),
        }
    }

    /// The Avro schema text registered with `id` (`GET /schemas/ids/{id}`).
    pub fn schema_by_id(&self, id: u32) -> Result<Arc<str>, RegistryError> {
        if let Some(text) = self.texts.read().ok().and_then(|t| t.get(&id).cloned()) {
            return Ok(text);
        }
        let (status, body) = self.request(Method::Get, &format!("/schemas/ids/{id}"))?;
        match status {
            200..=299 => {
                let b = serde_json::from_str::<SchemaBody>(&body).map_err(|_| {
                    RegistryError::BadResponse("schema by id: no schema in the answer")
                })?;
                if b.schema_type
                    .as_deref()
                    .is_some_and(|t| !t.eq_ignore_ascii_case("AVRO"))
                {
                    return Err(RegistryError::NotAvro(id));
                }
                let text: Arc<str> = Arc::from(b.schema);
                if let Ok(mut texts) = self.texts.write() {
                    texts.insert(id, Arc::clone(&text));
                }
                Ok(text)
            }
            404 => Err(RegistryError::IdNotFound(id)),
            _ => Err(Self::other_status(status, &body)),
        }
    }
}

/// The registry ids of our schemas; a kind without one is not registered (only inputs can be).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaIds(BTreeMap<SchemaKind, u32>);

impl SchemaIds {
    /// Asks the registry for the id of every schema, the subject of each being `subject_of`.
    /// Written schemas ([`WRITTEN`]) are registered with `auto_register`, else they must already
    /// be registered ([`RegistryError::NotRegistered`]); input schemas are only looked up.
    pub fn resolve(
        client: &RegistryClient,
        subject_of: impl Fn(SchemaKind) -> String,
        auto_register: bool,
    ) -> Result<Self, RegistryError> {
        let mut ids = BTreeMap::new();
        for kind in SchemaKind::ALL {
            let subject = subject_of(kind);
            let id = if !WRITTEN.contains(&kind) {
                client.lookup(&subject, kind.text())?
            } else if auto_register {
                Some(client.register(&subject, kind.text())?)
            } else {
                Some(
                    client
                        .lookup(&subject, kind.text())?
                        .ok_or(RegistryError::NotRegistered { subject })?,
                )
            };
            if let Some(id) = id {
                ids.insert(kind, id);
            }
        }
        Ok(Self(ids))
    }

    pub fn get(&self, kind: SchemaKind) -> Option<u32> {
        self.0.get(&kind).copied()
    }

    /// Kinds with no id in the registry.
    pub fn missing(&self) -> Vec<SchemaKind> {
        SchemaKind::ALL
            .into_iter()
            .filter(|k| !self.0.contains_key(k))
            .collect()
    }

    /// A codec that frames with these ids ([`UNREGISTERED`] for the missing ones).
    pub fn codec(&self) -> AvroCodec {
        AvroCodec::with_ids(|k| self.get(k).unwrap_or(UNREGISTERED))
    }
}

/// The codec for our schemas with their registry ids (see [`SchemaIds::resolve`]).
pub fn codec_from_registry(
    client: &RegistryClient,
    subject_of: impl Fn(SchemaKind) -> String,
    auto_register: bool,
) -> Result<AvroCodec, RegistryError> {
    SchemaIds::resolve(client, subject_of, auto_register).map(|ids| ids.codec())
}

type WriterEntry = Result<Arc<apache_avro::Schema>, String>;

/// [`AvroCodec`] plus the registry, to read messages written with other versions of our schemas.
pub struct RegistryCodec {
    avro: AvroCodec,
    client: Arc<RegistryClient>,
    /// Our schemas for apache-avro, in [`SchemaKind::ALL`] order.
    readers: Vec<apache_avro::Schema>,
    /// Parsed writer schemas by id (or why the text is not a usable schema).
    writers: RwLock<HashMap<u32, WriterEntry>>,
    /// Whether a writer id can be read as a kind (or why not).
    compatible: RwLock<HashMap<(u32, SchemaKind), Result<(), String>>>,
}

impl std::fmt::Debug for RegistryCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCodec")
            .field("avro", &self.avro)
            .field("client", &self.client)
            .finish()
    }
}

impl RegistryCodec {
    /// Wraps a codec whose ids came from `client`'s registry.
    pub fn new(avro: AvroCodec, client: Arc<RegistryClient>) -> Self {
        let readers = SchemaKind::ALL
            .iter()
            .map(|k| {
                // Compiled-in schemas, checked by the avro tests: a failure is a build defect.
                apache_avro::Schema::parse_str(k.text())
                    .unwrap_or_else(|e| panic!("shipped schema {} invalid: {e}", k.name()))
            })
            .collect();
        Self {
            avro,
            client,
            readers,
            writers: RwLock::default(),
            compatible: RwLock::default(),
        }
    }

    /// Resolves our ids in the registry ([`SchemaIds::resolve`]) and wraps the codec.
    pub fn connect(
        client: Arc<RegistryClient>,
        subject_of: impl Fn(SchemaKind) -> String,
        auto_register: bool,
    ) -> Result<Self, RegistryError> {
        let avro = codec_from_registry(&client, subject_of, auto_register)?;
        Ok(Self::new(avro, client))
    }

    /// The wrapped codec (encoding, and decoding with our ids only).
    pub fn avro(&self) -> &AvroCodec {
        &self.avro
    }

    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    fn reader(&self, kind: SchemaKind) -> &apache_avro::Schema {
        let i = SchemaKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        &self.readers[i]
    }

    /// The parsed writer schema with registry id `id`, fetched once.
    fn writer(&self, id: u32, kind: SchemaKind) -> Result<Arc<apache_avro::Schema>, DecodeError> {
        let incompatible = |reason: String| DecodeError::IncompatibleWriter {
            id,
            expected: kind.name(),
            reason,
        };
        if let Some(entry) = self.writers.read().ok().and_then(|w| w.get(&id).cloned()) {
            return entry.map_err(incompatible);
        }
        let text = self.client.schema_by_id(id).map_err(|e| match e {
            RegistryError::IdNotFound(_) => DecodeError::UnknownSchemaId(id),
            RegistryError::NotAvro(_) => incompatible("not an Avro schema".into()),
            other => DecodeError::Registry(other.to_string()),
        })?;
        let entry: WriterEntry = apache_avro::Schema::parse_str(&text)
            .map(Arc::new)
            .map_err(|e| format!("writer schema does not parse: {e}"));
        if let Ok(mut w) = self.writers.write() {
            w.insert(id, entry.clone());
        }
        entry.map_err(incompatible)
    }

    fn check_compatible(
        &self,
        id: u32,
        kind: SchemaKind,
        writer: &apache_avro::Schema,
    ) -> Result<(), DecodeError> {
        let known = self
            .compatible
            .read()
            .ok()
            .and_then(|c| c.get(&(id, kind)).cloned());
        let verdict = match known {
            Some(v) => v,
            None => {
                let v = apache_avro::schema_compatibility::SchemaCompatibility::can_read(
                    writer,
                    self.reader(kind),
                )
                .map_err(|e| e.to_string());
                if let Ok(mut c) = self.compatible.write() {
                    c.insert((id, kind), v.clone());
                }
                v
            }
        };
        verdict.map_err(|reason| DecodeError::IncompatibleWriter {
            id,
            expected: kind.name(),
            reason,
        })
    }

    /// Decodes a Confluent-framed message as `kind`, whichever registered version of the schema
    /// wrote it, as long as that version can be read as ours.
    pub fn decode_framed<T: DeserializeOwned>(
        &self,
        kind: SchemaKind,
        bytes: &[u8],
    ) -> Result<T, DecodeError> {
        let (id, datum) = unframe(bytes)?;
        if id == UNREGISTERED {
            return Err(DecodeError::UnknownSchemaId(id));
        }
        if id == self.avro.schema_id(kind) {
            return self.avro.decode_datum(kind, datum);
        }
        if let Some(found) = self.avro.kind_of(id) {
            return Err(DecodeError::WrongSchema {
                found: id,
                found_kind: found.name(),
                expected: kind.name(),
            });
        }
        if datum.is_empty() {
            return Err(DecodeError::Empty);
        }
        let writer = self.writer(id, kind)?;
        self.check_compatible(id, kind, &writer)?;
        let reader = self.reader(kind);
        // apache-avro's error texts can quote the values read: keep them out of the error.
        let mut rest = datum;
        let value =
            apache_avro::from_avro_datum(&writer, &mut rest, Some(reader)).map_err(|_| {
                DecodeError::Avro(format!(
                    "datum does not match writer schema {id} or cannot be resolved to {}",
                    kind.name()
                ))
            })?;
        if !rest.is_empty() {
            return Err(DecodeError::Avro(format!(
                "{} trailing bytes after the datum of writer schema {id}",
                rest.len()
            )));
        }
        // The resolved value has our schema's shape: write it as our datum and read that the
        // usual way, so both paths map Avro to our types identically (enums, logical types,
        // unions, bytes) through one deserializer.
        let ours = apache_avro::to_avro_datum(reader, value).map_err(|_| {
            DecodeError::Avro(format!(
                "value resolved from writer schema {id} does not fit {}",
                kind.name()
            ))
        })?;
        self.avro.decode_datum(kind, &ours)
    }
}

#[cfg(test)]
mod tests;
