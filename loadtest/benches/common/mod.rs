//! Shared by the core benchmarks: the generated population in replay order and the driver loop.
#![allow(dead_code)]

use std::collections::BTreeMap;

use claimwatch::config::CoreConfig;
use claimwatch::core::{partition_for, Engine, Partition};
use claimwatch::generate::{generate, GenerateConfig};
use claimwatch::model::InputEvent;
use claimwatch::refdata::RefData;
use claimwatch::state::{PartitionStore, StateDb};

pub const MEMBERS: usize = 4_000;
pub const PARTITIONS: u32 = 4;

/// The population's input events in replay order.
pub fn events() -> Vec<InputEvent> {
    let g = generate(&GenerateConfig {
        members: MEMBERS,
        seed: 7,
        ..GenerateConfig::default()
    });
    let mut all: Vec<(i64, u8, usize, InputEvent)> = Vec::new();
    all.extend(
        g.claims
            .into_iter()
            .enumerate()
            .map(|(i, e)| (e.event_time, 0, i, InputEvent::Claim(e))),
    );
    all.extend(
        g.encounters
            .into_iter()
            .enumerate()
            .map(|(i, e)| (e.event_time, 1, i, InputEvent::Encounter(e))),
    );
    all.extend(
        g.acks
            .into_iter()
            .enumerate()
            .map(|(i, e)| (e.event_time, 2, i, InputEvent::Ack(e))),
    );
    all.extend(
        g.remits
            .into_iter()
            .enumerate()
            .map(|(i, e)| (e.event_time, 3, i, InputEvent::Remit(e))),
    );
    all.sort_by_key(|(t, s, i, _)| (*t, *s, *i));
    all.into_iter().map(|(_, _, _, e)| e).collect()
}

pub fn engine(checkpoint_every_events: u64) -> Engine {
    Engine::new(config(checkpoint_every_events), RefData::shared())
}

/// The benchmarks' core configuration (the defaults, with every population-analytics stage on).
pub fn config(checkpoint_every_events: u64) -> CoreConfig {
    CoreConfig {
        partitions: PARTITIONS,
        checkpoint_every_events,
        ..CoreConfig::default()
    }
}

/// The same core without the population analytics of issue 8 (readmission summary and ROI, care
/// gaps, high-cost members, cash forecast, provider KPIs, utilization forecast): what they cost
/// per event. (PMPM has no switch; the benchmark input has no enrolment records.)
#[allow(dead_code)] // used by some of the bench targets that include this module
pub fn engine_without_analytics(checkpoint_every_events: u64) -> Engine {
    let mut c = config(checkpoint_every_events);
    c.disable_analytics();
    Engine::new(c, RefData::shared())
}

/// Feeds every event through the partitions, checkpointing as configured. Returns outputs.
pub fn drive(engine: &Engine, partitions: &mut [Partition], events: &[InputEvent]) -> usize {
    let (mut out, mut costs) = (Vec::with_capacity(16), Vec::with_capacity(4));
    let mut produced = 0;
    let every = engine.config.checkpoint_every_events;
    let sinks = BTreeMap::new();
    for (offset, e) in events.iter().enumerate() {
        let p = partition_for(e.key(), PARTITIONS) as usize;
        partitions[p].apply(
            engine,
            e,
            e.stream().name(),
            offset as i64,
            &mut out,
            &mut costs,
        );
        claimwatch::replay::route_rekeyed(engine, partitions, &mut costs, &mut out);
        produced += out.len();
        out.clear();
        if partitions[p].since_checkpoint() >= every {
            partitions[p].checkpoint(&sinks).expect("checkpoint");
        }
    }
    for p in partitions.iter_mut() {
        p.checkpoint(&sinks).expect("checkpoint");
    }
    produced
}

pub fn open(engine: &Engine, db: Option<&StateDb>) -> Vec<Partition> {
    (0..PARTITIONS as i32)
        .map(|id| {
            let store = db.map_or_else(
                || PartitionStore::hot_only(id),
                |db| db.partition(id).expect("partition"),
            );
            Partition::open(id, store, engine).expect("open")
        })
        .collect()
}
