//! The sharded concurrent key-value store.
//!
//! Keys map to tensors, strings, hashes or lists. Keys are spread over shards by hash, each
//! shard a `RwLock<HashMap>`, so concurrent clients touching different keys rarely meet on
//! a lock. Memory is accounted per value against a configurable limit; a write that would
//! exceed it fails with Redis' `OOM` error and changes nothing. A waiter for a key (or a
//! list length) sleeps on the shard's notification and is woken by the write that makes
//! its condition true: no polling.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::RwLock;
use tokio::sync::Notify;

use crate::data::tensor::Tensor;
use crate::error::{Error, Result};
use crate::model::Model;

/// A hash's fields and values.
pub type HashFields = indexmap::IndexMap<Bytes, Bytes>;

/// One change to the store, as it is handed to the [`ChangeSink`].
#[derive(Debug)]
pub enum Change<'a> {
    /// A key set to a whole value.
    Set(&'a [u8], &'a Value),
    /// A key removed.
    Del(&'a [u8]),
    /// A key renamed (replacing the target).
    Rename(&'a [u8], &'a [u8]),
    /// Every key removed.
    Clear,
    /// Hash fields set: field, value, field, value...
    HSet(&'a [u8], &'a [Bytes]),
    /// Hash fields removed.
    HDel(&'a [u8], &'a [Bytes]),
    /// Items pushed onto a list (`true`: at the front).
    Push(&'a [u8], bool, &'a [Bytes]),
}

/// Where the store reports its changes: the append-only journal (`crate::persistence::journal::Journal`)
/// is one. The store depends on this trait only, persistence on the store.
pub trait ChangeSink: Send + Sync {
    /// Whether changes may be made now (`MISCONF` while the journal cannot be written).
    ///
    /// # Errors
    /// The reason changes are refused.
    fn check(&self) -> Result<()>;
    /// Record `change`; called with the changed keys' shards locked, after the change.
    fn record(&self, change: Change<'_>);
}

/// Fixed cost charged per key and per hash field / list entry, for the map's own memory.
const KEY_OVERHEAD: usize = 64;
const ITEM_OVERHEAD: usize = 32;

/// A stored value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A tensor (`AI.TENSORSET`).
    Tensor(Tensor),
    /// A plain string (`SET`).
    String(Bytes),
    /// A hash (`HSET`), e.g. a dataset's metadata, its fields in insertion order (as
    /// Redis keeps a small hash: `HGETALL` lists them in the order they were set).
    Hash(HashFields),
    /// A list (`RPUSH`), e.g. an aggregation list.
    List(VecDeque<Bytes>),
    /// A model (`AI.MODELSTORE`).
    Model(Arc<Model>),
}

impl Value {
    /// The Redis `TYPE` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Tensor(_) => "AI_TENSOR",
            Value::String(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Model(_) => "AI__MODEL",
        }
    }

    /// Bytes charged against the memory limit (payload plus a fixed overhead per item).
    pub fn cost(&self) -> usize {
        match self {
            Value::Tensor(t) => t.data().len() + t.shape().len() * 8,
            Value::String(s) => s.len(),
            Value::Hash(h) => h
                .iter()
                .map(|(k, v)| k.len() + v.len() + ITEM_OVERHEAD)
                .sum(),
            Value::List(l) => l.iter().map(|v| v.len() + ITEM_OVERHEAD).sum(),
            Value::Model(m) => m.blob.len() + m.spec.tag.len(),
        }
    }
}

fn entry_cost(key: &[u8], value: &Value) -> usize {
    key.len() + KEY_OVERHEAD + value.cost()
}

struct Shard {
    map: RwLock<HashMap<Bytes, Value>>,
    /// Woken whenever a key of this shard is written, while anyone waits.
    changed: Notify,
    /// Tasks in `wait_for` on this shard: a write wakes no one (and takes no lock for it)
    /// when there are none.
    waiters: AtomicUsize,
}

/// Counts a waiter for as long as it waits, also when its future is dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The map of the lower-numbered shard (`lo`) or of the other one, when two are locked.
fn pick<'x>(
    lo: &'x mut HashMap<Bytes, Value>,
    hi: Option<&'x mut HashMap<Bytes, Value>>,
    want_lo: bool,
) -> &'x mut HashMap<Bytes, Value> {
    match hi {
        Some(h) if !want_lo => h,
        _ => lo,
    }
}

