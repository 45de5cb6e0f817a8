//! Keyed state: a `dashmap` hot view over a `sled` durable store, one sled tree per input
//! partition so a partition's state can move with it.
//!
//! - **Hot view** ([`Table`]): every live key's value in a `DashMap`, shared (`Arc`) so readers such
//!   as an HTTP API can look at it while the partition's task writes. Writes mark the key dirty.
//! - **Durable store** ([`PartitionStore`]): a sled tree `p<partition>` holding each table's
//!   entries under a one-byte table prefix, plus one checkpoint record (input offsets, watermark,
//!   sink positions). A checkpoint writes the dirty entries, the removals and the checkpoint record
//!   in **one atomic sled batch**, then flushes: after a crash, state and offsets are consistent
//!   with each other, never one ahead of the other.
//! - **Hot-only mode**: a store without a tree (benchmarks, tests, replay without `--state`)
//!   keeps the same code path minus the batch.
//!
//! Values are encoded with bincode (serde); the layout version is kept in the checkpoint record so a
//! future format change can refuse or migrate old state instead of misreading it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use dashmap::DashMap;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Layout version of what this module writes to sled. 2: the checkpoint records the payer flow's
/// watermark, and claim records keep their input offset (read API history). 3: claim records
/// keep their service date and PWK attachments, the `enrolment` / `pmpm` tables exist, the
/// scoring history counts submissions with an attachment, and the provider and cash flows keep a
/// watermark over their sources. 4: a member's `enrolment` entry keeps its paid clock (PMPM
/// retention) and its `care_gaps` entry its settled seasons' boundary. 5: the checkpoint keeps
/// the partition's counters. 6: a claim's 835 records keep the claim frequency code they give
/// (CLP09). 7: a payer's cash aggregate keeps the expected amounts and payments of its paid
/// claims (the forecast's payment ratio). Older state is refused and must be rebuilt from the inputs (see the README's
/// upgrade note).
pub const STATE_FORMAT_VERSION: u32 = 7;

const CHECKPOINT_KEY: &[u8] = b"\x00checkpoint";

/// sled's page cache unless configured (`state_cache_mib`): 256 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// Errors of the state layer. Disk errors are external (retry); a corrupt entry is internal.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt state entry in table {table} ({len} bytes): {reason}")]
    Corrupt {
        table: &'static str,
        len: usize,
        reason: String,
    },
    #[error("state written by format version {found}, this build reads {expected}")]
    FormatVersion { found: u32, expected: u32 },
    #[error("io: {0}")]
    Io(String),
}

fn encode<V: Serialize>(v: &V) -> Vec<u8> {
    // Encoding plain data into a Vec cannot fail.
    bincode::serde::encode_to_vec(v, bincode::config::standard())
        .expect("bincode encoding of plain data")
}

/// Encodes plain data the way the state's values are encoded (for records other modules keep in
/// a checkpoint, such as the core's counters).
pub fn encode_plain<V: Serialize>(v: &V) -> Vec<u8> {
    encode(v)
}

/// Decodes what [`encode_plain`] wrote; `what` names it in the error.
pub fn decode_plain<V: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<V, StateError> {
    decode(what, bytes)
}

fn decode<V: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<V, StateError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| StateError::Corrupt {
            table,
            len: bytes.len(),
            reason: e.to_string(),
        })
}

/// A 64-bit fingerprint of a value, to emit an output only when it changed. FxHash over the
/// value's `Hash`: deterministic across processes (it is persisted in state), allocation-free and
/// a few instructions per word. A change confined to one word always changes the fingerprint (each
/// step of the hash is a bijection of the running state); a collision of two views that differ in
/// several places is possible in principle and would skip one update. An algorithm change of the
/// hasher would re-emit each key's current view once.
pub fn fingerprint<V: std::hash::Hash>(v: &V) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    v.hash(&mut h);
    h.finish()
}

