//! Basic credentials as real clients and attackers write them (bad-inputs C01–C09):
//! each parses exactly as SPEC §2.2 says, and none of them ever causes a 5xx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use http::StatusCode;
use serde_json::json;

/// A gateway whose failure throttle never interferes with a test's many bad requests.
async fn start() -> TestGateway {
    TestGateway::start_with(
        UpstreamBehavior::Echo,
        &[("HOOKGATE_AUTH_MAX_FAILURES", "1000")],
    )
    .await
}

fn path_a() -> String {
    format!("/i/{TRIGGER_A}")
}

/// Sends `authorization: <value>` to trigger A.
async fn post_basic(gw: &TestGateway, value: &str) -> Reply {
    gw.send("POST", &path_a(), &[("authorization", value)], "x")
        .await
}

/// Gives `hook` another password on trigger A: the fixture's `hook` method is revoked
/// first (a username names one active method per project); returns the new id.
async fn add_basic(gw: &TestGateway, f: &Fixture, name: &str, user: &str, pass: &str) -> String {
    let revoke = format!("/v1/auth-methods/{}/schedule-deletion", f.basic_method);
    let (status, _) = gw.admin("POST", &revoke, None).await;
    assert_eq!(status, StatusCode::OK);
    let method = gw
        .create_method(
            &f.project,
            json!({"name": name, "auth_type": "basic", "username": user,
                "password": pass, "trigger_id": TRIGGER_A}),
        )
        .await;
    method["id"].as_str().unwrap().to_string()
}

/// C01 (Kong#2986, APISIX#13835): split on the first colon only
#[tokio::test]
async fn a_password_containing_colons_is_split_on_the_first_colon_only() {
    let gw = start().await;
    let f = gw.fixture().await;
    let method = add_basic(&gw, &f, "colons", "hook", "pa:ss:word1").await;

    let reply = post_basic(&gw, "Basic aG9vazpwYTpzczp3b3JkMQ==").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        gw.upstream.last().headers["x-hookgate-auth-method-id"],
        method.as_str()
    );

    // `hook:pa` is a prefix of the password up to its first colon, not a password.
    let reply = post_basic(&gw, "Basic aG9vazpwYQ==").await;
    assert_hidden(&reply, "hook:pa");
    assert_eq!(gw.upstream.records().len(), 1);
}

