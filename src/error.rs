//! The crate error: every module's error folds into one type whose [`ErrorKind`] tells the runtime
//! what to do with it.

use crate::codec::DecodeError;

/// What the runtime does with an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input data: dead-letter the record and continue.
    Data,
    /// A dependency failed (disk, broker): retry with backoff.
    External,
    /// A bug or broken invariant: stop.
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("state store: {0}")]
    State(#[from] crate::state::StateError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("reference data: {0}")]
    RefData(String),
    #[error("config: {0}")]
    Config(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Decode(_) => ErrorKind::Data,
            Self::State(_) | Self::Io(_) => ErrorKind::External,
            Self::RefData(_) | Self::Config(_) | Self::Internal(_) => ErrorKind::Internal,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
