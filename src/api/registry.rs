//! Which partitions this instance serves, and read handles on their state.
//!
//! The runtime marks a partition [`Registry::restoring`] when it is assigned, [`Registry::ready`]
//! with its tables' hot views once restored (and again when a task rewinds and reopens its
//! state), and [`Registry::remove`]s it on revocation. Readers get an `Arc` of the views: a
//! `DashMap` read takes one shard's read lock for the time of a clone and never waits for the
//! partition's task.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use dashmap::DashMap;

use crate::core::Partition;
use crate::monitor::WindowState;
use crate::readmit::MemberState;
use crate::reconcile::ClaimState;
use crate::score::PendingStays;

/// A shared read handle on one table's hot view.
pub type View<V> = Arc<DashMap<String, V, ahash::RandomState>>;

/// The tables the API reads, of one partition.
#[derive(Clone)]
pub struct Views {
    pub claims: View<ClaimState>,
    pub members: View<MemberState>,
    /// Scored stays whose readmission window is still open (current scores, open alerts).
    pub stays: View<PendingStays>,
    /// Payer monitor windows (table `payer_windows`, keys `<payer_id>|<H|D>|<start>`).
    pub windows: View<WindowState>,
}

impl std::fmt::Debug for Views {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Views")
            .field("claims", &self.claims.len())
            .field("members", &self.members.len())
            .field("windows", &self.windows.len())
            .finish()
    }
}

impl Views {
    pub fn of(p: &Partition) -> Self {
        Self {
            claims: p.claims().view(),
            members: p.members().view(),
            stays: p.score_tables().stays.view(),
            windows: p.windows().view(),
        }
    }
}

/// Where a key's partition stands on this instance.
#[derive(Clone, Debug)]
pub enum Slot {
    Restoring,
    Ready(Arc<Views>),
}

/// What this instance knows of a partition, for a request.
#[derive(Clone, Debug)]
pub enum Lookup {
    Local(Arc<Views>),
    Restoring,
    /// Not assigned here.
    Elsewhere,
}

/// The partitions of this instance. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct Registry {
    partitions: u32,
    slots: Arc<RwLock<HashMap<i32, Slot>>>,
    /// Signalled on every change (the endpoint publisher re-advertises at once).
    changed: Arc<tokio::sync::Notify>,
}

impl Registry {
    /// A registry for keys hashed over `partitions` partitions.
    pub fn new(partitions: u32) -> Self {
        Self {
            partitions: partitions.max(1),
            slots: Arc::default(),
            changed: Arc::default(),
        }
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// The partition of a key (the Kafka default partitioner, as the producers place it).
    pub fn partition_of(&self, key: &str) -> i32 {
        crate::core::partition_for(key, self.partitions)
    }

    pub fn restoring(&self, p: i32) {
        self.write().insert(p, Slot::Restoring);
        self.changed.notify_one();
    }

    pub fn ready(&self, p: i32, views: Views) {
        self.write().insert(p, Slot::Ready(Arc::new(views)));
        self.changed.notify_one();
    }

    pub fn remove(&self, p: i32) {
        self.write().remove(&p);
        self.changed.notify_one();
    }

    /// Completes after the next change (or at once if one happened since the last wait).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Partitions restored and served here, sorted.
    pub fn served(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self
            .slots
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Ready(_)))
            .map(|(p, _)| *p)
            .collect();
        v.sort_unstable();
        v
    }

    /// Partitions assigned here (restoring or ready), sorted.
    pub fn assigned(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self
            .slots
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect();
        v.sort_unstable();
        v
    }

    pub fn lookup_partition(&self, p: i32) -> Lookup {
        match self.slots.read().unwrap_or_else(|e| e.into_inner()).get(&p) {
            Some(Slot::Ready(v)) => Lookup::Local(Arc::clone(v)),
            Some(Slot::Restoring) => Lookup::Restoring,
            None => Lookup::Elsewhere,
        }
    }

    pub fn lookup(&self, key: &str) -> Lookup {
        self.lookup_partition(self.partition_of(key))
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<i32, Slot>> {
        self.slots.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_assignment() {
        let engine = crate::core::Engine::new(
            crate::config::CoreConfig::default(),
            crate::refdata::RefData::shared(),
        );
        let p = Partition::open(1, crate::state::PartitionStore::hot_only(1), &engine).unwrap();
        let r = Registry::new(4);
        let key = (0..)
            .map(|i| format!("K{i}"))
            .find(|k| r.partition_of(k) == 1)
            .unwrap();
        assert!(matches!(r.lookup(&key), Lookup::Elsewhere));
        r.restoring(1);
        assert!(matches!(r.lookup(&key), Lookup::Restoring));
        assert!(r.served().is_empty());
        r.ready(1, Views::of(&p));
        assert!(matches!(r.lookup(&key), Lookup::Local(_)));
        assert_eq!(r.served(), vec![1]);
        assert_eq!(r.assigned(), vec![1]);
        r.remove(1);
        assert!(matches!(r.lookup(&key), Lookup::Elsewhere));
    }
}
