//! The accept loop both ports share: TCP, optional TLS, HTTP/1.1 and HTTP/2 (h2c by
//! prior knowledge, h2 by ALPN), per-connection limits, and graceful draining.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Sleep;

use crate::proxy::BoxError;
use crate::tls::TlsReloader;

/// What a handler knows about the connection its request came on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The peer's address as a header value (`x-forwarded-for`), made once.
    pub peer_value: HeaderValue,
    pub tls: bool,
}

impl ConnInfo {
    pub fn new(peer: SocketAddr, tls: bool) -> Self {
        let text = peer.ip().to_canonical().to_string();
        let peer_value =
            HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""));
        Self {
            peer,
            peer_value,
            tls,
        }
    }
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
        let info = ConnInfo::new(peer, tls.is_some());
        let handler = handler.clone();
        let service = service_fn(move |request| {
            let response = handler(request, info.clone());
            async move { Ok::<_, Infallible>(response.await) }
        });
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let acceptor = tls.as_ref().map(|t| t.acceptor());

        tokio::spawn(async move {
            let served = match acceptor {
                None => {
                    let stream = Opening::new(stream, limits.head_timeout);
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.head_timeout, acceptor.accept(stream));
                    let Ok(Ok(stream)) = handshake.await else {
                        tracing::debug!(
                            listener = name,
                            client.addr = %peer,
                            "TLS handshake failed"
                        );
                        return;
                    };
                    let stream = Opening::new(stream, limits.head_timeout);
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(error) = served {
                tracing::debug!(
                    listener = name,
                    client.addr = %peer,
                    error = %error,
                    "connection ended"
                );
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
    // TODO(hookgate): an HTTP/2 connection idle after its first request lives as long as
    // it answers pings (hyper has no HTTP/2 idle timeout); close it after `idle_timeout`
    // without open streams once hyper offers that, or by counting streams here.
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

/// The first bytes of every HTTP/2 connection.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection until its first request head is in: reads still waiting when
/// `head_timeout` has passed fail, which closes the connection.
///
/// hyper-util's protocol detection reads until the bytes leave or complete the HTTP/2
/// preface, with no deadline of its own, and an HTTP/2 connection has no head timeout
/// at all: a client sending nothing, part of the preface, or frames that never finish
/// a header block would hold the connection forever. For HTTP/1.1 the deadline goes as
/// soon as the bytes leave the preface (hyper's `header_read_timeout` bounds every
/// head from there); for HTTP/2 when the first header block is complete.
struct Opening<T> {
    inner: T,
    deadline: Option<Pin<Box<Sleep>>>,
    progress: Progress,
}

/// How far a connection has got towards its first request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// This many bytes of the HTTP/2 preface so far.
    Preface(usize),
    /// HTTP/2 frames before the first complete header block.
    Frames(FrameWalk),
    /// HTTP/1.1, or HTTP/2 with a header block in.
    Done,
}

/// Walks HTTP/2 frames by their 9-byte headers, skipping payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct FrameWalk {
    header: [u8; 9],
    filled: usize,
    payload_left: usize,
    /// The current frame is HEADERS or CONTINUATION with END_HEADERS set.
    ends_head: bool,
}

impl FrameWalk {
    const HEADERS: u8 = 0x1;
    const CONTINUATION: u8 = 0x9;
    const END_HEADERS: u8 = 0x4;

    /// Takes bytes from `read`; returns how many it used (at least one, if any).
    fn advance(&mut self, read: &[u8]) -> usize {
        let used = if self.filled < self.header.len() {
            let n = read.len().min(self.header.len() - self.filled);
            self.header[self.filled..self.filled + n].copy_from_slice(&read[..n]);
            self.filled += n;
            if self.filled == self.header.len() {
                let [a, b, c, kind, flags, ..] = self.header;
                self.payload_left = u32::from_be_bytes([0, a, b, c]) as usize;
                self.ends_head = matches!(kind, Self::HEADERS | Self::CONTINUATION)
                    && flags & Self::END_HEADERS != 0;
            }
            n
        } else {
            let n = read.len().min(self.payload_left);
            self.payload_left -= n;
            n
        };

        // A finished frame that did not end a header block: on to the next one.
        if self.frame_done() && !self.ends_head {
            *self = Self::default();
        }
        used
    }

    fn frame_done(&self) -> bool {
        self.filled == self.header.len() && self.payload_left == 0
    }

    fn head_complete(&self) -> bool {
        self.frame_done() && self.ends_head
    }
}

impl<T> Opening<T> {
    fn new(inner: T, head_timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Some(Box::pin(tokio::time::sleep(head_timeout))),
            progress: Progress::Preface(0),
        }
    }

    /// Follows the bytes read; drops the deadline once the first head is in.
    fn observe(&mut self, mut read: &[u8]) {
        while !read.is_empty() {
            match &mut self.progress {
                Progress::Preface(matched) => {
                    let expected = &H2_PREFACE[*matched..];
                    let n = read.len().min(expected.len());
                    *matched += n;
                    self.progress = if read[..n] != expected[..n] {
                        Progress::Done
                    } else if *matched == H2_PREFACE.len() {
                        Progress::Frames(FrameWalk::default())
                    } else {
                        Progress::Preface(*matched)
                    };
                    read = &read[n..];
                }
                Progress::Frames(walk) => {
                    read = &read[walk.advance(read)..];
                    if walk.head_complete() {
                        self.progress = Progress::Done;
                    }
                }
                Progress::Done => break,
            }
        }
        if self.progress == Progress::Done {
            self.deadline = None;
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Opening<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.observe(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if expired {
                    let error = io::Error::new(io::ErrorKind::TimedOut, "no request head in time");
                    return Poll::Ready(Err(error));
                }
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Opening<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opening() -> Opening<()> {
        Opening::new((), Duration::from_secs(60))
    }

    /// A frame header: 24-bit length, type, flags, stream 1.
    fn frame(len: usize, kind: u8, flags: u8) -> Vec<u8> {
        let len = u32::try_from(len).expect("small").to_be_bytes();
        vec![len[1], len[2], len[3], kind, flags, 0, 0, 0, 1]
    }

    #[tokio::test]
    async fn the_deadline_goes_once_the_bytes_leave_the_preface() {
        let mut conn = opening();
        conn.observe(b"");
        conn.observe(b"P");
        assert!(conn.deadline.is_some());
        conn.observe(b"OST /i/");
        assert!(conn.deadline.is_none());
    }

    #[tokio::test]
    async fn an_http2_connection_keeps_the_deadline_until_a_header_block_is_complete() {
        let mut conn = opening();
        conn.observe(b"PRI * HT");
        conn.observe(b"TP/2.0\r\n\r\nSM\r\n\r\n");
        conn.observe(&frame(6, 0x4, 0)); // SETTINGS
        conn.observe(&[0, 3, 0, 0, 0]);
        conn.observe(&[100]);
        conn.observe(&frame(3, 0x1, 0x0)); // HEADERS without END_HEADERS
        conn.observe(b"abc");
        assert!(conn.deadline.is_some());

        let mut last = frame(2, 0x9, 0x4); // CONTINUATION with END_HEADERS
        last.push(b'd');
        conn.observe(&last);
        assert!(
            conn.deadline.is_some(),
            "the block's last byte is still missing"
        );
        conn.observe(b"e");
        assert!(conn.deadline.is_none());
    }

    #[tokio::test]
    async fn one_read_can_carry_the_preface_and_a_whole_request() {
        let mut conn = opening();
        let mut bytes = H2_PREFACE.to_vec();
        bytes.extend(frame(0, 0x4, 0));
        bytes.extend(frame(0, 0x1, 0x5));
        conn.observe(&bytes);
        assert!(conn.deadline.is_none());
    }
}
