//! The public port's pipeline: route, snapshot, authenticate, prepare, forward,
//! respond — and one access-log line per webhook request.

pub mod forward;
pub mod headers;
pub mod route;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST};
use http::{HeaderValue, Method, Request, Response, Version};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;

use crate::auth::{Authenticator, Decision, DenyReason};
use crate::cache::{Lookup, TriggerCache};
use crate::config::{Disclosure, PublicSettings};
use crate::error::ProxyError;
use crate::health::Health;
use crate::listener::ConnInfo;
use crate::model::{AuthMethodId, TriggerId};
use crate::snapshot::TriggerSnapshot;
use crate::telemetry::{ACCESS_LOG, Metrics};
use forward::{ForwardError, Forwarder, LimitedBody};
use headers::Forwarding;
use route::Route;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every response body the public port sends.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// How long a client is asked to wait after a store outage answer.
const STORE_RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long after an argon2 saturation answer.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

pub struct Proxy {
    cache: Arc<TriggerCache>,
    auth: Arc<Authenticator>,
    forwarder: Forwarder,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    settings: PublicSettings,
}

/// What the access log and metrics record about one webhook request.
struct Outcome {
    trigger_id: Option<TriggerId>,
    method_id: Option<AuthMethodId>,
    reason: &'static str,
}

impl Proxy {
    pub fn new(
        cache: Arc<TriggerCache>,
        auth: Arc<Authenticator>,
        forwarder: Forwarder,
        health: Arc<Health>,
        metrics: Arc<Metrics>,
        settings: PublicSettings,
    ) -> Self {
        Self {
            cache,
            auth,
            forwarder,
            health,
            metrics,
            settings,
        }
    }

    /// Answers one request of the public port.
    pub async fn handle(&self, request: Request<Incoming>, conn: ConnInfo) -> Response<ProxyBody> {
        let route = route::route(request.uri().path());
        let (trigger_id, rest) = match route {
            Route::Healthz => {
                return crate::health::liveness().map(|b| b.map_err(|e| match e {}).boxed());
            }
            Route::Readyz => {
                return self
                    .health
                    .readiness()
                    .await
                    .map(|b| b.map_err(|e| match e {}).boxed());
            }
            Route::NotFound => return ProxyError::NotFound.into_response(),
            Route::BadPath | Route::UnknownWebhook => (None, String::new()),
            Route::Webhook { trigger_id, rest } => (Some(trigger_id), rest.to_string()),
        };

        let started = Instant::now();
        let request_id = headers::request_id(request.headers());
        let client =
            headers::client_address(conn.peer, request.headers(), &self.settings.trusted_proxies);
        let method = request.method().clone();
        let logged_path = redact_query(request.uri());

        let mut outcome = Outcome {
            trigger_id,
            method_id: None,
            reason: "forwarded",
        };
        let result = match (route, trigger_id) {
            (Route::BadPath, _) => Err(ProxyError::BadRequest),
            (_, Some(trigger_id)) => {
                self.webhook(
                    request,
                    conn,
                    trigger_id,
                    &rest,
                    client,
                    &request_id,
                    &mut outcome,
                )
                .await
            }
            _ => Err(ProxyError::WebhookNotFound),
        };
        let mut response = result.unwrap_or_else(|error| {
            if outcome.reason == "forwarded" {
                outcome.reason = error.outcome();
            }
            error.into_response()
        });
        response
            .headers_mut()
            .insert(headers::X_REQUEST_ID, request_id.clone());

        let status = response.status().as_u16();
        self.metrics.request(
            if status < 400 || outcome.reason == "forwarded" {
                "forwarded"
            } else {
                outcome.reason
            },
            status,
        );
        tracing::info!(
            target: ACCESS_LOG,
            outcome = outcome.reason,
            request.id = request_id.to_str().unwrap_or("-"),
            trigger.id = outcome.trigger_id.map(|t| t.to_string()).unwrap_or_default(),
            http.method = %method,
            http.path = %logged_path,
            http.status = status,
            auth.method_id = outcome.method_id.map(|m| m.to_string()).unwrap_or_default(),
            client.addr = %client,
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "webhook"
        );
        response
    }

