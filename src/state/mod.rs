//! Keyed state (placeholder until the store lands).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("sled: {0}")]
    Sled(String),
}
