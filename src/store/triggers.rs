//! Triggers: create or update, read with their active methods, delete.

use serde_json::{Value, json};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit::{self, AUTH_METHOD, TRIGGER};
use super::{Store, StoreError, Written};
use crate::model::{Actor, AuthMethodId, ProjectId, Trigger, TriggerId};

/// The fields of a `PUT /v1/triggers/{id}`; `None` keeps the current value.
#[derive(Debug)]
pub struct TriggerChange {
    pub project_id: ProjectId,
    pub enabled: Option<bool>,
    pub auth_required: Option<bool>,
    /// `Some(None)` removes the override.
    pub upstream_url: Option<Option<String>>,
}

const TRIGGER_COLUMNS: &str =
    "id, project_id, enabled, auth_required, upstream_url, inserted_at, updated_at";

struct TriggerRow {
    id: Uuid,
    project_id: Uuid,
    enabled: bool,
    auth_required: bool,
    upstream_url: Option<String>,
    inserted_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TriggerRow {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            project_id: row.try_get("project_id")?,
            enabled: row.try_get("enabled")?,
            auth_required: row.try_get("auth_required")?,
            upstream_url: row.try_get("upstream_url")?,
            inserted_at: row.try_get("inserted_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    /// The settings an audit event records.
    fn audited(&self) -> Value {
        json!({
            "project_id": self.project_id,
            "enabled": self.enabled,
            "auth_required": self.auth_required,
            "upstream_url": self.upstream_url,
        })
    }

    fn into_trigger(self, auth_method_ids: Vec<AuthMethodId>) -> Trigger {
        Trigger {
            id: TriggerId(self.id),
            project_id: ProjectId(self.project_id),
            enabled: self.enabled,
            auth_required: self.auth_required,
            upstream_url: self.upstream_url,
            auth_method_ids,
            inserted_at: self.inserted_at,
            updated_at: self.updated_at,
        }
    }
}

impl Store {
    /// Creates the trigger (`true`) or updates it (`false`).
    pub async fn put_trigger(
        &self,
        id: TriggerId,
        change: TriggerChange,
        actor: &Actor,
    ) -> Result<Written<(Trigger, bool)>, StoreError> {
        let mut tx = self.begin().await?;

        let current = lock_trigger(&mut tx, id).await?;
        let (row, created) = match current {
            None => (insert_trigger(&mut tx, id, &change, actor).await?, true),
            Some(current) if current.project_id != change.project_id.0 => {
                return Err(StoreError::Conflict(
                    "a trigger cannot move to another project".into(),
                ));
            }
            Some(current) => (
                update_trigger(&mut tx, current, &change, actor).await?,
                false,
            ),
        };

        let method_ids = active_method_ids(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Written {
            value: (row.into_trigger(method_ids), created),
            stale_triggers: vec![id],
        })
    }

    pub async fn trigger(&self, id: TriggerId) -> Result<Trigger, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TRIGGER_COLUMNS} FROM triggers WHERE id = $1"
        )))
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
        let row = TriggerRow::from_row(&row)?;
        let method_ids = active_method_ids(&mut conn, id).await?;
        Ok(row.into_trigger(method_ids))
    }

    /// Removes the trigger; its attachments go with it, each with an audit event.
    pub async fn delete_trigger(
        &self,
        id: TriggerId,
        actor: &Actor,
    ) -> Result<Written<()>, StoreError> {
        let mut tx = self.begin().await?;
        let row = lock_trigger(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound)?;

        let detached: Vec<Uuid> = sqlx::query_scalar(
            "DELETE FROM trigger_auth_methods WHERE trigger_id = $1
             RETURNING auth_method_id",
        )
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await?;
        for method_id in detached {
            audit::record(
                &mut tx,
                AUTH_METHOD,
                method_id,
                "removed_from_trigger",
                Some(actor),
                json!({ "trigger_id": id }),
                json!({ "trigger_id": null }),
            )
            .await?;
        }

        sqlx::query("DELETE FROM triggers WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            TRIGGER,
            id.0,
            "deleted",
            Some(actor),
            row.audited(),
            Value::Null,
        )
        .await?;
        tx.commit().await?;
        Ok(Written {
            value: (),
            stale_triggers: vec![id],
        })
    }
}

