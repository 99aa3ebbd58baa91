//! The audit trail: append inside the caller's transaction, read newest first.

use serde_json::Value;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{Store, StoreError, actor_columns};
use crate::model::{Actor, AuditEvent};

pub const AUTH_METHOD: &str = "webhook_auth_method";
pub const TRIGGER: &str = "trigger";

/// Appends one event; `seq` keeps the write order of one transaction.
pub async fn record(
    conn: &mut PgConnection,
    item_type: &str,
    item_id: Uuid,
    event: &str,
    actor: Option<&Actor>,
    before: Value,
    after: Value,
) -> Result<(), StoreError> {
    let (actor_id, actor_name) = actor_columns(actor);
    sqlx::query(
        "INSERT INTO audit_events (id, item_type, item_id, event, actor_id, actor_name, changes)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(Uuid::new_v4())
    .bind(item_type)
    .bind(item_id)
    .bind(event)
    .bind(actor_id)
    .bind(actor_name)
    .bind(serde_json::json!({ "before": before, "after": after }))
    .execute(conn)
    .await?;
    Ok(())
}

/// Filters and page position of an audit listing.
#[derive(Debug, Default)]
pub struct AuditQuery {
    pub item_id: Option<Uuid>,
    pub item_type: Option<String>,
    pub limit: i64,
    /// Only events older than this cursor (a `seq`).
    pub before: Option<i64>,
}

impl Store {
    /// Events newest first, and the cursor of the next page when there is one.
    pub async fn audit_events(
        &self,
        query: &AuditQuery,
    ) -> Result<(Vec<AuditEvent>, Option<i64>), StoreError> {
        let rows = sqlx::query(
            "SELECT seq, id, item_type, item_id, event, actor_id, actor_name, changes,
                    inserted_at
               FROM audit_events
              WHERE ($1::uuid IS NULL OR item_id = $1)
                AND ($2::text IS NULL OR item_type = $2)
                AND ($3::bigint IS NULL OR seq < $3)
              ORDER BY seq DESC
              LIMIT $4",
        )
        .bind(query.item_id)
        .bind(query.item_type.as_deref())
        .bind(query.before)
        .bind(query.limit + 1)
        .fetch_all(&self.pool)
        .await?;

        let mut events = Vec::with_capacity(rows.len());
        let mut last_seq = None;
        for row in rows.iter().take(query.limit as usize) {
            last_seq = Some(row.try_get::<i64, _>("seq")?);
            let actor_id: Option<Uuid> = row.try_get("actor_id")?;
            let actor_name: Option<String> = row.try_get("actor_name")?;
            events.push(AuditEvent {
                id: row.try_get("id")?,
                item_type: row.try_get("item_type")?,
                item_id: row.try_get("item_id")?,
                event: row.try_get("event")?,
                actor: actor_id.map(|id| Actor {
                    id,
                    name: actor_name.unwrap_or_default(),
                }),
                changes: row.try_get("changes")?,
                inserted_at: row.try_get("inserted_at")?,
            });
        }
        let next = if rows.len() as i64 > query.limit {
            last_seq
        } else {
            None
        };
        Ok((events, next))
    }
}
