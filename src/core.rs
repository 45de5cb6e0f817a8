//! The engine (placeholder).