/// The store. Cheap to share behind an `Arc`.
pub struct Store {
    shards: Box<[Shard]>,
    hasher: std::collections::hash_map::RandomState,
    used: AtomicUsize,
    limit: AtomicUsize,
    /// Bumped on every write, for `INFO` (`rdb_changes_since_last_save`).
    writes: AtomicU64,
    /// Where every change is recorded (the append-only journal), when persistence is on.
    sink: OnceLock<Arc<dyn ChangeSink>>,
}

/// The number of shards: a power of two well above the core counts we run on.
const SHARDS: usize = 64;

impl Default for Store {
    fn default() -> Self {
        Store::new(0)
    }
}

impl Store {
    /// A store with a memory limit in bytes (`0` = unlimited).
    pub fn new(limit: usize) -> Store {
        Store {
            shards: (0..SHARDS)
                .map(|_| Shard {
                    map: RwLock::new(HashMap::new()),
                    changed: Notify::new(),
                    waiters: AtomicUsize::new(0),
                })
                .collect(),
            hasher: Default::default(),
            used: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
            writes: AtomicU64::new(0),
            sink: OnceLock::new(),
        }
    }

    fn shard_index(&self, key: &[u8]) -> usize {
        (self.hasher.hash_one(key) as usize) & (SHARDS - 1)
    }

    fn shard(&self, key: &[u8]) -> &Shard {
        &self.shards[self.shard_index(key)]
    }

    /// Report every change from now on to `sink` (once; later calls are ignored).
    pub fn set_change_sink(&self, sink: Arc<dyn ChangeSink>) {
        let _ = self.sink.set(sink);
    }

    /// Refuse changes while the sink refuses them (`MISCONF`).
    fn writable(&self) -> Result<()> {
        match self.sink.get() {
            Some(j) => j.check(),
            None => Ok(()),
        }
    }

    /// Record a change; call with the changed keys' shards locked.
    fn record(&self, change: Change<'_>) {
        if let Some(j) = self.sink.get() {
            j.record(change);
        }
    }

    /// Bytes currently charged.
    pub fn used_memory(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The memory limit in bytes (`0` = unlimited).
    pub fn memory_limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Change the memory limit (`0` = unlimited). Stored values are kept even when above.
    pub fn set_memory_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Writes since start (a monotonically increasing counter).
    pub fn write_count(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Charge `add` bytes and release `remove`, failing with `OOM` (and charging nothing)
    /// when the result would exceed the limit. Growth is checked; shrinking always passes.
    fn charge(&self, add: usize, remove: usize) -> Result<()> {
        let limit = self.limit.load(Ordering::Relaxed);
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let next = cur.saturating_add(add).saturating_sub(remove);
            if limit != 0 && add > remove && next > limit {
                return Err(Error::oom());
            }
            match self
                .used
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => cur = actual,
            }
        }
    }

