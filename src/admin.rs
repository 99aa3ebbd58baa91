//! The admin port: bearer-token actors, the `/v1` API over auth methods, triggers,
//! purge and audit, plus health and metrics. Every write goes to the store as one
//! transaction with its audit events, then invalidates the triggers it touched here
//! and, through Redis, on every other instance.

mod body;
mod error;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::password::{PasswordError, PasswordHasher};
use crate::cache::TriggerCache;
use crate::cluster::Cluster;
use crate::config::AdminToken;
use crate::health::Health;
use crate::model::{Actor, AuthMethodId, AuthType, ProjectId, TriggerId, parse_canonical_uuid};
use crate::secret::{TokenDigest, sha256};
use crate::store::{AuditQuery, NewAuthMethod, NewSecret, Store, TriggerChange, Written};
use crate::telemetry::Metrics;
use body::{Fields, RawBody};
pub use error::AdminError;

/// What every admin handler can reach.
pub struct AdminState {
    pub store: Store,
    pub cache: Arc<TriggerCache>,
    pub cluster: Arc<Cluster>,
    pub passwords: PasswordHasher,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub tokens: Vec<AdminToken>,
    pub deleted_after_days: u32,
}

type AppState = State<Arc<AdminState>>;

pub fn router(state: Arc<AdminState>) -> Router {
    let v1 = Router::new()
        .route(
            "/triggers/{id}",
            put(put_trigger).get(get_trigger).delete(delete_trigger),
        )
        .route(
            "/triggers/{id}/auth-methods",
            get(trigger_auth_methods).put(replace_trigger_auth_methods),
        )
        .route(
            "/projects/{pid}/auth-methods",
            post(create_auth_method).get(project_auth_methods),
        )
        .route(
            "/projects/{pid}/auth-methods/verify",
            post(verify_credential),
        )
        .route(
            "/auth-methods/{id}",
            get(get_auth_method)
                .patch(rename_auth_method)
                .delete(delete_auth_method),
        )
        .route(
            "/auth-methods/{id}/schedule-deletion",
            post(schedule_deletion),
        )
        .route("/purge", post(purge))
        .route("/audit-events", get(audit_events))
        .route("/openapi.json", get(openapi))
        // Unknown paths and methods under /v1 need the token too: an anonymous caller
        // learns nothing, not even which endpoints exist.
        .fallback(|| async { AdminError::NotFound })
        .method_not_allowed_fallback(|| async { AdminError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state.clone(), require_token));

    Router::new()
        .route("/healthz", get(|| async { crate::health::liveness() }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .nest("/v1", v1)
        .fallback(|| async { AdminError::NotFound })
        .method_not_allowed_fallback(|| async { AdminError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            log_admin_request,
        ))
        .with_state(state)
}

/// One log line and one metric sample per admin request, naming the actor when the
/// token was valid; refused tokens are logged at warn.
async fn log_admin_request(State(state): AppState, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;

    let status = response.status();
    let actor = response.extensions().get::<Actor>().map(|a| a.name.clone());
    state
        .metrics
        .admin_request(method.as_str(), status.as_u16());
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if status == StatusCode::UNAUTHORIZED {
        tracing::warn!(
            target: ADMIN_LOG,
            latency_ms,
            http.method = %method,
            http.path = %path,
            http.status = status.as_u16(),
            "admin request refused: bad token"
        );
    } else if !matches!(path.as_str(), "/metrics" | "/healthz" | "/readyz") {
        tracing::info!(
            target: ADMIN_LOG,
            latency_ms,
            actor = actor.as_deref().unwrap_or("-"),
            http.method = %method,
            http.path = %path,
            http.status = status.as_u16(),
            "admin request"
        );
    }
    response
}

/// The tracing target of admin request lines.
pub const ADMIN_LOG: &str = "hookgate::admin";

/// Resolves the bearer token to its actor, comparing digests in constant time.
async fn require_token(State(state): AppState, mut request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| TokenDigest::of(token.trim().as_bytes()));
    let Some(presented) = presented else {
        return AdminError::Unauthorized.into_response();
    };

    let mut actor = None;
    for token in &state.tokens {
        if token.digest == presented {
            actor = Some(Actor {
                id: token.actor_id,
                name: token.name.clone(),
            });
        }
    }
    match actor {
        Some(actor) => {
            request.extensions_mut().insert(actor.clone());
            let mut response = next.run(request).await;
            response.extensions_mut().insert(actor);
            response
        }
        None => AdminError::Unauthorized.into_response(),
    }
}

async fn readyz(State(state): AppState) -> Response {
    state.health.readiness().await.into_response()
}

async fn metrics(State(state): AppState) -> Response {
    state
        .metrics
        .cached_triggers
        .set(state.cache.entry_count() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// The OpenAPI 3 description of this API (kept true by `tests/openapi.rs`).
async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

pub const OPENAPI: &str = include_str!("admin/openapi.json");

impl AdminState {
    /// Drops the touched triggers here, then tells the other instances.
    async fn invalidate<T>(&self, written: Written<T>) -> T {
        self.cache.invalidate(&written.stale_triggers).await;
        self.cluster.publish(&written.stale_triggers).await;
        written.value
    }
}

fn actor(request_headers: &axum::http::Extensions) -> Result<Actor, AdminError> {
    request_headers
        .get::<Actor>()
        .cloned()
        .ok_or(AdminError::Unauthorized)
}

fn path_id(text: &str) -> Result<Uuid, AdminError> {
    parse_canonical_uuid(text).ok_or(AdminError::NotFound)
}

fn json_status(status: StatusCode, value: impl serde::Serialize) -> Response {
    (status, axum::Json(value)).into_response()
}

// ---- triggers -------------------------------------------------------------------------

async fn put_trigger(
    State(state): AppState,
    Path(id): Path<String>,
    extensions: axum::http::Extensions,
    RawBody(body): RawBody,
) -> Result<Response, AdminError> {
    let id = TriggerId(path_id(&id)?);
    let actor = actor(&extensions)?;
    let mut fields = Fields::parse(
        &body,
        &["project_id", "enabled", "upstream_url", "auth_required"],
    )?;

    let project_id = fields.required_uuid("project_id");
    let enabled = fields.optional_bool("enabled");
    let auth_required = fields.optional_bool("auth_required");
    let upstream_url = fields.nullable_string("upstream_url");
    if let Some(Some(url)) = &upstream_url
        && let Err(message) = crate::model::parse_upstream_url(url)
    {
        fields.error("upstream_url", &message);
    }
    fields.finish()?;

    let change = TriggerChange {
        project_id: ProjectId(project_id.unwrap_or_default()),
        enabled,
        auth_required,
        upstream_url,
    };
    let written = state.store.put_trigger(id, change, &actor).await?;
    let (trigger, created) = state.invalidate(written).await;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_status(status, trigger))
}

async fn get_trigger(
    State(state): AppState,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let trigger = state.store.trigger(TriggerId(path_id(&id)?)).await?;
    Ok(json_status(StatusCode::OK, trigger))
}

async fn delete_trigger(
    State(state): AppState,
    Path(id): Path<String>,
    extensions: axum::http::Extensions,
) -> Result<Response, AdminError> {
    let id = TriggerId(path_id(&id)?);
    let written = state.store.delete_trigger(id, &actor(&extensions)?).await?;
    state.invalidate(written).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn trigger_auth_methods(
    State(state): AppState,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let methods = state
        .store
        .trigger_auth_methods(TriggerId(path_id(&id)?))
        .await?;
    Ok(json_status(StatusCode::OK, json!({ "items": methods })))
}

async fn replace_trigger_auth_methods(
    State(state): AppState,
    Path(id): Path<String>,
    extensions: axum::http::Extensions,
    RawBody(body): RawBody,
) -> Result<Response, AdminError> {
    let id = TriggerId(path_id(&id)?);
    let actor = actor(&extensions)?;
    let mut fields = Fields::parse(&body, &["auth_method_ids"])?;
    let ids = fields.required_uuid_list("auth_method_ids");
    fields.finish()?;

    let ids: Vec<AuthMethodId> = ids
        .unwrap_or_default()
        .into_iter()
        .map(AuthMethodId)
        .collect();
    let written = state
        .store
        .replace_trigger_auth_methods(id, &ids, &actor)
        .await?;
    let trigger = state.invalidate(written).await;
    Ok(json_status(StatusCode::OK, trigger))
}

// ---- auth methods ---------------------------------------------------------------------

const CREATE_FIELDS: [&str; 6] = [
    "name",
    "auth_type",
    "username",
    "password",
    "api_key",
    "trigger_id",
];

async fn create_auth_method(
    State(state): AppState,
    Path(pid): Path<String>,
    extensions: axum::http::Extensions,
    RawBody(body): RawBody,
) -> Result<Response, AdminError> {
    let project = ProjectId(path_id(&pid)?);
    let actor = actor(&extensions)?;
    let mut fields = Fields::parse(&body, &CREATE_FIELDS)?;

    let name = fields.name("name");
    let auth_type = fields.auth_type("auth_type");
    let trigger_id = fields.optional_uuid("trigger_id").map(TriggerId);
    let secret = match auth_type {
        Some(AuthType::Basic) => {
            let username = fields.username("username");
            let password = fields.password("password");
            let _ignored_for_basic = fields.optional_string("api_key");
            fields.finish()?;
            let (Some(username), Some(password)) = (username, password) else {
                return Err(AdminError::Internal);
            };
            let password_hash = state
                .passwords
                .hash(password.expose().as_bytes())
                .await
                .map_err(|_| AdminError::Internal)?;
            (
                NewSecret::Basic {
                    username,
                    password_hash,
                },
                None,
            )
        }
        Some(AuthType::Api) => {
            let supplied = fields.api_key("api_key");
            // Ignored for api methods, but still only strings are accepted.
            let _ = (
                fields.optional_string("username"),
                fields.optional_string("password"),
            );
            fields.finish()?;
            let key = supplied.unwrap_or_else(crate::secret::generate_api_key);
            let hint = key.expose()[key.expose().len() - 4..].to_string();
            (
                NewSecret::Api {
                    digest: sha256(key.expose().as_bytes()),
                    hint,
                },
                Some(key),
            )
        }
        None => {
            fields.finish()?;
            return Err(AdminError::Internal);
        }
    };

    let new = NewAuthMethod {
        name: name.unwrap_or_default(),
        secret: secret.0,
        trigger_id,
    };
    let written = state.store.create_auth_method(project, new, &actor).await?;
    let method = state.invalidate(written).await;
    let mut value = serde_json::to_value(&method).map_err(|_| AdminError::Internal)?;
    if let (Some(key), Some(object)) = (secret.1, value.as_object_mut()) {
        object.insert("api_key".into(), Value::String(key.expose().to_string()));
    }
    Ok(json_status(StatusCode::CREATED, value))
}

async fn project_auth_methods(
    State(state): AppState,
    Path(pid): Path<String>,
) -> Result<Response, AdminError> {
    let methods = state
        .store
        .project_auth_methods(ProjectId(path_id(&pid)?))
        .await?;
    Ok(json_status(StatusCode::OK, json!({ "items": methods })))
}

async fn get_auth_method(
    State(state): AppState,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let method = state.store.auth_method(AuthMethodId(path_id(&id)?)).await?;
    Ok(json_status(StatusCode::OK, method))
}

async fn rename_auth_method(
    State(state): AppState,
    Path(id): Path<String>,
    extensions: axum::http::Extensions,
    RawBody(body): RawBody,
) -> Result<Response, AdminError> {
    let id = AuthMethodId(path_id(&id)?);
    let actor = actor(&extensions)?;
    let mut fields = Fields::parse_immutable(&body, &["name"])?;
    let name = fields.name("name");
    fields.finish()?;

    let written = state
        .store
        .rename_auth_method(id, &name.unwrap_or_default(), &actor)
        .await?;
    let method = state.invalidate(written).await;
    Ok(json_status(StatusCode::OK, method))
}

async fn schedule_deletion(
    State(state): AppState,
    Path(id): Path<String>,
    extensions: axum::http::Extensions,
) -> Result<Response, AdminError> {
    let id = AuthMethodId(path_id(&id)?);
    let written = state
        .store
        .schedule_auth_method_deletion(id, state.deleted_after_days, &actor(&extensions)?)
        .await?;
    let method = state.invalidate(written).await;
    Ok(json_status(StatusCode::OK, method))
}

async fn delete_auth_method(
    State(state): AppState,
    Path(id): Path<String>,
    extensions: axum::http::Extensions,
) -> Result<Response, AdminError> {
    let id = AuthMethodId(path_id(&id)?);
    let written = state
        .store
        .delete_auth_method(id, &actor(&extensions)?)
        .await?;
    state.invalidate(written).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn verify_credential(
    State(state): AppState,
    Path(pid): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response, AdminError> {
    let project = ProjectId(path_id(&pid)?);
    let mut fields = Fields::parse(&body, &["api_key", "username", "password"])?;
    let api_key = fields.optional_secret("api_key");
    let username = fields.optional_string("username");
    let password = fields.optional_secret("password");
    if api_key.is_none() && (username.is_none() || password.is_none()) {
        fields.error("api_key", "give api_key, or username and password");
    }
    fields.finish()?;

    let method = match (api_key, username, password) {
        (Some(key), _, _) => {
            state
                .store
                .find_api_key_method(project, &sha256(key.as_bytes()))
                .await?
        }
        (None, Some(username), Some(password)) => {
            verify_basic(&state, project, &username, password.as_bytes()).await?
        }
        _ => None,
    };
    match method {
        Some(method) => Ok(json_status(StatusCode::OK, method)),
        None => Err(AdminError::NotFound),
    }
}

/// Verifies against every method with that username, or once against a dummy hash.
async fn verify_basic(
    state: &AdminState,
    project: ProjectId,
    username: &str,
    password: &[u8],
) -> Result<Option<crate::model::AuthMethod>, AdminError> {
    let candidates = state.store.basic_candidates(project, username).await?;
    let busy = |e: PasswordError| match e {
        PasswordError::Busy => AdminError::Unavailable,
        PasswordError::Failed => AdminError::Internal,
    };
    if candidates.is_empty() {
        state.passwords.verify_dummy(password).await.map_err(busy)?;
        return Ok(None);
    }
    for (id, hash) in candidates {
        if state
            .passwords
            .verify(password, Arc::from(hash))
            .await
            .map_err(busy)?
        {
            return Ok(Some(state.store.auth_method(id).await?));
        }
    }
    Ok(None)
}

// ---- purge and audit ------------------------------------------------------------------

async fn purge(
    State(state): AppState,
    extensions: axum::http::Extensions,
    RawBody(body): RawBody,
) -> Result<Response, AdminError> {
    let actor = actor(&extensions)?;
    if !body.is_empty() {
        // Purge takes no fields; `{}` is fine, anything else is named.
        Fields::parse(&body, &[])?.finish()?;
    }
    let written = state.store.purge_due(Some(&actor), true).await?;
    let counts = match written {
        Some(written) => state.invalidate(written).await,
        None => Default::default(),
    };
    crate::purge::record(&state.metrics, &counts, "admin");
    Ok(json_status(StatusCode::OK, counts))
}

async fn audit_events(
    State(state): AppState,
    Query(mut params): Query<HashMap<String, String>>,
) -> Result<Response, AdminError> {
    // An empty cursor or type filter (`before=`) is the same as none.
    params.retain(|name, value| !(value.is_empty() && (name == "before" || name == "item_type")));
    let mut fields = body::QueryFields::default();
    fields.only(&params, &["item_id", "item_type", "limit", "before"]);
    let query = AuditQuery {
        item_id: fields.uuid(&params, "item_id"),
        item_type: fields.one_of(&params, "item_type", &["webhook_auth_method", "trigger"]),
        limit: fields.integer(&params, "limit", 1, 500).unwrap_or(50),
        before: fields.integer(&params, "before", 1, i64::MAX),
    };
    fields.finish()?;

    let (events, next) = state.store.audit_events(&query).await?;
    Ok(json_status(
        StatusCode::OK,
        json!({ "items": events, "next": next.map(|seq| seq.to_string()) }),
    ))
}
