//! A tiny upstream for the quick start: prints every request it receives (method, path,
//! headers, body) to stdout and answers `200 {"received":true}`, so you can see what
//! hookgate forwards — and that the webhook credentials are gone.
//!
//! Usage: `cargo run --example recording_upstream [ADDRESS]` (default 127.0.0.1:4000).

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, http};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let address: SocketAddr = match std::env::args().nth(1) {
        Some(text) => text
            .parse()
            .with_context(|| format!("not an address: {text:?}"))?,
        None => SocketAddr::from(([127, 0, 0, 1], 4000)),
    };
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    println!("recording upstream listening on http://{address}");
    loop {
        // A failed accept (e.g. out of file descriptors) is reported, not fatal.
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("accept: {error}");
                continue;
            }
        };
        tokio::spawn(async move {
            let connection =
                http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(record));
            if let Err(error) = connection.await {
                eprintln!("connection from {peer}: {error}");
            }
        });
    }
}

async fn record(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (head, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            eprintln!("reading the body of {} {}: {error}", head.method, head.uri);
            Bytes::new()
        }
    };
    if let Err(error) = print_request(&head, &body) {
        eprintln!("cannot print a request: {error}");
    }
    let mut response = Response::new(Full::new(Bytes::from_static(br#"{"received":true}"#)));
    let json = HeaderValue::from_static("application/json");
    response.headers_mut().insert(CONTENT_TYPE, json);
    Ok(response)
}

/// One block per request, written under the stdout lock so concurrent requests
/// do not interleave; bodies that are not UTF-8 are shown lossily.
fn print_request(head: &http::request::Parts, body: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "--- {} {} {:?}", head.method, head.uri, head.version)?;
    for (name, value) in &head.headers {
        writeln!(out, "{name}: {}", String::from_utf8_lossy(value.as_bytes()))?;
    }
    writeln!(out, "\n{}\n", String::from_utf8_lossy(body))?;
    out.flush()
}
