//! Micro benchmarks of the trigger snapshot cache: a warm hit (what every webhook
//! request pays), a negative hit, and, for scale, a miss that reads Postgres.
//!
//! Filling the cache needs a store, so this bench creates a database of its own on the
//! Postgres named by `HOOKGATE_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), fills it with `generate_series`, and
//! drops it at the end. Without a reachable Postgres it prints why and measures nothing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};
use tokio::runtime::Runtime;
use uuid::Uuid;

use hookgate::cache::{Lookup, TriggerCache};
use hookgate::config::Settings;
use hookgate::model::TriggerId;
use hookgate::store::Store;
use hookgate::telemetry::Metrics;

/// Triggers in the bench database, each with one API-key and one Basic method;
/// `HOOKGATE_BENCH_TRIGGERS` overrides (e.g. 100000 for the memory figure).
const TRIGGERS: usize = 1000;

fn trigger_count() -> usize {
    std::env::var("HOOKGATE_BENCH_TRIGGERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(TRIGGERS)
        .clamp(1, 1_000_000)
}

/// This process's resident set, in KiB (Linux), to show what warming the cache costs.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Any PHC string will do: lookups never verify it, they only carry it.
const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA\
                   $ZmFrZS1oYXNoLWZvci1iZW5jaG1hcmtzLW9ubHkAAAAA";

fn server_url() -> String {
    std::env::var("HOOKGATE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of the bench's own, dropped by `drop_database`.
struct BenchDb {
    name: String,
    url: String,
}

async fn create_database() -> Result<BenchDb, sqlx::Error> {
    let server = server_url();
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&server)
        .await?;
    let name = format!("hookgate_bench_{}", Uuid::new_v4().simple());
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await?;
    admin.close().await;
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    Ok(BenchDb {
        url: format!("{base}/{name}"),
        name,
    })
}

async fn drop_database(db: &BenchDb) {
    let Ok(admin) = PgPool::connect(&server_url()).await else {
        eprintln!("cannot reach Postgres to drop {}", db.name);
        return;
    };
    let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name);
    if let Err(error) = sqlx::query(AssertSqlSafe(drop)).execute(&admin).await {
        eprintln!("cannot drop {}: {error}", db.name);
    }
    admin.close().await;
}

/// `count` triggers of their own projects, each with an API-key and a Basic method.
async fn fill(pool: &PgPool, count: usize) -> Result<Vec<TriggerId>, sqlx::Error> {
    sqlx::query(
        "INSERT INTO triggers (id, project_id, auth_required)
         SELECT gen_random_uuid(), gen_random_uuid(), true FROM generate_series(1, $1)",
    )
    .bind(i64::try_from(count).unwrap_or(i64::MAX))
    .execute(pool)
    .await?;
    sqlx::query(
        "WITH m AS (
           INSERT INTO webhook_auth_methods
                  (id, project_id, name, auth_type, api_key_sha256, api_key_hint)
           SELECT gen_random_uuid(), project_id, 'api', 'api',
                  sha256(convert_to('key-' || id::text, 'UTF8')), 'abcd'
             FROM triggers
           RETURNING id, project_id)
         INSERT INTO trigger_auth_methods (trigger_id, auth_method_id, project_id)
         SELECT t.id, m.id, m.project_id FROM m JOIN triggers t USING (project_id)",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "WITH m AS (
           INSERT INTO webhook_auth_methods
                  (id, project_id, name, auth_type, username, password_hash)
           SELECT gen_random_uuid(), project_id, 'basic', 'basic', 'user', $1
             FROM triggers
           RETURNING id, project_id)
         INSERT INTO trigger_auth_methods (trigger_id, auth_method_id, project_id)
         SELECT t.id, m.id, m.project_id FROM m JOIN triggers t USING (project_id)",
    )
    .bind(PHC)
    .execute(pool)
    .await?;
    // Fresh tables have no statistics; without them the snapshot query may scan.
    sqlx::query("ANALYZE").execute(pool).await?;
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM triggers ORDER BY id")
        .fetch_all(pool)
        .await?;
    Ok(ids.into_iter().map(TriggerId).collect())
}

