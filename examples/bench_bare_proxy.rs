//! The load benchmark's floor (`make bench`, scenario `bare`): a reverse proxy with
//! nothing but the HTTP stack hookgate is built on — hyper's HTTP/1.1 server, hyper-util's
//! pooled client, the multi-threaded tokio runtime — and no authentication, no header
//! rewriting, no metrics. What hookgate costs above this row is its own work; what this
//! row costs above nginx is the stack's.
//!
//! Usage: `bench_bare_proxy LISTEN UPSTREAM` (e.g. `127.0.0.1:18105
//! http://127.0.0.1:18100`). Listens on loopback only and forwards to the given
//! upstream only; the harness keeps both on 127.0.0.1.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type Body = BoxBody<Bytes, hyper::Error>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, upstream] = args.as_slice() else {
        bail!("usage: bench_bare_proxy LISTEN UPSTREAM");
    };
    let listen: SocketAddr = listen.parse().context("LISTEN")?;
    let upstream: Uri = upstream.parse().context("UPSTREAM")?;
    if !listen.ip().is_loopback() || upstream.host() != Some("127.0.0.1") {
        bail!("bench_bare_proxy listens on and forwards to 127.0.0.1 only");
    }

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).build(connector);
    let state = Arc::new((client, upstream));
    let listener = TcpListener::bind(listen).await.context("bind")?;
    println!("bare proxy on http://{listen}");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(forward(&state.0, &state.1, request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The request as it came, to the upstream; its answer as it came, to the client.
async fn forward(
    client: &Client<HttpConnector, Incoming>,
    upstream: &Uri,
    request: Request<Incoming>,
) -> Response<Body> {
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut target = upstream.clone().into_parts();
    target.path_and_query = Some(path);
    let Ok(uri) = Uri::from_parts(target) else {
        return status(StatusCode::BAD_REQUEST);
    };
    parts.uri = uri;
    match client.request(Request::from_parts(parts, body)).await {
        Ok(response) => response.map(BodyExt::boxed),
        Err(_) => status(StatusCode::BAD_GATEWAY),
    }
}

fn status(code: StatusCode) -> Response<Body> {
    let empty = http_body_util::Empty::new().map_err(|never| match never {});
    let mut response = Response::new(BoxBody::new(empty));
    *response.status_mut() = code;
    response
}
