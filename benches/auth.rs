//! Micro benchmarks of the request-path authentication pieces: Basic header parsing,
//! API-key verification, the cached Basic path (HMAC digest + moka lookup), and
//! argon2id at the default parameters.
//!
//! Run with `cargo bench --bench auth`; `benches/README.md` explains the groups.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::PasswordVerifier as _;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use criterion::{BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderValue};
use sha2::Sha256;
use tokio::runtime::Runtime;
use uuid::Uuid;

use hookgate::auth::credential::{self, parse_basic};
use hookgate::auth::password::PasswordHasher;
use hookgate::auth::throttle::Throttle;
use hookgate::auth::{Authenticator, Decision};
use hookgate::config::Settings;
use hookgate::model::{AuthMethodId, ProjectId, TriggerId};
use hookgate::secret::{Digest32, SecretBytes, generate_api_key, random_bytes, sha256};
use hookgate::snapshot::{ApiKeyVerifier, BasicVerifier, TriggerSnapshot};
use hookgate::telemetry::Metrics;

const USERNAME: &str = "partner-acme";
const PASSWORD: &str = "correct horse battery staple";
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn basic_header(username: &str, password: &[u8]) -> String {
    let mut plain = username.as_bytes().to_vec();
    plain.push(b':');
    plain.extend_from_slice(password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(plain)
    )
}

/// Settings with the shipped defaults (argon2id m=19456 KiB, t=2, p=1).
fn default_settings() -> Settings {
    Settings::from_toml("", &BTreeMap::new()).expect("the defaults are valid")
}

fn bench_parse_basic(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_basic");
    let typical = basic_header(USERNAME, PASSWORD.as_bytes());
    // Close to the 4 KiB token limit: 3 000 password bytes decode to a 4 000-byte token.
    let long = basic_header(USERNAME, &[b'p'; 3000]);
    let inputs = [
        ("typical", typical.clone()),
        ("near_4KiB", long),
        // URL-safe alphabet: rejected by the alphabet scan before decoding.
        (
            "malformed",
            "Basic cGFydG5lci1hY21lOj8_Pz8-Pz8_".to_string(),
        ),
        ("bearer", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig".to_string()),
    ];
    for (name, value) in &inputs {
        group.throughput(Throughput::Bytes(value.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), value, |b, value| {
            b.iter(|| parse_basic(black_box(value.as_bytes())))
        });
    }
    group.finish();

    // `presented` reads both credential headers of a request, as the proxy does.
    let mut group = c.benchmark_group("presented");
    let mut api = HeaderMap::new();
    api.insert("x-api-key", HeaderValue::from_static("0123456789abcdef"));
    let mut basic = HeaderMap::new();
    basic.insert(
        "authorization",
        HeaderValue::from_str(&typical).expect("header"),
    );
    for (name, headers) in [("x-api-key", &api), ("basic", &basic)] {
        group.bench_function(name, |b| {
            b.iter(|| credential::presented(black_box(headers)))
        });
    }
    group.finish();
}

fn bench_api_key(c: &mut Criterion) {
    let mut group = c.benchmark_group("api_key_verify");
    let key = generate_api_key();
    let presented = SecretBytes::new(key.expose().as_bytes().to_vec());
    // The snapshot's verifiers: the matching digest last, so every one is compared.
    for methods in [1usize, 8] {
        let mut digests: Vec<Digest32> = (0..methods - 1)
            .map(|i| sha256(format!("other-key-{i}").as_bytes()))
            .collect();
        digests.push(sha256(key.expose().as_bytes()));
        group.bench_with_input(
            BenchmarkId::new("sha256_ct_eq", methods),
            &digests,
            |b, digests| {
                b.iter(|| {
                    // The same shape as the Authenticator's scan: digest once, compare all.
                    let digest = sha256(black_box(presented.expose()));
                    let mut matched = None;
                    for (i, stored) in digests.iter().enumerate() {
                        if *stored == digest {
                            matched = Some(i);
                        }
                    }
                    matched
                })
            },
        );
    }
    group.finish();
}

/// A trigger with one API-key method and one Basic method, like the load harness uses.
struct Fixture {
    snapshot: TriggerSnapshot,
    api_key: String,
}

fn fixture(runtime: &Runtime, passwords: &PasswordHasher) -> Fixture {
    let api_key = generate_api_key().expose().to_string();
    let password_hash = runtime
        .block_on(passwords.hash(PASSWORD.as_bytes()))
        .expect("hash");
    let snapshot = TriggerSnapshot {
        trigger_id: TriggerId(Uuid::new_v4()),
        project_id: ProjectId(Uuid::new_v4()),
        enabled: true,
        auth_required: true,
        upstream: None,
        api_keys: vec![ApiKeyVerifier {
            method_id: AuthMethodId(Uuid::new_v4()),
            digest: sha256(api_key.as_bytes()),
        }],
        basics: vec![BasicVerifier {
            method_id: AuthMethodId(Uuid::new_v4()),
            version: 1,
            username: USERNAME.as_bytes().to_vec(),
            password_hash: Arc::from(password_hash),
        }],
        defect: None,
    };
    Fixture { snapshot, api_key }
}

fn bench_authenticate(c: &mut Criterion) {
    let runtime = Runtime::new().expect("runtime");
    let settings = default_settings();
    let metrics = Arc::new(Metrics::new());
    let passwords = PasswordHasher::new(&settings.auth, metrics.clone()).expect("hasher");
    let throttle = Throttle::new(&settings.auth, "bench", None);
    let auth = Authenticator::new(&settings, passwords.clone(), throttle, metrics);
    let Fixture { snapshot, api_key } = fixture(&runtime, &passwords);

    let mut with_key = HeaderMap::new();
    with_key.insert("x-api-key", HeaderValue::from_str(&api_key).expect("key"));
    let mut with_basic = HeaderMap::new();
    with_basic.insert(
        "authorization",
        HeaderValue::from_str(&basic_header(USERNAME, PASSWORD.as_bytes())).expect("basic"),
    );
    // The first Basic request runs argon2 once and fills the verified cache.
    let first = runtime.block_on(auth.authenticate(&snapshot, &with_basic, CLIENT));
    assert!(matches!(first, Decision::Allow(_)), "{first:?}");

    let mut group = c.benchmark_group("authenticate");
    for (name, headers) in [("api_key", &with_key), ("basic_cached", &with_basic)] {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let decision = auth
                    .authenticate(&snapshot, black_box(headers), CLIENT)
                    .await;
                debug_assert!(matches!(decision, Decision::Allow(_)));
                decision
            })
        });
    }
    group.finish();
}

