//! The audit trail and purge (SPEC §4 and §5): trigger events, the audit query with
//! its order, cursor and filters, the actor and the absence of secrets in every event,
//! purge on demand and on its timer, and two real `hookgate` processes purging at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use http::StatusCode;
use serde_json::{Value, json};
use sha2::Digest as _;

const BOOTSTRAP: &str = "00000000-0000-0000-0000-000000000000";

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// One page of `GET /v1/audit-events?{query}`: the events and the next cursor.
async fn audit_page(admin: SocketAddr, query: &str) -> (Vec<Value>, Value) {
    let path = format!("/v1/audit-events?{query}");
    let (status, body) = admin_request(admin, "GET", &path, None, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    (
        body["items"].as_array().unwrap().clone(),
        body["next"].clone(),
    )
}

async fn all_events(gw: &TestGateway) -> Vec<Value> {
    let (events, next) = audit_page(gw.admin, "limit=500").await;
    assert_eq!(next, Value::Null, "tests write fewer than 500 events");
    events
}

async fn events_of(gw: &TestGateway, item: &str) -> Vec<Value> {
    audit_page(gw.admin, &format!("item_id={item}&limit=500"))
        .await
        .0
}

fn event_names(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

/// (item id, event name) of each event, for comparing whole trails.
fn trail(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            let item = e["item_id"].as_str().unwrap().to_string();
            (item, e["event"].as_str().unwrap().to_string())
        })
        .collect()
}

async fn create_api(gw: &TestGateway, project: &str, name: &str, trigger: Option<&str>) -> Value {
    let mut body = json!({"name": name, "auth_type": "api"});
    if let Some(trigger) = trigger {
        body["trigger_id"] = json!(trigger);
    }
    gw.create_method(project, body).await
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().unwrap().to_string()
}

async fn schedule(admin: SocketAddr, method: &str) -> (StatusCode, Value) {
    let path = format!("/v1/auth-methods/{method}/schedule-deletion");
    admin_request(admin, "POST", &path, None, Some(ADMIN_TOKEN)).await
}

async fn purge(admin: SocketAddr) -> Value {
    let (status, counts) = admin_request(admin, "POST", "/v1/purge", None, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{counts}");
    counts
}

async fn get_method(gw: &TestGateway, method: &str) -> (StatusCode, Value) {
    gw.admin("GET", &format!("/v1/auth-methods/{method}"), None)
        .await
}

async fn start_due_at_once() -> TestGateway {
    let extra = [("HOOKGATE_PURGE_DELETED_AFTER_DAYS", "0")];
    TestGateway::start_with(UpstreamBehavior::Echo, &extra).await
}

// ---- purge ----------------------------------------------------------------------------

#[tokio::test]
async fn purge_removes_due_methods_with_purged_events_and_reports_counts() {
    let gw = start_due_at_once().await;
    let f = gw.fixture().await;
    let keeper = create_api(&gw, &f.project, "keeper", None).await;
    for method in [&f.api_method, &f.basic_method] {
        let (status, scheduled) = schedule(gw.admin, method).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            scheduled["scheduled_deletion"], scheduled["updated_at"],
            "0 days: due at once"
        );
    }

    let counts = purge(gw.admin).await;
    assert_eq!(
        counts,
        json!({"disassociated_count": 0, "deleted_count": 2})
    );

    for method in [&f.api_method, &f.basic_method] {
        let (status, _) = get_method(&gw, method).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let events = events_of(&gw, method).await;
        assert_eq!(events[0]["event"], "purged");
        assert_eq!(events[0]["changes"]["after"], Value::Null);
        assert_eq!(events[0]["actor"]["id"], BOOTSTRAP);
        assert_eq!(events[1]["event"], "deleted");
    }
    let events = events_of(&gw, &f.basic_method).await;
    assert_eq!(
        events[0]["changes"]["before"],
        json!({"name": "hook basic", "auth_type": "basic"})
    );
    let (status, _) = get_method(&gw, &id_of(&keeper)).await;
    assert_eq!(status, StatusCode::OK);

    // Nothing left to do: a second run removes nothing and writes nothing.
    let before = all_events(&gw).await.len();
    let counts = purge(gw.admin).await;
    assert_eq!(
        counts,
        json!({"disassociated_count": 0, "deleted_count": 0})
    );
    assert_eq!(all_events(&gw).await.len(), before);
}