/// Appends `value` in decimal to `out` (no formatting machinery on hot paths).
pub fn push_int(out: &mut String, value: i64) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// What a partition's state reflects: the next input offset of each source, the event-time
/// watermark, and positions of sinks that take part in the checkpoint (replay's output files).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format_version: u32,
    /// Next offset to read, per input source (topic or file).
    pub offsets: BTreeMap<String, i64>,
    /// Event-time watermark in ms.
    pub watermark: i64,
    /// Sink positions (e.g. output file lengths) that must match the state on restore.
    pub sinks: BTreeMap<String, u64>,
    /// How many checkpoints this partition has taken.
    pub sequence: u64,
    /// Watermark of the payer flow, in ms (see `core::Partition::apply_fact`).
    pub payer_watermark: i64,
    /// Latest payer-fact event time from each source partition (`i64::MIN`: none yet).
    pub payer_sources: Vec<i64>,
    /// Latest cash-fact event time from each source partition (`i64::MIN`: none yet): the cash
    /// flow's watermark is their minimum (see `core::Partition::apply_cash`).
    pub cash_sources: Vec<i64>,
    /// Latest cash-fact event time from any source.
    pub cash_latest: Option<i64>,
    /// The partition's counters as of this checkpoint (`core::PartitionStats`, encoded by the
    /// core; empty: none yet), so that summaries and metrics count from the start of the state,
    /// not of the process: a resumed replay or a restarted service keeps them.
    pub counters: Vec<u8>,
}

/// The sled database holding every partition's tree.
#[derive(Clone)]
pub struct StateDb {
    db: sled::Db,
}

impl std::fmt::Debug for StateDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDb").finish_non_exhaustive()
    }
}

