//! The foundation: a webhook reaches its upstream only with valid credentials.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn the_right_api_key_is_forwarded_without_it_and_with_identity_headers() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let reply = gw
        .send(
            "POST",
            &format!("/i/{}/orders?x=1", f.trigger_a),
            &[("x-api-key", &f.api_key)],
            "{\"a\":1}",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.headers["x-upstream"], "recording");

    let got = gw.upstream.last();
    assert_eq!(got.uri, format!("/i/{}/orders?x=1", f.trigger_a));
    assert_eq!(got.body, "{\"a\":1}");
    assert!(!got.headers.contains_key("x-api-key"));
    assert_eq!(got.headers["x-hookgate-trigger-id"], f.trigger_a.as_str());
    assert_eq!(got.headers["x-hookgate-project-id"], f.project.as_str());
    assert_eq!(
        got.headers["x-hookgate-auth-method-id"],
        f.api_method.as_str()
    );
    assert_eq!(got.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(got.headers["x-forwarded-proto"], "http");
    assert!(got.headers.contains_key("x-request-id"));
    assert_eq!(got.headers["content-length"], "7");
}

#[tokio::test]
async fn the_right_basic_credential_is_forwarded_without_authorization() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let reply = gw
        .send(
            "POST",
            &format!("/i/{}", f.trigger_a),
            &[("authorization", HOOK_BASIC)],
            "x",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let got = gw.upstream.last();
    assert!(!got.headers.contains_key("authorization"));
    assert_eq!(
        got.headers["x-hookgate-auth-method-id"],
        f.basic_method.as_str()
    );
}

#[tokio::test]
async fn wrong_credentials_get_404_and_nothing_is_forwarded() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let path = format!("/i/{}", f.trigger_a);

    for headers in [
        vec![("x-api-key", f.b_api_key.as_str())],
        vec![("authorization", "Basic aG9vazp3cm9uZy1wYXNz")],
        vec![("authorization", "Bearer abc")],
    ] {
        let reply = gw.send("POST", &path, &headers, "x").await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{headers:?}");
        assert_eq!(reply.json(), json!({"error": "Webhook not found"}));
        assert_eq!(reply.headers["content-type"], "application/json");
    }
    assert!(gw.upstream.records().is_empty());
}

#[tokio::test]
async fn no_credentials_get_401_with_a_challenge_when_the_trigger_has_basic() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let reply = gw
        .send("POST", &format!("/i/{}", f.trigger_a), &[], "x")
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json(), json!({"error": "Unauthorized"}));
    assert_eq!(
        reply.headers["www-authenticate"],
        "Basic realm=\"hookgate\""
    );

    // Trigger B has only an API method: no challenge.
    let reply = gw
        .send("POST", &format!("/i/{}", f.trigger_b), &[], "x")
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(!reply.headers.contains_key("www-authenticate"));
    assert!(gw.upstream.records().is_empty());
}

#[tokio::test]
async fn unknown_and_malformed_trigger_ids_get_webhook_not_found() {
    let gw = TestGateway::start().await;
    for path in [
        "/i/7c1d2e3f-0000-4000-8000-000000000000",
        "/i/not-a-uuid",
        "/i/",
        "/i/0b9f6f4e3c1a4a579e2b7d8c1f2a3b4c",
    ] {
        let reply = gw.send("POST", path, &[], "x").await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            reply.json(),
            json!({"error": "Webhook not found"}),
            "{path}"
        );
    }
    let reply = gw.send("GET", "/elsewhere", &[], "").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json(), json!({"error": "Not found"}));
}