#[tokio::test]
async fn purge_counts_due_methods_that_still_had_attachments() {
    let gw = start_due_at_once().await;
    let f = gw.fixture().await;
    schedule(gw.admin, &f.api_method).await;

    // Scheduling detaches, so only a row written around the API can be left attached.
    let pool = gw.db.pool().await;
    sqlx::query(
        "INSERT INTO trigger_auth_methods (trigger_id, auth_method_id, project_id)
         VALUES ($1, $2, $3)",
    )
    .bind(uuid::Uuid::parse_str(&f.trigger_b).unwrap())
    .bind(uuid::Uuid::parse_str(&f.api_method).unwrap())
    .bind(uuid::Uuid::parse_str(&f.project).unwrap())
    .execute(&pool)
    .await
    .unwrap();

    let counts = purge(gw.admin).await;
    assert_eq!(
        counts,
        json!({"disassociated_count": 1, "deleted_count": 1})
    );
    let events = events_of(&gw, &f.api_method).await;
    assert_eq!(
        event_names(&events[..2]),
        ["purged", "removed_from_trigger"]
    );
    assert_eq!(
        events[1]["changes"],
        json!({"before": {"trigger_id": f.trigger_b}, "after": {"trigger_id": null}})
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM trigger_auth_methods")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 2, "the fixture's own attachments stay");
}

#[tokio::test]
async fn purge_leaves_methods_that_are_not_yet_due() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    schedule(gw.admin, &f.api_method).await;

    let counts = purge(gw.admin).await;
    assert_eq!(
        counts,
        json!({"disassociated_count": 0, "deleted_count": 0})
    );
    let (status, method) = get_method(&gw, &f.api_method).await;
    assert_eq!(status, StatusCode::OK);
    assert!(method["scheduled_deletion"].is_string());
}