    #[allow(clippy::too_many_arguments)]
    async fn webhook(
        &self,
        request: Request<Incoming>,
        conn: ConnInfo,
        trigger_id: TriggerId,
        rest: &str,
        client: IpAddr,
        request_id: &HeaderValue,
        outcome: &mut Outcome,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        // Step 1: the trigger.
        let snapshot = match self.cache.trigger(trigger_id).await {
            Lookup::Found(snapshot) => snapshot,
            Lookup::Unknown => return Err(ProxyError::WebhookNotFound),
            Lookup::Unavailable => {
                return Err(ProxyError::ServiceUnavailable {
                    retry_after: STORE_RETRY_AFTER,
                });
            }
        };
        if let Some(defect) = &snapshot.defect {
            tracing::error!(trigger.id = %trigger_id, defect = %defect, "trigger fails closed");
            outcome.reason = DenyReason::Defective.as_str();
            return Err(ProxyError::ServiceUnavailable {
                retry_after: STORE_RETRY_AFTER,
            });
        }

        // Step 2: authentication, from the head alone.
        let protected = !snapshot.is_open();
        if protected && request.method() != Method::OPTIONS {
            match self
                .auth
                .authenticate(&snapshot, request.headers(), client)
                .await
            {
                Decision::Allow(method) => outcome.method_id = Some(method),
                Decision::Deny(reason) => {
                    outcome.reason = reason.as_str();
                    return Err(self.denial(reason, &snapshot));
                }
            }
        }

        // Steps 3 and 4: disabled trigger, declared body size.
        if !snapshot.enabled {
            return Err(ProxyError::TriggerDisabled);
        }
        if declared_length(&request).is_some_and(|len| len > self.settings.max_body_bytes) {
            return Err(ProxyError::PayloadTooLarge);
        }

        // Steps 5 and 6: forward and stream back.
        let forwarding = Forwarding {
            peer: conn.peer,
            trusted: &self.settings.trusted_proxies,
            tls: conn.tls,
            upstream_authority: String::new(),
            trigger_id,
            project_id: snapshot.project_id,
            method_id: outcome.method_id,
            request_id,
        };
        let upstream = self.upstream_request(request, &snapshot, rest, protected, forwarding)?;
        let (upstream, exceeded) = upstream;
        let response = self
            .forwarder
            .send(upstream, &exceeded)
            .await
            .map_err(|e| match e {
                ForwardError::BadGateway => ProxyError::BadGateway,
                ForwardError::Timeout => ProxyError::GatewayTimeout,
                ForwardError::TooLarge => ProxyError::PayloadTooLarge,
            })?;
        Ok(downstream_response(response))
    }

    fn denial(&self, reason: DenyReason, snapshot: &TriggerSnapshot) -> ProxyError {
        let challenge_mode = self.settings.disclosure == Disclosure::Challenge;
        let challenge =
            (challenge_mode || snapshot.has_basic()).then(|| self.settings.realm.clone());
        match reason {
            DenyReason::NoMethods => ProxyError::Unauthorized { challenge: None },
            DenyReason::NoCredentials => ProxyError::Unauthorized { challenge },
            DenyReason::Mismatch | DenyReason::Ambiguous if challenge_mode => {
                ProxyError::Unauthorized { challenge }
            }
            DenyReason::Mismatch | DenyReason::Ambiguous => ProxyError::WebhookNotFound,
            DenyReason::Throttled => ProxyError::TooManyRequests {
                retry_after: self.auth.throttle().retry_after(),
            },
            DenyReason::Busy => ProxyError::ServiceUnavailable {
                retry_after: BUSY_RETRY_AFTER,
            },
            DenyReason::Defective => ProxyError::ServiceUnavailable {
                retry_after: STORE_RETRY_AFTER,
            },
        }
    }

    fn upstream_request(
        &self,
        request: Request<Incoming>,
        snapshot: &TriggerSnapshot,
        rest: &str,
        protected: bool,
        mut forwarding: Forwarding<'_>,
    ) -> Result<(Request<LimitedBody>, Arc<std::sync::atomic::AtomicBool>), ProxyError> {
        let (mut parts, body) = request.into_parts();
        let target = self
            .forwarder
            .target(
                snapshot.upstream.as_ref(),
                snapshot.trigger_id,
                rest,
                parts.uri.query(),
            )
            .ok_or(ProxyError::BadRequest)?;
        let authority = target
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        forwarding.upstream_authority = authority;

        let client_host = parts.headers.get(HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        if protected {
            headers::strip_credentials(&mut parts.headers);
        }
        headers::prepare_upstream_headers(&mut parts.headers, client_host, &forwarding);

        let (body, exceeded) = LimitedBody::new(body, self.settings.max_body_bytes);
        let mut upstream = Request::new(body);
        *upstream.method_mut() = parts.method;
        *upstream.uri_mut() = target;
        *upstream.version_mut() = Version::HTTP_11;
        *upstream.headers_mut() = parts.headers;
        Ok((upstream, exceeded))
    }
}

/// The upstream's response minus hop-by-hop headers, its body streamed.
fn downstream_response(response: Response<Incoming>) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, body.map_err(|e| Box::new(e) as BoxError).boxed())
}

fn declared_length<B>(request: &Request<B>) -> Option<u64> {
    request
        .headers()
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The path with every query value replaced, so secrets in queries never reach logs.
fn redact_query(uri: &http::Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.path().to_string();
    };
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) => format!("{key}=REDACTED"),
            None => "REDACTED".to_string(),
        })
        .collect();
    format!("{}?{}", uri.path(), redacted.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_redacted_in_logged_paths() {
        let uri: http::Uri = "/i/x?api_key=K&flag&b=2".parse().expect("uri");
        assert_eq!(
            redact_query(&uri),
            "/i/x?api_key=REDACTED&REDACTED&b=REDACTED"
        );
    }
}
