//! Webhook auth methods: create, read, rename, attach to triggers, schedule for
//! deletion, delete, and the look-ups of the verify endpoint.

use serde_json::{Value, json};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};
use uuid::Uuid;

use super::audit::{self, AUTH_METHOD};
use super::triggers::require_auth;
use super::{Store, StoreError, Written};
use crate::model::{Actor, AuthMethod, AuthMethodId, AuthType, ProjectId, Trigger, TriggerId};
use crate::secret::Digest32;

/// A method to create; secrets arrive already hashed or digested.
#[derive(Debug)]
pub struct NewAuthMethod {
    pub name: String,
    pub secret: NewSecret,
    pub trigger_id: Option<TriggerId>,
}

#[derive(Debug)]
pub enum NewSecret {
    Basic {
        username: String,
        password_hash: String,
    },
    Api {
        digest: Digest32,
        hint: String,
    },
}

/// Selects methods with their attached trigger ids; append WHERE / ORDER clauses.
const METHOD_SELECT: &str = "
    SELECT m.id, m.project_id, m.name, m.auth_type, m.username, m.api_key_hint,
           m.scheduled_deletion, m.inserted_at, m.updated_at,
           COALESCE(array_agg(a.trigger_id ORDER BY a.trigger_id)
                    FILTER (WHERE a.trigger_id IS NOT NULL), '{}') AS trigger_ids
      FROM webhook_auth_methods m
      LEFT JOIN trigger_auth_methods a ON a.auth_method_id = m.id";

fn method_from_row(row: &PgRow) -> Result<AuthMethod, StoreError> {
    let auth_type: String = row.try_get("auth_type")?;
    let auth_type = AuthType::parse(&auth_type)
        .ok_or_else(|| StoreError::Conflict(format!("unknown auth_type `{auth_type}`")))?;
    let trigger_ids: Vec<Uuid> = row.try_get("trigger_ids")?;
    Ok(AuthMethod {
        id: AuthMethodId(row.try_get("id")?),
        project_id: ProjectId(row.try_get("project_id")?),
        name: row.try_get("name")?,
        auth_type,
        username: row.try_get("username")?,
        api_key_hint: row.try_get("api_key_hint")?,
        trigger_ids: trigger_ids.into_iter().map(TriggerId).collect(),
        scheduled_deletion: row.try_get("scheduled_deletion")?,
        inserted_at: row.try_get("inserted_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

async fn fetch_method(conn: &mut PgConnection, id: AuthMethodId) -> Result<AuthMethod, StoreError> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "{METHOD_SELECT} WHERE m.id = $1 GROUP BY m.id"
    )))
    .bind(id.0)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)?;
    method_from_row(&row)
}

/// Locks the method row; returns its project, name, type and deletion mark.
async fn lock_method(
    conn: &mut PgConnection,
    id: AuthMethodId,
) -> Result<LockedMethod, StoreError> {
    let row = sqlx::query(
        "SELECT project_id, name, auth_type, scheduled_deletion
           FROM webhook_auth_methods WHERE id = $1 FOR UPDATE",
    )
    .bind(id.0)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)?;
    Ok(LockedMethod {
        name: row.try_get("name")?,
        auth_type: row.try_get("auth_type")?,
        scheduled: row
            .try_get::<Option<time::OffsetDateTime>, _>("scheduled_deletion")?
            .is_some(),
    })
}

struct LockedMethod {
    name: String,
    auth_type: String,
    scheduled: bool,
}

