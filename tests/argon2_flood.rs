//! C30: a flood of wrong passwords is capped by the argon2 pool and answered fast,
//! while a client with an API key keeps getting through.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::StatusCode;

/// C30 (caddy#3462, caddy#5265): distinct random passwords from many clients.
#[tokio::test]
async fn a_password_flood_is_capped_and_api_key_traffic_still_passes() {
    let extra = [
        ("HOOKGATE_AUTH_ARGON2_CONCURRENCY", "1"),
        ("HOOKGATE_AUTH_ARGON2_QUEUE_TIMEOUT_MS", "20"),
        ("HOOKGATE_AUTH_ARGON2_MEMORY_KIB", "8192"),
        ("HOOKGATE_AUTH_ARGON2_ITERATIONS", "2"),
        ("HOOKGATE_PUBLIC_TRUSTED_PROXIES", "[\"127.0.0.1/32\"]"),
    ];
    let gw = TestGateway::start_with(UpstreamBehavior::Echo, &extra).await;
    let f = gw.fixture().await;
    let path = format!("/i/{}", f.trigger_a);
    let before = gw.metric("hookgate_argon2_verifications_total").await;

    // 200 wrong passwords at once, each from its own client address.
    let mut flood = Vec::new();
    for i in 0..200 {
        let (public, path) = (gw.public, path.clone());
        flood.push(tokio::spawn(async move {
            let client = format!("10.1.{}.{}", i / 250, i % 250 + 1);
            let header = basic("hook", &format!("wrong-{i}-{}", uuid::Uuid::new_v4()));
            let headers = [
                ("authorization", header.as_str()),
                ("x-forwarded-for", &client),
            ];
            send(public, "POST", &path, &headers, "x").await.status
        }));
    }
    // Meanwhile the API-key client.
    for _ in 0..20 {
        let reply = gw
            .send("POST", &path, &[("x-api-key", &f.api_key)], "ok")
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }

    let mut statuses = Vec::new();
    for task in flood {
        statuses.push(task.await.expect("flood request"));
    }
    let busy = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    let rejected = statuses
        .iter()
        .filter(|s| **s == StatusCode::NOT_FOUND)
        .count();
    assert_eq!(
        busy + rejected,
        statuses.len(),
        "only 404 or 503: {statuses:?}"
    );
    assert!(
        busy > 0,
        "overflow is answered 503 instead of queueing without bound"
    );

    let ran = gw.metric("hookgate_argon2_verifications_total").await - before;
    assert!(
        ran < 200.0,
        "argon2 work is capped: {ran} verifications for 200 requests"
    );
    assert!(gw.metric("hookgate_argon2_rejected_total").await >= busy as f64);
    println!("flood: {rejected} answered 404 after argon2, {busy} answered 503; argon2 ran {ran}");
}