#[tokio::test]
async fn an_open_trigger_forwards_and_leaves_credential_headers_alone() {
    let gw = TestGateway::start().await;
    let project = uuid::Uuid::new_v4().to_string();
    gw.put_trigger(TRIGGER_A, &project).await;

    let reply = gw
        .send(
            "POST",
            &format!("/i/{TRIGGER_A}"),
            &[
                ("authorization", "Basic Zm9vOmJhcg=="),
                ("x-hookgate-auth-method-id", "forged"),
            ],
            "open",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let got = gw.upstream.last();
    assert_eq!(got.headers["authorization"], "Basic Zm9vOmJhcg==");
    assert!(!got.headers.contains_key("x-hookgate-auth-method-id"));
}

#[tokio::test]
async fn a_trigger_requiring_auth_without_methods_gets_401() {
    let gw = TestGateway::start().await;
    let project = uuid::Uuid::new_v4().to_string();
    let (status, _) = gw
        .admin(
            "PUT",
            &format!("/v1/triggers/{TRIGGER_A}"),
            Some(json!({"project_id": project, "auth_required": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let reply = gw.send("POST", &format!("/i/{TRIGGER_A}"), &[], "x").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_disabled_trigger_gets_403_after_authentication() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let (status, _) = gw
        .admin(
            "PUT",
            &format!("/v1/triggers/{}", f.trigger_a),
            Some(json!({"project_id": f.project, "enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let reply = gw
        .send(
            "POST",
            &format!("/i/{}", f.trigger_a),
            &[("x-api-key", &f.api_key)],
            "x",
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.json()["error"], "trigger_disabled");
    // Without credentials the disabled state stays hidden.
    let reply = gw
        .send("POST", &format!("/i/{}", f.trigger_a), &[], "x")
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unreachable_upstream_gets_502() {
    let port = free_port();
    let gw = TestGateway::start_with(
        UpstreamBehavior::Echo,
        &[("HOOKGATE_UPSTREAM_URL", &format!("http://127.0.0.1:{port}"))],
    )
    .await;
    let f = gw.fixture().await;
    let reply = gw
        .send(
            "POST",
            &format!("/i/{}", f.trigger_a),
            &[("x-api-key", &f.api_key)],
            "x",
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.json(), json!({"error": "bad_gateway"}));
}

#[tokio::test]
async fn a_trigger_upstream_override_is_used() {
    let gw = TestGateway::start().await;
    let other = Upstream::start(UpstreamBehavior::Echo).await;
    let project = uuid::Uuid::new_v4().to_string();
    let (status, trigger) = gw
        .admin(
            "PUT",
            &format!("/v1/triggers/{TRIGGER_A}"),
            Some(json!({"project_id": project, "upstream_url": format!("{}/hooks", other.url())})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{trigger}");

    let reply = gw
        .send("POST", &format!("/i/{TRIGGER_A}/x"), &[], "x")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(other.last().uri, format!("/hooks/i/{TRIGGER_A}/x"));
    assert_eq!(
        other.last().headers["host"],
        other.addr.to_string().as_str()
    );
    assert!(gw.upstream.records().is_empty());
}

#[tokio::test]
async fn health_endpoints_answer_on_both_ports() {
    let gw = TestGateway::start().await;
    for addr in [gw.public, gw.admin] {
        let reply = send(addr, "GET", "/healthz", &[], "").await;
        assert_eq!(reply.status, StatusCode::OK);
        let reply = send(addr, "GET", "/readyz", &[], "").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.json()["checks"]["store"], "ok");
        assert_eq!(reply.json()["checks"]["migrations"], "ok");
    }
}

#[tokio::test]
async fn revoking_the_last_method_never_opens_the_trigger() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let (_, b) = gw
        .admin("GET", &format!("/v1/triggers/{}", f.trigger_b), None)
        .await;
    assert_eq!(
        b["auth_required"], true,
        "attaching a method made B require auth"
    );
    let b_method = b["auth_method_ids"][0].as_str().unwrap().to_string();

    let (status, _) = gw
        .admin(
            "POST",
            &format!("/v1/auth-methods/{b_method}/schedule-deletion"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let path = format!("/i/{}", f.trigger_b);
    let reply = gw
        .send("POST", &path, &[("x-api-key", &f.b_api_key)], "x")
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "no active method: 401, not open"
    );
    assert_eq!(
        gw.send("POST", &path, &[], "x").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(gw.upstream.records().is_empty());

    // Only an explicit change opens it.
    let (status, _) = gw
        .admin(
            "PUT",
            &format!("/v1/triggers/{}", f.trigger_b),
            Some(json!({"project_id": f.project, "auth_required": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        gw.send("POST", &path, &[], "x").await.status,
        StatusCode::OK
    );
}

/// An `auth_required: false` set while methods were attached does not open the trigger
/// later, when its last method is revoked.
#[tokio::test]
async fn auth_required_false_with_methods_attached_does_not_open_the_trigger_on_revoke() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let (status, _) = gw
        .admin(
            "PUT",
            &format!("/v1/triggers/{}", f.trigger_b),
            Some(json!({"project_id": f.project, "auth_required": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, b) = gw
        .admin("GET", &format!("/v1/triggers/{}", f.trigger_b), None)
        .await;
    let method = b["auth_method_ids"][0].as_str().unwrap().to_string();

    let (status, _) = gw
        .admin(
            "POST",
            &format!("/v1/auth-methods/{method}/schedule-deletion"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let reply = gw
        .send("POST", &format!("/i/{}", f.trigger_b), &[], "x")
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(gw.upstream.records().is_empty());
}
