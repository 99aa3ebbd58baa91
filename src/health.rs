//! Liveness and readiness, the same on both ports.
//!
//! `/healthz` does no I/O. `/readyz` is 200 only when the store answers, its
//! migrations are current and the instance is not draining; its body says which
//! check failed and how old the oldest cached data is.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use crate::cache::TriggerCache;
use crate::cluster::Cluster;
use crate::store::Store;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Health {
    store: Store,
    cache: Arc<TriggerCache>,
    cluster: Arc<Cluster>,
    draining: AtomicBool,
}

impl Health {
    pub fn new(store: Store, cache: Arc<TriggerCache>, cluster: Arc<Cluster>) -> Self {
        Self {
            store,
            cache,
            cluster,
            draining: AtomicBool::new(false),
        }
    }

    /// From now on `/readyz` answers 503.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub async fn readiness(&self) -> Response<Full<Bytes>> {
        let draining = self.is_draining();
        let checks = tokio::time::timeout(CHECK_TIMEOUT, self.store_checks()).await;
        let (store_ok, migrations_ok) = checks.unwrap_or_default();
        let ready = store_ok && migrations_ok && !draining;
        let redis = if !self.cluster.is_configured() {
            "not_configured"
        } else if self.cluster.is_subscribed() {
            "ok"
        } else {
            "degraded"
        };

        let (entries, oldest) = self.cache.usable_entries();
        let migrations = match (store_ok, migrations_ok) {
            (false, _) => "unknown",
            (true, true) => "ok",
            (true, false) => "pending",
        };
        let body = json!({
            "status": if ready { "ready" } else { "not_ready" },
            "checks": {
                "store": if store_ok { "ok" } else { "unreachable" },
                "migrations": migrations,
                "draining": draining,
                "redis": redis,
            },
            "cache": {
                "entries": entries,
                "oldest_entry_age_s": oldest.map(|age| age.as_secs_f64()),
            },
        });
        let status = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        json_response(status, body.to_string())
    }

    async fn store_checks(&self) -> (bool, bool) {
        if self.store.ping().await.is_err() {
            return (false, false);
        }
        (true, self.store.migrations_current().await.unwrap_or(false))
    }
}

pub fn liveness() -> Response<Full<Bytes>> {
    json_response(StatusCode::OK, r#"{"status":"ok"}"#.to_string())
}

fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
