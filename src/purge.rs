//! The purge timer: every `purge.interval_s`, each instance tries to purge; the
//! store's advisory lock lets one of them do each run.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::cache::TriggerCache;
use crate::cluster::Cluster;
use crate::store::{PurgeCounts, Store};
use crate::telemetry::Metrics;

pub struct PurgeTimer {
    pub store: Store,
    pub cache: Arc<TriggerCache>,
    pub cluster: Arc<Cluster>,
    pub metrics: Arc<Metrics>,
    pub interval: Duration,
}

impl PurgeTimer {
    pub async fn run(self, mut stop_rx: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.run_once().await,
                _ = stop_rx.changed() => return,
            }
        }
    }

    async fn run_once(&self) {
        match self.store.purge_due(None, false).await {
            Ok(Some(written)) => {
                self.cache.invalidate(&written.stale_triggers).await;
                self.cluster.publish(&written.stale_triggers).await;
                record(&self.metrics, &written.value, "timer");
            }
            Ok(None) => tracing::debug!("purge skipped: another instance is purging"),
            Err(error) => tracing::warn!(error = %error, "purge failed; will retry next interval"),
        }
    }
}

/// Counts and logs one purge run.
pub fn record(metrics: &Metrics, counts: &PurgeCounts, trigger: &str) {
    metrics.purge_runs.inc();
    metrics.purge_deleted.inc_by(counts.deleted_count);
    metrics
        .purge_disassociated
        .inc_by(counts.disassociated_count);
    tracing::info!(
        purge.by = trigger,
        purge.deleted_count = counts.deleted_count,
        purge.disassociated_count = counts.disassociated_count,
        "purge run"
    );
}