impl StateDb {
    /// Opens (or creates) the database in `dir`.
    ///
    /// sled holds an exclusive file lock; a database dropped a moment ago in this process (a
    /// partition reopened after a rebalance, a test restart) can still hold it while its flusher
    /// thread stops, so a lock conflict is retried for up to two seconds before it is reported.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// [`StateDb::open`] with sled's page cache capped at `cache_bytes` (part of the process's
    /// RSS: it fills as the store grows on disk).
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self, StateError> {
        let mut attempts = 0;
        loop {
            match sled::Config::new()
                .path(dir)
                .cache_capacity(cache_bytes)
                .open()
            {
                Ok(db) => return Ok(Self { db }),
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && attempts < 40 =>
                {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A database deleted on drop, for tests and benchmarks.
    pub fn temporary() -> Result<Self, StateError> {
        Ok(Self {
            db: sled::Config::new().temporary(true).open()?,
        })
    }

    /// The durable store of one partition.
    pub fn partition(&self, partition: i32) -> Result<PartitionStore, StateError> {
        let tree = self.db.open_tree(format!("p{partition}"))?;
        Ok(PartitionStore {
            partition,
            tree: Some(tree),
            db: Some(self.db.clone()),
        })
    }

    /// Drops a partition's durable state (after it has moved elsewhere for good).
    pub fn drop_partition(&self, partition: i32) -> Result<(), StateError> {
        self.db.drop_tree(format!("p{partition}"))?;
        Ok(())
    }

    /// Bytes on disk, for metrics.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

/// Outcome of one checkpoint, for metrics and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    pub written: usize,
    pub removed: usize,
    pub bytes: usize,
}

/// One entry written or removed by a checkpoint, for the changelog topic of its table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateChange {
    /// Table name (`claims`, `members`): the changelog topic is `claimwatch.changelog.<table>`.
    pub table: &'static str,
    pub key: String,
    /// The encoded value (the same bytes as on disk), or `None` for a removal (a tombstone).
    pub value: Option<Vec<u8>>,
}

/// A checkpoint taken from the tables but not yet written (see [`PartitionStore::prepare`]).
#[must_use = "a prepared checkpoint is only durable once applied"]
pub struct PreparedCommit {
    batch: Option<sled::Batch>,
    pub stats: CheckpointStats,
}

/// The durable side of one partition (or nothing, in hot-only mode). Clones share the tree.
#[derive(Clone)]
pub struct PartitionStore {
    partition: i32,
    tree: Option<sled::Tree>,
    db: Option<sled::Db>,
}

impl std::fmt::Debug for PartitionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionStore")
            .field("partition", &self.partition)
            .field("durable", &self.tree.is_some())
            .finish()
    }
}

impl PartitionStore {
    /// A store that keeps nothing on disk.
    pub fn hot_only(partition: i32) -> Self {
        Self {
            partition,
            tree: None,
            db: None,
        }
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn is_durable(&self) -> bool {
        self.tree.is_some()
    }

    /// The last checkpoint, if any.
    pub fn checkpoint(&self) -> Result<Option<Checkpoint>, StateError> {
        let Some(tree) = &self.tree else {
            return Ok(None);
        };
        let Some(bytes) = tree.get(CHECKPOINT_KEY)? else {
            return Ok(None);
        };
        let cp: Checkpoint = decode("checkpoint", &bytes)?;
        if cp.format_version != STATE_FORMAT_VERSION {
            return Err(StateError::FormatVersion {
                found: cp.format_version,
                expected: STATE_FORMAT_VERSION,
            });
        }
        Ok(Some(cp))
    }

    /// Loads every entry of `table` from disk into its hot view.
    pub fn load<V: Serialize + DeserializeOwned>(
        &self,
        table: &mut Table<V>,
    ) -> Result<usize, StateError> {
        let Some(tree) = &self.tree else { return Ok(0) };
        table.hot.clear();
        table.dirty.clear();
        table.staged.clear();
        let mut n = 0;
        for item in tree.scan_prefix([table.prefix]) {
            let (k, v) = item?;
            let key = String::from_utf8_lossy(&k[1..]).into_owned();
            table.hot.insert(key, decode(table.name, &v)?);
            n += 1;
        }
        Ok(n)
    }

    /// Writes the dirty entries of `tables` and the checkpoint record atomically, then flushes.
    /// In hot-only mode it only clears the dirty sets.
    ///
    /// With `changes`, every written or removed entry is also appended there (for the changelog).
    pub fn commit(
        &self,
        tables: &mut [&mut dyn Persist],
        checkpoint: &Checkpoint,
        changes: Option<&mut Vec<StateChange>>,
    ) -> Result<CheckpointStats, StateError> {
        let prepared = self.prepare(tables, checkpoint, changes);
        self.apply(prepared)
    }

    /// The first half of [`PartitionStore::commit`]: takes the dirty entries (encoded as they are
    /// now) and the checkpoint record into a batch, so the tables can change again while
    /// [`PartitionStore::apply`] writes it.
    pub fn prepare(
        &self,
        tables: &mut [&mut dyn Persist],
        checkpoint: &Checkpoint,
        mut changes: Option<&mut Vec<StateChange>>,
    ) -> PreparedCommit {
        let mut stats = CheckpointStats::default();
        if self.tree.is_none() {
            for t in tables.iter_mut() {
                t.clear_dirty();
            }
            return PreparedCommit { batch: None, stats };
        }
        let mut batch = sled::Batch::default();
        for t in tables.iter_mut() {
            t.drain_dirty(&mut batch, &mut stats, changes.as_deref_mut());
        }
        let mut cp = checkpoint.clone();
        cp.format_version = STATE_FORMAT_VERSION;
        let bytes = encode(&cp);
        stats.bytes += bytes.len();
        batch.insert(CHECKPOINT_KEY, bytes);
        PreparedCommit {
            batch: Some(batch),
            stats,
        }
    }

    /// The second half of [`PartitionStore::commit`]: writes the batch atomically and flushes.
    pub fn apply(&self, prepared: PreparedCommit) -> Result<CheckpointStats, StateError> {
        if let (Some(tree), Some(batch)) = (&self.tree, prepared.batch) {
            tree.apply_batch(batch)?;
            if let Some(db) = &self.db {
                db.flush()?;
            }
        }
        Ok(prepared.stats)
    }

    /// Replaces everything this partition holds on disk with `entries` (table prefix, key, encoded
    /// value) and `checkpoint`: a restore from the changelog.
    ///
    /// Crash-safe without one giant batch (sled applies huge batches slowly): the old checkpoint
    /// record goes first (durably), then the old entries and the new ones in batches of
    /// [`RESTORE_BATCH`], and the new checkpoint record last. A crash in between leaves a store
    /// without a checkpoint, which the next start treats as empty and restores again.
    pub fn restore<'a>(
        &self,
        entries: impl IntoIterator<Item = (u8, &'a str, &'a [u8])>,
        checkpoint: &Checkpoint,
    ) -> Result<usize, StateError> {
        let Some(tree) = &self.tree else {
            return Ok(0);
        };
        tree.remove(CHECKPOINT_KEY)?;
        tree.flush()?;
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for item in tree.iter().keys() {
            batch.remove(item?);
            in_batch += 1;
            if in_batch == RESTORE_BATCH {
                tree.apply_batch(std::mem::take(&mut batch))?;
                in_batch = 0;
            }
        }
        let mut n = 0;
        let mut key_buf = Vec::with_capacity(64);
        for (prefix, key, value) in entries {
            key_buf.clear();
            key_buf.push(prefix);
            key_buf.extend_from_slice(key.as_bytes());
            batch.insert(key_buf.as_slice(), value);
            n += 1;
            in_batch += 1;
            if in_batch == RESTORE_BATCH {
                tree.apply_batch(std::mem::take(&mut batch))?;
                in_batch = 0;
            }
        }
        tree.apply_batch(batch)?;
        tree.flush()?;
        let mut cp = checkpoint.clone();
        cp.format_version = STATE_FORMAT_VERSION;
        tree.insert(CHECKPOINT_KEY, encode(&cp))?;
        if let Some(db) = &self.db {
            db.flush()?;
        }
        Ok(n)
    }
}

/// Entries per sled batch during a restore.
pub const RESTORE_BATCH: usize = 8192;

/// Encodes a checkpoint record as stored (for the changelog's checkpoint marker).
pub fn encode_checkpoint(checkpoint: &Checkpoint) -> Vec<u8> {
    let mut cp = checkpoint.clone();
    cp.format_version = STATE_FORMAT_VERSION;
    encode(&cp)
}

/// Decodes a checkpoint record written by [`encode_checkpoint`], checking its format version.
pub fn decode_checkpoint(bytes: &[u8]) -> Result<Checkpoint, StateError> {
    let cp: Checkpoint = decode("checkpoint", bytes)?;
    if cp.format_version != STATE_FORMAT_VERSION {
        return Err(StateError::FormatVersion {
            found: cp.format_version,
            expected: STATE_FORMAT_VERSION,
        });
    }
    Ok(cp)
}

/// A table whose dirty entries can be written into a checkpoint batch.
pub trait Persist {
    fn drain_dirty(
        &mut self,
        batch: &mut sled::Batch,
        stats: &mut CheckpointStats,
        changes: Option<&mut Vec<StateChange>>,
    );
    fn clear_dirty(&mut self);
    /// Encodes up to `budget` dirty entries ahead of the next checkpoint and returns how many:
    /// the runtime calls it while the partition is idle, so the checkpoint itself (which holds
    /// the partition) only encodes what changed since. An entry changed again after staging is
    /// dirty again and encoded anew at the checkpoint; the staged bytes are then dropped.
    fn stage(&mut self, budget: usize) -> usize;
}

/// One keyed table of a partition: the hot view plus the set of keys changed since the last
/// checkpoint. Owned by the partition's task; readers share `view()`.
pub struct Table<V> {
    name: &'static str,
    prefix: u8,
    hot: Arc<DashMap<String, V, ahash::RandomState>>,
    dirty: HashSet<String, ahash::RandomState>,
    /// Entries encoded ahead of the checkpoint (`None`: removed), see [`Persist::stage`]. A key
    /// is in `dirty` or here, never both.
    staged: HashMap<String, Option<Vec<u8>>, ahash::RandomState>,
    /// False for a table without a durable store: nothing to write, so nothing to remember.
    track_dirty: bool,
}

impl<V> std::fmt::Debug for Table<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name)
            .field("len", &self.hot.len())
            .finish()
    }
}

