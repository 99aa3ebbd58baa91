//! The trigger cache between the request path and Postgres: one snapshot per
//! trigger (or a short negative entry for an unknown id), filled once however many
//! requests miss at once, invalidated by admin writes here and on other instances.
//!
//! A per-trigger generation guards every fill: an invalidation bumps it before it
//! removes the entry, and an entry filled under an older generation is never used,
//! so a fill that raced with a write cannot bring back what the write removed.
//!
//! When a store read fails for want of a connection (or, with a stale copy at hand,
//! takes longer than half a second), the store rests: for a second lookups do not try
//! it again but answer at once from a stale copy (at most `stale_for` past its fill)
//! or as unavailable. Without the rest every waiting request would pay the pool's
//! connect timeout in turn, and a stale copy would go unserved while requests waited.

use std::future::Future;
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

/// How long the store rests after a read failed for want of a connection.
const STORE_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// How long a lookup that holds a stale copy waits for the store before serving it.
const STALE_READ_TIMEOUT: Duration = Duration::from_millis(500);

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
    /// While the store rests: when lookups may try it again, in milliseconds since
    /// `clock_base`; 0 while it answers.
    store_retry_at_ms: AtomicU64,
    clock_base: Instant,
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
            store_retry_at_ms: AtomicU64::new(0),
            clock_base: Instant::now(),
            store,
            ttl: settings.trigger_ttl,
            negative_ttl: settings.negative_ttl,
            stale_for: settings.stale_for,
            metrics,
        }
    }

    /// The generation counter of the shard `id` falls in.
    fn shard(&self, id: TriggerId) -> &AtomicU64 {
        let (high, low) = id.0.as_u64_pair();
        &self.generations[(high ^ low) as usize % GENERATION_SHARDS]
    }

    fn generation(&self, id: TriggerId) -> u64 {
        self.shard(id).load(Ordering::Acquire) + self.epoch.load(Ordering::Acquire)
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
        if let Some(entry) = self.entries.get(&id).await {
            if self.is_fresh(id, &entry) {
                self.metrics.cache_hit("trigger");
                return found_or_unknown(entry.snapshot);
            }
            if self.store_is_resting() && self.is_servable_stale(id, &entry) {
                self.metrics.cache_hit("trigger_stale");
                return found_or_unknown(entry.snapshot);
            }
        }
        self.metrics.cache_miss("trigger");
        // Boxed: the store read is a large future, and every request's future would
        // otherwise reserve (and copy) room for it, hit or miss.
        Box::pin(self.refresh(id)).await
    }

    async fn refresh(&self, id: TriggerId) -> Lookup {
        self.refresh_with(id, || self.store.trigger_snapshot(id))
            .await
    }

    /// Fills the entry with `read`; concurrent callers for one id wait for the first
    /// one's read instead of making their own.
    async fn refresh_with<F, Fut>(&self, id: TriggerId, read: F) -> Lookup
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<TriggerSnapshot>, StoreError>>,
    {
        let mut failed = false;
        let result = self
            .entries
            .entry(id)
            .and_compute_with(|current| {
                let current = current.map(|e| e.into_value());
                let failed = &mut failed;
                async move {
                    if current.as_ref().is_some_and(|e| self.is_fresh(id, e)) {
                        return Op::Nop;
                    }
                    // The read before ours failed a moment ago: answer without the store.
                    if self.store_is_resting() {
                        *failed = true;
                        return Op::Nop;
                    }
                    let has_stale = current
                        .as_ref()
                        .is_some_and(|e| self.is_servable_stale(id, e));
                    let generation = self.generation(id);
                    match self.read(id, read, has_stale).await {
                        Some(snapshot) => Op::Put(Entry {
                            snapshot: snapshot.map(Arc::new),
                            filled_at: Instant::now(),
                            generation,
                        }),
                        None => {
                            *failed = true;
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
            Some(entry) if !failed => found_or_unknown(entry.snapshot),
            Some(entry) if self.is_servable_stale(id, &entry) => {
                self.metrics.cache_hit("trigger_stale");
                found_or_unknown(entry.snapshot)
            }
            _ if failed => Lookup::Unavailable,
            _ => Lookup::Unknown,
        }
    }

    /// One store read; `None` when it failed. With a stale copy at hand the read is
    /// bounded, so that the copy is served while it may be.
    async fn read<F, Fut>(
        &self,
        id: TriggerId,
        read: F,
        has_stale: bool,
    ) -> Option<Option<TriggerSnapshot>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<TriggerSnapshot>, StoreError>>,
    {
        let result = if has_stale {
            match tokio::time::timeout(STALE_READ_TIMEOUT, read()).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(trigger.id = %id, "store read timed out; serving stale");
                    self.rest_store();
                    return None;
                }
            }
        } else {
            read().await
        };
        match result {
            Ok(snapshot) => {
                self.store_retry_at_ms.store(0, Ordering::Release);
                Some(snapshot)
            }
            Err(error) => {
                log_store_error(id, &error);
                if matches!(error, StoreError::Unavailable(_)) {
                    self.rest_store();
                }
                None
            }
        }
    }

    fn now_ms(&self) -> u64 {
        // Never 0, which means "not resting".
        u64::try_from(self.clock_base.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    fn rest_store(&self) {
        let until = self.now_ms() + STORE_RETRY_INTERVAL.as_millis() as u64;
        self.store_retry_at_ms.store(until, Ordering::Release);
    }

    /// True while a recent read failed for want of a connection.
    fn store_is_resting(&self) -> bool {
        self.now_ms() < self.store_retry_at_ms.load(Ordering::Acquire)
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
            self.shard(*id).fetch_add(1, Ordering::AcqRel);
            self.entries.invalidate(id).await;
        }
    }

    /// Drops everything (e.g. after Redis reconnects and messages may have been lost).
    pub fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate_all();
    }

    /// The number of usable entries and the age of the oldest, for `/readyz`; one pass,
    /// so the two always agree.
    pub fn usable_entries(&self) -> (u64, Option<Duration>) {
        let usable = self
            .entries
            .iter()
            .filter(|(id, entry)| entry.generation == self.generation(**id));
        usable.fold((0, None), |(count, oldest), (_, entry)| {
            let age = entry.filled_at.elapsed();
            (
                count + 1,
                Some(oldest.map_or(age, |o: Duration| o.max(age))),
            )
        })
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use sqlx::postgres::PgPoolOptions;
    use tokio::sync::oneshot;

    use super::*;
    use crate::model::ProjectId;

    /// A cache whose own store never answers (nothing listens on loopback port 1), so
    /// that every lookup outside `refresh_with` finds the store down.
    fn cache(stale_for: Duration) -> TriggerCache {
        let pool = PgPoolOptions::new()
            .acquire_timeout(Duration::from_millis(100))
            .connect_lazy("postgres://hookgate@127.0.0.1:1/none")
            .expect("a valid URL");
        let settings = CacheSettings {
            trigger_ttl: Duration::from_secs(1),
            negative_ttl: Duration::from_secs(1),
            verified_ttl: Duration::from_secs(60),
            stale_for,
            max_triggers: 100,
        };
        TriggerCache::new(&settings, Store::from_pool(pool), Arc::new(Metrics::new()))
    }

    fn snapshot(id: TriggerId) -> TriggerSnapshot {
        TriggerSnapshot {
            trigger_id: id,
            project_id: ProjectId(uuid::Uuid::new_v4()),
            enabled: true,
            auth_required: true,
            upstream: None,
            api_keys: Vec::new(),
            basics: Vec::new(),
            defect: None,
        }
    }

    fn new_id() -> TriggerId {
        TriggerId(uuid::Uuid::new_v4())
    }

    /// Fills `id` from a read that stalls after reading the old state, while `write`
    /// runs in between; then answers what the cache serves for `id` afterwards.
    async fn fill_racing_with<W, F>(cache: &TriggerCache, id: TriggerId, write: W) -> Lookup
    where
        W: FnOnce() -> F,
        F: Future<Output = ()>,
    {
        let (read_tx, read_rx) = oneshot::channel::<()>();
        let (release_tx, release_rx) = oneshot::channel::<()>();
        let fill = cache.refresh_with(id, || async move {
            let _ = read_tx.send(());
            let _ = release_rx.await;
            Ok(Some(snapshot(id)))
        });
        let write = async {
            let _ = read_rx.await;
            write().await;
            let _ = release_tx.send(());
        };
        let (_, ()) = tokio::join!(fill, write);
        cache.trigger(id).await
    }

    #[tokio::test]
    async fn a_fill_that_raced_with_an_invalidation_is_never_served_afterwards() {
        let cache = cache(Duration::from_secs(60));
        let id = new_id();
        let served = fill_racing_with(&cache, id, || async { cache.invalidate(&[id]).await }).await;

        // After the write, neither a fresh nor a stale use of that fill is allowed.
        assert!(matches!(served, Lookup::Unavailable));
        assert!(matches!(cache.trigger(id).await, Lookup::Unavailable));
    }

    #[tokio::test]
    async fn a_fill_started_after_an_invalidation_is_served() {
        let cache = cache(Duration::from_secs(60));
        let id = new_id();
        cache.invalidate(&[id]).await;

        let filled = cache.refresh_with(id, || async { Ok(Some(snapshot(id))) });
        assert!(matches!(filled.await, Lookup::Found(_)));
        assert!(matches!(cache.trigger(id).await, Lookup::Found(_)));
    }

    #[tokio::test]
    async fn dropping_everything_outdates_fills_in_flight_too() {
        let cache = cache(Duration::from_secs(60));
        let id = new_id();
        let served = fill_racing_with(&cache, id, || async { cache.invalidate_all() }).await;
        assert!(matches!(served, Lookup::Unavailable));
    }

    #[tokio::test]
    async fn a_stale_copy_is_served_while_the_store_is_down_but_not_once_invalidated() {
        let cache = cache(Duration::from_secs(120));
        let id = new_id();
        let filled = cache.refresh_with(id, || async { Ok(Some(snapshot(id))) });
        assert!(matches!(filled.await, Lookup::Found(_)));

        // Past its TTL, with the store down, the copy is still served.
        let mut entry = cache.entries.get(&id).await.expect("cached");
        let aged = Instant::now().checked_sub(cache.ttl + Duration::from_secs(1));
        entry.filled_at = aged.expect("the clock has run that long");
        cache.entries.insert(id, entry).await;
        let down = || async { Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)) };
        assert!(matches!(
            cache.refresh_with(id, down).await,
            Lookup::Found(_)
        ));
        assert!(matches!(cache.trigger(id).await, Lookup::Found(_)));

        // An invalidation during the outage ends that: revoked state is never served.
        cache.invalidate(&[id]).await;
        assert!(matches!(cache.trigger(id).await, Lookup::Unavailable));
    }

    #[tokio::test]
    async fn lookups_waiting_on_a_failing_read_do_not_each_retry_the_store() {
        let cache = Arc::new(cache(Duration::from_secs(60)));
        let id = new_id();
        let reads = Arc::new(AtomicUsize::new(0));

        let mut lookups = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (cache, reads) = (cache.clone(), reads.clone());
            lookups.spawn(async move {
                let read = || async move {
                    reads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut))
                };
                cache.refresh_with(id, read).await
            });
        }
        let answers = lookups.join_all().await;

        assert!(answers.iter().all(|a| matches!(a, Lookup::Unavailable)));
        assert_eq!(
            reads.load(Ordering::SeqCst),
            1,
            "one read, the others answered at once"
        );
    }
}
