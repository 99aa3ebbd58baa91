//! The public port's pipeline: route, snapshot, authenticate, prepare, forward,
//! respond — and one access-log line per webhook request.

pub mod forward;
pub mod headers;
pub mod route;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, Request, Response, Version};
use http_body::Body as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
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
use forward::{BodyState, ForwardError, Forwarder, LimitedBody};
use headers::{Forwarding, RequestIds};
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
    request_ids: RequestIds,
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
            request_ids: RequestIds::new(),
        }
    }

    /// Answers one request of the public port.
    pub async fn handle(&self, request: Request<Incoming>, conn: ConnInfo) -> Response<ProxyBody> {
        let route = route::route(request.uri().path());
        let screened = screen_head(&request, self.settings.max_head_bytes);
        let (trigger_id, rest) = match route {
            Route::BadPath | Route::UnknownWebhook => (None, String::new()),
            Route::Webhook { trigger_id, rest } => (Some(trigger_id), rest.to_string()),
            Route::Healthz | Route::Readyz | Route::NotFound => {
                return match screened {
                    Ok(()) => self.answer_locally(&route).await,
                    Err(error) => error.into_response(),
                };
            }
        };

        let started = Instant::now();
        let request_id = self.request_ids.for_request(request.headers());
        let client =
            headers::client_address(conn.peer, request.headers(), &self.settings.trusted_proxies);
        let method = request.method().clone();
        // Built only when the access log is on; otherwise it would be made for nothing.
        let access_log = tracing::enabled!(target: ACCESS_LOG, tracing::Level::INFO);
        let logged_path = access_log.then(|| redact_query(request.uri()));

        let mut outcome = Outcome {
            trigger_id,
            method_id: None,
            reason: "forwarded",
        };
        let result = match (screened, route, trigger_id) {
            (Err(error), _, _) => Err(error),
            // hookgate never tunnels: a CONNECT is refused before any lookup.
            (Ok(()), _, _) if method == Method::CONNECT => Err(ProxyError::BadRequest),
            (Ok(()), Route::BadPath, _) => Err(ProxyError::BadRequest),
            (Ok(()), _, Some(trigger_id)) => {
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
        if let Some(logged_path) = logged_path {
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
        }
        response
    }

    /// The routes that never leave the gateway: health checks and the 404.
    async fn answer_locally(&self, route: &Route<'_>) -> Response<ProxyBody> {
        match route {
            Route::Healthz => crate::health::liveness().map(|b| b.map_err(|e| match e {}).boxed()),
            Route::Readyz => self
                .health
                .readiness()
                .await
                .map(|b| b.map_err(|e| match e {}).boxed()),
            _ => ProxyError::NotFound.into_response(),
        }
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
        if protected && !is_preflight(&request) {
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
        if declared_length(request.headers()).is_some_and(|len| len > self.settings.max_body_bytes)
        {
            return Err(ProxyError::PayloadTooLarge);
        }

        // Steps 5 and 6: forward and stream back.
        let forwarding = Forwarding {
            peer: conn.peer,
            peer_value: &conn.peer_value,
            trusted: &self.settings.trusted_proxies,
            tls: conn.tls,
            client_host: None,
            upstream_host: self.forwarder.host(snapshot.upstream.as_ref()),
            protected,
            trigger_id,
            project_id: snapshot.project_id,
            method_id: outcome.method_id,
            request_id,
        };
        let close_delimited =
            request.version() < Version::HTTP_11 && request.method() != Method::HEAD;
        let upstream = self.upstream_request(request, &snapshot, rest, forwarding)?;
        let (upstream, body_state) = upstream;
        let response = self
            .forwarder
            .send(upstream, &body_state)
            .await
            .map_err(|e| match e {
                ForwardError::BadGateway => ProxyError::BadGateway,
                ForwardError::Timeout => ProxyError::GatewayTimeout,
                ForwardError::TooLarge => ProxyError::PayloadTooLarge,
                ForwardError::ClientBody => ProxyError::BadRequest,
            })?;
        let response = downstream_response(response);
        if close_delimited && !response.headers().contains_key(CONTENT_LENGTH) {
            return buffered_response(response, self.settings.max_body_bytes).await;
        }
        Ok(response)
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
        mut forwarding: Forwarding<'_>,
    ) -> Result<(Request<LimitedBody>, Arc<BodyState>), ProxyError> {
        let (parts, body) = request.into_parts();
        let target = self
            .forwarder
            .target(
                snapshot.upstream.as_ref(),
                snapshot.trigger_id,
                rest,
                parts.uri.query(),
            )
            .ok_or(ProxyError::BadRequest)?;

        // An absolute-form target or an HTTP/2 `:authority` wins over `host` (RFC 9112
        // §3.2.2, RFC 9113 §8.3.1).
        forwarding.client_host = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .or_else(|| parts.headers.get(HOST).cloned());
        // hyper sends an empty body without any length; a client that declared
        // `content-length: 0` keeps it, as some servers answer 411 to a POST without.
        let declared_empty = declared_length(&parts.headers) == Some(0)
            && !parts.headers.contains_key(TRANSFER_ENCODING);
        let mut headers = headers::upstream_headers(parts.headers, &forwarding);
        if declared_empty {
            headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        }

        let (body, body_state) = LimitedBody::new(body, self.settings.max_body_bytes);
        let mut upstream = Request::new(body);
        *upstream.method_mut() = parts.method;
        *upstream.uri_mut() = target;
        *upstream.version_mut() = Version::HTTP_11;
        *upstream.headers_mut() = headers;
        Ok((upstream, body_state))
    }
}

/// A CORS preflight, which skips authentication (SPEC §2.1): an `OPTIONS` request
/// without a body.
///
/// A browser's preflight never carries a body, so an `OPTIONS` with one is
/// authenticated like any other method; otherwise the skip would forward an
/// unauthenticated payload. Without a body means all of: no `content-length` above
/// zero, no `transfer-encoding`, and a body stream that has already ended (for HTTP/2,
/// the request stream ended with its headers).
fn is_preflight(request: &Request<Incoming>) -> bool {
    let headers = request.headers();
    let no_declared_body =
        !headers.contains_key(CONTENT_LENGTH) || declared_length(headers) == Some(0);
    request.method() == Method::OPTIONS
        && no_declared_body
        && !headers.contains_key(TRANSFER_ENCODING)
        && request.body().is_end_stream()
}

/// Refuses heads that hyper lets through but hookgate cannot pass on faithfully: larger
/// than `public.max_head_bytes` (hyper's own check stops at its 8 KiB read-buffer floor),
/// naming more than one `host`, or a transfer coding besides `chunked` (hyper removes
/// the chunking only, and the upstream would take the rest for identity bytes).
fn screen_head<B>(request: &Request<B>, max_head_bytes: usize) -> Result<(), ProxyError> {
    if head_size(request) > max_head_bytes {
        return Err(ProxyError::HeadTooLarge);
    }

    let headers = request.headers();
    let hosts = headers.get_all(HOST).iter().count();
    let mut codings = headers.get_all(TRANSFER_ENCODING).iter();
    let plain_chunked = match (codings.next(), codings.next()) {
        (None, _) => true,
        (Some(coding), None) => coding.as_bytes().eq_ignore_ascii_case(b"chunked"),
        (Some(_), Some(_)) => false,
    };
    if hosts > 1 || !plain_chunked {
        return Err(ProxyError::BadRequest);
    }
    Ok(())
}

/// The head's size as HTTP/1.1 writes it: request line, header lines, blank line.
fn head_size<B>(request: &Request<B>) -> usize {
    let target = request
        .uri()
        .path_and_query()
        .map_or(1, |p| p.as_str().len());
    let authority = request.uri().authority().map_or(0, |a| a.as_str().len());
    let request_line = request.method().as_str().len() + target + authority + 12;
    let header_lines: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    request_line + header_lines + 2
}

/// The upstream's response minus hop-by-hop headers, its body streamed.
fn downstream_response(response: Response<Incoming>) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, body.map_err(|e| Box::new(e) as BoxError).boxed())
}

/// The response read whole and sent with its length, for HTTP/1.0 clients: they learn
/// where a body of unknown length ends only from the close, so a cut-off upstream body
/// would look complete. A body that fails or outgrows `limit` is a 502 instead.
async fn buffered_response(
    response: Response<ProxyBody>,
    limit: u64,
) -> Result<Response<ProxyBody>, ProxyError> {
    let (parts, mut body) = response.into_parts();
    let mut whole = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ProxyError::BadGateway)?;
        if let Some(data) = frame.data_ref() {
            if (whole.len() + data.len()) as u64 > limit {
                return Err(ProxyError::BadGateway);
            }
            whole.extend_from_slice(data);
        }
    }
    let body = Full::new(whole.freeze()).map_err(|e| match e {}).boxed();
    Ok(Response::from_parts(parts, body))
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
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
