//! Logs and metrics: the tracing subscriber (text or JSON), the access-log target,
//! and the Prometheus registry served on the admin port.
//!
//! No label carries a secret or an unbounded value: trigger ids appear in logs only.

use std::io::IsTerminal as _;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// The tracing target of the one-line-per-webhook access log.
pub const ACCESS_LOG: &str = "hookgate::access";

/// Installs the global subscriber; `RUST_LOG` wins over `log.level` when set.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a person at a terminal, never in files or the journal.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let installed = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A second init (tests start several gateways in one process) keeps the first.
    let _ = installed;
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub outcome: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AdminLabels {
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    result: &'static str,
}

/// Every metric hookgate exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    admin_requests: Family<AdminLabels, Counter>,
    auth_outcomes: Family<ReasonLabels, Counter>,
    cache_lookups: Family<CacheLabels, Counter>,
    pub argon2_verifications: Counter,
    pub argon2_rejected: Counter,
    pub argon2_verify_seconds: Histogram,
    pub argon2_queue_seconds: Histogram,
    pub upstream_seconds: Histogram,
    pub purge_runs: Counter,
    pub purge_deleted: Counter,
    pub purge_disassociated: Counter,
    pub invalidations_sent: Counter,
    pub invalidations_received: Counter,
    pub cached_triggers: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let seconds = || Histogram::new(exponential_buckets(0.0001, 2.0, 18));
        let mut metrics = Self {
            registry: Registry::with_prefix("hookgate"),
            requests: Family::default(),
            admin_requests: Family::default(),
            auth_outcomes: Family::default(),
            cache_lookups: Family::default(),
            argon2_verifications: Counter::default(),
            argon2_rejected: Counter::default(),
            argon2_verify_seconds: seconds(),
            argon2_queue_seconds: seconds(),
            upstream_seconds: seconds(),
            purge_runs: Counter::default(),
            purge_deleted: Counter::default(),
            purge_disassociated: Counter::default(),
            invalidations_sent: Counter::default(),
            invalidations_received: Counter::default(),
            cached_triggers: Gauge::default(),
        };
        metrics.register();
        metrics
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register(
            "requests",
            "Webhook requests by outcome and status",
            self.requests.clone(),
        );
        r.register(
            "admin_requests",
            "Admin API requests by method and status",
            self.admin_requests.clone(),
        );
        r.register(
            "auth_outcomes",
            "Authentication decisions by reason",
            self.auth_outcomes.clone(),
        );
        r.register(
            "cache_lookups",
            "Cache lookups by cache and result",
            self.cache_lookups.clone(),
        );
        r.register(
            "argon2_verifications",
            "argon2id verifications run",
            self.argon2_verifications.clone(),
        );
        r.register(
            "argon2_rejected",
            "Verifications refused: no slot within the queue timeout",
            self.argon2_rejected.clone(),
        );
        r.register(
            "argon2_verify_seconds",
            "Time of one argon2id verification",
            self.argon2_verify_seconds.clone(),
        );
        r.register(
            "argon2_queue_seconds",
            "Wait for an argon2id slot",
            self.argon2_queue_seconds.clone(),
        );
        r.register(
            "upstream_seconds",
            "Time until the upstream's response head",
            self.upstream_seconds.clone(),
        );
        r.register(
            "purge_runs",
            "Purge runs this instance did",
            self.purge_runs.clone(),
        );
        r.register(
            "purge_deleted",
            "Auth methods purged",
            self.purge_deleted.clone(),
        );
        r.register(
            "purge_disassociated",
            "Purged methods that still had attachments",
            self.purge_disassociated.clone(),
        );
        r.register(
            "invalidations_sent",
            "Invalidation messages published",
            self.invalidations_sent.clone(),
        );
        r.register(
            "invalidations_received",
            "Invalidation messages applied",
            self.invalidations_received.clone(),
        );
        r.register(
            "cached_triggers",
            "Entries in the trigger cache",
            self.cached_triggers.clone(),
        );
    }

    pub fn request(&self, outcome: &'static str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels { outcome, status })
            .inc();
    }

    /// Counts one admin request; the method is one of a fixed few, so labels stay bounded.
    pub fn admin_request(&self, method: &str, status: u16) {
        let method = match method {
            "GET" | "PUT" | "POST" | "PATCH" | "DELETE" => method.to_string(),
            _ => "other".to_string(),
        };
        self.admin_requests
            .get_or_create(&AdminLabels { method, status })
            .inc();
    }

    pub fn auth_outcome(&self, reason: &'static str) {
        self.auth_outcomes
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn cache_hit(&self, cache: &'static str) {
        self.cache_lookups
            .get_or_create(&CacheLabels {
                cache,
                result: "hit",
            })
            .inc();
    }

    pub fn cache_miss(&self, cache: &'static str) {
        self.cache_lookups
            .get_or_create(&CacheLabels {
                cache,
                result: "miss",
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
