//! The accept loop both ports share: TCP, optional TLS, HTTP/1.1 and HTTP/2 (h2c by
//! prior knowledge, h2 by ALPN), per-connection limits, and graceful draining.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::proxy::BoxError;
use crate::tls::TlsReloader;

/// What a handler knows about the connection its request came on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
}

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub max_head_bytes: usize,
    /// Time to receive a request head; on HTTP/1.1 it also bounds idle keep-alive.
    pub head_timeout: Duration,
    /// Keep-alive ping interval on HTTP/2 connections.
    pub idle_timeout: Duration,
}

/// Serves `listener` until `stop_rx` fires, then waits up to `drain` for open
/// connections to finish their requests.
pub async fn serve<H, F, B>(
    name: &'static str,
    listener: TcpListener,
    tls: Option<Arc<TlsReloader>>,
    limits: ConnLimits,
    handler: H,
    mut stop_rx: watch::Receiver<bool>,
    drain: Duration,
) where
    H: Fn(Request<Incoming>, ConnInfo) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let builder = Arc::new(connection_builder(limits));
    let graceful = GracefulShutdown::new();

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(listener = name, error = %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop_rx.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let info = ConnInfo {
            peer,
            tls: tls.is_some(),
        };
        let handler = handler.clone();
        let service = service_fn(move |request| {
            let response = handler(request, info);
            async move { Ok::<_, Infallible>(response.await) }
        });
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let acceptor = tls.as_ref().map(|t| t.acceptor());

        tokio::spawn(async move {
            let served = match acceptor {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.head_timeout, acceptor.accept(stream));
                    let Ok(Ok(stream)) = handshake.await else {
                        tracing::debug!(listener = name, client.addr = %peer, "TLS handshake failed");
                        return;
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(error) = served {
                tracing::debug!(listener = name, client.addr = %peer, error = %error, "connection ended");
            }
        });
    }

    drop(listener);
    tracing::info!(listener = name, "stopped accepting; draining connections");
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            "drain deadline passed; closing remaining connections"
        );
    }
}

fn connection_builder(limits: ConnLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.head_timeout)
        .max_buf_size(limits.max_head_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_head_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(limits.idle_timeout)
        .keep_alive_timeout(Duration::from_secs(20))
        .max_pending_accept_reset_streams(Some(20))
        .max_concurrent_streams(256);
    builder
}