    fn wrote(&self, shard: &Shard) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        // Pairs with the waiter's SeqCst increment before it checks the map: either this
        // load sees the waiter, or the waiter's check sees this write.
        std::sync::atomic::fence(Ordering::SeqCst);
        if shard.waiters.load(Ordering::SeqCst) > 0 {
            shard.changed.notify_waiters();
        }
    }

    /// Store `value` under `key`, replacing what was there.
    ///
    /// # Errors
    /// `OOM` when the memory limit would be exceeded; the old value is then kept.
    pub fn set(&self, key: Bytes, value: Value) -> Result<()> {
        self.put(key, value, false)
    }

    /// [`Store::set`] unless `key` holds a value of another kind: the check and the write
    /// happen under one lock, so a writer of another kind cannot slip in between (as
    /// `AI.TENSORSET` over a hash answers `WRONGTYPE` in Redis, whatever the timing).
    ///
    /// # Errors
    /// `WRONGTYPE` for a value of another kind; `OOM` as for [`Store::set`].
    pub fn set_same_kind(&self, key: Bytes, value: Value) -> Result<()> {
        self.put(key, value, true)
    }

    fn put(&self, key: Bytes, value: Value, same_kind: bool) -> Result<()> {
        self.writable()?;
        let shard = self.shard(&key);
        let add = entry_cost(&key, &value);
        {
            let mut map = shard.map.write();
            let old = map.get(&key);
            if same_kind
                && old.is_some_and(|o| std::mem::discriminant(o) != std::mem::discriminant(&value))
            {
                return Err(Error::wrong_type());
            }
            let remove = old.map_or(0, |old| entry_cost(&key, old));
            self.charge(add, remove)?;
            self.record(Change::Set(&key, &value));
            map.insert(key, value);
        }
        self.wrote(shard);
        Ok(())
    }

    /// [`Store::set`] for a borrowed key: when the key exists its stored copy is kept, so
    /// replacing a value allocates nothing for the key.
    ///
    /// # Errors
    /// `OOM` when the memory limit would be exceeded; the old value is then kept.
    pub fn set_borrowed(&self, key: &[u8], value: Value) -> Result<()> {
        self.writable()?;
        let shard = self.shard(key);
        {
            let mut map = shard.map.write();
            let add = entry_cost(key, &value);
            match map.get_mut(key) {
                Some(slot) => {
                    self.charge(add, entry_cost(key, slot))?;
                    self.record(Change::Set(key, &value));
                    *slot = value;
                }
                None => {
                    self.charge(add, 0)?;
                    self.record(Change::Set(key, &value));
                    map.insert(Bytes::copy_from_slice(key), value);
                }
            }
        }
        self.wrote(shard);
        Ok(())
    }

    /// A clone of the value under `key` (cheap: tensors and strings share their bytes).
    pub fn get(&self, key: &[u8]) -> Option<Value> {
        self.shard(key).map.read().get(key).cloned()
    }

    /// Run `f` on the value under `key` without cloning it.
    pub fn with<R>(&self, key: &[u8], f: impl FnOnce(Option<&Value>) -> R) -> R {
        f(self.shard(key).map.read().get(key))
    }

    /// Whether `key` exists.
    pub fn exists(&self, key: &[u8]) -> bool {
        self.shard(key).map.read().contains_key(key)
    }

    /// Remove `key`; returns whether it existed.
    ///
    /// # Errors
    /// `MISCONF` while the journal cannot be written.
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        self.writable()?;
        let shard = self.shard(key);
        let removed = {
            let mut map = shard.map.write();
            let removed = map.remove(key);
            if removed.is_some() {
                self.record(Change::Del(key));
            }
            removed
        };
        Ok(match removed {
            Some(v) => {
                let _ = self.charge(0, entry_cost(key, &v));
                drop(v);
                self.wrote(shard);
                true
            }
            None => false,
        })
    }

    /// Move the value of `from` to `to`, replacing `to`. Both keys' shards are locked
    /// together (in shard order), so no other change comes between the two.
    ///
    /// # Errors
    /// `ERR no such key` when `from` does not exist.
    pub fn rename(&self, from: &[u8], to: Bytes) -> Result<()> {
        self.writable()?;
        if from == to.as_ref() {
            return if self.exists(from) {
                Ok(())
            } else {
                Err(Error::no_such_key())
            };
        }
        let (a, b) = (self.shard_index(from), self.shard_index(&to));
        let mut lo = self.shards[a.min(b)].map.write();
        let mut hi = (a != b).then(|| self.shards[a.max(b)].map.write());
        let src = pick(&mut lo, hi.as_deref_mut(), a <= b);
        let value = src.remove(from).ok_or_else(Error::no_such_key)?;
        let removed = entry_cost(from, &value);
        let add = entry_cost(&to, &value);
        let dst = pick(&mut lo, hi.as_deref_mut(), b <= a);
        let replaced = dst.get(&to).map_or(0, |old| entry_cost(&to, old));
        self.record(Change::Rename(from, &to));
        dst.insert(to, value);
        // Never more than the key's length difference over the limit: forced.
        self.used.fetch_add(add, Ordering::Relaxed);
        let _ = self.charge(0, removed + replaced);
        drop(hi);
        drop(lo);
        self.wrote(&self.shards[a]);
        self.wrote(&self.shards[b]);
        Ok(())
    }

    /// Apply `f` to the value under `key` (or `None`) with the shard locked for writing;
    /// `f` returns its result and the change in charged bytes as `(added, removed)`.
    /// The charge is checked before `f`'s change is kept: `f` gets a `Check` to call.
    /// When `f` succeeds, `op` (the same change) is recorded in the journal.
    fn update<R>(
        &self,
        key: &[u8],
        op: Change<'_>,
        f: impl FnOnce(&mut Option<Value>, &dyn Fn(usize, usize) -> Result<()>) -> Result<R>,
    ) -> Result<R> {
        self.writable()?;
        let shard = self.shard(key);
        let r;
        {
            let mut map = shard.map.write();
            let mut slot = map.remove::<[u8]>(key.as_ref());
            let had = slot.is_some();
            let charge = |add: usize, remove: usize| self.charge(add, remove);
            let res = f(&mut slot, &charge);
            // Redis semantics: an empty hash or list does not exist; and a failed update
            // must not leave behind a container it created.
            let empty = match &slot {
                Some(Value::Hash(h)) => h.is_empty(),
                Some(Value::List(l)) => l.is_empty(),
                _ => false,
            };
            if empty || (res.is_err() && !had) {
                slot = None;
            }
            match slot {
                Some(v) => {
                    if !had {
                        self.used
                            .fetch_add(key.len() + KEY_OVERHEAD, Ordering::Relaxed);
                    }
                    map.insert(Bytes::copy_from_slice(key), v);
                }
                None => {
                    if had {
                        let _ = self.charge(0, key.len() + KEY_OVERHEAD);
                    }
                }
            }
            r = res?;
            self.record(op);
        }
        self.wrote(shard);
        Ok(r)
    }

    /// `HSET key field value [field value ...]` (`pairs` flattened); returns the number of
    /// fields added.
    ///
    /// # Errors
    /// `WRONGTYPE` when `key` holds another type; `OOM`; `MISCONF`.
    pub fn hset(&self, key: &[u8], pairs: &[Bytes]) -> Result<usize> {
        self.update(key, Change::HSet(key, pairs), |slot, charge| {
            if matches!(slot, Some(v) if !matches!(v, Value::Hash(_))) {
                return Err(Error::wrong_type());
            }
            let pairs = pairs.chunks_exact(2).map(|p| (p[0].clone(), p[1].clone()));
            hash_set(Value::hash_mut(slot)?, pairs, charge)
        })
    }

    /// `HDEL key field...`; returns the number of fields removed.
    ///
    /// # Errors
    /// `WRONGTYPE` when `key` holds another type; `MISCONF`.
    pub fn hdel(&self, key: &[u8], fields: &[Bytes]) -> Result<usize> {
        if !self.exists(key) {
            return Ok(0);
        }
        self.update(key, Change::HDel(key, fields), |slot, charge| match slot {
            Some(Value::Hash(h)) => Ok(hash_del(h, fields, charge)),
            Some(_) => Err(Error::wrong_type()),
            None => Ok(0),
        })
    }

    /// `RPUSH` (or `LPUSH` with `front`) of `items`; returns the list's new length.
    ///
    /// # Errors
    /// `WRONGTYPE` when `key` holds another type; `OOM`; `MISCONF`.
    pub fn push(&self, key: &[u8], items: &[Bytes], front: bool) -> Result<usize> {
        self.update(key, Change::Push(key, front, items), |slot, charge| {
            if matches!(slot, Some(v) if !matches!(v, Value::List(_))) {
                return Err(Error::wrong_type());
            }
            list_push(Value::list_mut(slot)?, items, front, charge)
        })
    }

    /// Every key, in no particular order.
    pub fn keys(&self) -> Vec<Bytes> {
        let mut out = Vec::new();
        for s in self.shards.iter() {
            out.extend(s.map.read().keys().cloned());
        }
        out
    }

    /// What `pick` takes from each stored value (e.g. every model), shard by shard; each
    /// shard is read-locked while it is walked.
    pub fn pick<R>(&self, mut pick: impl FnMut(&Bytes, &Value) -> Option<R>) -> Vec<R> {
        let mut out = Vec::new();
        for s in self.shards.iter() {
            out.extend(s.map.read().iter().filter_map(|(k, v)| pick(k, v)));
        }
        out
    }

    /// The keys of one shard (for `SCAN`, whose cursor walks shards).
    pub fn shard_keys(&self, shard: usize) -> Vec<Bytes> {
        self.shards
            .get(shard)
            .map(|s| s.map.read().keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The number of shards (`SCAN` cursors run over `0..shard_count()`).
    pub fn shard_count(&self) -> usize {
        SHARDS
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.map.read().len()).sum()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Remove every key, with every shard locked at once (in order), so the store is
    /// empty at one instant and no write lands half before and half after.
    ///
    /// # Errors
    /// `MISCONF` while the journal cannot be written.
    pub fn clear(&self) -> Result<()> {
        self.writable()?;
        let mut guards: Vec<_> = self.shards.iter().map(|s| s.map.write()).collect();
        let old: Vec<HashMap<Bytes, Value>> = guards
            .iter_mut()
            .map(|g| std::mem::take(&mut **g))
            .collect();
        self.record(Change::Clear);
        drop(guards);
        for (s, old) in self.shards.iter().zip(old) {
            let freed: usize = old.iter().map(|(k, v)| entry_cost(k, v)).sum();
            let _ = self.charge(0, freed);
            drop(old);
            self.wrote(s);
        }
        Ok(())
    }

    /// Run `f` on a copy of every entry (values share their bytes) taken with every shard
    /// locked for reading: no change is in flight while `f` runs, and the copy is the
    /// store at one instant.
    pub(crate) fn freeze<R>(&self, f: impl FnOnce(Vec<(Bytes, Value)>) -> R) -> R {
        let guards: Vec<_> = self.shards.iter().map(|s| s.map.read()).collect();
        let entries = guards
            .iter()
            .flat_map(|g| g.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect();
        let r = f(entries);
        drop(guards);
        r
    }

    /// A consistent-per-shard copy of every entry (values share their bytes).
    pub fn snapshot(&self) -> Vec<(Bytes, Value)> {
        let mut out = Vec::with_capacity(self.len());
        for s in self.shards.iter() {
            out.extend(s.map.read().iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    }

    /// Wait until `cond` holds for the value under `key`, or `timeout` passes. Returns
    /// whether the condition held. Woken by writes to the key's shard, never by a timer
    /// loop.
    pub async fn wait_for(
        &self,
        key: &[u8],
        timeout: Duration,
        cond: impl Fn(Option<&Value>) -> bool,
    ) -> bool {
        let shard = self.shard(key);
        let deadline = Instant::now() + timeout;
        shard.waiters.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&shard.waiters);
        loop {
            let notified = shard.changed.notified();
            tokio::pin!(notified);
            // Register before checking, so a write between the check and the await is seen.
            notified.as_mut().enable();
            if cond(shard.map.read().get(key)) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            if tokio::time::timeout(deadline - now, notified)
                .await
                .is_err()
            {
                return cond(shard.map.read().get(key));
            }
        }
    }
}

/// Helpers that edit a hash or list in place under [`Store::update`].
impl Value {
    /// The hash in `slot`, created when absent.
    ///
    /// # Errors
    /// `WRONGTYPE` when `slot` holds another kind.
    pub fn hash_mut(slot: &mut Option<Value>) -> Result<&mut HashFields> {
        match slot.get_or_insert_with(|| Value::Hash(HashFields::new())) {
            Value::Hash(h) => Ok(h),
            _ => Err(Error::wrong_type()),
        }
    }

    /// The list in `slot`, created when absent.
    ///
    /// # Errors
    /// `WRONGTYPE` when `slot` holds another kind.
    pub fn list_mut(slot: &mut Option<Value>) -> Result<&mut VecDeque<Bytes>> {
        match slot.get_or_insert_with(|| Value::List(VecDeque::new())) {
            Value::List(l) => Ok(l),
            _ => Err(Error::wrong_type()),
        }
    }
}

/// Set hash fields in `h`, charging the growth; returns how many fields were new.
pub fn hash_set(
    h: &mut HashFields,
    pairs: impl IntoIterator<Item = (Bytes, Bytes)>,
    charge: &dyn Fn(usize, usize) -> Result<()>,
) -> Result<usize> {
    // Charge everything first so that a refused write changes nothing.
    let pairs: Vec<(Bytes, Bytes)> = pairs.into_iter().collect();
    let add: usize = pairs
        .iter()
        .map(|(f, v)| f.len() + v.len() + ITEM_OVERHEAD)
        .sum();
    charge(add, 0)?;
    let mut added = 0;
    for (f, v) in pairs {
        match h.entry(f) {
            indexmap::map::Entry::Occupied(mut e) => {
                let remove = e.key().len() + e.get().len() + ITEM_OVERHEAD;
                let _ = charge(0, remove);
                e.insert(v);
            }
            indexmap::map::Entry::Vacant(e) => {
                e.insert(v);
                added += 1;
            }
        }
    }
    Ok(added)
}

/// Remove hash fields, releasing their charge; returns how many existed.
pub fn hash_del(
    h: &mut HashFields,
    fields: &[Bytes],
    charge: &dyn Fn(usize, usize) -> Result<()>,
) -> usize {
    let mut n = 0;
    for f in fields {
        // shift_remove keeps the other fields in order, as Redis' listpack does.
        if let Some(v) = h.shift_remove(f) {
            let _ = charge(0, f.len() + v.len() + ITEM_OVERHEAD);
            n += 1;
        }
    }
    n
}

/// Push onto a list at the back (`RPUSH`) or front (`LPUSH`), charging the growth.
pub fn list_push(
    l: &mut VecDeque<Bytes>,
    items: &[Bytes],
    front: bool,
    charge: &dyn Fn(usize, usize) -> Result<()>,
) -> Result<usize> {
    let add: usize = items.iter().map(|i| i.len() + ITEM_OVERHEAD).sum();
    charge(add, 0)?;
    for i in items {
        if front {
            l.push_front(i.clone());
        } else {
            l.push_back(i.clone());
        }
    }
    Ok(l.len())
}

/// Release the charge of a value removed by an update closure.
pub fn release(v: &Value, charge: &dyn Fn(usize, usize) -> Result<()>) {
    let _ = charge(0, v.cost());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: usize) -> Value {
        Value::String(Bytes::from(vec![7u8; n]))
    }

    #[test]
    fn accounting_returns_to_zero() {
        let s = Store::new(0);
        s.set(Bytes::from_static(b"a"), t(100)).unwrap();
        s.set(Bytes::from_static(b"a"), t(50)).unwrap();
        s.set(Bytes::from_static(b"b"), t(10)).unwrap();
        assert_eq!(s.used_memory(), 2 * (1 + KEY_OVERHEAD) + 60);
        s.rename(b"b", Bytes::from_static(b"cc")).unwrap();
        assert_eq!(
            s.used_memory(),
            (1 + KEY_OVERHEAD) + (2 + KEY_OVERHEAD) + 60
        );
        s.hset(b"h", &[Bytes::from_static(b"f"), Bytes::from_static(b"v")])
            .unwrap();
        assert_eq!(s.len(), 3);
        assert!(s.delete(b"a").unwrap());
        assert!(!s.delete(b"a").unwrap());
        s.clear().unwrap();
        assert_eq!(s.used_memory(), 0);
        assert!(s.is_empty());
    }

    #[test]
    fn limit_rejects_and_keeps_old_value() {
        let s = Store::new(1000);
        s.set(Bytes::from_static(b"a"), t(500)).unwrap();
        let e = s.set(Bytes::from_static(b"a"), t(2000)).unwrap_err();
        assert_eq!(e, Error::oom());
        assert_eq!(s.get(b"a"), Some(t(500)));
        let e = s
            .push(b"l", &[Bytes::from(vec![0u8; 900])], false)
            .unwrap_err();
        assert_eq!(e, Error::oom());
        // The empty list created by the failed push must not linger.
        assert!(!s.exists(b"l"));
        assert_eq!(s.used_memory(), 1 + KEY_OVERHEAD + 500);
    }

    #[tokio::test]
    async fn waiter_wakes_on_write() {
        let s = Arc::new(Store::new(0));
        let s2 = s.clone();
        let w = tokio::spawn(async move {
            s2.wait_for(b"k", Duration::from_secs(5), |v| v.is_some())
                .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.set(Bytes::from_static(b"k"), t(1)).unwrap();
        assert!(w.await.unwrap());
        assert!(
            !s.wait_for(b"zz", Duration::from_millis(10), |v| v.is_some())
                .await
        );
    }
}
