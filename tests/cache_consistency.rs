//! The caches never outlive the truth: the verified-credential cache binds the password,
//! concurrent first requests share one argon2 run, admin writes clear what they touch
//! (negative entries included) before they return, and a request sent after a
//! revocation returns is never let through (SPEC §6; cases C27, C29).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod instances;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use http::StatusCode;
use instances::*;
use serde_json::json;

const ARGON2_RUNS: &str = "hookgate_argon2_verifications_total";

/// C27: a verified password does not open the door to another password.
#[tokio::test]
async fn the_verified_cache_binds_the_password() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let good = [("authorization", HOOK_BASIC)];
    let wrong = [("authorization", "Basic aG9vazp3cm9uZy1wYXNz")];
    assert_eq!(
        status_of(gw.public, &f.trigger_a, &good).await,
        StatusCode::OK
    );

    let runs = gw.metric(ARGON2_RUNS).await;
    assert_eq!(
        status_of(gw.public, &f.trigger_a, &wrong).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        gw.metric(ARGON2_RUNS).await - runs,
        1.0,
        "a wrong password is verified, never taken from the cache"
    );

    // The right one again comes from the cache: no new argon2 run.
    let runs = gw.metric(ARGON2_RUNS).await;
    assert_eq!(
        status_of(gw.public, &f.trigger_a, &good).await,
        StatusCode::OK
    );
    assert_eq!(gw.metric(ARGON2_RUNS).await - runs, 0.0);
    assert_eq!(gw.upstream.records().len(), 2);
}

/// Sends `n` requests with one Basic credential at once; returns their statuses.
async fn concurrent_basic(gw: &TestGateway, trigger: &str, n: usize) -> Vec<StatusCode> {
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..n {
        let public = gw.public;
        let path = format!("/i/{trigger}");
        requests.spawn(async move {
            send(
                public,
                "POST",
                &path,
                &[("authorization", HOOK_BASIC)],
                "{}",
            )
            .await
            .status
        });
    }
    requests.join_all().await
}

async fn first_requests_run_argon2_once(n: usize) {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let runs = gw.metric(ARGON2_RUNS).await;

    let statuses = concurrent_basic(&gw, &f.trigger_a, n).await;

    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(gw.upstream.records().len(), n);
    let ran = gw.metric(ARGON2_RUNS).await - runs;
    println!("{n} concurrent first requests: {ran} argon2 verification(s)");
    assert_eq!(ran, 1.0, "concurrent first requests share one verification");
}

/// C29 with 64 concurrent first requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_first_requests_with_one_credential_run_argon2_once() {
    first_requests_run_argon2_once(64).await;
}

/// C29 as written: 200 concurrent first requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_first_requests_with_one_credential_run_argon2_once() {
    first_requests_run_argon2_once(200).await;
}

/// An unknown id is cached negatively; creating the trigger clears that entry at once.
#[tokio::test]
async fn creating_a_trigger_clears_its_negative_entry() {
    let gw = TestGateway::start_with(
        UpstreamBehavior::Echo,
        &[("HOOKGATE_CACHE_NEGATIVE_TTL_S", "60")],
    )
    .await;
    let id = uuid::Uuid::new_v4().to_string();
    assert_eq!(status_of(gw.public, &id, &[]).await, StatusCode::NOT_FOUND);
    assert_eq!(status_of(gw.public, &id, &[]).await, StatusCode::NOT_FOUND);

    gw.put_trigger(&id, &uuid::Uuid::new_v4().to_string()).await;

    assert_eq!(status_of(gw.public, &id, &[]).await, StatusCode::OK);
}

/// A cached open trigger that gets its first method is protected from that write on.
#[tokio::test]
async fn attaching_a_first_method_protects_a_cached_open_trigger_at_once() {
    let gw = TestGateway::start().await;
    let project = uuid::Uuid::new_v4().to_string();
    gw.put_trigger(TRIGGER_A, &project).await;
    assert_eq!(status_of(gw.public, TRIGGER_A, &[]).await, StatusCode::OK);

    gw.create_method(
        &project,
        json!({"name": "key", "auth_type": "api", "trigger_id": TRIGGER_A}),
    )
    .await;

    assert_eq!(
        status_of(gw.public, TRIGGER_A, &[]).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(gw.upstream.records().len(), 1);
}

/// What one hammering request saw.
struct Sent {
    at: Instant,
    status: StatusCode,
}

/// Sends requests with `key` from `workers` tasks until `stop` is set.
async fn hammer(
    public: std::net::SocketAddr,
    trigger: String,
    key: String,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> Vec<Sent> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (trigger, key, stop) = (trigger.clone(), key.clone(), stop.clone());
        tasks.spawn(async move {
            let mut sent = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let at = Instant::now();
                let status = status_of(public, &trigger, &[("x-api-key", &key)]).await;
                sent.push(Sent { at, status });
            }
            sent
        });
    }
    tasks.join_all().await.into_iter().flatten().collect()
}

/// Race guard, end to end: with fills happening all the time (a 1 s TTL and steady
/// traffic), no request sent after a revocation returns is let through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_sent_after_a_revocation_returns_is_accepted() {
    let gw = TestGateway::start_with(
        UpstreamBehavior::Echo,
        &[("HOOKGATE_CACHE_TRIGGER_TTL_S", "1")],
    )
    .await;
    let f = gw.fixture().await;

    for round in 0..5 {
        let method = gw
            .create_method(
                &f.project,
                json!({"name": format!("round {round}"), "auth_type": "api",
                    "trigger_id": f.trigger_a}),
            )
            .await;
        let key = method["api_key"].as_str().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let traffic = tokio::spawn(hammer(gw.public, f.trigger_a.clone(), key, 6, stop.clone()));

        tokio::time::sleep(Duration::from_millis(150 + 100 * round)).await;
        revoke(gw.admin, method["id"].as_str().unwrap()).await;
        let written = Instant::now();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        stop.store(true, Ordering::Relaxed);
        let sent = traffic.await.unwrap();

        let after: Vec<&Sent> = sent.iter().filter(|s| s.at > written).collect();
        let accepted_before = sent
            .iter()
            .filter(|s| s.at <= written && s.status == StatusCode::OK)
            .count();
        println!(
            "round {round}: {accepted_before} accepted before the write, {} sent after it",
            after.len()
        );
        assert!(accepted_before > 0, "the key worked before its revocation");
        assert!(!after.is_empty());
        // Past ten failures the hammering client is throttled: 429 is a rejection too.
        for s in after {
            assert_ne!(
                s.status,
                StatusCode::OK,
                "accepted after the write returned"
            );
        }
        let expected = [
            StatusCode::OK,
            StatusCode::NOT_FOUND,
            StatusCode::TOO_MANY_REQUESTS,
        ];
        for s in &sent {
            assert!(expected.contains(&s.status), "{}", s.status);
        }
    }
}
