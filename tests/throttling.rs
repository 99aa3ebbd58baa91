//! Failure throttling per (client address, trigger): past `auth.max_failures` wrong
//! credentials a client's further failures get 429 and no argon2 work, while the right
//! secret still passes; the address is the TCP peer unless that peer is a trusted
//! proxy; with Redis the counters are shared by every instance (SPEC §2.4; case C31).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod instances;

use std::net::SocketAddr;

use common::*;
use http::StatusCode;
use instances::*;

const ARGON2_RUNS: &str = "hookgate_argon2_verifications_total";
const WRONG_BASIC: &str = "Basic aG9vazp3cm9uZy1wYXNz";

/// Trusts the loopback peer, so that `X-Forwarded-For` names distinct test clients.
const TRUST_LOOPBACK: (&str, &str) = ("HOOKGATE_PUBLIC_TRUSTED_PROXIES", "[\"127.0.0.1/32\"]");

/// The reply to one request from `client` (through the trusted loopback proxy).
async fn from_client(
    public: SocketAddr,
    trigger: &str,
    client: &str,
    credential: (&str, &str),
) -> Reply {
    let headers = [("x-forwarded-for", client), credential];
    send(public, "POST", &format!("/i/{trigger}"), &headers, "{}").await
}

fn assert_throttled(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.text()
    );
    assert_eq!(
        reply.json(),
        serde_json::json!({"error": "too_many_requests"})
    );
    assert!(reply.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn a_throttled_address_still_passes_with_the_right_api_key() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let path = format!("/i/{}", f.trigger_a);

    // Requests without credentials are not failures.
    for _ in 0..20 {
        let reply = gw.send("POST", &path, &[], "{}").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    for _ in 0..10 {
        let reply = gw
            .send("POST", &path, &[("x-api-key", &f.b_api_key)], "{}")
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
    }
    assert_throttled(
        &gw.send("POST", &path, &[("x-api-key", &f.b_api_key)], "{}")
            .await,
    );

    let right = gw
        .send("POST", &path, &[("x-api-key", &f.api_key)], "{}")
        .await;
    assert_eq!(
        right.status,
        StatusCode::OK,
        "the right key is never locked out"
    );
    assert_eq!(gw.upstream.records().len(), 1);

    // Throttled: a wrong password costs no argon2 run.
    let runs = gw.metric(ARGON2_RUNS).await;
    assert_throttled(
        &gw.send("POST", &path, &[("authorization", WRONG_BASIC)], "{}")
            .await,
    );
    assert_eq!(gw.metric(ARGON2_RUNS).await, runs);

    // The other trigger keeps its own count.
    let other = format!("/i/{}", f.trigger_b);
    let reply = gw
        .send("POST", &other, &[("x-api-key", &f.api_key)], "{}")
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_throttled_address_passes_with_a_basic_credential_already_verified() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let path = format!("/i/{}", f.trigger_a);
    let good = [("authorization", HOOK_BASIC)];
    assert_eq!(
        gw.send("POST", &path, &good, "{}").await.status,
        StatusCode::OK
    );

    for _ in 0..10 {
        let reply = gw
            .send("POST", &path, &[("authorization", WRONG_BASIC)], "{}")
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
    }
    assert_throttled(
        &gw.send("POST", &path, &[("authorization", WRONG_BASIC)], "{}")
            .await,
    );

    let runs = gw.metric(ARGON2_RUNS).await;
    assert_eq!(
        gw.send("POST", &path, &good, "{}").await.status,
        StatusCode::OK
    );
    assert_eq!(
        gw.metric(ARGON2_RUNS).await,
        runs,
        "served from the verified cache"
    );
}

/// C31: one client's hundred wrong passwords do not lock out another client.
#[tokio::test]
async fn a_hundred_wrong_passwords_from_one_client_do_not_lock_out_another() {
    let gw = TestGateway::start_with(UpstreamBehavior::Echo, &[TRUST_LOOPBACK]).await;
    let f = gw.fixture().await;
    let runs = gw.metric(ARGON2_RUNS).await;

    let mut statuses = Vec::new();
    for _ in 0..100 {
        let wrong = ("authorization", WRONG_BASIC);
        let reply = from_client(gw.public, &f.trigger_a, "203.0.113.7", wrong).await;
        statuses.push(reply.status);
    }
    assert!(statuses[..10].iter().all(|s| *s == StatusCode::NOT_FOUND));
    assert!(
        statuses[10..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS)
    );
    let spent = gw.metric(ARGON2_RUNS).await - runs;
    println!("C31: 100 wrong passwords cost {spent} argon2 runs");
    assert_eq!(spent, 10.0, "no argon2 work once throttled");

    let good = ("authorization", HOOK_BASIC);
    let other = from_client(gw.public, &f.trigger_a, "203.0.113.8", good).await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.text());
    let got = gw.upstream.last();
    assert_eq!(got.headers["x-forwarded-for"], "203.0.113.8, 127.0.0.1");

    // Once verified, the right password passes for the throttled client too.
    let same = from_client(gw.public, &f.trigger_a, "203.0.113.7", good).await;
    assert_eq!(same.status, StatusCode::OK);
}

