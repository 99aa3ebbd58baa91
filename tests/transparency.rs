//! What reaches the upstream, and how (bad-inputs C13–C25, SPEC §2.3–2.4): credentials
//! and hop-by-hop headers stay behind, framing is hookgate's own, bodies stream under
//! the limit, timeouts and truncation are reported honestly, and paths cannot wander.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// How long a raw exchange may take before the test gives up on it.
const BOUND: Duration = Duration::from_secs(10);

fn path_a() -> String {
    format!("/i/{TRIGGER_A}")
}

/// A raw HTTP/1.1 request head to trigger A with `headers` (each a full line).
fn head_a(headers: &[&str]) -> String {
    let mut head = format!("POST {} HTTP/1.1\r\nhost: hooks.example.com\r\n", path_a());
    for line in headers {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head
}

/// A chunked request to trigger A with `api_key`: `chunks` chunks of 100 bytes.
fn chunked_a(api_key: &str, chunks: usize) -> String {
    let key = format!("x-api-key: {api_key}");
    let mut request = head_a(&[&key, "transfer-encoding: chunked"]);
    for _ in 0..chunks {
        request.push_str(&format!("64\r\n{}\r\n", "z".repeat(100)));
    }
    request.push_str("0\r\n\r\n");
    request
}

/// C13 (traefik#2805, APISIX#6670): consumed credentials and proxy credentials stay behind
#[tokio::test]
async fn credentials_and_proxy_credentials_never_reach_the_upstream() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let reply = gw
        .send(
            "POST",
            &path_a(),
            &[
                ("authorization", HOOK_BASIC),
                ("x-api-key", &f.api_key),
                ("proxy-authorization", "Basic b3RoZXI6eHh4eHh4eHg="),
            ],
            "x",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let got = gw.upstream.last();
    for name in ["authorization", "x-api-key", "proxy-authorization"] {
        assert!(
            !got.headers.contains_key(name),
            "{name} reached the upstream"
        );
    }
}

/// C13 (traefik#2805, APISIX#6670): a Basic header the parser refuses (a tab after the
/// scheme) still carries a password, so it stays behind when a key lets the request in
#[tokio::test]
async fn a_refused_basic_header_beside_a_valid_key_never_reaches_the_upstream() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    for value in [
        "Basic\taG9vazpzM2NyZXQtcGFzcw==",
        "basic aG9vazpzM2NyZXQtcGFzcw==, Bearer x",
        "BASIC",
    ] {
        let reply = gw
            .send(
                "POST",
                &path_a(),
                &[("x-api-key", &f.api_key), ("authorization", value)],
                "x",
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{value}: {}", reply.text());
        let got = gw.upstream.last();
        assert!(
            !got.headers.contains_key("authorization"),
            "{value} was forwarded"
        );
    }
}

/// C14 (golang/go#16875, pingora#713): hop-by-hop headers, and every header
/// `connection` names, stay behind; hookgate's own forwarding headers do not
#[tokio::test]
async fn hop_by_hop_headers_and_the_headers_connection_names_stay_behind() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let reply = gw
        .send(
            "POST",
            &path_a(),
            &[
                ("x-api-key", &f.api_key),
                ("connection", "keep-alive, X-Debug-Bypass"),
                ("x-debug-bypass", "1"),
                ("keep-alive", "timeout=5"),
                ("te", "gzip"),
                ("trailer", "X-T"),
                ("proxy-connection", "keep-alive"),
            ],
            "x",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let got = gw.upstream.last();
    for name in [
        "connection",
        "x-debug-bypass",
        "keep-alive",
        "te",
        "trailer",
        "proxy-connection",
    ] {
        assert!(
            !got.headers.contains_key(name),
            "{name} reached the upstream"
        );
    }
    assert_eq!(got.headers["x-forwarded-for"], "127.0.0.1");
}

/// C15 (traefik#9341, nginx#1472): an h2c upgrade offer is not taken up; the upstream
/// gets a plain HTTP/1.1 POST without the upgrade headers
#[tokio::test]
async fn an_h2c_upgrade_offer_is_forwarded_as_a_plain_post_without_it() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let mut request = head_a(&[
        &format!("x-api-key: {}", f.api_key),
        "upgrade: h2c",
        "http2-settings: AAMAAABkAARAAAAAAAIAAAAA",
        "connection: Upgrade, HTTP2-Settings",
        "content-length: 5",
    ]);
    request.push_str("hello");
    let reply = raw_exchange(gw.public, request.as_bytes(), BOUND).await;
    assert_eq!(reply.status(), Some(200), "{reply:?}");

    let got = gw.upstream.last();
    assert_eq!(got.version, http::Version::HTTP_11);
    assert_eq!(got.body, "hello");
    for name in ["upgrade", "http2-settings", "connection"] {
        assert!(
            !got.headers.contains_key(name),
            "{name} reached the upstream"
        );
    }
}

