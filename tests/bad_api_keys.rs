//! API keys as clients send them (bad-inputs C10–C12): any header-name casing works,
//! the query string is never read, and near-miss keys are wrong keys, never a 5xx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use http::StatusCode;
use serde_json::json;

fn path_a() -> String {
    format!("/i/{TRIGGER_A}")
}

/// C10 (codeigniter-restserver#906): the key header matches in any casing and is
/// stripped in every casing
#[tokio::test]
async fn the_key_header_name_matches_in_any_casing_and_never_reaches_the_upstream() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    for name in ["X-API-KEY", "X-Api-Key"] {
        // Raw bytes, so the casing on the wire is exactly this one.
        let request = format!(
            "POST {} HTTP/1.1\r\nhost: x\r\n{name}: {}\r\ncontent-length: 1\r\n\r\nx",
            path_a(),
            f.api_key
        );
        let reply = raw_exchange(gw.public, request.as_bytes(), Duration::from_secs(10)).await;
        assert_eq!(reply.status(), Some(200), "{name}: {reply:?}");

        let got = gw.upstream.last();
        assert_eq!(
            got.headers["x-hookgate-auth-method-id"],
            f.api_method.as_str()
        );
        assert!(!got.headers.contains_key("x-api-key"), "{name}");
        let leaked = got
            .headers
            .values()
            .any(|v| v.as_bytes() == f.api_key.as_bytes());
        assert!(
            !leaked,
            "{name}: the key reached the upstream under some name"
        );
    }
    assert_eq!(gw.upstream.records().len(), 2);
}

/// C11 (Kong#4366, st2#4589): the query string is never read for credentials
#[tokio::test]
async fn a_key_in_the_query_string_is_not_a_credential() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let path = format!("{}?api_key={}", path_a(), f.api_key);
    let reply = gw.send("POST", &path, &[], "x").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    assert_eq!(reply.json(), json!({"error": "Unauthorized"}));
    assert!(gw.upstream.records().is_empty());
}

/// C12 (dokimos#65, ezauth#98): keys that differ in one byte, or have the wrong length,
/// are wrong keys and never a 5xx
#[tokio::test]
async fn near_miss_short_and_huge_keys_are_hidden_and_never_a_server_error() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let flip = |c: char| if c == '0' { '1' } else { '0' };
    let mut first = f.api_key.clone();
    first.replace_range(0..1, &flip(f.api_key.chars().next().unwrap()).to_string());
    let mut last = f.api_key.clone();
    let end = last.len() - 1;
    last.replace_range(end.., &flip(f.api_key.chars().last().unwrap()).to_string());
    let huge = "k".repeat(8 * 1024);

    for (key, what) in [
        (first.as_str(), "first byte differs"),
        (last.as_str(), "last byte differs"),
        ("a", "one byte"),
        (huge.as_str(), "8 KiB"),
    ] {
        let reply = gw.send("POST", &path_a(), &[("x-api-key", key)], "x").await;
        assert_hidden(&reply, what);
    }
    assert!(gw.upstream.records().is_empty());

    // The right key still passes after the near misses.
    let reply = gw
        .send("POST", &path_a(), &[("x-api-key", &f.api_key)], "x")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}
