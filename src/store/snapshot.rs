//! Reading one trigger's snapshot for the request path.
//!
//! A stored method the gateway cannot understand (an unknown type, a missing or
//! malformed verifier) does not make the trigger open: it marks the snapshot
//! defective, and the request path fails closed.

use std::sync::Arc;

use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::{Store, StoreError};
use crate::model::{AuthMethodId, ProjectId, TriggerId, parse_upstream_url};
use crate::secret::Digest32;
use crate::snapshot::{ApiKeyVerifier, BasicVerifier, TriggerSnapshot};

impl Store {
    /// The trigger with its active methods' verifiers, or `None` when unknown.
    pub async fn trigger_snapshot(
        &self,
        id: TriggerId,
    ) -> Result<Option<TriggerSnapshot>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let Some(trigger) = sqlx::query(
            "SELECT project_id, enabled, auth_required, upstream_url FROM triggers WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(None);
        };

        let methods = sqlx::query(
            "SELECT m.id, m.auth_type, m.username, m.password_hash, m.api_key_sha256, m.version
               FROM trigger_auth_methods a
               JOIN webhook_auth_methods m ON m.id = a.auth_method_id
              WHERE a.trigger_id = $1 AND m.scheduled_deletion IS NULL
              ORDER BY m.id",
        )
        .bind(id.0)
        .fetch_all(&mut *conn)
        .await?;

        let upstream_url: Option<String> = trigger.try_get("upstream_url")?;
        let mut snapshot = TriggerSnapshot {
            trigger_id: id,
            project_id: ProjectId(trigger.try_get("project_id")?),
            enabled: trigger.try_get("enabled")?,
            auth_required: trigger.try_get("auth_required")?,
            upstream: None,
            api_keys: Vec::new(),
            basics: Vec::new(),
            defect: None,
        };
        match upstream_url.as_deref().map(parse_upstream_url) {
            Some(Ok(uri)) => snapshot.upstream = Some(uri),
            Some(Err(message)) => snapshot.defect = Some(format!("upstream_url {message}")),
            None => {}
        }
        for row in &methods {
            if let Err(defect) = add_verifier(&mut snapshot, row)? {
                snapshot.defect = Some(defect);
            }
        }
        Ok(Some(snapshot))
    }
}

/// Adds one method's verifier; the inner error describes a defective row.
fn add_verifier(
    snapshot: &mut TriggerSnapshot,
    row: &PgRow,
) -> Result<Result<(), String>, StoreError> {
    let id: Uuid = row.try_get("id")?;
    let method_id = AuthMethodId(id);
    let auth_type: String = row.try_get("auth_type")?;
    let username: Option<String> = row.try_get("username")?;
    let password_hash: Option<String> = row.try_get("password_hash")?;
    let digest: Option<Vec<u8>> = row.try_get("api_key_sha256")?;
    let version: i64 = row.try_get("version")?;

    match (auth_type.as_str(), username, password_hash, digest) {
        ("basic", Some(username), Some(hash), None) if hash.starts_with("$argon2") => {
            snapshot.basics.push(BasicVerifier {
                method_id,
                version,
                username: username.into_bytes(),
                password_hash: Arc::from(hash),
            });
        }
        ("api", None, None, Some(digest)) => match Digest32::from_slice(&digest) {
            Some(digest) => snapshot.api_keys.push(ApiKeyVerifier { method_id, digest }),
            None => return Ok(Err(format!("auth method {id} has a malformed key digest"))),
        },
        _ => {
            return Ok(Err(format!(
                "auth method {id} has an unusable verifier ({auth_type})"
            )));
        }
    }
    Ok(Ok(()))
}
