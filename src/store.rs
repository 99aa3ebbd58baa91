//! The only SQL in hookgate: the Postgres pool, migrations, and the queries of each
//! table (in the submodules), with database errors mapped to domain errors.
//!
//! Every write runs in one transaction together with its audit events and reports the
//! triggers whose cached snapshots it made stale; the caller invalidates them.

mod audit;
mod auth_methods;
mod purge;
mod snapshot;
mod triggers;

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use crate::config::DatabaseSettings;
use crate::model::{Actor, TriggerId};

pub use audit::AuditQuery;
pub use auth_methods::{NewAuthMethod, NewSecret};
pub use purge::PurgeCounts;
pub use triggers::TriggerChange;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Field-level validation messages, as the admin API's `details` shows them.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// What can go wrong in the store, in domain terms.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid")]
    Invalid(FieldErrors),
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Internal(#[source] sqlx::Error),
}

impl StoreError {
    pub fn invalid(field: &str, message: &str) -> Self {
        let mut details = FieldErrors::new();
        details.insert(field.to_string(), vec![message.to_string()]);
        StoreError::Invalid(details)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        classify(error)
    }
}

/// Maps constraint violations to field errors and connection trouble to `Unavailable`.
fn classify(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) => match db.constraint() {
            Some("webhook_auth_methods_name_key") => {
                StoreError::invalid("name", "has already been taken")
            }
            Some("webhook_auth_methods_username_key") => {
                StoreError::invalid("username", "has already been taken")
            }
            Some("webhook_auth_methods_api_key_key") => {
                StoreError::invalid("api_key", "has already been taken")
            }
            Some("trigger_auth_methods_trigger_fkey" | "trigger_auth_methods_method_fkey") => {
                StoreError::invalid("trigger_id", "must be a trigger of the same project")
            }
            _ if is_connection_class(db.code().as_deref()) => StoreError::Unavailable(error),
            _ => StoreError::Internal(error),
        },
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error),
        _ => StoreError::Internal(error),
    }
}

/// SQLSTATE classes 08 (connection) and 57 (operator intervention, e.g. shutdown).
fn is_connection_class(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.starts_with("08") || c.starts_with("57"))
}

/// The connection pool and every query hookgate makes.
#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Opens a pool; connections are made on first use and re-made after an outage.
    pub fn connect(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        let options: PgConnectOptions = settings
            .url
            .expose()
            .parse()
            .map_err(StoreError::Internal)?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy_with(options.application_name("hookgate"));
        Ok(Self { pool })
    }

    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Applies pending migrations, waiting for other instances doing the same.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => classify(inner),
            other => StoreError::Conflict(other.to_string()),
        })
    }

    /// True when every embedded migration has been applied.
    pub async fn migrations_current(&self) -> Result<bool, StoreError> {
        let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await
                .or_else(|e| match &e {
                    sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => Ok(None),
                    _ => Err(e),
                })?;
        Ok(applied.unwrap_or(0) >= latest)
    }

    /// One round trip, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }
}

/// A write's result and the triggers whose snapshots it made stale.
#[derive(Debug)]
pub struct Written<T> {
    pub value: T,
    pub stale_triggers: Vec<TriggerId>,
}

/// Columns of the audit actor, from an optional actor.
fn actor_columns(actor: Option<&Actor>) -> (Option<uuid::Uuid>, Option<String>) {
    actor.map_or((None, None), |a| (Some(a.id), Some(a.name.clone())))
}
