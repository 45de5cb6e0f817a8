//! # claimwatch
//!
//! Streaming healthcare claims reconciliation and 30-day readmission detection.
//!
//! ## Layout: the data flow, read from the folder names
//!
//! ```text
//!  files / Kafka ──► codec ──► model::InputEvent ──► core ──► model::OutputEvent ──► codec ──► files / Kafka
//!   (x12 parses raw           │ validate              │  reconcile  (claim-keyed)
//!    835/277CA/837)           └─ bad → DeadLetter     │  readmit    (member-keyed)
//!                                                     │  state      (dashmap hot view + sled durable)
//! ```
//!
//! - [`model`]: the event contracts (Rust mirrors of `schemas/*.avsc`) and input validation.
//! - [`codec`]: Avro (Confluent-framed) and JSON encode/decode; never panics on bad bytes.
//! - [`refdata`]: versioned code tables (CARC, claim status categories, planned readmission,
//!   diagnosis groups, HRRP cohorts, Charlson), loaded at start.
//! - [`state`]: the keyed store: a `dashmap` hot view over a `sled` durable store, checkpointed
//!   atomically together with the input offsets it reflects.
//! - [`reconcile`]: the claim lifecycle state machine (keyed by claim id).
//! - [`readmit`]: incremental 30-day readmission detection (keyed by member id).
//! - [`score`]: risk scoring in the core: features as of scoring time, logistic models with
//!   drivers, LACE/HOSPITAL, high-risk alerts, training labels maturing in the stream, `train`.
//! - [`monitor`]: payer denial monitors (keyed by payer id): hourly and daily windows of the payer
//!   facts re-keyed from reconciliation, KPIs with corrections, drift against a baseline, alerts.
//! - [`core`]: the transport-free engine that routes events to the stages, runs event-time timers
//!   and checkpoints; file replay, the Kafka runtime and the benchmarks all drive it.
//! - [`generate`]: the calibrated synthetic population generator with ground truth.
//! - [`replay`]: feeds generated or parsed files through the core in event-time order.
//! - [`report`]: the executive report (`claimwatch report`): a replay output directory folded to
//!   its latest record per key, rendered as one self-contained HTML page (inline SVG, no JavaScript).
//! - [`metrics`]: every Prometheus metric on an explicit registry, fed by the runtime and by
//!   `observe_output`; the `/metrics` and `/health/*` HTTP server.
//! - [`enrolment`]: `ehr.enrollment` eligibility spans, member months and cost per member per
//!   month (PMPM) on the population summary.
//! - [`x12`]: X12 835 / 277CA / 837 parsing into model events (files: `claimwatch x12 parse`;
//!   Kafka `x12.raw`: [`x12::parse_interchange`]) and writing them back (`generate --format x12`).
//!
//! The core is pure and synchronous (`apply(event) -> outputs`); only `state` touches dashmap and
//! sled, and only the runtime (a later layer) touches Kafka.

pub mod api;
pub mod caregaps;
pub mod cashflow;
pub mod codec;
pub mod config;
pub mod core;
pub mod enrolment;
pub mod error;
pub mod generate;
pub mod memberrisk;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod population;
pub mod providers;
pub mod readmit;
pub mod reconcile;
pub mod refdata;
pub mod replay;
pub mod report;
pub mod runtime;
pub mod score;
pub mod state;
pub mod utilization;
pub mod x12;

pub use error::{Error, ErrorKind};
