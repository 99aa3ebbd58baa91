//! When Postgres cannot be reached or holds what the gateway cannot understand: cached
//! triggers are served for at most `stale_for` past their fill, then 503 with
//! `Retry-After`; admin writes and `/readyz` answer 503; recovery needs nothing; and a
//! defective stored method fails closed (SPEC §6; case C33).
//!
//! The outage is real: a TCP relay in front of Postgres is cut, which closes every
//! connection the gateway held and refuses new ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod instances;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use http::StatusCode;
use instances::*;
use serde_json::json;

const STALE_FOR: Duration = Duration::from_secs(3);

/// Settings of the instance behind the relay: a 1 s TTL and 3 s of stale service.
fn behind_relay(url: &str) -> [(&str, &str); 3] {
    [
        ("DATABASE_URL", url),
        ("HOOKGATE_CACHE_TRIGGER_TTL_S", "1"),
        ("HOOKGATE_CACHE_STALE_FOR_S", "3"),
    ]
}

/// One admin write (an update of trigger B) through `admin`; the whole reply.
async fn admin_write(admin: SocketAddr, f: &Fixture) -> Reply {
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    let body = json!({"project_id": f.project, "enabled": true}).to_string();
    let path = format!("/v1/triggers/{}", f.trigger_b);
    send(admin, "PUT", &path, &headers, &body).await
}

/// The 503 of an outage: `Retry-After` and the same number in the JSON body.
fn assert_outage_answer(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text()
    );
    let retry_after: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_eq!(
        reply.json(),
        json!({"error": "service_unavailable", "retry_after": retry_after})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_trigger_is_served_for_stale_for_then_503_and_recovery_is_automatic() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let mut relay = PgRelay::start(postgres_addr().await).await;
    let url = relay.url_for(&gw.db.url);
    let b = gw.another_instance(&behind_relay(&url)).await;
    let path = format!("/i/{}", f.trigger_a);
    let key = [("x-api-key", f.api_key.as_str())];

    // Warm the cache, then cut the store off.
    let fill_started = Instant::now();
    assert_eq!(
        status_of(b.public_addr, &f.trigger_a, &key).await,
        StatusCode::OK
    );
    let filled = Instant::now();
    relay.cut().await;

    // Served from the stale copy until stale_for past the fill, then 503.
    let mut answers = Vec::new();
    let outage = loop {
        let sent = Instant::now();
        let reply = send(b.public_addr, "POST", &path, &key, "{}").await;
        answers.push((sent, reply.status));
        if reply.status != StatusCode::OK {
            break reply;
        }
        assert!(
            sent < filled + STALE_FOR,
            "served {:?} past the fill",
            sent - filled
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_outage_answer(&outage);
    let last_ok = answers.iter().rev().find(|(_, s)| *s == StatusCode::OK);
    let (first_503, _) = answers.last().unwrap();
    println!(
        "store cut: stale copy served until {} ms after the fill, first 503 at {} ms",
        last_ok.map_or(0, |(at, _)| (*at - fill_started).as_millis()),
        (*first_503 - fill_started).as_millis()
    );
    assert!(
        *first_503 >= fill_started + STALE_FOR - Duration::from_secs(1),
        "the stale copy must serve until close to stale_for, not {:?}",
        *first_503 - fill_started
    );

    // Nothing else pretends: unknown ids, admin writes and readiness all say 503.
    let unknown = format!("/i/{}", uuid::Uuid::new_v4());
    assert_outage_answer(&send(b.public_addr, "POST", &unknown, &[], "{}").await);
    let write = admin_write(b.admin_addr, &f).await;
    assert_eq!(
        write.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        write.text()
    );
    assert!(write.headers.contains_key("retry-after"));
    assert_eq!(write.json()["error"], "service_unavailable");
    for addr in [b.public_addr, b.admin_addr] {
        let (status, body) = readiness(addr).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["checks"]["store"], "unreachable", "{body}");
    }

    // The store comes back: the same instance recovers without help.
    relay.restore().await;
    let public = b.public_addr;
    let recovered = time_until(Duration::from_secs(20), || async {
        status_of(public, &f.trigger_a, &key).await == StatusCode::OK
    })
    .await
    .expect("the instance recovers once the store is back");
    println!(
        "store back: serving again after {} ms",
        recovered.as_millis()
    );
    assert_eq!(readiness(b.admin_addr).await.0, StatusCode::OK);
    assert_eq!(admin_write(b.admin_addr, &f).await.status, StatusCode::OK);
}

/// A revocation that reaches an instance during its outage (through Redis) is not
/// undone by the stale copy: the instance answers 503, never the revoked key's 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidated_trigger_is_not_served_stale_during_an_outage() {
    let namespace = namespace();
    let redis = redis_url();
    let shared = [
        ("HOOKGATE_REDIS_URL", redis.as_str()),
        ("HOOKGATE_REDIS_NAMESPACE", namespace.as_str()),
    ];
    let gw = TestGateway::start_with(UpstreamBehavior::Echo, &shared).await;
    let f = gw.fixture().await;
    let mut relay = PgRelay::start(postgres_addr().await).await;
    let url = relay.url_for(&gw.db.url);
    let mut env = behind_relay(&url).to_vec();
    env.extend_from_slice(&shared);
    env.push(("HOOKGATE_CACHE_STALE_FOR_S", "60"));
    let b = gw.another_instance(&env).await;
    wait_subscribed(gw.admin).await;
    wait_subscribed(b.admin_addr).await;
    let key = [("x-api-key", f.api_key.as_str())];
    assert_eq!(
        status_of(b.public_addr, &f.trigger_a, &key).await,
        StatusCode::OK
    );

    relay.cut().await;
    revoke(gw.admin, &f.api_method).await;

    let public = b.public_addr;
    let delay = time_until(Duration::from_secs(5), || async {
        status_of(public, &f.trigger_a, &key).await != StatusCode::OK
    })
    .await
    .expect("the instance drops the revoked state during the outage");
    // The first answer waits for the store read it needs (the pool's connect timeout).
    println!(
        "revoked during the outage: B's first refusal came {} ms after the write",
        delay.as_millis()
    );
    for _ in 0..10 {
        let reply = send(public, "POST", &format!("/i/{}", f.trigger_a), &key, "{}").await;
        assert_outage_answer(&reply);
    }
}

