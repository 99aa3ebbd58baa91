//! Failure counters per (client address, trigger), in Redis when configured (shared
//! by every instance) and in process otherwise or while Redis cannot be reached.
//!
//! Windows are fixed: they start at a key's first failure and last
//! `auth.failure_window_s`.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::config::AuthSettings;
use crate::model::TriggerId;

/// Counts a failure and starts the key's window in one step: a pipelined INCR and
/// EXPIRE could leave a counter without expiry (and so a lockout without end) if the
/// link broke between them, and `EXPIRE ... NX` needs Redis 7.
const COUNT_FAILURE: &str = "local n = redis.call('INCR', KEYS[1]) \
    if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end \
    return n";

pub struct Throttle {
    namespace: String,
    redis: Option<ConnectionManager>,
    local: moka::sync::Cache<(IpAddr, TriggerId), Arc<AtomicU32>>,
    max_failures: u32,
    window: Duration,
}

impl Throttle {
    pub fn new(settings: &AuthSettings, namespace: &str, redis: Option<ConnectionManager>) -> Self {
        Self {
            namespace: namespace.to_string(),
            redis,
            local: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(settings.failure_window)
                .build(),
            max_failures: settings.max_failures,
            window: settings.failure_window,
        }
    }

    fn redis_key(&self, client: IpAddr, trigger: TriggerId) -> String {
        format!("{}:failures:{trigger}:{client}", self.namespace)
    }

    /// True once the client has used up its failures on this trigger.
    pub async fn is_throttled(&self, client: IpAddr, trigger: TriggerId) -> bool {
        if let Some(mut redis) = self.redis.clone() {
            let count: redis::RedisResult<Option<u32>> = redis::cmd("GET")
                .arg(self.redis_key(client, trigger))
                .query_async(&mut redis)
                .await;
            if let Ok(count) = count {
                return count.unwrap_or(0) >= self.max_failures;
            }
        }
        self.local
            .get(&(client, trigger))
            .is_some_and(|c| c.load(Ordering::Relaxed) >= self.max_failures)
    }

    /// Counts one failure.
    pub async fn record_failure(&self, client: IpAddr, trigger: TriggerId) {
        if let Some(mut redis) = self.redis.clone() {
            let counted: redis::RedisResult<i64> = redis::cmd("EVAL")
                .arg(COUNT_FAILURE)
                .arg(1)
                .arg(self.redis_key(client, trigger))
                .arg(self.window.as_secs().max(1))
                .query_async(&mut redis)
                .await;
            if counted.is_ok() {
                return;
            }
        }
        self.local
            .get_with((client, trigger), || Arc::new(AtomicU32::new(0)))
            .fetch_add(1, Ordering::Relaxed);
    }

    /// How long a throttled client should wait, for `Retry-After`.
    pub fn retry_after(&self) -> Duration {
        self.window
    }
}