/// C31: an untrusted peer cannot escape its count by rotating `X-Forwarded-For`.
#[tokio::test]
async fn rotating_x_forwarded_for_from_an_untrusted_peer_is_still_throttled() {
    let untrusted = ("HOOKGATE_PUBLIC_TRUSTED_PROXIES", "[\"10.99.0.1/32\"]");
    let gw = TestGateway::start_with(UpstreamBehavior::Echo, &[untrusted]).await;
    let f = gw.fixture().await;

    let mut statuses = Vec::new();
    for i in 0..30 {
        let client = format!("198.51.100.{i}");
        let wrong = ("x-api-key", f.b_api_key.as_str());
        statuses.push(
            from_client(gw.public, &f.trigger_a, &client, wrong)
                .await
                .status,
        );
    }
    assert!(statuses[..10].iter().all(|s| *s == StatusCode::NOT_FOUND));
    assert!(
        statuses[10..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(gw.upstream.records().is_empty());
}

/// With Redis the failures of one client add up across instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_on_two_instances_share_one_count_through_redis() {
    let namespace = namespace();
    let redis = redis_url();
    let env = [
        ("HOOKGATE_REDIS_URL", redis.as_str()),
        ("HOOKGATE_REDIS_NAMESPACE", namespace.as_str()),
        TRUST_LOOPBACK,
    ];
    let a = TestGateway::start_with(UpstreamBehavior::Echo, &env).await;
    let b = a.another_instance(&env).await;
    let f = a.fixture().await;
    let wrong = ("x-api-key", f.b_api_key.as_str());
    let client = "192.0.2.44";

    for public in [a.public, b.public_addr, a.public, b.public_addr, a.public] {
        for _ in 0..2 {
            let reply = from_client(public, &f.trigger_a, client, wrong).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND);
        }
    }
    for public in [a.public, b.public_addr] {
        assert_throttled(&from_client(public, &f.trigger_a, client, wrong).await);
    }

    let right = ("x-api-key", f.api_key.as_str());
    let reply = from_client(b.public_addr, &f.trigger_a, client, right).await;
    assert_eq!(reply.status, StatusCode::OK);
    let elsewhere = from_client(b.public_addr, &f.trigger_a, "192.0.2.45", wrong).await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
}

/// The window is fixed: once it passes, the client's failures count from zero again.
#[tokio::test]
async fn the_failure_window_ends_and_the_count_starts_again() {
    let window = ("HOOKGATE_AUTH_FAILURE_WINDOW_S", "1");
    let gw = TestGateway::start_with(UpstreamBehavior::Echo, &[window]).await;
    let f = gw.fixture().await;
    let wrong = [("x-api-key", f.b_api_key.as_str())];
    for _ in 0..10 {
        status_of(gw.public, &f.trigger_a, &wrong).await;
    }
    assert_eq!(
        status_of(gw.public, &f.trigger_a, &wrong).await,
        StatusCode::TOO_MANY_REQUESTS
    );

    let public = gw.public;
    let trigger = f.trigger_a.as_str();
    let wrong = &wrong;
    let ended = time_until(std::time::Duration::from_secs(5), || async move {
        status_of(public, trigger, wrong).await == StatusCode::NOT_FOUND
    })
    .await
    .expect("the window ends");
    println!(
        "throttle window of 1 s ended after {} ms",
        ended.as_millis()
    );
}

/// With Redis the counter carries its window as an expiry, so failures never lock a
/// client out for good, and the count starts again once the window ends.
#[tokio::test]
async fn a_redis_failure_counter_expires_with_its_window() {
    let namespace = namespace();
    let redis = redis_url();
    let env = [
        ("HOOKGATE_REDIS_URL", redis.as_str()),
        ("HOOKGATE_REDIS_NAMESPACE", namespace.as_str()),
        ("HOOKGATE_AUTH_FAILURE_WINDOW_S", "2"),
        TRUST_LOOPBACK,
    ];
    let gw = TestGateway::start_with(UpstreamBehavior::Echo, &env).await;
    let f = gw.fixture().await;
    let (client, wrong) = ("192.0.2.60", ("x-api-key", f.b_api_key.as_str()));
    let reply = from_client(gw.public, &f.trigger_a, client, wrong).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    let mut connection = redis::Client::open(redis.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("test Redis reachable");
    let key = format!("{namespace}:failures:{}:{client}", f.trigger_a);
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(
        (1..=2).contains(&ttl),
        "the counter expires with its window: {ttl}"
    );

    for _ in 0..9 {
        from_client(gw.public, &f.trigger_a, client, wrong).await;
    }
    assert_throttled(&from_client(gw.public, &f.trigger_a, client, wrong).await);
    let public = gw.public;
    let trigger = f.trigger_a.as_str();
    let ended = time_until(std::time::Duration::from_secs(6), || async move {
        let reply = from_client(public, trigger, client, wrong).await;
        reply.status == StatusCode::NOT_FOUND
    })
    .await
    .expect("the window ends");
    println!(
        "redis throttle window of 2 s ended after {} ms",
        ended.as_millis()
    );
}