#[tokio::test]
async fn the_purge_timer_removes_a_due_method_by_itself() {
    let extra = [
        ("HOOKGATE_PURGE_DELETED_AFTER_DAYS", "0"),
        ("HOOKGATE_PURGE_INTERVAL_S", "1"),
    ];
    let gw = TestGateway::start_with(UpstreamBehavior::Echo, &extra).await;
    let f = gw.fixture().await;
    schedule(gw.admin, &f.api_method).await;

    let deadline = Instant::now() + Duration::from_secs(30);
    while get_method(&gw, &f.api_method).await.0 != StatusCode::NOT_FOUND {
        assert!(
            Instant::now() < deadline,
            "the timer never purged the method"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The scheduler is nobody: its event has no actor. Active methods stay.
    let events = events_of(&gw, &f.api_method).await;
    assert_eq!(events[0]["event"], "purged");
    assert_eq!(events[0]["actor"], Value::Null);
    assert_eq!(get_method(&gw, &f.basic_method).await.0, StatusCode::OK);
    assert!(gw.metric("hookgate_purge_deleted_total").await >= 1.0);
}

/// `hookgate serve` children of one test, killed and reaped when it ends, pass or fail.
struct Instances {
    children: Vec<Child>,
    files: Vec<PathBuf>,
}

impl Drop for Instances {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
    }
}

impl Instances {
    fn new() -> Self {
        let config = std::env::temp_dir().join(format!("hookgate-empty-{}.toml", new_id()));
        std::fs::write(&config, "").expect("write an empty config file");
        Self {
            children: Vec::new(),
            files: vec![config],
        }
    }

    /// Starts one process on fresh loopback ports; returns its admin address.
    fn spawn(&mut self, database_url: &str, extra: &[(&str, &str)]) -> SocketAddr {
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let public = format!("127.0.0.1:{}", free_port());
        let log = std::env::temp_dir().join(format!("hookgate-{}.log", new_id()));
        let log_file = std::fs::File::create(&log).expect("create a log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookgate"));
        command
            .arg("serve")
            .env_clear()
            .env("HOOKGATE_CONFIG", &self.files[0])
            .env("DATABASE_URL", database_url)
            .env("HOOKGATE_PUBLIC_LISTEN", public)
            .env("HOOKGATE_ADMIN_LISTEN", admin.to_string())
            .env("HOOKGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("HOOKGATE_AUTH_ARGON2_MEMORY_KIB", "1024")
            .env("HOOKGATE_AUTH_ARGON2_ITERATIONS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        for (key, value) in extra {
            command.env(key, value);
        }
        self.children
            .push(command.spawn().expect("start hookgate serve"));
        self.files.push(log);
        admin
    }

    /// Waits (bounded) until every instance's `/readyz` says 200.
    async fn wait_ready(&mut self, admins: &[SocketAddr]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for (i, admin) in admins.iter().enumerate() {
            loop {
                if let Ok(Some(status)) = self.children[i].try_wait() {
                    panic!("instance {i} exited with {status}: {}", self.log(i));
                }
                if tokio::net::TcpStream::connect(admin).await.is_ok()
                    && send(*admin, "GET", "/readyz", &[], "").await.status == StatusCode::OK
                {
                    break;
                }
                assert!(Instant::now() < deadline, "not ready: {}", self.log(i));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.files[i + 1]).unwrap_or_default()
    }
}

#[tokio::test]
async fn two_instances_purging_at_once_remove_each_method_exactly_once() {
    const METHODS: usize = 40;
    let db = TestDb::create().await;
    let mut instances = Instances::new();
    let extra = [
        ("HOOKGATE_PURGE_INTERVAL_S", "1"),
        ("HOOKGATE_PURGE_DELETED_AFTER_DAYS", "0"),
    ];
    // Started together: they also race to apply the migrations.
    let admins = [
        instances.spawn(&db.url, &extra),
        instances.spawn(&db.url, &extra),
    ];
    instances.wait_ready(&admins).await;

    // Methods made on either instance, half of them attached to a trigger.
    let project = new_id();
    let trigger = new_id();
    let body = json!({"project_id": project});
    let path = format!("/v1/triggers/{trigger}");
    let (status, _) = admin_request(admins[0], "PUT", &path, Some(body), Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut ids = Vec::new();
    for i in 0..METHODS {
        let mut body = json!({"name": format!("m{i:02}"), "auth_type": "api"});
        if i % 2 == 0 {
            body["trigger_id"] = json!(trigger);
        }
        let path = format!("/v1/projects/{project}/auth-methods");
        let admin = admins[i % 2];
        let (status, method) =
            admin_request(admin, "POST", &path, Some(body), Some(ADMIN_TOKEN)).await;
        assert_eq!(status, StatusCode::CREATED, "{method}");
        ids.push(id_of(&method));
    }

    // Schedule them all while both timers run, and ask both instances to purge at once
    // after every few, so that runs overlap on purpose as well as by chance.
    let mut purged_on_request = 0;
    for (i, id) in ids.iter().enumerate() {
        let (status, reply) = schedule(admins[i % 2], id).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        if i % 5 == 4 {
            let (a, b) = tokio::join!(purge(admins[0]), purge(admins[1]));
            for counts in [a, b] {
                assert_eq!(counts["disassociated_count"], 0, "{counts}");
                purged_on_request += counts["deleted_count"].as_u64().unwrap();
            }
        }
    }
    assert!(purged_on_request <= METHODS as u64);

    // Wait (bounded) until the timers have taken the rest.
    let pool = db.pool().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_auth_methods")
            .fetch_one(&pool)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} methods never purged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Exactly one `purged` event per method, and the instances' counts agree.
    let rows: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
        "SELECT item_id, count(*) FROM audit_events
          WHERE event = 'purged' GROUP BY item_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let purged: HashMap<String, i64> = rows
        .into_iter()
        .map(|(id, count)| (id.to_string(), count))
        .collect();
    assert_eq!(purged.len(), METHODS, "{purged:?}");
    for id in &ids {
        assert_eq!(purged.get(id), Some(&1), "{id}: {purged:?}");
    }
    let mut total = 0.0;
    for admin in admins {
        total += metric(admin, "hookgate_purge_deleted_total").await;
    }
    assert_eq!(total, METHODS as f64);
    pool.close().await;
    drop(instances);
}

// ---- trigger events -------------------------------------------------------------------

#[tokio::test]
async fn trigger_changes_are_audited_as_created_updated_and_deleted() {
    let gw = TestGateway::start().await;
    let project = new_id();
    let trigger = new_id();
    let path = format!("/v1/triggers/{trigger}");

    let (status, _) = gw
        .admin("PUT", &path, Some(json!({"project_id": project})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let body = json!({"project_id": project, "enabled": false,
                      "upstream_url": "http://127.0.0.1:9/hooks"});
    let (status, updated) = gw.admin("PUT", &path, Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["upstream_url"], "http://127.0.0.1:9/hooks");

    // Unchanged settings and a move to another project write nothing.
    let (status, _) = gw.admin("PUT", &path, Some(body)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, reply) = gw
        .admin("PUT", &path, Some(json!({"project_id": new_id()})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");

    let (status, _) = gw.admin("DELETE", &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(gw.admin("GET", &path, None).await.0, StatusCode::NOT_FOUND);

    let events = events_of(&gw, &trigger).await;
    assert_eq!(event_names(&events), ["deleted", "updated", "created"]);
    assert!(events.iter().all(|e| e["item_type"] == "trigger"));
    let first = json!({"project_id": project, "enabled": true, "auth_required": false,
                       "upstream_url": null});
    let second = json!({"project_id": project, "enabled": false, "auth_required": false,
                        "upstream_url": "http://127.0.0.1:9/hooks"});
    assert_eq!(
        events[2]["changes"],
        json!({"before": null, "after": first})
    );
    assert_eq!(
        events[1]["changes"],
        json!({"before": first, "after": second})
    );
    assert_eq!(
        events[0]["changes"],
        json!({"before": second, "after": null})
    );
}

#[tokio::test]
async fn deleting_a_trigger_detaches_its_methods_with_events() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let path = format!("/v1/triggers/{}", f.trigger_a);
    let (status, _) = gw.admin("DELETE", &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    for method in [&f.api_method, &f.basic_method] {
        let events = events_of(&gw, method).await;
        assert_eq!(events[0]["event"], "removed_from_trigger");
        assert_eq!(
            events[0]["changes"]["before"],
            json!({"trigger_id": f.trigger_a})
        );
        let (status, read) = get_method(&gw, method).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(read["trigger_ids"], json!([]));
    }
    let auth_methods = format!("{path}/auth-methods");
    assert_eq!(
        gw.admin("GET", &auth_methods, None).await.0,
        StatusCode::NOT_FOUND
    );
    let reply = gw
        .send("POST", &format!("/i/{}", f.trigger_a), &[], "x")
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

// ---- the audit query ------------------------------------------------------------------

#[tokio::test]
async fn audit_events_are_newest_first_and_one_transactions_events_keep_write_order() {
    let gw = TestGateway::start().await;
    let project = new_id();
    let (t1, t2) = {
        let mut pair = [new_id(), new_id()];
        pair.sort();
        (pair[0].clone(), pair[1].clone())
    };
    let mut written: Vec<(String, &str)> = Vec::new();

    gw.put_trigger(&t1, &project).await;
    written.push((t1.clone(), "created"));
    gw.put_trigger(&t2, &project).await;
    written.push((t2.clone(), "created"));

    // One transaction: created, the trigger made to require auth, added_to_trigger.
    let m = id_of(&create_api(&gw, &project, "m", Some(&t1)).await);
    written.push((m.clone(), "created"));
    written.push((t1.clone(), "updated"));
    written.push((m.clone(), "added_to_trigger"));

    let path = format!("/v1/triggers/{t2}/auth-methods");
    gw.admin("PUT", &path, Some(json!({"auth_method_ids": [m]})))
        .await;
    written.push((t2.clone(), "updated"));
    written.push((m.clone(), "added_to_trigger"));

    // One transaction: detached from each trigger (in trigger id order), then deleted.
    schedule(gw.admin, &m).await;
    written.push((m.clone(), "removed_from_trigger"));
    written.push((m.clone(), "removed_from_trigger"));
    written.push((m.clone(), "deleted"));

    let events = all_events(&gw).await;
    let mut expected: Vec<(String, String)> = written
        .into_iter()
        .map(|(item, event)| (item, event.to_string()))
        .collect();
    expected.reverse();
    assert_eq!(trail(&events), expected);
    let detached: Vec<&Value> = events[1..3]
        .iter()
        .map(|e| &e["changes"]["before"]["trigger_id"])
        .collect();
    assert_eq!(detached, [&json!(t2), &json!(t1)]);

    // Newest first also by time; ids are unique.
    let stamps: Vec<time::OffsetDateTime> = events
        .iter()
        .map(|e| {
            let text = e["inserted_at"].as_str().unwrap();
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .unwrap()
        })
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] >= w[1]));
    let mut ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len());
}

#[tokio::test]
async fn audit_events_page_through_the_next_cursor() {
    let gw = TestGateway::start().await;
    let project = new_id();
    let trigger = new_id();
    gw.put_trigger(&trigger, &project).await;
    for i in 0..30 {
        create_api(&gw, &project, &format!("m{i:02}"), Some(&trigger)).await;
    }
    let everything = all_events(&gw).await;
    // The trigger's creation, its one auth_required update, two events per method.
    assert_eq!(everything.len(), 62);

    // The default page is 50 events.
    let (first, next) = audit_page(gw.admin, "").await;
    assert_eq!(first.len(), 50);
    assert!(next.is_string());

    // Pages of 7, each continuing where the last stopped.
    let mut paged = Vec::new();
    let mut query = "limit=7".to_string();
    let mut pages = 0;
    loop {
        let (page, next) = audit_page(gw.admin, &query).await;
        assert!(page.len() <= 7);
        paged.extend(page);
        pages += 1;
        match next.as_str() {
            Some(cursor) => query = format!("limit=7&before={cursor}"),
            None => break,
        }
        assert!(pages < 20, "the cursor never ends");
    }
    assert_eq!(pages, 9);
    assert_eq!(paged, everything);

    // An exact fit ends with a null cursor, not an empty page.
    let (page, next) = audit_page(gw.admin, "limit=62").await;
    assert_eq!((page.len(), next), (62, Value::Null));
}

#[tokio::test]
async fn audit_events_filter_by_item_id_and_item_type() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let everything = all_events(&gw).await;

    // Each trigger: created, then made to require auth by its first method.
    let (triggers, _) = audit_page(gw.admin, "item_type=trigger&limit=500").await;
    assert_eq!(triggers.len(), 4);
    assert!(triggers.iter().all(|e| e["item_type"] == "trigger"));
    let (methods, _) = audit_page(gw.admin, "item_type=webhook_auth_method&limit=500").await;
    assert_eq!(methods.len(), everything.len() - 4);
    assert!(
        methods
            .iter()
            .all(|e| e["item_type"] == "webhook_auth_method")
    );

    let query = format!("item_id={}", f.basic_method);
    let (basic_events, _) = audit_page(gw.admin, &query).await;
    assert_eq!(event_names(&basic_events), ["added_to_trigger", "created"]);
    assert!(
        basic_events
            .iter()
            .all(|e| e["item_id"] == f.basic_method.as_str())
    );

    // Both filters together, one page at a time.
    let query = format!("item_id={}&item_type=trigger", f.trigger_a);
    let (page, next) = audit_page(gw.admin, &format!("{query}&limit=2")).await;
    assert_eq!(event_names(&page), ["updated", "created"]);
    assert_eq!(next, Value::Null);
    let query = format!("item_id={}&item_type=trigger", f.basic_method);
    assert!(audit_page(gw.admin, &query).await.0.is_empty());
    let query = format!("item_id={}", new_id());
    assert!(audit_page(gw.admin, &query).await.0.is_empty());
}

#[tokio::test]
async fn the_audit_query_rejects_bad_parameters() {
    let gw = TestGateway::start().await;
    gw.fixture().await;

    for (query, field) in [
        ("item_id=abc", "item_id"),
        ("item_id=0b9f6f4e3c1a4a579e2b7d8c1f2a3b4c", "item_id"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("limit=", "limit"),
        ("before=0", "before"),
        ("before=abc", "before"),
        ("before=99999999999999999999", "before"),
        ("item_type=nothing", "item_type"),
        ("actor=alice", "actor"),
    ] {
        let path = format!("/v1/audit-events?{query}");
        let (status, reply) = gw.admin("GET", &path, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {reply}");
        assert!(reply["details"][field].is_array(), "{query}: {reply}");
    }
}

#[tokio::test]
async fn every_event_names_the_bootstrap_actor_and_holds_no_secret() {
    let gw = start_due_at_once().await;
    let f = gw.fixture().await;
    let supplied_key = "supplied-key-0123456789-abcdefghijklmnop";
    let password = "an0ther-s3cret";
    let supplied = gw
        .create_method(
            &f.project,
            json!({"name": "supplied", "auth_type": "api", "api_key": supplied_key,
                   "trigger_id": f.trigger_b}),
        )
        .await;
    let second_basic = gw
        .create_method(
            &f.project,
            json!({"name": "second", "auth_type": "basic", "username": "ops",
                   "password": password}),
        )
        .await;

    // Every kind of write.
    let rename_path = format!("/v1/auth-methods/{}", id_of(&second_basic));
    gw.admin("PATCH", &rename_path, Some(json!({"name": "renamed"})))
        .await;
    let set_path = format!("/v1/triggers/{}/auth-methods", f.trigger_a);
    let body = json!({"auth_method_ids": [id_of(&second_basic), f.api_method]});
    gw.admin("PUT", &set_path, Some(body)).await;
    schedule(gw.admin, &id_of(&supplied)).await;
    schedule(gw.admin, &f.basic_method).await;
    purge(gw.admin).await;
    gw.admin("DELETE", &rename_path, None).await;
    let trigger_path = format!("/v1/triggers/{}", f.trigger_b);
    let body = json!({"project_id": f.project, "auth_required": true});
    gw.admin("PUT", &trigger_path, Some(body)).await;
    gw.admin("DELETE", &trigger_path, None).await;

    let events = all_events(&gw).await;
    let names: std::collections::BTreeSet<&str> = event_names(&events).into_iter().collect();
    for name in [
        "created",
        "updated",
        "added_to_trigger",
        "removed_from_trigger",
        "deleted",
        "purged",
    ] {
        assert!(names.contains(name), "no `{name}` event among {names:?}");
    }
    for event in &events {
        assert_eq!(
            event["actor"],
            json!({"id": BOOTSTRAP, "name": "bootstrap"}),
            "{event}"
        );
        assert!(["trigger", "webhook_auth_method"].contains(&event["item_type"].as_str().unwrap()));
    }

    // No secret, hash or digest, in any spelling.
    let text = serde_json::to_string(&events).unwrap();
    let mut forbidden = vec![
        "s3cret-pass".to_string(),
        password.to_string(),
        "$argon2".to_string(),
        "password".to_string(),
        "sha256".to_string(),
    ];
    for key in [f.api_key.as_str(), f.b_api_key.as_str(), supplied_key] {
        forbidden.push(key.to_string());
        let digest = sha2::Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        forbidden.push(hex.clone());
        forbidden.push(hex.to_uppercase());
    }
    for secret in forbidden {
        assert!(!text.contains(&secret), "`{secret}` in {text}");
    }

    // What a created event does record.
    let created = &events_of(&gw, &id_of(&second_basic))
        .await
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        created["changes"],
        json!({"before": null, "after": {"name": "second", "auth_type": "basic",
               "project_id": f.project, "username": "ops"}})
    );
}

// ---- races ----------------------------------------------------------------------------

#[tokio::test]
async fn deleting_now_while_a_purge_runs_removes_each_method_once() {
    let gw = start_due_at_once().await;
    let project = new_id();
    let mut ids = Vec::new();
    for i in 0..12 {
        let method = create_api(&gw, &project, &format!("m{i:02}"), None).await;
        ids.push(id_of(&method));
    }

    // Each method falls due, then is deleted directly and purged at the same moment.
    let mut deleted = 0;
    let mut purged = 0;
    for id in &ids {
        schedule(gw.admin, id).await;
        let path = format!("/v1/auth-methods/{id}");
        let (delete, counts) = tokio::join!(gw.admin("DELETE", &path, None), purge(gw.admin));
        assert!(
            [StatusCode::NO_CONTENT, StatusCode::NOT_FOUND].contains(&delete.0),
            "{delete:?}"
        );
        deleted += usize::from(delete.0 == StatusCode::NO_CONTENT);
        purged += counts["deleted_count"].as_u64().unwrap() as usize;
    }
    assert_eq!(deleted + purged, ids.len());

    for id in &ids {
        let events = events_of(&gw, id).await;
        let count = events.iter().filter(|e| e["event"] == "purged").count();
        assert_eq!(count, 1, "{id}: {events:?}");
    }
}

#[tokio::test]
async fn scheduling_twice_at_once_succeeds_once() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let (a, b) = tokio::join!(
        schedule(gw.admin, &f.api_method),
        schedule(gw.admin, &f.api_method)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
    let events = events_of(&gw, &f.api_method).await;
    let names = event_names(&events);
    assert_eq!(names.iter().filter(|n| **n == "deleted").count(), 1);
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "removed_from_trigger")
            .count(),
        1
    );
}

/// The delay used to be cast to `i32`: 4294967295 days became -1, due at once. Such a
/// setting is now refused at start, naming the key.
#[test]
fn a_huge_deleted_after_days_is_refused_at_start() {
    let env = [(
        "HOOKGATE_PURGE_DELETED_AFTER_DAYS".to_string(),
        "4294967295".to_string(),
    )];
    let error = hookgate::config::Settings::from_toml("", &env.into_iter().collect())
        .expect_err("out of range");
    assert!(
        error.to_string().contains("purge.deleted_after_days"),
        "{error}"
    );
}