/// Drops the checks that keep bad rows out, so a test can store what the gateway
/// cannot understand.
async fn break_method(db: &TestDb, update: &str, method: &str) {
    let pool = db.pool().await;
    sqlx::query(
        "ALTER TABLE webhook_auth_methods
            DROP CONSTRAINT webhook_auth_methods_auth_type,
            DROP CONSTRAINT webhook_auth_methods_secret_columns",
    )
    .execute(&pool)
    .await
    .expect("drop the checks");
    let update = format!("UPDATE webhook_auth_methods SET {update} WHERE id = $1");
    let done = sqlx::query(sqlx::AssertSqlSafe(update))
        .bind(method.parse::<uuid::Uuid>().unwrap())
        .execute(&pool)
        .await
        .expect("break the method");
    assert_eq!(done.rows_affected(), 1);
    pool.close().await;
}

/// Every kind of request to a trigger with a defective method: none gets through.
async fn assert_fails_closed(public: SocketAddr, f: &Fixture, upstream: &Upstream) {
    let reply = send(public, "POST", &format!("/i/{}", f.trigger_a), &[], "{}").await;
    assert!(
        [StatusCode::SERVICE_UNAVAILABLE, StatusCode::UNAUTHORIZED].contains(&reply.status),
        "{} {}",
        reply.status,
        reply.text()
    );
    for headers in [
        vec![("x-api-key", f.api_key.as_str())],
        vec![("authorization", HOOK_BASIC)],
        vec![("x-api-key", f.b_api_key.as_str())],
    ] {
        let status = status_of(public, &f.trigger_a, &headers).await;
        assert!(!status.is_success(), "{headers:?} got {status}");
    }
    assert!(
        upstream.records().is_empty(),
        "nothing reaches the upstream"
    );
}

/// C33: an auth type the gateway does not know makes the trigger fail closed.
#[tokio::test]
async fn a_method_with_an_unknown_auth_type_fails_closed() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    break_method(&gw.db, "auth_type = 'bogus'", &f.api_method).await;

    assert_fails_closed(gw.public, &f, &gw.upstream).await;
}

/// C33: a Basic method whose verifier is gone makes the trigger fail closed.
#[tokio::test]
async fn a_basic_method_without_a_password_hash_fails_closed() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    break_method(&gw.db, "password_hash = NULL", &f.basic_method).await;

    assert_fails_closed(gw.public, &f, &gw.upstream).await;
}

/// C33 on a real process: fails closed, and an error log line names the trigger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_defective_method_is_logged_as_an_error_naming_the_trigger() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    break_method(&gw.db, "auth_type = 'bogus'", &f.api_method).await;
    let process = ServeProcess::start(
        &gw.db.url,
        &gw.upstream.url(),
        &[("HOOKGATE_LOG_FORMAT", "json")],
    )
    .await;

    assert_fails_closed(process.public, &f, &gw.upstream).await;
    let log = process.log.read();
    let named = log
        .lines()
        .filter(|line| line.contains("\"level\":\"ERROR\""))
        .any(|line| line.contains(&f.trigger_a));
    assert!(named, "no error line names the trigger:\n{log}");
}