fn settings(url: &str) -> Settings {
    // Long TTLs so that no entry expires while criterion measures it.
    let text = format!(
        "[database]\nurl = {url:?}\nmax_connections = 4\n\
         [cache]\ntrigger_ttl_s = 3600\nnegative_ttl_s = 3600\nstale_for_s = 3600\n"
    );
    Settings::from_toml(&text, &BTreeMap::new()).expect("bench settings")
}

fn bench_lookups(c: &mut Criterion, runtime: &Runtime, cache: &TriggerCache, ids: &[TriggerId]) {
    let mut group = c.benchmark_group("trigger_cache");
    let hot = ids[0];
    group.bench_function("hit", |b| {
        b.to_async(runtime).iter(|| async {
            let found = cache.trigger(black_box(hot)).await;
            debug_assert!(matches!(found, Lookup::Found(_)));
            found
        })
    });
    group.bench_with_input(
        BenchmarkId::new("hit_round_robin", ids.len()),
        ids,
        |b, ids| {
            let mut next = 0usize;
            b.to_async(runtime).iter(|| {
                next = (next + 1) % ids.len();
                let id = ids[next];
                async move { cache.trigger(black_box(id)).await }
            })
        },
    );
    let unknown = TriggerId(Uuid::new_v4());
    runtime.block_on(cache.trigger(unknown));
    group.bench_function("negative_hit", |b| {
        b.to_async(runtime).iter(|| async {
            let found = cache.trigger(black_box(unknown)).await;
            debug_assert!(matches!(found, Lookup::Unknown));
            found
        })
    });
    // Invalidate then read again: one generation bump plus two queries on loopback.
    group.sample_size(20);
    group.bench_function("miss_store_read", |b| {
        b.to_async(runtime).iter(|| async {
            cache.invalidate(&[hot]).await;
            cache.trigger(black_box(hot)).await
        })
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let runtime = Runtime::new().expect("runtime");
    let db = match runtime.block_on(create_database()) {
        Ok(db) => db,
        Err(error) => {
            eprintln!(
                "trigger_cache: skipped, no Postgres at {}: {error}",
                server_url()
            );
            return;
        }
    };
    let run = runtime.block_on(async {
        let settings = settings(&db.url);
        let store = Store::connect(&settings.database).map_err(|e| e.to_string())?;
        store.migrate().await.map_err(|e| e.to_string())?;
        let ids = fill(store.pool(), trigger_count())
            .await
            .map_err(|e| e.to_string())?;
        let cache = TriggerCache::new(&settings.cache, store.clone(), Arc::new(Metrics::new()));
        let before = rss_kib();
        for id in &ids {
            match cache.trigger(*id).await {
                Lookup::Found(snapshot) if snapshot.api_keys.len() == 1 => {}
                other => return Err(format!("warming {id}: {other:?}")),
            }
        }
        cache.run_pending_tasks().await;
        if let (Some(before), Some(after)) = (before, rss_kib()) {
            let grown = after.saturating_sub(before) * 1024;
            println!(
                "trigger_cache: warming {} triggers (2 methods each) grew RSS by {:.1} MB, \
                 {} bytes per trigger",
                ids.len(),
                grown as f64 / 1e6,
                grown / ids.len() as u64
            );
        }
        Ok::<_, String>((store, cache, ids))
    });
    match run {
        Ok((store, cache, ids)) => {
            bench_lookups(&mut c, &runtime, &cache, &ids);
            runtime.block_on(store.pool().close());
        }
        Err(error) => eprintln!("trigger_cache: setup failed: {error}"),
    }
    runtime.block_on(drop_database(&db));
    c.final_summary();
}
