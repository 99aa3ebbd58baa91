//! Several instances on one Postgres: every admin write reaches every instance — within
//! a second through Redis, within the cache TTL without it or while Redis is down — and
//! a revoked method stays revoked across restarts (SPEC §6; cases C26, C28, C32).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod instances;

use std::time::{Duration, Instant};

use common::*;
use http::StatusCode;
use instances::*;
use serde_json::json;

/// How long a test waits for an instance to converge before calling it a failure. The
/// promise is 1 s with Redis; the bound only catches an instance that never converges.
const CONVERGENCE_BOUND: Duration = Duration::from_secs(5);

/// Two in-process instances on one database and one Redis namespace, both subscribed.
async fn two_instances_with_redis(
    redis: &str,
    extra: &[(&str, &str)],
) -> (TestGateway, hookgate::Gateway) {
    let namespace = namespace();
    let mut env = vec![
        ("HOOKGATE_REDIS_URL", redis),
        ("HOOKGATE_REDIS_NAMESPACE", namespace.as_str()),
    ];
    env.extend_from_slice(extra);
    let a = TestGateway::start_with(UpstreamBehavior::Echo, &env).await;
    let b = a.another_instance(&env).await;
    wait_subscribed(a.admin).await;
    wait_subscribed(b.admin_addr).await;
    (a, b)
}

/// Polls `public` until the key is no longer accepted; prints and returns the delay.
async fn delay_until_rejected(
    label: &str,
    public: std::net::SocketAddr,
    trigger: &str,
    headers: &[(&str, &str)],
) -> Duration {
    let delay = time_until(CONVERGENCE_BOUND, || async move {
        status_of(public, trigger, headers).await == StatusCode::NOT_FOUND
    })
    .await;
    let Some(delay) = delay else {
        panic!("{label}: still accepted {CONVERGENCE_BOUND:?} after the write returned");
    };
    println!(
        "{label}: rejected {} ms after the write returned",
        delay.as_millis()
    );
    delay
}

/// C26, in process: rejected here at once, on the other instance within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_rejected_here_at_once_and_on_another_instance_soon() {
    let redis = redis_url();
    let (a, b) = two_instances_with_redis(&redis, &[]).await;
    let f = a.fixture().await;
    let key = [("x-api-key", f.api_key.as_str())];
    assert_eq!(
        status_of(a.public, &f.trigger_a, &key).await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(b.public_addr, &f.trigger_a, &key).await,
        StatusCode::OK
    );

    revoke(a.admin, &f.api_method).await;

    assert_eq!(
        status_of(a.public, &f.trigger_a, &key).await,
        StatusCode::NOT_FOUND,
        "the instance that took the write must reject at once"
    );
    delay_until_rejected(
        "C26 in process, instance B",
        b.public_addr,
        &f.trigger_a,
        &key,
    )
    .await;
}

/// C26 with a Basic credential that instance B holds in its verified cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_basic_credential_is_not_kept_alive_by_the_verified_cache() {
    let redis = redis_url();
    let (a, b) = two_instances_with_redis(&redis, &[]).await;
    let f = a.fixture().await;
    let basic = [("authorization", HOOK_BASIC)];
    assert_eq!(
        status_of(b.public_addr, &f.trigger_a, &basic).await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(a.public, &f.trigger_a, &basic).await,
        StatusCode::OK
    );

    revoke(a.admin, &f.basic_method).await;

    assert_eq!(
        status_of(a.public, &f.trigger_a, &basic).await,
        StatusCode::NOT_FOUND
    );
    delay_until_rejected("C26 basic, instance B", b.public_addr, &f.trigger_a, &basic).await;
}

/// C26 with two real `hookgate serve` processes sharing Postgres and Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_agree_on_a_revocation_within_a_second() {
    let db = TestDb::create().await;
    let upstream = Upstream::start(UpstreamBehavior::Echo).await;
    let namespace = namespace();
    let redis = redis_url();
    let env = [
        ("HOOKGATE_REDIS_URL", redis.as_str()),
        ("HOOKGATE_REDIS_NAMESPACE", namespace.as_str()),
    ];
    let a = ServeProcess::start(&db.url, &upstream.url(), &env).await;
    let b = ServeProcess::start(&db.url, &upstream.url(), &env).await;
    wait_subscribed(a.admin).await;
    wait_subscribed(b.admin).await;

    let t = KeyedTrigger::create(a.admin).await;
    assert_eq!(t.status_on(a.public).await, StatusCode::OK);
    assert_eq!(t.status_on(b.public).await, StatusCode::OK);

    revoke(a.admin, &t.method).await;
    assert_eq!(t.status_on(a.public).await, StatusCode::NOT_FOUND);
    let key = [("x-api-key", t.api_key.as_str())];
    delay_until_rejected("C26 processes, process B", b.public, &t.trigger, &key).await;
    assert_eq!(
        upstream.records().len(),
        2,
        "only the two warm-up requests got through"
    );
}