async fn lock_trigger(
    conn: &mut PgConnection,
    id: TriggerId,
) -> Result<Option<TriggerRow>, StoreError> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {TRIGGER_COLUMNS} FROM triggers WHERE id = $1 FOR UPDATE"
    )))
    .bind(id.0)
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(TriggerRow::from_row).transpose()?)
}

async fn insert_trigger(
    conn: &mut PgConnection,
    id: TriggerId,
    change: &TriggerChange,
    actor: &Actor,
) -> Result<TriggerRow, StoreError> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO triggers (id, project_id, enabled, auth_required, upstream_url)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING {TRIGGER_COLUMNS}"
    )))
    .bind(id.0)
    .bind(change.project_id.0)
    .bind(change.enabled.unwrap_or(true))
    .bind(change.auth_required.unwrap_or(false))
    .bind(change.upstream_url.clone().flatten())
    .fetch_one(&mut *conn)
    .await?;
    let row = TriggerRow::from_row(&row)?;
    audit::record(
        conn,
        TRIGGER,
        id.0,
        "created",
        Some(actor),
        Value::Null,
        row.audited(),
    )
    .await?;
    Ok(row)
}

/// Applies the change; writes an `updated` event only when something changed.
async fn update_trigger(
    conn: &mut PgConnection,
    current: TriggerRow,
    change: &TriggerChange,
    actor: &Actor,
) -> Result<TriggerRow, StoreError> {
    let enabled = change.enabled.unwrap_or(current.enabled);
    let auth_required = change.auth_required.unwrap_or(current.auth_required);
    let upstream_url = change
        .upstream_url
        .clone()
        .unwrap_or_else(|| current.upstream_url.clone());
    let unchanged = enabled == current.enabled
        && auth_required == current.auth_required
        && upstream_url == current.upstream_url;
    if unchanged {
        return Ok(current);
    }

    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE triggers
            SET enabled = $2, auth_required = $3, upstream_url = $4, updated_at = now()
          WHERE id = $1
         RETURNING {TRIGGER_COLUMNS}"
    )))
    .bind(current.id)
    .bind(enabled)
    .bind(auth_required)
    .bind(upstream_url)
    .fetch_one(&mut *conn)
    .await?;
    let row = TriggerRow::from_row(&row)?;
    audit::record(
        conn,
        TRIGGER,
        current.id,
        "updated",
        Some(actor),
        current.audited(),
        row.audited(),
    )
    .await?;
    Ok(row)
}

/// The trigger's attached active methods, ordered by name.
pub(super) async fn active_method_ids(
    conn: &mut PgConnection,
    id: TriggerId,
) -> Result<Vec<AuthMethodId>, StoreError> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT m.id
           FROM trigger_auth_methods a
           JOIN webhook_auth_methods m ON m.id = a.auth_method_id
          WHERE a.trigger_id = $1 AND m.scheduled_deletion IS NULL
          ORDER BY m.name, m.id",
    )
    .bind(id.0)
    .fetch_all(conn)
    .await?;
    Ok(ids.into_iter().map(AuthMethodId).collect())
}

/// Attaching a method to a trigger, or detaching one from it, makes the trigger require
/// auth, so that losing its last method never opens it — even when an admin had set
/// `auth_required: false` while methods were attached. Only an explicit
/// `auth_required: false` on a trigger without methods opens it. Records the change
/// as a trigger `updated` event.
pub(super) async fn require_auth(
    conn: &mut PgConnection,
    trigger: TriggerId,
    actor: Option<&Actor>,
) -> Result<(), StoreError> {
    let changed: Option<Uuid> = sqlx::query_scalar(
        "UPDATE triggers SET auth_required = true, updated_at = now()
          WHERE id = $1 AND NOT auth_required
         RETURNING id",
    )
    .bind(trigger.0)
    .fetch_optional(&mut *conn)
    .await?;
    if changed.is_none() {
        return Ok(());
    }
    audit::record(
        conn,
        TRIGGER,
        trigger.0,
        "updated",
        actor,
        json!({ "auth_required": false }),
        json!({ "auth_required": true }),
    )
    .await
}