impl<V> Table<V> {
    /// A table named `name` whose entries live under `prefix` in the partition's tree.
    pub fn new(name: &'static str, prefix: u8) -> Self {
        assert!(
            prefix != 0,
            "prefix 0 is reserved for the checkpoint record"
        );
        Self {
            name,
            prefix,
            hot: Arc::new(DashMap::with_hasher(ahash::RandomState::new())),
            dirty: HashSet::with_hasher(ahash::RandomState::new()),
            staged: HashMap::with_hasher(ahash::RandomState::new()),
            track_dirty: true,
        }
    }

    /// Stops remembering changed keys (for a partition without a durable store).
    pub fn without_dirty_tracking(mut self) -> Self {
        self.track_dirty = false;
        self.dirty = HashSet::with_hasher(ahash::RandomState::new());
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Shared read access to the hot view.
    pub fn view(&self) -> Arc<DashMap<String, V, ahash::RandomState>> {
        Arc::clone(&self.hot)
    }

    pub fn len(&self) -> usize {
        self.hot.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hot.is_empty()
    }

    /// Entries changed since the last checkpoint (staged ones included).
    pub fn dirty_len(&self) -> usize {
        self.dirty.len() + self.staged.len()
    }

    /// Marks `key` changed: it leaves the staged set (its staged bytes are stale now).
    fn mark_dirty(&mut self, key: &str) {
        if !self.dirty.contains(key) {
            let staged = if self.staged.is_empty() {
                None
            } else {
                self.staged.remove_entry(key)
            };
            let key = match staged {
                Some((k, _)) => k,
                None => key.to_owned(),
            };
            self.dirty.insert(key);
        }
    }

    pub fn get(&self, key: &str) -> Option<dashmap::mapref::one::Ref<'_, String, V>> {
        self.hot.get(key)
    }