/// C15 (traefik#9341, nginx#1472): an upstream that answers 101 gets the client a 502
#[tokio::test]
async fn an_upstream_switching_protocols_becomes_502() {
    let gw = TestGateway::start_with(UpstreamBehavior::SwitchProtocols, &[]).await;
    let f = gw.fixture().await;

    let reply = gw
        .send("POST", &path_a(), &[("x-api-key", &f.api_key)], "x")
        .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert_eq!(reply.json(), json!({"error": "bad_gateway"}));
}

/// C16 (openlitespeed#395, h2o#3396): two different content-lengths are 400 and close
#[tokio::test]
async fn conflicting_content_lengths_get_400_and_nothing_is_forwarded() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let mut request = head_a(&[
        &format!("x-api-key: {}", f.api_key),
        "content-length: 0",
        "content-length: 32",
    ]);
    request.push_str(&"y".repeat(32));
    let reply = raw_exchange_until_closed(gw.public, request.as_bytes(), BOUND).await;
    assert_eq!(reply.status(), Some(400), "{reply:?}");
    assert!(
        reply.closed,
        "the connection stays open after a framing error"
    );
    assert!(gw.upstream.records().is_empty());
}

/// C16 (openlitespeed#395, h2o#3396): a content-length beside chunked framing is never
/// passed on next to the chunked body
#[tokio::test]
async fn a_content_length_beside_chunked_framing_is_not_copied_upstream() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let mut request = head_a(&[
        &format!("x-api-key: {}", f.api_key),
        "content-length: 3",
        "transfer-encoding: chunked",
    ]);
    request.push_str("5\r\nhello\r\n0\r\n\r\n");
    let reply = raw_exchange(gw.public, request.as_bytes(), BOUND).await;

    // Either refused outright, or forwarded with framing that matches the bytes sent.
    match reply.status() {
        Some(400) => assert!(gw.upstream.records().is_empty()),
        Some(200) => {
            let got = gw.upstream.last();
            assert_eq!(got.body, "hello");
            let length = got.headers.get("content-length");
            assert!(length.is_none_or(|v| v == "5"), "{:?}", got.headers);
        }
        other => panic!("unexpected answer {other:?}: {reply:?}"),
    }
}

/// An empty body declared with `content-length: 0` keeps its length upstream (hyper
/// would send a POST with no length at all, which some servers answer with 411), and a
/// body's length is the bytes actually sent.
#[tokio::test]
async fn declared_lengths_reach_the_upstream_as_sent() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    for body in ["", "hello"] {
        let length = body.len().to_string();
        let key = format!("x-api-key: {}", f.api_key);
        let mut request = head_a(&[&key, &format!("content-length: {length}")]);
        request.push_str(body);
        let reply = raw_exchange(gw.public, request.as_bytes(), BOUND).await;
        assert_eq!(reply.status(), Some(200), "{reply:?}");

        let got = gw.upstream.last();
        assert_eq!(got.body, body);
        let sent_length = got.headers.get("content-length").map(|v| v.as_bytes());
        assert_eq!(sent_length, Some(length.as_bytes()), "{:?}", got.headers);
        assert!(!got.headers.contains_key("transfer-encoding"));
    }
}

/// C16 (openlitespeed#395, h2o#3396): a transfer coding hookgate would silently drop
/// (`gzip, chunked`) is refused rather than passed on as identity bytes
#[tokio::test]
async fn a_transfer_coding_other_than_chunked_is_refused() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    for coding in ["gzip, chunked", "identity, chunked"] {
        let mut request = head_a(&[
            &format!("x-api-key: {}", f.api_key),
            &format!("transfer-encoding: {coding}"),
        ]);
        request.push_str("5\r\nhello\r\n0\r\n\r\n");
        let reply = raw_exchange(gw.public, request.as_bytes(), BOUND).await;
        assert!(
            matches!(reply.status(), Some(400) | Some(501)),
            "{coding}: {reply:?}"
        );
    }
    assert!(gw.upstream.records().is_empty());
}

