//! The pooled upstream client: builds the upstream request, enforces the body limit
//! while streaming, applies timeouts, and classifies upstream failures.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::UpstreamSettings;
use crate::model::TriggerId;
use crate::telemetry::Metrics;

/// Why forwarding failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardError {
    /// Refused, reset, a bad response head, or an attempted upgrade.
    BadGateway,
    Timeout,
    /// The client's body passed the limit while streaming.
    TooLarge,
    /// The client's body failed while streaming: bad chunked framing, or cut off.
    ClientBody,
}

/// The client's body, counted as it streams; past `limit` it fails, which aborts the
/// upstream request instead of completing it.
///
/// A failure is flagged in the shared [`BodyState`], so that [`Forwarder::send`] can tell
/// the client's fault (413, 400) from the upstream's (502) once the request has failed.
pub struct LimitedBody {
    inner: Incoming,
    remaining: u64,
    state: Arc<BodyState>,
}

/// What went wrong with the client's body, if anything, as seen while streaming it.
#[derive(Debug, Default)]
pub struct BodyState {
    exceeded: AtomicBool,
    client_failed: AtomicBool,
}

impl BodyState {
    /// The body passed the limit.
    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Acquire)
    }

    /// Reading the client's body failed: malformed chunked framing, or a body cut off
    /// before its declared end.
    pub fn client_failed(&self) -> bool {
        self.client_failed.load(Ordering::Acquire)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body exceeds the limit")]
    TooLarge,
    #[error("client body: {0}")]
    Client(#[from] hyper::Error),
}

impl LimitedBody {
    pub fn new(inner: Incoming, limit: u64) -> (Self, Arc<BodyState>) {
        let state = Arc::new(BodyState::default());
        (
            Self {
                inner,
                remaining: limit,
                state: state.clone(),
            },
            state,
        )
    }
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => {
                self.state.client_failed.store(true, Ordering::Release);
                return Poll::Ready(Some(Err(e.into())));
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            let len = data.len() as u64;
            if len > self.remaining {
                self.state.exceeded.store(true, Ordering::Release);
                return Poll::Ready(Some(Err(BodyError::TooLarge)));
            }
            self.remaining -= len;
        }
        // Trailers are hop-by-hop here: the upstream request is plain HTTP/1.1.
        if frame.is_trailers() {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Sends requests to upstreams over pooled HTTP/1.1 connections.
pub struct Forwarder {
    client: Client<HttpConnector, LimitedBody>,
    default_upstream: Uri,
    /// `host` for the default upstream, made once.
    default_host: HeaderValue,
    response_timeout: Duration,
    metrics: Arc<Metrics>,
}

impl Forwarder {
    pub fn new(settings: &UpstreamSettings, metrics: Arc<Metrics>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(settings.connect_timeout));
        connector.set_nodelay(true);
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .http1_preserve_header_case(false)
            .build(connector);
        Self {
            client,
            default_host: authority_value(&settings.url),
            default_upstream: settings.url.clone(),
            response_timeout: settings.response_timeout,
            metrics,
        }
    }

    /// `host` for requests to `upstream` (or the default upstream): its authority.
    pub fn host(&self, upstream: Option<&Uri>) -> HeaderValue {
        match upstream {
            Some(upstream) => authority_value(upstream),
            None => self.default_host.clone(),
        }
    }

    /// The upstream URI: its base (and path prefix) plus `/i/{id}{rest}{?query}`.
    pub fn target(
        &self,
        upstream: Option<&Uri>,
        trigger: TriggerId,
        rest: &str,
        query: Option<&str>,
    ) -> Option<Uri> {
        let base = upstream.unwrap_or(&self.default_upstream);
        let prefix = base.path().trim_end_matches('/');
        let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let id = trigger.0.hyphenated().encode_lower(&mut id);
        let query_len = query.map_or(0, |q| q.len() + 1);
        let mut path = String::with_capacity(prefix.len() + 3 + id.len() + rest.len() + query_len);
        for part in [prefix, "/i/", id, rest] {
            path.push_str(part);
        }
        if let Some(query) = query {
            path.push('?');
            path.push_str(query);
        }
        let mut parts = base.clone().into_parts();
        parts.path_and_query = Some(PathAndQuery::try_from(path).ok()?);
        Uri::from_parts(parts).ok()
    }

    /// Sends the request and waits for the upstream's response head.
    ///
    /// `upstream.response_timeout_ms` bounds this whole call: streaming the client's body
    /// to the upstream as well as waiting for the response head after it. A client that
    /// sends its body slowly therefore uses up the same budget, and gets 504 when it runs
    /// out. Connecting is bounded separately by `upstream.connect_timeout_ms`, but its
    /// time also counts against this budget.
    ///
    /// When the request fails, the body's [`BodyState`] decides whose fault it was: a
    /// body over the limit is [`ForwardError::TooLarge`], a client body that failed is
    /// [`ForwardError::ClientBody`], and anything else is the upstream's.
    pub async fn send(
        &self,
        request: Request<LimitedBody>,
        body: &BodyState,
    ) -> Result<Response<Incoming>, ForwardError> {
        let started = Instant::now();
        let sent = tokio::time::timeout(self.response_timeout, self.client.request(request)).await;
        self.metrics
            .upstream_seconds
            .observe(started.elapsed().as_secs_f64());

        let response = match sent {
            Err(_) => return Err(ForwardError::Timeout),
            Ok(Err(_)) if body.exceeded() => return Err(ForwardError::TooLarge),
            Ok(Err(_)) if body.client_failed() => return Err(ForwardError::ClientBody),
            Ok(Err(error)) => {
                tracing::debug!(error = %error, "upstream request failed");
                return Err(ForwardError::BadGateway);
            }
            Ok(Ok(response)) => response,
        };
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            return Err(ForwardError::BadGateway);
        }
        Ok(response)
    }
}

/// An upstream's authority as a `host` value (empty if it has none, which configuration
/// and the admin API refuse).
fn authority_value(upstream: &Uri) -> HeaderValue {
    upstream
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        .unwrap_or_else(|| HeaderValue::from_static(""))
}
