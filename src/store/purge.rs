//! Purge: remove every method whose scheduled deletion is due, in one transaction,
//! with a Postgres advisory lock so that one instance does each run.

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;
use uuid::Uuid;

use super::audit::{self, AUTH_METHOD};
use super::auth_methods::detach_everywhere;
use super::{Store, StoreError, Written};
use crate::model::Actor;

/// The advisory lock key of purge runs ("hookgate" as ASCII bytes).
const PURGE_LOCK_KEY: i64 = 0x686f_6f6b_6761_7465;

/// What one purge run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PurgeCounts {
    /// Purged methods that still had attachments (normally 0: scheduling detaches).
    pub disassociated_count: u64,
    pub deleted_count: u64,
}

impl Store {
    /// Purges due methods. With `wait` the run queues behind another instance's run;
    /// without it, a run already in progress elsewhere makes this one return `None`.
    pub async fn purge_due(
        &self,
        actor: Option<&Actor>,
        wait: bool,
    ) -> Result<Option<Written<PurgeCounts>>, StoreError> {
        let mut tx = self.begin().await?;
        let locked: bool = if wait {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PURGE_LOCK_KEY)
                .execute(&mut *tx)
                .await?;
            true
        } else {
            sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                .bind(PURGE_LOCK_KEY)
                .fetch_one(&mut *tx)
                .await?
        };
        if !locked {
            return Ok(None);
        }

        let due = sqlx::query(
            "SELECT id, name, auth_type FROM webhook_auth_methods
              WHERE scheduled_deletion <= now()
              ORDER BY scheduled_deletion, id
              FOR UPDATE",
        )
        .fetch_all(&mut *tx)
        .await?;

        let mut counts = PurgeCounts::default();
        let mut stale_triggers = Vec::new();
        for row in &due {
            let id: Uuid = row.try_get("id")?;
            let name: String = row.try_get("name")?;
            let auth_type: String = row.try_get("auth_type")?;

            let detached = detach_everywhere(&mut tx, id, actor).await?;
            if !detached.is_empty() {
                counts.disassociated_count += 1;
            }
            stale_triggers.extend(detached);
            sqlx::query("DELETE FROM webhook_auth_methods WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            audit::record(
                &mut tx,
                AUTH_METHOD,
                id,
                "purged",
                actor,
                json!({ "name": name, "auth_type": auth_type }),
                Value::Null,
            )
            .await?;
            counts.deleted_count += 1;
        }
        tx.commit().await?;
        Ok(Some(Written {
            value: counts,
            stale_triggers,
        }))
    }
}
