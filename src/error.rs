//! The request-path error and its one mapping to an HTTP response.
//!
//! Bodies are fixed JSON strings: no input, no internal error text, no credential
//! ever reaches a client through here. Logging happens once, in the access log.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::proxy::ProxyBody;

/// Everything the public port can answer besides the upstream's own response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyError {
    /// A path that is not a route.
    NotFound,
    /// Unknown trigger, or credentials that do not match (in `hide` mode).
    WebhookNotFound,
    /// A malformed webhook path, or a head hyper accepts but that is ambiguous.
    BadRequest,
    /// A request head over `public.max_head_bytes`.
    HeadTooLarge,
    /// No credentials, or no methods on a trigger that requires them.
    Unauthorized {
        challenge: Option<String>,
    },
    TriggerDisabled,
    PayloadTooLarge,
    TooManyRequests {
        retry_after: Duration,
    },
    BadGateway,
    GatewayTimeout,
    ServiceUnavailable {
        retry_after: Duration,
    },
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NotFound | ProxyError::WebhookNotFound => StatusCode::NOT_FOUND,
            ProxyError::BadRequest => StatusCode::BAD_REQUEST,
            ProxyError::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProxyError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ProxyError::TriggerDisabled => StatusCode::FORBIDDEN,
            ProxyError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::BadGateway => StatusCode::BAD_GATEWAY,
            ProxyError::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::ServiceUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The outcome code used in logs and metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            ProxyError::NotFound => "not_found",
            ProxyError::WebhookNotFound => "webhook_not_found",
            ProxyError::BadRequest => "bad_request",
            ProxyError::HeadTooLarge => "head_too_large",
            ProxyError::Unauthorized { .. } => "unauthorized",
            ProxyError::TriggerDisabled => "trigger_disabled",
            ProxyError::PayloadTooLarge => "payload_too_large",
            ProxyError::TooManyRequests { .. } => "too_many_requests",
            ProxyError::BadGateway => "bad_gateway",
            ProxyError::GatewayTimeout => "gateway_timeout",
            ProxyError::ServiceUnavailable { .. } => "service_unavailable",
        }
    }

    fn body(&self) -> String {
        match self {
            ProxyError::NotFound => r#"{"error":"Not found"}"#.into(),
            ProxyError::WebhookNotFound => r#"{"error":"Webhook not found"}"#.into(),
            ProxyError::BadRequest => r#"{"error":"Bad request"}"#.into(),
            ProxyError::HeadTooLarge => r#"{"error":"request_header_fields_too_large"}"#.into(),
            ProxyError::Unauthorized { .. } => r#"{"error":"Unauthorized"}"#.into(),
            ProxyError::TriggerDisabled => {
                r#"{"error":"trigger_disabled","message":"This webhook trigger is disabled."}"#
                    .into()
            }
            ProxyError::PayloadTooLarge => r#"{"error":"payload_too_large"}"#.into(),
            ProxyError::TooManyRequests { .. } => r#"{"error":"too_many_requests"}"#.into(),
            ProxyError::BadGateway => r#"{"error":"bad_gateway"}"#.into(),
            ProxyError::GatewayTimeout => r#"{"error":"gateway_timeout"}"#.into(),
            ProxyError::ServiceUnavailable { retry_after } => format!(
                r#"{{"error":"service_unavailable","retry_after":{}}}"#,
                retry_after.as_secs().max(1)
            ),
        }
    }

    /// The response a client sees.
    pub fn into_response(self) -> Response<ProxyBody> {
        let mut response = Response::new(
            Full::new(Bytes::from(self.body()))
                .map_err(|e| match e {})
                .boxed(),
        );
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match &self {
            ProxyError::Unauthorized {
                challenge: Some(realm),
            } => {
                if let Ok(value) = HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")) {
                    headers.insert(WWW_AUTHENTICATE, value);
                }
            }
            ProxyError::TooManyRequests { retry_after }
            | ProxyError::ServiceUnavailable { retry_after } => {
                headers.insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
            }
            _ => {}
        }
        response
    }
}