/// C02 (Kong#3286, actix-web#949): empty, blank and missing passwords are wrong
/// credentials, never a 5xx; an empty password cannot be created
#[tokio::test]
async fn empty_blank_and_missing_passwords_are_hidden_and_cannot_be_created() {
    let gw = start().await;
    let f = gw.fixture().await;

    for (value, what) in [
        ("Basic aG9vazo=", "hook:"),
        ("Basic aG9vazog", "hook: "),
        ("Basic aG9vaw==", "hook without a colon"),
    ] {
        assert_hidden(&post_basic(&gw, value).await, what);
    }
    assert!(gw.upstream.records().is_empty());

    let (status, body) = gw
        .admin(
            "POST",
            &format!("/v1/projects/{}/auth-methods", f.project),
            Some(json!({"name": "empty", "auth_type": "basic",
                "username": "hook", "password": ""})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["details"]["password"].is_array(), "{body}");
}

/// C03 (golang/go#22736, hyperium/headers#153): the scheme matches in any letter case
#[tokio::test]
async fn the_basic_scheme_matches_in_any_letter_case() {
    let gw = start().await;
    gw.fixture().await;

    for value in [
        "basic aG9vazpzM2NyZXQtcGFzcw==",
        "BASIC aG9vazpzM2NyZXQtcGFzcw==",
    ] {
        let reply = post_basic(&gw, value).await;
        assert_eq!(reply.status, StatusCode::OK, "{value}: {}", reply.text());
        let got = gw.upstream.last();
        assert!(!got.headers.contains_key("authorization"), "{value}");
    }
    assert_eq!(gw.upstream.records().len(), 2);
}

/// C04 (gevorg/http-auth#121): several spaces separate scheme and token; a tab does not
#[tokio::test]
async fn several_spaces_after_the_scheme_are_accepted_and_a_tab_is_not() {
    let gw = start().await;
    gw.fixture().await;

    let reply = post_basic(&gw, "Basic    aG9vazpzM2NyZXQtcGFzcw==").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(!gw.upstream.last().headers.contains_key("authorization"));

    let reply = post_basic(&gw, "Basic\taG9vazpzM2NyZXQtcGFzcw==").await;
    assert_hidden(&reply, "tab");
    assert_eq!(gw.upstream.records().len(), 1);
}

/// C05 (ClickHouse#98392): base64 padding is optional
#[tokio::test]
async fn a_token_without_its_padding_is_accepted() {
    let gw = start().await;
    gw.fixture().await;

    let reply = post_basic(&gw, "Basic aG9vazpzM2NyZXQtcGFzcw").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(!gw.upstream.last().headers.contains_key("authorization"));
}

/// C05 (ClickHouse#98392): padding is optional, but padding that is there must be whole
#[tokio::test]
async fn a_token_with_partial_padding_is_not_a_credential() {
    let gw = start().await;
    gw.fixture().await;

    // `aG9vazpzM2NyZXQtcGFzcw` needs `==`; one `=` is neither form.
    let reply = post_basic(&gw, "Basic aG9vazpzM2NyZXQtcGFzcw=").await;
    assert_hidden(&reply, "partial padding");
    assert!(gw.upstream.records().is_empty());
}

/// C06 (APISIX#5411, http4k#414): tokens that are not Basic credentials get the
/// generic 404 and never reach the upstream
#[tokio::test]
async fn malformed_and_foreign_authorization_values_are_hidden_and_not_forwarded() {
    let gw = start().await;
    gw.fixture().await;

    for value in ["Basic", "Basic =", "Basic ***", "Bearer abc"] {
        assert_hidden(&post_basic(&gw, value).await, value);
    }
    assert!(gw.upstream.records().is_empty());
}

/// C07 (http_req#70, bun#31666): the standard alphabet decodes, the URL-safe one does not
#[tokio::test]
async fn standard_base64_symbols_decode_and_url_safe_ones_do_not() {
    let gw = start().await;
    let f = gw.fixture().await;
    let method = add_basic(&gw, &f, "symbols", "hook", "???>????").await;

    let reply = post_basic(&gw, "Basic aG9vazo/Pz8+Pz8/Pw==").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        gw.upstream.last().headers["x-hookgate-auth-method-id"],
        method.as_str()
    );

    let reply = post_basic(&gw, "Basic aG9vazo_Pz8-Pz8_Pw==").await;
    assert_hidden(&reply, "URL-safe alphabet");
    assert_eq!(gw.upstream.records().len(), 1);
}

/// C08 (testssl.sh#1538): the decoded secret is never trimmed
#[tokio::test]
async fn a_password_with_a_trailing_newline_is_a_different_password() {
    let gw = start().await;
    gw.fixture().await;

    let reply = post_basic(&gw, "Basic aG9vazpzM2NyZXQtcGFzcwo=").await;
    assert_hidden(&reply, "hook:s3cret-pass\\n");
    assert!(gw.upstream.records().is_empty());
}

/// C09 (cowboy#1063): a huge Basic header is a head over the limit, answered 431 before
/// any decoding or hashing
#[tokio::test]
async fn a_huge_authorization_header_gets_431_before_any_hashing() {
    let gw = start().await;
    gw.fixture().await;

    let request = format!(
        "POST {} HTTP/1.1\r\nhost: x\r\nauthorization: Basic {}\r\ncontent-length: 1\r\n\r\nx",
        path_a(),
        "A".repeat(70_000)
    );
    let reply = raw_exchange(gw.public, request.as_bytes(), Duration::from_secs(10)).await;
    assert_eq!(reply.status(), Some(431), "{reply:?}");
    assert!(gw.upstream.records().is_empty());
    assert_eq!(gw.metric("hookgate_argon2_verifications_total").await, 0.0);
}
