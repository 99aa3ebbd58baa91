//! The Redis link between instances: invalidations published after every admin write
//! and applied by a subscriber task, and the connection the shared failure counters
//! use. Without `redis.url` an instance runs alone: correct by itself, and bounded by
//! the cache TTL when several run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use redis::RedisResult;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

use crate::cache::TriggerCache;
use crate::config::RedisSettings;
use crate::model::TriggerId;
use crate::telemetry::Metrics;

/// The subscriber's first wait after losing Redis, and the most it ever waits.
const RESUBSCRIBE_FIRST_DELAY: Duration = Duration::from_millis(100);
const RESUBSCRIBE_MAX_DELAY: Duration = Duration::from_millis(500);

#[derive(Serialize, Deserialize)]
struct Invalidation {
    from: Uuid,
    triggers: Vec<TriggerId>,
}

/// This instance's Redis link, if one is configured.
pub struct Cluster {
    client: Option<redis::Client>,
    connection: Option<ConnectionManager>,
    instance_id: Uuid,
    channel: String,
    subscribed: AtomicBool,
    metrics: Arc<Metrics>,
}

impl Cluster {
    pub fn new(settings: &RedisSettings, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        let client = settings
            .url
            .as_ref()
            .map(|url| redis::Client::open(url.expose()))
            .transpose()
            .map_err(|e| anyhow::anyhow!("redis.url: {}", e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection = client
            .clone()
            .map(|c| ConnectionManager::new_lazy_with_config(c, config))
            .transpose()
            .map_err(|e| anyhow::anyhow!("redis.url: {}", e))?;
        Ok(Self {
            client,
            connection,
            instance_id: Uuid::new_v4(),
            channel: format!("{}:invalidate", settings.namespace),
            subscribed: AtomicBool::new(false),
            metrics,
        })
    }

    pub fn is_configured(&self) -> bool {
        self.client.is_some()
    }

    /// True while the subscriber holds a live subscription.
    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    /// A multiplexed connection for commands (shared counters).
    pub fn connection(&self) -> Option<ConnectionManager> {
        self.connection.clone()
    }

    /// Tells the other instances to drop these triggers; a failure is logged, and the
    /// others then converge within the cache TTL.
    pub async fn publish(&self, triggers: &[TriggerId]) {
        let Some(mut connection) = self.connection() else {
            return;
        };
        if triggers.is_empty() {
            return;
        }
        let message = Invalidation {
            from: self.instance_id,
            triggers: triggers.to_vec(),
        };
        let Ok(payload) = serde_json::to_string(&message) else {
            return;
        };
        // After an outage the connection manager fails the first command with the old
        // error while it reconnects; one more try goes out on the new link instead of
        // losing the invalidation.
        let mut sent = self.send(&mut connection, &payload).await;
        if sent.is_err() {
            sent = self.send(&mut connection, &payload).await;
        }
        match sent {
            Ok(_) => {
                self.metrics.invalidations_sent.inc();
            }
            Err(e) => tracing::warn!(error.kind = ?e.kind(), "cannot publish invalidation"),
        }
    }

    async fn send(&self, connection: &mut ConnectionManager, payload: &str) -> RedisResult<i64> {
        redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(payload)
            .query_async(connection)
            .await
    }

    /// Subscribes until shutdown, re-subscribing after any loss. Each (re)subscription
    /// drops the whole cache, since messages may have been missed meanwhile.
    pub async fn run_subscriber(
        self: Arc<Self>,
        cache: Arc<TriggerCache>,
        mut shutdown_rx: watch::Receiver<bool>,
    ) {
        let Some(client) = self.client.clone() else {
            return;
        };
        let mut delay = RESUBSCRIBE_FIRST_DELAY;
        loop {
            let subscribed = tokio::select! {
                subscribed = self.subscribe_once(&client, &cache) => subscribed,
                _ = shutdown_rx.changed() => return,
            };
            self.subscribed.store(false, Ordering::Release);

            // A fresh loss retries at once; a Redis that stays away is retried at most
            // every half second, so a returning one is rejoined within the 1 s promise.
            if subscribed {
                delay = RESUBSCRIBE_FIRST_DELAY;
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown_rx.changed() => return,
            }
            delay = (delay * 2).min(RESUBSCRIBE_MAX_DELAY);
        }
    }

    /// One subscription, held until the link breaks; true when it was established.
    async fn subscribe_once(&self, client: &redis::Client, cache: &TriggerCache) -> bool {
        let connecting = tokio::time::timeout(Duration::from_secs(2), client.get_async_pubsub());
        let mut pubsub = match connecting.await {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(e)) => {
                tracing::debug!(error.kind = ?e.kind(), "redis subscriber cannot connect");
                return false;
            }
            Err(_) => return false,
        };
        if let Err(e) = pubsub.subscribe(&self.channel).await {
            tracing::warn!(error.kind = ?e.kind(), "redis subscribe failed");
            return false;
        }

        cache.invalidate_all();
        self.subscribed.store(true, Ordering::Release);
        tracing::info!("subscribed to invalidations; cache dropped");
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            let Ok(invalidation) = serde_json::from_str::<Invalidation>(&payload) else {
                continue;
            };
            if invalidation.from != self.instance_id {
                cache.invalidate(&invalidation.triggers).await;
                self.metrics.invalidations_received.inc();
            }
        }
        tracing::warn!("lost the redis subscription; reconnecting");
        true
    }
}
