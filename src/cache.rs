//! The trigger cache between the request path and Postgres: one snapshot per
//! trigger (or a short negative entry for an unknown id), filled once however many
//! requests miss at once, invalidated by admin writes here and on other instances.
//!
//! A per-trigger generation guards every fill: an invalidation bumps it before it
//! removes the entry, and an entry filled under an older generation is never used,
//! so a fill that raced with a write cannot bring back what the write removed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::ops::compute::{CompResult, Op};

use crate::config::CacheSettings;
use crate::model::TriggerId;
use crate::snapshot::TriggerSnapshot;
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;

const GENERATION_SHARDS: usize = 4096;

/// The outcome of a trigger lookup.
#[derive(Debug, Clone)]
pub enum Lookup {
    Found(Arc<TriggerSnapshot>),
    Unknown,
    /// The store cannot be reached and no usable copy is cached.
    Unavailable,
}

#[derive(Clone)]
struct Entry {
    snapshot: Option<Arc<TriggerSnapshot>>,
    filled_at: Instant,
    generation: u64,
}

struct EntryExpiry {
    positive: Duration,
    negative: Duration,
}

impl Expiry<TriggerId, Entry> for EntryExpiry {
    fn expire_after_create(&self, _: &TriggerId, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(if entry.snapshot.is_some() {
            self.positive
        } else {
            self.negative
        })
    }

    fn expire_after_update(
        &self,
        key: &TriggerId,
        entry: &Entry,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, entry, now)
    }
}

/// Trigger snapshots, cached.
pub struct TriggerCache {
    entries: moka::future::Cache<TriggerId, Entry>,
    /// Per-shard generations; the global epoch is added so that `invalidate_all`
    /// outdates every entry at once.
    generations: Box<[AtomicU64]>,
    epoch: AtomicU64,
    store: Store,
    ttl: Duration,
    negative_ttl: Duration,
    stale_for: Duration,
    metrics: Arc<Metrics>,
}

impl TriggerCache {
    pub fn new(settings: &CacheSettings, store: Store, metrics: Arc<Metrics>) -> Self {
        let expiry = EntryExpiry {
            positive: settings.trigger_ttl.max(settings.stale_for),
            negative: settings.negative_ttl,
        };
        let entries = moka::future::Cache::builder()
            .max_capacity(settings.max_triggers)
            .expire_after(expiry)
            .build();
        Self {
            entries,
            generations: (0..GENERATION_SHARDS).map(|_| AtomicU64::new(0)).collect(),
            epoch: AtomicU64::new(0),
            store,
            ttl: settings.trigger_ttl,
            negative_ttl: settings.negative_ttl,
            stale_for: settings.stale_for,
            metrics,
        }
    }

    fn generation(&self, id: TriggerId) -> u64 {
        let bytes = id.0.as_u64_pair();
        let shard = (bytes.0 ^ bytes.1) as usize % GENERATION_SHARDS;
        self.generations[shard].load(Ordering::Acquire) + self.epoch.load(Ordering::Acquire)
    }

    fn is_fresh(&self, id: TriggerId, entry: &Entry) -> bool {
        let ttl = if entry.snapshot.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        };
        entry.generation == self.generation(id) && entry.filled_at.elapsed() < ttl
    }

    /// The trigger's snapshot: from memory when fresh, else read once from the store.
    pub async fn trigger(&self, id: TriggerId) -> Lookup {
        if let Some(entry) = self.entries.get(&id).await
            && self.is_fresh(id, &entry)
        {
            self.metrics.cache_hit("trigger");
            return found_or_unknown(entry.snapshot);
        }
        self.metrics.cache_miss("trigger");
        self.refresh(id).await
    }

    /// Reads the trigger from the store; concurrent callers for one id wait for the
    /// first one's read instead of making their own.
    async fn refresh(&self, id: TriggerId) -> Lookup {
        let mut unavailable = false;
        let result = self
            .entries
            .entry(id)
            .and_compute_with(|current| {
                let current = current.map(|e| e.into_value());
                let unavailable = &mut unavailable;
                async move {
                    if current.as_ref().is_some_and(|e| self.is_fresh(id, e)) {
                        return Op::Nop;
                    }
                    let generation = self.generation(id);
                    match self.store.trigger_snapshot(id).await {
                        Ok(snapshot) => Op::Put(Entry {
                            snapshot: snapshot.map(Arc::new),
                            filled_at: Instant::now(),
                            generation,
                        }),
                        Err(error) => {
                            log_store_error(id, &error);
                            *unavailable = true;
                            Op::Nop
                        }
                    }
                }
            })
            .await;

        let entry = match result {
            CompResult::Inserted(e) | CompResult::ReplacedWith(e) | CompResult::Unchanged(e) => {
                Some(e.into_value())
            }
            CompResult::Removed(_) | CompResult::StillNone(_) => None,
        };
        match entry {
            Some(entry) if !unavailable => found_or_unknown(entry.snapshot),
            Some(entry) if self.is_servable_stale(id, &entry) => {
                self.metrics.cache_hit("trigger_stale");
                found_or_unknown(entry.snapshot)
            }
            _ if unavailable => Lookup::Unavailable,
            _ => Lookup::Unknown,
        }
    }

    /// During a store outage a known trigger is served until `stale_for` past its
    /// fill time; unknown ids are not served stale.
    fn is_servable_stale(&self, id: TriggerId, entry: &Entry) -> bool {
        entry.snapshot.is_some()
            && entry.generation == self.generation(id)
            && entry.filled_at.elapsed() < self.stale_for
    }

    /// Makes the cached state of these triggers unusable, here and now.
    pub async fn invalidate(&self, ids: &[TriggerId]) {
        for id in ids {
            let bytes = id.0.as_u64_pair();
            let shard = (bytes.0 ^ bytes.1) as usize % GENERATION_SHARDS;
            self.generations[shard].fetch_add(1, Ordering::AcqRel);
            self.entries.invalidate(id).await;
        }
    }

    /// Drops everything (e.g. after Redis reconnects and messages may have been lost).
    pub fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate_all();
    }

    /// Age of the oldest usable entry, for `/readyz`.
    pub fn oldest_entry_age(&self) -> Option<Duration> {
        self.entries
            .iter()
            .filter(|(id, entry)| entry.generation == self.generation(**id))
            .map(|(_, entry)| entry.filled_at.elapsed())
            .max()
    }

    pub fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }

    /// Runs moka's pending housekeeping (tests and the memory benchmark use it).
    pub async fn run_pending_tasks(&self) {
        self.entries.run_pending_tasks().await;
    }
}

fn found_or_unknown(snapshot: Option<Arc<TriggerSnapshot>>) -> Lookup {
    snapshot.map_or(Lookup::Unknown, Lookup::Found)
}

fn log_store_error(id: TriggerId, error: &StoreError) {
    tracing::warn!(trigger.id = %id, error = %error, "cannot read trigger from the store");
}