/// C28: the old method detached and a new one attached, seen by every instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_method_set_applies_on_every_instance() {
    let redis = redis_url();
    let (a, b) = two_instances_with_redis(&redis, &[]).await;
    let f = a.fixture().await;
    let old = [("x-api-key", f.api_key.as_str())];
    for public in [a.public, b.public_addr] {
        assert_eq!(status_of(public, &f.trigger_a, &old).await, StatusCode::OK);
    }

    let new = a
        .create_method(&f.project, json!({"name": "new key", "auth_type": "api"}))
        .await;
    let new_key = new["api_key"].as_str().unwrap();
    let new_id = new["id"].as_str().unwrap();
    let (status, trigger) = a
        .admin(
            "PUT",
            &format!("/v1/triggers/{}/auth-methods", f.trigger_a),
            Some(json!({"auth_method_ids": [f.basic_method, new_id]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{trigger}");

    let new = [("x-api-key", new_key)];
    assert_eq!(
        status_of(a.public, &f.trigger_a, &old).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_of(a.public, &f.trigger_a, &new).await,
        StatusCode::OK
    );
    let public = b.public_addr;
    let trigger = f.trigger_a.as_str();
    let delay = time_until(CONVERGENCE_BOUND, || async {
        status_of(public, trigger, &old).await == StatusCode::NOT_FOUND
            && status_of(public, trigger, &new).await == StatusCode::OK
    })
    .await
    .expect("instance B converges on the new method set");
    println!(
        "C28: instance B switched methods {} ms after the write",
        delay.as_millis()
    );
    let forwarded = a.upstream.records();
    let last = forwarded.last().unwrap();
    assert_eq!(last.headers["x-hookgate-auth-method-id"], new_id);
}

/// A trigger created through A clears the negative entry B holds for its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_trigger_clears_the_negative_entry_on_every_instance() {
    let redis = redis_url();
    let long_negative = [("HOOKGATE_CACHE_NEGATIVE_TTL_S", "60")];
    let (a, b) = two_instances_with_redis(&redis, &long_negative).await;
    let id = uuid::Uuid::new_v4().to_string();
    for public in [a.public, b.public_addr] {
        assert_eq!(status_of(public, &id, &[]).await, StatusCode::NOT_FOUND);
    }

    a.put_trigger(&id, &uuid::Uuid::new_v4().to_string()).await;

    assert_eq!(status_of(a.public, &id, &[]).await, StatusCode::OK);
    let public = b.public_addr;
    let id = id.as_str();
    let delay = time_until(CONVERGENCE_BOUND, || async move {
        status_of(public, id, &[]).await == StatusCode::OK
    })
    .await
    .expect("instance B forgets its negative entry");
    println!(
        "new trigger: instance B found it {} ms after the write",
        delay.as_millis()
    );
}

/// Without Redis nothing is published: instance B converges when its entry's TTL ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_instances_converge_within_the_trigger_ttl() {
    let short_ttl = [("HOOKGATE_CACHE_TRIGGER_TTL_S", "1")];
    let a = TestGateway::start_with(UpstreamBehavior::Echo, &short_ttl).await;
    let b = a.another_instance(&short_ttl).await;
    let f = a.fixture().await;
    let key = [("x-api-key", f.api_key.as_str())];
    assert_eq!(
        status_of(b.public_addr, &f.trigger_a, &key).await,
        StatusCode::OK
    );

    revoke(a.admin, &f.api_method).await;

    assert_eq!(
        status_of(a.public, &f.trigger_a, &key).await,
        StatusCode::NOT_FOUND
    );
    delay_until_rejected("no redis, instance B", b.public_addr, &f.trigger_a, &key).await;
}

/// While Redis is down instances fall back to the TTL bound; once it is back they
/// resubscribe and a later revocation travels by pub/sub again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_falls_back_to_the_ttl_and_recovery_restores_pubsub() {
    let mut redis = PrivateRedis::start().await;
    let url = redis.url();
    let (a, b) = two_instances_with_redis(&url, &[("HOOKGATE_CACHE_TRIGGER_TTL_S", "2")]).await;
    let f = a.fixture().await;
    let later = KeyedTrigger::create(a.admin).await;
    let first = [("x-api-key", f.api_key.as_str())];
    assert_eq!(
        status_of(b.public_addr, &f.trigger_a, &first).await,
        StatusCode::OK
    );

    // Redis dies: the write still lands and applies here at once; B waits out its TTL.
    redis.kill();
    let write = Instant::now();
    revoke(a.admin, &f.api_method).await;
    println!(
        "revocation with Redis down took {} ms",
        write.elapsed().as_millis()
    );
    assert_eq!(
        status_of(a.public, &f.trigger_a, &first).await,
        StatusCode::NOT_FOUND
    );
    delay_until_rejected(
        "redis down, instance B",
        b.public_addr,
        &f.trigger_a,
        &first,
    )
    .await;

    // Redis is back: both resubscribe; pub/sub carries A's very next write.
    redis.restart().await;
    wait_subscribed(a.admin).await;
    wait_subscribed(b.admin_addr).await;
    let t = later;
    assert_eq!(t.status_on(b.public_addr).await, StatusCode::OK);
    let received = metric(b.admin_addr, "hookgate_invalidations_received_total").await;
    revoke(a.admin, &t.method).await;
    let key = [("x-api-key", t.api_key.as_str())];
    delay_until_rejected("redis back, instance B", b.public_addr, &t.trigger, &key).await;
    let now_received = metric(b.admin_addr, "hookgate_invalidations_received_total").await;
    assert!(
        now_received > received,
        "instance B converged without receiving the invalidation"
    );
}