    /// Runs `f` on the entry for `key` (created with `Default` if absent) and marks it dirty.
    pub fn update<R>(&mut self, key: &str, f: impl FnOnce(&mut V) -> R) -> R
    where
        V: Default,
    {
        let r = match self.hot.get_mut(key) {
            Some(mut v) => f(&mut v),
            None => {
                let mut v = V::default();
                let r = f(&mut v);
                self.hot.insert(key.to_owned(), v);
                r
            }
        };
        if self.track_dirty {
            self.mark_dirty(key);
        }
        r
    }

    pub fn insert(&mut self, key: String, value: V) {
        if self.track_dirty {
            self.mark_dirty(&key);
        }
        self.hot.insert(key, value);
    }

    /// Removes `key` (a tombstone at the next checkpoint).
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let v = self.hot.remove(key).map(|(_, v)| v);
        if self.track_dirty {
            self.mark_dirty(key);
        }
        v
    }

    /// Fills the hot view from encoded entries (a changelog restore), without marking them dirty.
    /// Large restores are decoded on every core (the hot view takes concurrent inserts).
    pub fn load_encoded<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<usize, StateError>
    where
        V: DeserializeOwned + Send + Sync,
    {
        let entries: Vec<(&str, &[u8])> = entries.into_iter().collect();
        if self.hot.is_empty() && entries.len() > 1024 {
            // Sized once instead of rehashing its way up (nobody reads the view yet).
            self.hot = Arc::new(DashMap::with_capacity_and_hasher(
                entries.len(),
                ahash::RandomState::new(),
            ));
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let (hot, name) = (&*self.hot, self.name);
        let load = |chunk: &[(&str, &[u8])]| -> Result<(), StateError> {
            for (key, bytes) in chunk {
                hot.insert((*key).to_owned(), decode(name, bytes)?);
            }
            Ok(())
        };
        if threads == 1 || entries.len() < 20_000 {
            load(&entries)?;
        } else {
            let chunk = entries.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let workers: Vec<_> = entries
                    .chunks(chunk)
                    .map(|c| scope.spawn(move || load(c)))
                    .collect();
                for w in workers {
                    w.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
                }
                Ok::<_, StateError>(())
            })?;
        }
        Ok(entries.len())
    }

    /// The key prefix of this table on disk.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Every key, for rebuilding indexes after a load.
    pub fn keys(&self) -> Vec<String> {
        self.hot.iter().map(|e| e.key().clone()).collect()
    }

    /// Iterates the hot view.
    pub fn iter(&self) -> dashmap::iter::Iter<'_, String, V, ahash::RandomState> {
        self.hot.iter()
    }
}

impl<V: Serialize> Persist for Table<V> {
    fn drain_dirty(
        &mut self,
        batch: &mut sled::Batch,
        stats: &mut CheckpointStats,
        mut changes: Option<&mut Vec<StateChange>>,
    ) {
        let mut key_buf = Vec::with_capacity(64);
        let hot = &self.hot;
        let fresh = self
            .dirty
            .drain()
            .map(|key| {
                let value = hot.get(&key).map(|v| encode(&*v));
                (key, value)
            })
            .chain(self.staged.drain());
        for (key, value) in fresh {
            key_buf.clear();
            key_buf.push(self.prefix);
            key_buf.extend_from_slice(key.as_bytes());
            match &value {
                Some(bytes) => {
                    stats.bytes += bytes.len();
                    stats.written += 1;
                    batch.insert(key_buf.as_slice(), bytes.as_slice());
                }
                None => {
                    stats.removed += 1;
                    batch.remove(key_buf.as_slice());
                }
            }
            if let Some(changes) = changes.as_deref_mut() {
                changes.push(StateChange {
                    table: self.name,
                    key,
                    value,
                });
            }
        }
    }

    fn clear_dirty(&mut self) {
        self.dirty.clear();
        self.staged.clear();
    }

    fn stage(&mut self, budget: usize) -> usize {
        let keys: Vec<String> = self.dirty.iter().take(budget).cloned().collect();
        for key in &keys {
            self.dirty.remove(key);
        }
        let n = keys.len();
        for key in keys {
            let value = self.hot.get(&key).map(|v| encode(&*v));
            self.staged.insert(key, value);
        }
        n
    }
}

#[cfg(test)]
mod tests;