/// C17 (axum#853): a chunked body that passes the limit gets 413, and the upstream
/// request is aborted, never completed
#[tokio::test]
async fn a_chunked_body_past_the_limit_gets_413_and_the_upstream_request_is_aborted() {
    let gw = TestGateway::start_with(
        UpstreamBehavior::Echo,
        &[("HOOKGATE_PUBLIC_MAX_BODY_BYTES", "1000")],
    )
    .await;
    let f = gw.fixture().await;

    let request = chunked_a(&f.api_key, 11);
    let reply = raw_exchange(gw.public, request.as_bytes(), BOUND).await;
    assert_eq!(reply.status(), Some(413), "{reply:?}");
    assert_eq!(reply.body(), br#"{"error":"payload_too_large"}"#);

    // The upstream may have seen the start of the body, never all of it.
    for got in gw.upstream.records() {
        assert!(
            got.body.len() <= 1000,
            "{} bytes reached the upstream",
            got.body.len()
        );
    }
}

/// C17 (axum#853): a chunked body within the limit streams through, re-framed
#[tokio::test]
async fn a_chunked_body_within_the_limit_is_forwarded_whole() {
    let gw = TestGateway::start_with(
        UpstreamBehavior::Echo,
        &[("HOOKGATE_PUBLIC_MAX_BODY_BYTES", "1000")],
    )
    .await;
    let f = gw.fixture().await;

    let request = chunked_a(&f.api_key, 10);
    let reply = raw_exchange(gw.public, request.as_bytes(), BOUND).await;
    assert_eq!(reply.status(), Some(200), "{reply:?}");
    assert_eq!(gw.upstream.last().body.len(), 1000);
}

/// SPEC §2.4: a declared body over the limit gets 413 with no upstream call
#[tokio::test]
async fn a_declared_body_over_the_limit_gets_413_without_an_upstream_call() {
    let gw = TestGateway::start_with(
        UpstreamBehavior::Echo,
        &[("HOOKGATE_PUBLIC_MAX_BODY_BYTES", "1000")],
    )
    .await;
    let f = gw.fixture().await;

    let mut request = head_a(&[&format!("x-api-key: {}", f.api_key), "content-length: 1001"]);
    request.push_str(&"z".repeat(1001));
    let reply = raw_exchange(gw.public, request.as_bytes(), BOUND).await;
    assert_eq!(reply.status(), Some(413), "{reply:?}");
    assert!(gw.upstream.records().is_empty());
}

/// C18 (tracecat#3413, kestra#4638): a request without credentials is refused from its
/// head while its huge declared body is still arriving
#[tokio::test]
async fn a_request_without_credentials_is_refused_from_its_head_while_the_body_trickles() {
    let gw = TestGateway::start().await;
    gw.fixture().await;

    let mut stream = TcpStream::connect(gw.public).await.unwrap();
    let head = head_a(&["content-length: 104857600"]);
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
        .write_all(b"first bytes of a long body")
        .await
        .unwrap();

    // Nothing more is sent: an answer can only come from the head.
    let reply = read_reply(&mut stream, BOUND).await;
    assert_eq!(reply.status(), Some(401), "{reply:?}");
    assert!(gw.upstream.records().is_empty());
}

/// C18 (tracecat#3413, kestra#4638): a client waiting for `100 Continue` without
/// credentials gets its 401 first; nothing acknowledges the body
#[tokio::test]
async fn a_request_expecting_100_continue_without_credentials_gets_401_not_continue() {
    let gw = TestGateway::start().await;
    gw.fixture().await;

    let head = head_a(&["content-length: 104857600", "expect: 100-continue"]);
    let reply = raw_exchange(gw.public, head.as_bytes(), BOUND).await;
    assert_eq!(reply.status(), Some(401), "{reply:?}");
    assert!(gw.upstream.records().is_empty());
}

/// C19 (caddy#4823, pingora#980): a silent upstream gets 504 after the timeout; a closed
/// upstream port gets 502
#[tokio::test]
async fn a_silent_upstream_gets_504_and_a_closed_upstream_port_502() {
    let gw = TestGateway::start_with(
        UpstreamBehavior::Hang,
        &[("HOOKGATE_UPSTREAM_RESPONSE_TIMEOUT_MS", "500")],
    )
    .await;
    let f = gw.fixture().await;

    let reply = gw
        .send("POST", &path_a(), &[("x-api-key", &f.api_key)], "x")
        .await;
    assert_eq!(
        reply.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        reply.text()
    );
    assert_eq!(reply.json(), json!({"error": "gateway_timeout"}));

    let closed = format!("http://127.0.0.1:{}", free_port());
    let (status, body) = gw
        .admin(
            "PUT",
            &format!("/v1/triggers/{TRIGGER_A}"),
            Some(json!({"project_id": f.project, "upstream_url": closed})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let reply = gw
        .send("POST", &path_a(), &[("x-api-key", &f.api_key)], "x")
        .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    assert_eq!(reply.json(), json!({"error": "bad_gateway"}));
}

/// C20 (caddy#7998, ollama#18469): an upstream body cut off mid-way reaches the client
/// as an incomplete response, never a complete one
#[tokio::test]
async fn a_truncated_upstream_body_is_never_presented_as_complete() {
    let gw = TestGateway::start_with(UpstreamBehavior::Truncate, &[]).await;
    let f = gw.fixture().await;

    let request = head_a(&[&format!("x-api-key: {}", f.api_key), "content-length: 0"]);
    let reply = raw_exchange(gw.public, request.as_bytes(), BOUND).await;
    assert!(reply.closed, "{reply:?}");
    if reply.status() == Some(200) {
        // The promised length stays, so the client can tell the body is short.
        assert_eq!(reply.header("content-length").as_deref(), Some("100"));
        assert!(reply.body().len() < 100, "{reply:?}");
    }

    // Through a client library: the body is an error, not a short success.
    let client = TestClient::connect(gw.public).await;
    let outcome = client.post(&path_a(), &[("x-api-key", &f.api_key)]).await;
    assert!(
        outcome.is_err(),
        "a truncated body read as complete: {outcome:?}"
    );
}

/// C20 (caddy#7998, ollama#18469): a chunked upstream body cut off mid-way never gets
/// its closing chunk, and an HTTP/2 client sees the stream fail
#[tokio::test]
async fn a_truncated_chunked_upstream_body_is_never_closed_as_complete() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let upstream = chunked_upstream(false).await;
    let (status, body) = gw
        .admin(
            "PUT",
            &format!("/v1/triggers/{TRIGGER_A}"),
            Some(json!({"project_id": f.project, "upstream_url": upstream})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let request = head_a(&[&format!("x-api-key: {}", f.api_key), "content-length: 0"]);
    let reply = raw_exchange_until_closed(gw.public, request.as_bytes(), BOUND).await;
    assert!(reply.closed, "{reply:?}");
    assert!(
        !reply.body().ends_with(b"0\r\n\r\n"),
        "closed as complete: {reply:?}"
    );

    // HTTP/1.0 has no chunks: a body delimited by the close would look complete.
    let request = head_a(&[&format!("x-api-key: {}", f.api_key), "content-length: 0"])
        .replacen("HTTP/1.1", "HTTP/1.0", 1);
    let reply = raw_exchange_until_closed(gw.public, request.as_bytes(), BOUND).await;
    assert!(reply.closed, "{reply:?}");
    let declared = reply
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    let honest = reply.status() == Some(502) || declared.is_some_and(|n| n > reply.body().len());
    assert!(
        honest,
        "an HTTP/1.0 client got a cut body as complete: {reply:?}"
    );

    let stream = TcpStream::connect(gw.public).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = http::Request::post(format!("http://{}{}", gw.public, path_a()))
        .header("x-api-key", &f.api_key)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let outcome = match sender.send_request(request).await {
        Ok(response) => response.into_body().collect().await.map(|b| b.to_bytes()),
        Err(error) => panic!("no response head at all: {error}"),
    };
    assert!(
        outcome.is_err(),
        "an HTTP/2 client read a cut body as whole: {outcome:?}"
    );
}

/// An upstream that answers a chunked `200` with one chunk, `hello`, and then closes,
/// after the closing chunk when `complete`; its URL.
async fn chunked_upstream(complete: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let mut answer =
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n".to_string();
            if complete {
                answer.push_str("0\r\n\r\n");
            }
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    url
}

/// C20 (caddy#7998, ollama#18469): an HTTP/1.0 client gets a whole chunked upstream body
/// with its length
#[tokio::test]
async fn an_http10_client_gets_a_whole_chunked_upstream_body_with_its_length() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let upstream = chunked_upstream(true).await;
    let (status, body) = gw
        .admin(
            "PUT",
            &format!("/v1/triggers/{TRIGGER_A}"),
            Some(json!({"project_id": f.project, "upstream_url": upstream})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let request = head_a(&[&format!("x-api-key: {}", f.api_key), "content-length: 0"])
        .replacen("HTTP/1.1", "HTTP/1.0", 1);
    let reply = raw_exchange(gw.public, request.as_bytes(), BOUND).await;
    assert_eq!(reply.status(), Some(200), "{reply:?}");
    assert_eq!(reply.header("content-length").as_deref(), Some("5"));
    assert_eq!(reply.body(), b"hello");
}

/// C21 (hyper-reverse-proxy#40, shenyu#4381): the upstream gets its own authority as
/// `host` and the client's as `x-forwarded-host`
#[tokio::test]
async fn the_upstream_gets_its_own_host_and_the_client_host_as_forwarded_host() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let reply = gw
        .send(
            "POST",
            &path_a(),
            &[("host", "hooks.example.com"), ("x-api-key", &f.api_key)],
            "x",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let got = gw.upstream.last();
    assert_eq!(got.headers["host"], gw.upstream.addr.to_string().as_str());
    assert_eq!(got.headers["x-forwarded-host"], "hooks.example.com");
    assert_eq!(got.headers.get_all("host").iter().count(), 1);
}

/// C21 (hyper-reverse-proxy#40, shenyu#4381): two `host` fields make the client's
/// authority ambiguous: 400, and nothing is forwarded
#[tokio::test]
async fn two_host_fields_get_400_and_nothing_is_forwarded() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let request = format!(
        "POST {} HTTP/1.1\r\nhost: hooks.example.com\r\nhost: evil.example\r\n\
         x-api-key: {}\r\ncontent-length: 1\r\n\r\nx",
        path_a(),
        f.api_key
    );
    let reply = raw_exchange(gw.public, request.as_bytes(), BOUND).await;
    assert_eq!(reply.status(), Some(400), "{reply:?}");
    assert_eq!(reply.body(), br#"{"error":"Bad request"}"#);
    assert!(gw.upstream.records().is_empty());
}

/// C22 (cssivision/reverseproxy#6, alps#18): client `x-forwarded-for` fields are
/// replaced by the peer address, which is also what the throttle counts
#[tokio::test]
async fn client_forwarded_for_fields_are_replaced_by_the_peer_address() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let reply = gw
        .send(
            "POST",
            &path_a(),
            &[
                ("x-api-key", &f.api_key),
                ("x-forwarded-for", "10.0.0.1"),
                ("x-forwarded-for", "10.9.9.9"),
            ],
            "x",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let got = gw.upstream.last();
    let values: Vec<_> = got.headers.get_all("x-forwarded-for").iter().collect();
    assert_eq!(values, ["127.0.0.1"]);

    // Rotating the header does not rotate the throttled address.
    for i in 0..10 {
        let spoofed = format!("10.0.0.{i}");
        let reply = gw
            .send(
                "POST",
                &path_a(),
                &[("x-api-key", "wrong"), ("x-forwarded-for", &spoofed)],
                "x",
            )
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "failure {i}");
    }
    let reply = gw
        .send(
            "POST",
            &path_a(),
            &[("x-api-key", "wrong"), ("x-forwarded-for", "10.0.0.99")],
            "x",
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.text()
    );
}

/// C23 (pitchfork#515, hyper#2354): HTTP/2 by prior knowledge is served, and forwarded
/// as HTTP/1.1 without `te`
#[tokio::test]
async fn h2c_prior_knowledge_is_forwarded_as_http11_without_te() {
    let gw = TestGateway::start().await;
    gw.fixture().await;

    let stream = TcpStream::connect(gw.public).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2c handshake");
    tokio::spawn(conn);
    let request = http::Request::post(format!("http://{}{}", gw.public, path_a()))
        .header("authorization", basic("hook", "s3cret-pass"))
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(b"x")))
        .unwrap();
    let response = sender.send_request(request).await.expect("h2 response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, r#"{"ok":true}"#);

    let got = gw.upstream.last();
    assert_eq!(got.version, http::Version::HTTP_11);
    assert_eq!(got.body, "x");
    assert!(!got.headers.contains_key("te"));
    assert!(!got.headers.contains_key("authorization"));
}

/// C24 (envoy#6435, istio.io#9961): dot segments, encoded separators and doubled
/// slashes never reach another trigger, or any upstream
#[tokio::test]
async fn traversal_paths_never_reach_another_trigger() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    for path in [
        format!("/i/{TRIGGER_A}/../{TRIGGER_B}"),
        format!("/i/{TRIGGER_A}/..%2F{TRIGGER_B}"),
        format!("/i/{TRIGGER_A}/%2e%2e/{TRIGGER_B}"),
        format!("/i/{TRIGGER_A}/%2E%2E%2f{TRIGGER_B}"),
        format!("/i/{TRIGGER_A}/..%5C{TRIGGER_B}"),
        format!("/i/{TRIGGER_A}/..;/{TRIGGER_B}"),
        format!("/i/{TRIGGER_A}/..\\{TRIGGER_B}"),
        format!("/i/{TRIGGER_A}\\..\\{TRIGGER_B}"),
        format!("//i/{TRIGGER_B}"),
        format!("/i//{TRIGGER_B}"),
    ] {
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: {HOOK_BASIC}\r\n\
             x-api-key: {}\r\ncontent-length: 1\r\nconnection: close\r\n\r\nx",
            f.api_key
        );
        let reply = raw_exchange(gw.public, request.as_bytes(), BOUND).await;
        let status = reply.status();
        assert!(matches!(status, Some(400) | Some(404)), "{path}: {reply:?}");
    }
    assert!(gw.upstream.records().is_empty());
}

/// C25 (hookgate): client-sent `x-hookgate-*` headers never reach the upstream
#[tokio::test]
async fn forged_hookgate_headers_never_reach_the_upstream() {
    let gw = TestGateway::start().await;
    let project = uuid::Uuid::new_v4().to_string();
    gw.put_trigger(TRIGGER_A, &project).await;

    let reply = gw
        .send(
            "POST",
            &path_a(),
            &[
                ("x-hookgate-auth-method-id", "forged"),
                ("x-hookgate-trigger-id", "forged"),
                ("X-Hookgate-Project-Id", "forged"),
                ("x-hookgate-anything", "forged"),
            ],
            "open",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let got = gw.upstream.last();
    assert!(!got.headers.contains_key("x-hookgate-auth-method-id"));
    assert!(!got.headers.contains_key("x-hookgate-anything"));
    assert_eq!(got.headers["x-hookgate-trigger-id"], TRIGGER_A);
    assert_eq!(got.headers["x-hookgate-project-id"], project.as_str());
    let forged = got.headers.values().any(|v| v == "forged");
    assert!(!forged, "{:?}", got.headers);
}

/// C25 (hookgate): underscore spellings of the headers hookgate sets, which CGI-style
/// upstreams read as the real ones, never reach the upstream
#[tokio::test]
async fn underscore_spellings_of_hookgate_headers_never_reach_the_upstream() {
    let gw = TestGateway::start().await;
    let project = uuid::Uuid::new_v4().to_string();
    gw.put_trigger(TRIGGER_A, &project).await;

    let reply = gw
        .send(
            "POST",
            &path_a(),
            &[
                ("x_hookgate_auth_method_id", "forged"),
                ("X_Hookgate_Trigger_Id", "forged"),
                ("x-hookgate_project-id", "forged"),
                ("x_forwarded_for", "forged"),
                ("x_forwarded_host", "forged"),
                ("x_forwarded_proto", "forged"),
                ("x_request_id", "forged"),
                ("x_kept_header", "kept"),
            ],
            "open",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let got = gw.upstream.last();
    let forged = got.headers.values().any(|v| v == "forged");
    assert!(!forged, "{:?}", got.headers);
    assert_eq!(got.headers["x_kept_header"], "kept");
}

/// C14 (golang/go#16875, pingora#713): a `proxy` header, which CGI-style upstreams turn
/// into `HTTP_PROXY` (httpoxy), stays behind like a hop-by-hop header
#[tokio::test]
async fn a_proxy_header_never_reaches_the_upstream() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let reply = gw
        .send(
            "POST",
            &path_a(),
            &[("x-api-key", &f.api_key), ("proxy", "http://127.0.0.1:9")],
            "x",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(!gw.upstream.last().headers.contains_key("proxy"));
}

/// C13 (traefik#2805, APISIX#6670): an underscore spelling of `x-api-key` is stripped
/// on a protected trigger like the real one
#[tokio::test]
async fn an_underscore_spelling_of_the_key_header_never_reaches_the_upstream() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let reply = gw
        .send(
            "POST",
            &path_a(),
            &[("authorization", HOOK_BASIC), ("x_api_key", &f.b_api_key)],
            "x",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let got = gw.upstream.last();
    assert!(!got.headers.contains_key("x_api_key"), "{:?}", got.headers);
}

/// SPEC §2.4: a head over a configured `public.max_head_bytes` gets 431, however small
/// the limit is
#[tokio::test]
async fn a_head_over_a_small_configured_limit_gets_431() {
    let gw = TestGateway::start_with(
        UpstreamBehavior::Echo,
        &[("HOOKGATE_PUBLIC_MAX_HEAD_BYTES", "2048")],
    )
    .await;
    let f = gw.fixture().await;
    let key = format!("x-api-key: {}", f.api_key);

    let padding = format!("x-padding: {}", "p".repeat(1000));
    let request = head_a(&[&key, &padding, "content-length: 0"]);
    let reply = raw_exchange(gw.public, request.as_bytes(), BOUND).await;
    assert_eq!(
        reply.status(),
        Some(200),
        "a head within the limit: {reply:?}"
    );

    let padding = format!("x-padding: {}", "p".repeat(4000));
    let request = head_a(&[&key, &padding, "content-length: 0"]);
    let reply = raw_exchange(gw.public, request.as_bytes(), BOUND).await;
    assert_eq!(reply.status(), Some(431), "{reply:?}");
    assert_eq!(gw.upstream.records().len(), 1);
}

/// SPEC §2.4: a client that starts a request and stalls is disconnected after
/// `public.head_timeout_ms`, whatever it started with
#[tokio::test]
async fn a_client_that_stalls_before_its_head_is_complete_is_disconnected() {
    let gw = TestGateway::start_with(
        UpstreamBehavior::Echo,
        &[("HOOKGATE_PUBLIC_HEAD_TIMEOUT_MS", "300")],
    )
    .await;

    let half_head = format!("POST {} HTTP/1.1\r\nhost: x\r\nx-api-", path_a());
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    let settings = [0, 0, 0, 4, 0, 0, 0, 0, 0];
    let only_settings = [preface.clone(), settings.to_vec()].concat();
    // HEADERS on stream 1 without END_HEADERS: a header block that never ends.
    let open_block = [only_settings.clone(), vec![0, 0, 1, 1, 0, 0, 0, 0, 1, 0x82]].concat();
    for (start, what) in [
        (half_head.as_bytes(), "half an HTTP/1.1 head"),
        (b"".as_slice(), "nothing at all"),
        (b"PRI * HTTP/2.0\r\n".as_slice(), "half the HTTP/2 preface"),
        (&only_settings, "an HTTP/2 connection without a request"),
        (&open_block, "an HTTP/2 header block that never ends"),
    ] {
        let reply = raw_exchange_until_closed(gw.public, start, BOUND).await;
        assert!(reply.closed, "{what}: the connection is still open");
        assert!(
            matches!(reply.status(), None | Some(408)),
            "{what}: {reply:?}"
        );
    }
}

/// A one-request HTTP/1.1 client over hyper, for reading bodies the way a library does.
struct TestClient {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    authority: String,
}

impl TestClient {
    async fn connect(addr: std::net::SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        Self {
            sender,
            authority: addr.to_string(),
        }
    }

    /// Posts `x`; the whole body, or the error that cut it off.
    async fn post(mut self, path: &str, headers: &[(&str, &str)]) -> Result<Bytes, String> {
        let mut request = http::Request::post(path).header("host", &self.authority);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from_static(b"x"))).unwrap();
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let body = response.into_body().collect().await;
        body.map(|b| b.to_bytes()).map_err(|e| e.to_string())
    }
}

/// SPEC §2.1: only a bodiless OPTIONS is a CORS preflight; an OPTIONS carrying a body
/// (declared, chunked, or an HTTP/2 stream that goes on after its headers) is
/// authenticated like any other method, and its body reaches no upstream
#[tokio::test]
async fn an_options_request_with_a_body_is_authenticated_like_any_other_method() {
    let gw = TestGateway::start().await;
    gw.fixture().await;

    let preflight = gw.send("OPTIONS", &path_a(), &[], "").await;
    assert_eq!(preflight.status, StatusCode::OK, "{}", preflight.text());
    let forwarded = gw.upstream.records().len();

    let declared = gw.send("OPTIONS", &path_a(), &[], "smuggled").await;
    assert_eq!(
        declared.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        declared.text()
    );

    let chunked = format!(
        "OPTIONS {} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n\
         8\r\nsmuggled\r\n0\r\n\r\n",
        path_a()
    );
    let reply = raw_exchange(gw.public, chunked.as_bytes(), BOUND).await;
    assert_eq!(reply.status(), Some(401), "{reply:?}");

    let stream = TcpStream::connect(gw.public).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2c handshake");
    tokio::spawn(conn);
    let request = http::Request::options(format!("http://{}{}", gw.public, path_a()))
        .body(Full::new(Bytes::from_static(b"smuggled")))
        .unwrap();
    let response = sender.send_request(request).await.expect("h2 response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(
        gw.upstream.records().len(),
        forwarded,
        "a body was forwarded"
    );
}

/// SPEC §2.1: hookgate never tunnels; a CONNECT to a webhook path gets 400 before any
/// lookup, with or without valid credentials, and nothing is forwarded
#[tokio::test]
async fn connect_to_a_webhook_path_gets_400_and_is_never_forwarded() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    for path in [
        path_a(),
        format!("/i/{TRIGGER_A}/x"),
        "/i/unknown".to_string(),
    ] {
        let request = format!(
            "CONNECT {path} HTTP/1.1\r\nhost: x\r\nx-api-key: {}\r\n\r\n",
            f.api_key
        );
        let reply = raw_exchange(gw.public, request.as_bytes(), BOUND).await;
        assert_eq!(reply.status(), Some(400), "{path}: {reply:?}");
        assert_eq!(reply.body(), br#"{"error":"Bad request"}"#, "{path}");
    }
    assert!(gw.upstream.records().is_empty());
}

/// C24 (envoy#6435): `;` path parameters, their escapes, NUL and overlong-UTF-8 lead
/// bytes get 400 however they are spelled, and nothing is forwarded
#[tokio::test]
async fn semicolons_nul_and_overlong_utf8_escapes_in_paths_get_400() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    for rest in [
        "/x;y",
        "/;/x",
        "/%3b",
        "/%3B",
        &format!("/..%3b/{TRIGGER_B}"),
        "/a%00",
        "/%c0%ae%c0%ae",
        "/%C1%9C",
    ] {
        let path = format!("{}{rest}", path_a());
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nx-api-key: {}\r\ncontent-length: 1\r\n\r\nx",
            f.api_key
        );
        let reply = raw_exchange(gw.public, request.as_bytes(), BOUND).await;
        assert_eq!(reply.status(), Some(400), "{path}: {reply:?}");
        assert_eq!(reply.body(), br#"{"error":"Bad request"}"#, "{path}");
    }
    assert!(gw.upstream.records().is_empty());
}