/// After every Redis outage (not just the first) an instance resubscribes promptly and
/// drops its cache, so a revocation made the moment Redis is back — whose message the
/// other instance may never get — still takes effect there long before the 30 s TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_catches_up_after_every_redis_outage() {
    let mut redis = PrivateRedis::start().await;
    let url = redis.url();
    let long_ttl = [("HOOKGATE_CACHE_TRIGGER_TTL_S", "30")];
    let (a, b) = two_instances_with_redis(&url, &long_ttl).await;

    for round in 0..3 {
        let t = KeyedTrigger::create(a.admin).await;
        assert_eq!(t.status_on(b.public_addr).await, StatusCode::OK);

        redis.kill();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        redis.restart().await;
        revoke(a.admin, &t.method).await;

        let key = [("x-api-key", t.api_key.as_str())];
        let label = format!("outage {round}, revoked as Redis came back, instance B");
        delay_until_rejected(&label, b.public_addr, &t.trigger, &key).await;
        let admin = b.admin_addr;
        let resubscribed = time_until(CONVERGENCE_BOUND, || async move {
            readiness(admin).await.1["checks"]["redis"] == "ok"
        })
        .await
        .expect("instance B resubscribes");
        println!(
            "outage {round}: instance B subscribed again (+{} ms)",
            resubscribed.as_millis()
        );
        wait_subscribed(a.admin).await;
    }
}

/// C32: a scheduled method is rejected before and after a restart of the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_method_stays_rejected_across_a_restart() {
    let db = TestDb::create().await;
    let upstream = Upstream::start(UpstreamBehavior::Echo).await;
    let first = ServeProcess::start(&db.url, &upstream.url(), &[]).await;
    let t = KeyedTrigger::create(first.admin).await;
    assert_eq!(t.status_on(first.public).await, StatusCode::OK);

    revoke(first.admin, &t.method).await;
    assert_eq!(t.status_on(first.public).await, StatusCode::NOT_FOUND);
    drop(first);

    let second = ServeProcess::start(&db.url, &upstream.url(), &[]).await;
    assert_eq!(t.status_on(second.public).await, StatusCode::NOT_FOUND);
    let path = format!("/v1/auth-methods/{}", t.method);
    let (status, method) = admin_request(second.admin, "GET", &path, None, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(method["scheduled_deletion"].is_string(), "{method}");
    assert_eq!(upstream.records().len(), 1);
}

/// C32 in process, with the Basic credential warm in the verified cache before the
/// revocation.
#[tokio::test]
async fn a_scheduled_basic_method_stays_rejected_after_an_in_process_restart() {
    let mut gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let basic = [("authorization", HOOK_BASIC)];
    assert_eq!(
        status_of(gw.public, &f.trigger_a, &basic).await,
        StatusCode::OK
    );

    revoke(gw.admin, &f.basic_method).await;
    assert_eq!(
        status_of(gw.public, &f.trigger_a, &basic).await,
        StatusCode::NOT_FOUND
    );
    gw.stop().await;

    let again = gw.another_instance(&[]).await;
    assert_eq!(
        status_of(again.public_addr, &f.trigger_a, &basic).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(gw.upstream.records().len(), 1);
}