/// The pieces of the cached Basic path, rebuilt from public crates: the keyed digest
/// of (method id, version, password) and the moka lookup. `Authenticator` keeps both
/// private; `authenticate/basic_cached` above measures them together.
fn bench_verified_cache(c: &mut Criterion) {
    let runtime = Runtime::new().expect("runtime");
    let key: [u8; 32] = random_bytes();
    let method = Uuid::new_v4();
    let digest = |password: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(method.as_bytes());
        mac.update(&1i64.to_be_bytes());
        mac.update(password);
        let bytes: [u8; 32] = mac.finalize().into_bytes().into();
        Digest32::from_bytes(bytes)
    };

    let mut group = c.benchmark_group("verified_cache");
    group.bench_function("hmac_digest", |b| {
        b.iter(|| digest(black_box(PASSWORD.as_bytes())))
    });
    for entries in [1usize, 100_000] {
        let cache: moka::future::Cache<Digest32, ()> = moka::future::Cache::builder()
            .max_capacity(1_000_000)
            .time_to_live(Duration::from_secs(900))
            .build();
        runtime.block_on(async {
            for i in 1..entries {
                cache.insert(digest(format!("pw-{i}").as_bytes()), ()).await;
            }
            cache.insert(digest(PASSWORD.as_bytes()), ()).await;
            cache.run_pending_tasks().await;
        });
        let wanted = digest(PASSWORD.as_bytes());
        group.bench_with_input(
            BenchmarkId::new("contains_key", entries),
            &cache,
            |b, cache| b.iter(|| cache.contains_key(black_box(&wanted))),
        );
        group.bench_with_input(
            BenchmarkId::new("digest_and_lookup", entries),
            &cache,
            |b, cache| b.iter(|| cache.contains_key(&digest(black_box(PASSWORD.as_bytes())))),
        );
    }
    group.finish();
}

fn bench_argon2(c: &mut Criterion) {
    let settings = default_settings();
    let auth = &settings.auth;
    let params = Params::new(
        auth.argon2_memory_kib,
        auth.argon2_iterations,
        auth.argon2_parallelism,
        None,
    )
    .expect("params");
    let runtime = Runtime::new().expect("runtime");
    let metrics = Arc::new(Metrics::new());
    let passwords = PasswordHasher::new(auth, metrics).expect("hasher");
    let phc: Arc<str> = Arc::from(
        runtime
            .block_on(passwords.hash(PASSWORD.as_bytes()))
            .expect("hash"),
    );
    assert!(phc.contains(&format!(
        "m={},t={},p={}",
        auth.argon2_memory_kib, auth.argon2_iterations, auth.argon2_parallelism
    )));

    let mut group = c.benchmark_group("argon2id_verify");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    let name = format!(
        "m{}_t{}_p{}",
        auth.argon2_memory_kib, auth.argon2_iterations, auth.argon2_parallelism
    );
    group.bench_function(BenchmarkId::new("direct", &name), |b| {
        let parsed = PasswordHash::new(&phc).expect("phc");
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        b.iter(|| {
            argon2
                .verify_password(black_box(PASSWORD.as_bytes()), &parsed)
                .is_ok()
        })
    });
    // Through the bounded pool: semaphore, spawn_blocking, metrics.
    group.bench_function(BenchmarkId::new("pool", &name), |b| {
        b.to_async(&runtime).iter(|| async {
            passwords
                .verify(black_box(PASSWORD.as_bytes()), phc.clone())
                .await
                .expect("slot")
        })
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_parse_basic(&mut c);
    bench_api_key(&mut c);
    bench_authenticate(&mut c);
    bench_verified_cache(&mut c);
    bench_argon2(&mut c);
    c.final_summary();
}