/// SPEC §2.3: a client body that breaks its own framing (a bad chunk size, a chunk
/// longer than it declared) is the client's fault: 400, not 502, and the upstream
/// request is aborted rather than completed
#[tokio::test]
async fn a_malformed_client_body_gets_400_and_the_upstream_request_is_aborted() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    for (what, body) in [
        ("a bad chunk size", "5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n"),
        (
            "a chunk longer than declared",
            "5\r\nhello, world\r\n0\r\n\r\n",
        ),
    ] {
        let mut request = head_a(&[
            &format!("x-api-key: {}", f.api_key),
            "transfer-encoding: chunked",
        ]);
        request.push_str(body);
        let reply = raw_exchange(gw.public, request.as_bytes(), BOUND).await;
        assert_eq!(reply.status(), Some(400), "{what}: {reply:?}");
        assert_eq!(reply.body(), br#"{"error":"Bad request"}"#, "{what}");
    }
    for got in gw.upstream.records() {
        assert!(
            !got.body.ends_with(b"world"),
            "{:?} was completed",
            got.body
        );
    }
    assert_eq!(
        gw.metric("hookgate_requests_total{outcome=\"bad_gateway\"")
            .await,
        0.0
    );
}

/// C22 (cssivision/reverseproxy#6): client-sent address headers stay behind, so
/// hookgate's `x-forwarded-for` is the upstream's one source of the client address
#[tokio::test]
async fn client_address_headers_never_reach_the_upstream() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let names = [
        "forwarded",
        "x-real-ip",
        "x-client-ip",
        "x-original-forwarded-for",
        "true-client-ip",
        "cf-connecting-ip",
        "x_real_ip",
    ];
    let mut headers = vec![("x-api-key", f.api_key.as_str())];
    headers.extend(names.iter().map(|name| (*name, "10.6.6.6")));
    let reply = gw.send("POST", &path_a(), &headers, "x").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let got = gw.upstream.last();
    for name in names {
        assert!(
            !got.headers.contains_key(name),
            "{name} reached the upstream"
        );
    }
    assert_eq!(got.headers["x-forwarded-for"], "127.0.0.1");
}

