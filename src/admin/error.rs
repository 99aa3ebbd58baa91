//! Admin API errors and their JSON shape:
//! `{"error": code, "message": text, "details": {field: [messages]}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::{FieldErrors, StoreError};

#[derive(Debug)]
pub enum AdminError {
    /// The body is not JSON.
    MalformedJson,
    /// The body is larger than the admin port reads.
    PayloadTooLarge,
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    Conflict(String),
    Invalid(FieldErrors),
    Unavailable,
    Internal,
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => AdminError::NotFound,
            StoreError::Conflict(message) => AdminError::Conflict(message),
            StoreError::Invalid(details) => AdminError::Invalid(details),
            StoreError::Unavailable(source) => {
                tracing::warn!(error = %source, "admin request: store unavailable");
                AdminError::Unavailable
            }
            StoreError::Internal(source) => {
                tracing::error!(error = %source, "admin request: database error");
                AdminError::Internal
            }
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            AdminError::MalformedJson => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the body is not valid JSON".to_string(),
            ),
            AdminError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body is larger than 2 MiB".to_string(),
            ),
            AdminError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid admin token is required (Authorization: Bearer ...)".to_string(),
            ),
            AdminError::NotFound => (StatusCode::NOT_FOUND, "not_found", "not found".to_string()),
            AdminError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed".to_string(),
            ),
            AdminError::Conflict(message) => (StatusCode::CONFLICT, "conflict", message.clone()),
            AdminError::Invalid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "the request has invalid fields".to_string(),
            ),
            AdminError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "the database cannot be reached; retry shortly".to_string(),
            ),
            AdminError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error".to_string(),
            ),
        };
        let body = match &self {
            AdminError::Invalid(details) => {
                json!({ "error": code, "message": message, "details": details })
            }
            _ => json!({ "error": code, "message": message }),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if matches!(self, AdminError::Unavailable) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}