/// Detaches the method from every trigger, one `removed_from_trigger` event each.
pub(super) async fn detach_everywhere(
    conn: &mut PgConnection,
    id: Uuid,
    actor: Option<&Actor>,
) -> Result<Vec<TriggerId>, StoreError> {
    let mut triggers: Vec<Uuid> = sqlx::query_scalar(
        "DELETE FROM trigger_auth_methods WHERE auth_method_id = $1 RETURNING trigger_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    triggers.sort();
    for trigger in &triggers {
        audit::record(
            conn,
            AUTH_METHOD,
            id,
            "removed_from_trigger",
            actor,
            json!({ "trigger_id": trigger }),
            json!({ "trigger_id": null }),
        )
        .await?;
        require_auth(conn, TriggerId(*trigger), actor).await?;
    }
    Ok(triggers.into_iter().map(TriggerId).collect())
}

async fn attach(
    conn: &mut PgConnection,
    trigger: TriggerId,
    method: AuthMethodId,
    project: ProjectId,
    actor: &Actor,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO trigger_auth_methods (trigger_id, auth_method_id, project_id)
         VALUES ($1, $2, $3)",
    )
    .bind(trigger.0)
    .bind(method.0)
    .bind(project.0)
    .execute(&mut *conn)
    .await?;
    require_auth(conn, trigger, Some(actor)).await?;
    audit::record(
        conn,
        AUTH_METHOD,
        method.0,
        "added_to_trigger",
        Some(actor),
        json!({ "trigger_id": null }),
        json!({ "trigger_id": trigger }),
    )
    .await
}

impl Store {
    pub async fn create_auth_method(
        &self,
        project: ProjectId,
        new: NewAuthMethod,
        actor: &Actor,
    ) -> Result<Written<AuthMethod>, StoreError> {
        let mut tx = self.begin().await?;

        if let Some(trigger) = new.trigger_id {
            let owner: Option<Uuid> =
                sqlx::query_scalar("SELECT project_id FROM triggers WHERE id = $1 FOR SHARE")
                    .bind(trigger.0)
                    .fetch_optional(&mut *tx)
                    .await?;
            if owner != Some(project.0) {
                return Err(StoreError::invalid(
                    "trigger_id",
                    "must be a trigger of this project",
                ));
            }
        }

        let id = AuthMethodId(Uuid::new_v4());
        let (auth_type, username, password_hash, digest, hint) = match &new.secret {
            NewSecret::Basic {
                username,
                password_hash,
            } => (
                AuthType::Basic,
                Some(username.as_str()),
                Some(password_hash.as_str()),
                None,
                None,
            ),
            NewSecret::Api { digest, hint } => (
                AuthType::Api,
                None,
                None,
                Some(digest.as_bytes().as_slice()),
                Some(hint.as_str()),
            ),
        };
        sqlx::query(
            "INSERT INTO webhook_auth_methods
                 (id, project_id, name, auth_type, username, password_hash, api_key_sha256,
                  api_key_hint)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id.0)
        .bind(project.0)
        .bind(&new.name)
        .bind(auth_type.as_str())
        .bind(username)
        .bind(password_hash)
        .bind(digest)
        .bind(hint)
        .execute(&mut *tx)
        .await?;
        let after = json!({
            "name": new.name,
            "auth_type": auth_type,
            "project_id": project,
            "username": username,
        });
        audit::record(
            &mut tx,
            AUTH_METHOD,
            id.0,
            "created",
            Some(actor),
            Value::Null,
            after,
        )
        .await?;

        if let Some(trigger) = new.trigger_id {
            attach(&mut tx, trigger, id, project, actor).await?;
        }
        let method = fetch_method(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Written {
            value: method,
            stale_triggers: new.trigger_id.into_iter().collect(),
        })
    }

    /// One method, active or scheduled.
    pub async fn auth_method(&self, id: AuthMethodId) -> Result<AuthMethod, StoreError> {
        let mut conn = self.pool.acquire().await?;
        fetch_method(&mut conn, id).await
    }

