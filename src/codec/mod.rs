//! Wire formats: Avro binary datums (optionally in the Confluent frame) and JSON lines.
//!
//! Decoding never panics: truncated bytes, garbage, a wrong schema id or wrong types all come back
//! as a [`DecodeError`], which the runtime turns into a dead letter.

pub mod avro;
pub mod json;
pub mod registry;

pub use avro::{AvroCodec, SchemaKind};
pub use registry::{RegistryClient, RegistryCodec, RegistryError};

/// Why bytes could not be turned into an event.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum DecodeError {
    #[error("empty payload")]
    Empty,
    #[error("confluent frame: {0}")]
    Frame(&'static str),
    #[error("unknown schema id {0}")]
    UnknownSchemaId(u32),
    #[error("schema id {found} is for {found_kind}, expected {expected}")]
    WrongSchema {
        found: u32,
        found_kind: &'static str,
        expected: &'static str,
    },
    /// The message's writer schema (fetched from the Schema Registry) cannot be read as the
    /// expected schema under Avro's resolution rules, or is not usable Avro at all.
    #[error("writer schema id {id} cannot be read as {expected}: {reason}")]
    IncompatibleWriter {
        id: u32,
        expected: &'static str,
        reason: String,
    },
    /// The Schema Registry could not be asked for a writer schema (unreachable, timed out,
    /// refused); the message itself may be fine.
    #[error("{0}")]
    Registry(String),
    #[error("avro: {0}")]
    Avro(String),
    #[error("json: {0}")]
    Json(String),
    #[error("invalid event: {0}")]
    Invalid(#[from] crate::model::ValidationError),
}

impl DecodeError {
    /// Bounded error code for metrics labels and dead letters.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty | Self::Frame(_) | Self::Avro(_) | Self::Json(_) => "decode",
            Self::UnknownSchemaId(_)
            | Self::WrongSchema { .. }
            | Self::IncompatibleWriter { .. } => "schema",
            Self::Registry(_) => "registry",
            Self::Invalid(_) => "validation",
        }
    }
}

/// Payload format of a topic or file.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Avro binary datum in the Confluent frame (magic byte 0, 4-byte schema id).
    Avro,
    /// One JSON object per record (per line in files).
    #[value(alias = "jsonl")]
    #[serde(alias = "jsonl")]
    Json,
}