/// C21 (hyper-reverse-proxy#40): a client host that is not a plausible host[:port]
/// (userinfo, spaces, quotes) is not passed on as `x-forwarded-host`
#[tokio::test]
async fn an_implausible_client_host_is_not_passed_on_as_forwarded_host() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    for host in [
        "user:pw@evil.example",
        "evil.example \"x\"",
        "a,b",
        "evil.example/x",
    ] {
        let reply = gw
            .send(
                "POST",
                &path_a(),
                &[("host", host), ("x-api-key", &f.api_key)],
                "x",
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{host}: {}", reply.text());
        let got = gw.upstream.last();
        assert!(
            !got.headers.contains_key("x-forwarded-host"),
            "{host} was passed on as {:?}",
            got.headers.get("x-forwarded-host")
        );
    }
    let reply = gw
        .send(
            "POST",
            &path_a(),
            &[("host", "[::1]:8443"), ("x-api-key", &f.api_key)],
            "x",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(gw.upstream.last().headers["x-forwarded-host"], "[::1]:8443");
}

/// C13 (traefik#2805): a Basic credential after another scheme in one `authorization`
/// field still carries a password, so the field stays behind on a protected trigger
#[tokio::test]
async fn a_basic_credential_after_another_scheme_never_reaches_the_upstream() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    for value in [
        format!("Bearer x, {HOOK_BASIC}"),
        format!("Bearer x,{}", HOOK_BASIC.to_lowercase()),
    ] {
        let reply = gw
            .send(
                "POST",
                &path_a(),
                &[("x-api-key", &f.api_key), ("authorization", &value)],
                "x",
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{value}: {}", reply.text());
        let got = gw.upstream.last();
        assert!(
            !got.headers.contains_key("authorization"),
            "{value} was forwarded"
        );
    }
}