    /// Active methods of a project, ordered by name.
    pub async fn project_auth_methods(
        &self,
        project: ProjectId,
    ) -> Result<Vec<AuthMethod>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{METHOD_SELECT}
              WHERE m.project_id = $1 AND m.scheduled_deletion IS NULL
              GROUP BY m.id ORDER BY m.name, m.id"
        )))
        .bind(project.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(method_from_row).collect()
    }

    /// Active methods attached to a trigger, ordered by name; 404 for an unknown trigger.
    pub async fn trigger_auth_methods(
        &self,
        trigger: TriggerId,
    ) -> Result<Vec<AuthMethod>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM triggers WHERE id = $1")
            .bind(trigger.0)
            .fetch_optional(&mut *conn)
            .await?;
        exists.ok_or(StoreError::NotFound)?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{METHOD_SELECT}
              WHERE m.scheduled_deletion IS NULL
                AND m.id IN (SELECT auth_method_id FROM trigger_auth_methods
                              WHERE trigger_id = $1)
              GROUP BY m.id ORDER BY m.name, m.id"
        )))
        .bind(trigger.0)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(method_from_row).collect()
    }

    /// Renames; an unchanged name writes nothing, a scheduled method is a conflict.
    pub async fn rename_auth_method(
        &self,
        id: AuthMethodId,
        name: &str,
        actor: &Actor,
    ) -> Result<Written<AuthMethod>, StoreError> {
        let mut tx = self.begin().await?;
        let locked = lock_method(&mut tx, id).await?;
        if locked.scheduled {
            return Err(StoreError::Conflict(
                "the auth method is scheduled for deletion".into(),
            ));
        }

        if locked.name != name {
            sqlx::query(
                "UPDATE webhook_auth_methods SET name = $2, updated_at = now() WHERE id = $1",
            )
            .bind(id.0)
            .bind(name)
            .execute(&mut *tx)
            .await?;
            audit::record(
                &mut tx,
                AUTH_METHOD,
                id.0,
                "updated",
                Some(actor),
                json!({ "name": locked.name }),
                json!({ "name": name }),
            )
            .await?;
        }
        let method = fetch_method(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Written {
            value: method,
            stale_triggers: Vec::new(),
        })
    }

    /// Replaces the trigger's set of methods with `ids` (duplicates count once).
    pub async fn replace_trigger_auth_methods(
        &self,
        trigger: TriggerId,
        ids: &[AuthMethodId],
        actor: &Actor,
    ) -> Result<Written<Trigger>, StoreError> {
        let mut tx = self.begin().await?;
        let project: Uuid =
            sqlx::query_scalar("SELECT project_id FROM triggers WHERE id = $1 FOR UPDATE")
                .bind(trigger.0)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;

        let mut wanted: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
        wanted.sort();
        wanted.dedup();
        let valid: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM webhook_auth_methods
              WHERE id = ANY($1) AND project_id = $2 AND scheduled_deletion IS NULL
              FOR SHARE",
        )
        .bind(&wanted)
        .bind(project)
        .fetch_all(&mut *tx)
        .await?;
        if valid.len() != wanted.len() {
            let bad: Vec<String> = wanted
                .iter()
                .filter(|id| !valid.contains(id))
                .map(Uuid::to_string)
                .collect();
            return Err(StoreError::invalid(
                "auth_method_ids",
                &format!(
                    "not active methods of the trigger's project: {}",
                    bad.join(", ")
                ),
            ));
        }

        let current: Vec<Uuid> = sqlx::query_scalar(
            "SELECT auth_method_id FROM trigger_auth_methods WHERE trigger_id = $1
              ORDER BY auth_method_id",
        )
        .bind(trigger.0)
        .fetch_all(&mut *tx)
        .await?;
        for removed in current.iter().filter(|id| !wanted.contains(id)) {
            sqlx::query(
                "DELETE FROM trigger_auth_methods WHERE trigger_id = $1 AND auth_method_id = $2",
            )
            .bind(trigger.0)
            .bind(removed)
            .execute(&mut *tx)
            .await?;
            audit::record(
                &mut tx,
                AUTH_METHOD,
                *removed,
                "removed_from_trigger",
                Some(actor),
                json!({ "trigger_id": trigger }),
                json!({ "trigger_id": null }),
            )
            .await?;
            require_auth(&mut tx, trigger, Some(actor)).await?;
        }
        for added in wanted.iter().filter(|id| !current.contains(id)) {
            attach(
                &mut tx,
                trigger,
                AuthMethodId(*added),
                ProjectId(project),
                actor,
            )
            .await?;
        }

        tx.commit().await?;
        let value = self.trigger(trigger).await?;
        Ok(Written {
            value,
            stale_triggers: vec![trigger],
        })
    }

    /// Marks the method for purge after `days`, detaches it and stops it at once.
    pub async fn schedule_auth_method_deletion(
        &self,
        id: AuthMethodId,
        days: u32,
        actor: &Actor,
    ) -> Result<Written<AuthMethod>, StoreError> {
        let mut tx = self.begin().await?;
        let locked = lock_method(&mut tx, id).await?;
        if locked.scheduled {
            return Err(StoreError::Conflict(
                "the auth method is already scheduled".into(),
            ));
        }

        let stale_triggers = detach_everywhere(&mut tx, id.0, Some(actor)).await?;
        let scheduled: time::OffsetDateTime = sqlx::query_scalar(
            "UPDATE webhook_auth_methods
                SET scheduled_deletion = now() + make_interval(days => $2::integer),
                    version = version + 1, updated_at = now()
              WHERE id = $1
             RETURNING scheduled_deletion",
        )
        .bind(id.0)
        // Widened, not cast: `as i32` turned a huge setting into a negative delay, which
        // made a method due for purge at once instead of failing loudly.
        .bind(i64::from(days))
        .fetch_one(&mut *tx)
        .await?;
        let stamp = scheduled
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        audit::record(
            &mut tx,
            AUTH_METHOD,
            id.0,
            "deleted",
            Some(actor),
            json!({ "scheduled_deletion": null }),
            json!({ "scheduled_deletion": stamp }),
        )
        .await?;

        let method = fetch_method(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Written {
            value: method,
            stale_triggers,
        })
    }

    /// Deletes the method now, detaching it first.
    pub async fn delete_auth_method(
        &self,
        id: AuthMethodId,
        actor: &Actor,
    ) -> Result<Written<()>, StoreError> {
        let mut tx = self.begin().await?;
        let locked = lock_method(&mut tx, id).await?;
        let stale_triggers = detach_everywhere(&mut tx, id.0, Some(actor)).await?;

        sqlx::query("DELETE FROM webhook_auth_methods WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            AUTH_METHOD,
            id.0,
            "purged",
            Some(actor),
            json!({ "name": locked.name, "auth_type": locked.auth_type }),
            Value::Null,
        )
        .await?;
        tx.commit().await?;
        Ok(Written {
            value: (),
            stale_triggers,
        })
    }

    /// The active API-key method of `project` whose key has this digest.
    pub async fn find_api_key_method(
        &self,
        project: ProjectId,
        digest: &Digest32,
    ) -> Result<Option<AuthMethod>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "{METHOD_SELECT}
              WHERE m.project_id = $1 AND m.auth_type = 'api'
                AND m.api_key_sha256 = $2 AND m.scheduled_deletion IS NULL
              GROUP BY m.id"
        )))
        .bind(project.0)
        .bind(digest.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(method_from_row).transpose()
    }

    /// Active Basic methods of `project` with this username: (id, PHC string).
    pub async fn basic_candidates(
        &self,
        project: ProjectId,
        username: &str,
    ) -> Result<Vec<(AuthMethodId, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, password_hash FROM webhook_auth_methods
              WHERE project_id = $1 AND auth_type = 'basic' AND username = $2
                AND scheduled_deletion IS NULL AND password_hash IS NOT NULL
              ORDER BY name, id",
        )
        .bind(project.0)
        .bind(username)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    AuthMethodId(row.try_get("id")?),
                    row.try_get("password_hash")?,
                ))
            })
            .collect()
    }
}
