//! The admin API over auth methods (SPEC §4 and §5): renaming, replacing a trigger's
//! set, scheduled deletion, deleting now, verifying a credential, validation with
//! field details, list order and the shapes of responses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The audit events about one item, newest first.
async fn events_of(gw: &TestGateway, item: &str) -> Vec<Value> {
    let path = format!("/v1/audit-events?item_id={item}&limit=500");
    let (status, body) = gw.admin("GET", &path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// Every audit event, newest first (tests write far fewer than 500).
async fn all_events(gw: &TestGateway) -> Vec<Value> {
    let (status, body) = gw.admin("GET", "/v1/audit-events?limit=500", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().clone()
}

fn event_names(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

/// The messages a 422 gives for one field.
fn details(body: &Value, field: &str) -> Vec<String> {
    body["details"][field]
        .as_array()
        .unwrap_or_else(|| panic!("no details for `{field}` in {body}"))
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect()
}

/// Asserts a 422 `invalid` that names `field`.
fn assert_invalid(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "invalid", "{body}");
    assert!(!details(body, field).is_empty(), "{body}");
}

fn timestamp(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().expect("a timestamp"), &Rfc3339).expect("RFC 3339")
}

fn new_project() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// One admin call with a raw body, for bodies that are not JSON.
async fn raw_admin(gw: &TestGateway, method: &str, path: &str, body: &str) -> Reply {
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    send(gw.admin, method, path, &headers, body).await
}

async fn create(gw: &TestGateway, project: &str, body: Value) -> (StatusCode, Value) {
    let path = format!("/v1/projects/{project}/auth-methods");
    gw.admin("POST", &path, Some(body)).await
}

async fn create_api(gw: &TestGateway, project: &str, name: &str) -> Value {
    gw.create_method(project, json!({"name": name, "auth_type": "api"}))
        .await
}

async fn schedule(gw: &TestGateway, method: &str) -> (StatusCode, Value) {
    let path = format!("/v1/auth-methods/{method}/schedule-deletion");
    gw.admin("POST", &path, None).await
}

async fn set_methods(gw: &TestGateway, trigger: &str, ids: &[&str]) -> (StatusCode, Value) {
    let path = format!("/v1/triggers/{trigger}/auth-methods");
    gw.admin("PUT", &path, Some(json!({ "auth_method_ids": ids })))
        .await
}

async fn rename(gw: &TestGateway, method: &str, body: Value) -> (StatusCode, Value) {
    gw.admin("PATCH", &format!("/v1/auth-methods/{method}"), Some(body))
        .await
}

async fn get_method(gw: &TestGateway, method: &str) -> (StatusCode, Value) {
    gw.admin("GET", &format!("/v1/auth-methods/{method}"), None)
        .await
}

async fn verify(gw: &TestGateway, project: &str, body: Value) -> (StatusCode, Value) {
    let path = format!("/v1/projects/{project}/auth-methods/verify");
    gw.admin("POST", &path, Some(body)).await
}

fn item_names(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect()
}

// ---- rename ---------------------------------------------------------------------------

#[tokio::test]
async fn renaming_changes_only_the_name_and_records_an_update() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let (_, before) = get_method(&gw, &f.basic_method).await;

    let (status, renamed) = rename(&gw, &f.basic_method, json!({"name": "renamed"})).await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "renamed");
    for field in ["id", "project_id", "auth_type", "username", "trigger_ids"] {
        assert_eq!(renamed[field], before[field], "{field}");
    }
    assert!(timestamp(&renamed["updated_at"]) >= timestamp(&before["updated_at"]));

    let events = events_of(&gw, &f.basic_method).await;
    assert_eq!(events[0]["event"], "updated");
    assert_eq!(
        events[0]["changes"],
        json!({"before": {"name": "hook basic"}, "after": {"name": "renamed"}})
    );

    // The credential itself is untouched.
    let path = format!("/i/{}", f.trigger_a);
    let reply = gw
        .send("POST", &path, &[("authorization", HOOK_BASIC)], "x")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn renaming_with_any_other_field_is_invalid_and_changes_nothing() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let events_before = all_events(&gw).await.len();

    for (field, value) in [
        ("auth_type", json!("api")),
        ("username", json!("someone")),
        ("password", json!("another-password")),
        ("api_key", json!("k".repeat(40))),
        ("trigger_id", json!(f.trigger_b)),
        ("project_id", json!(new_project())),
        ("scheduled_deletion", json!(null)),
        ("id", json!(new_id())),
    ] {
        let mut body = json!({"name": "renamed"});
        body[field] = value;
        let (status, reply) = rename(&gw, &f.basic_method, body).await;
        assert_invalid(status, &reply, field);
        assert!(
            details(&reply, field)
                .iter()
                .any(|m| m.contains("cannot be changed")),
            "{reply}"
        );
    }

    let (_, method) = get_method(&gw, &f.basic_method).await;
    assert_eq!(method["name"], "hook basic");
    assert_eq!(method["username"], "hook");
    assert_eq!(all_events(&gw).await.len(), events_before);
}

#[tokio::test]
async fn renaming_to_the_same_name_succeeds_without_an_audit_event() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let events_before = all_events(&gw).await;

    let (status, method) = rename(&gw, &f.api_method, json!({"name": "hook key"})).await;
    assert_eq!(status, StatusCode::OK, "{method}");
    assert_eq!(method["name"], "hook key");
    assert_eq!(all_events(&gw).await, events_before);
}

#[tokio::test]
async fn renaming_a_scheduled_method_is_a_conflict() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let (status, _) = schedule(&gw, &f.api_method).await;
    assert_eq!(status, StatusCode::OK);
    let events_before = all_events(&gw).await.len();

    let (status, reply) = rename(&gw, &f.api_method, json!({"name": "revived"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    assert_eq!(reply["error"], "conflict");

    let (_, method) = get_method(&gw, &f.api_method).await;
    assert_eq!(method["name"], "hook key");
    assert_eq!(all_events(&gw).await.len(), events_before);
}

#[tokio::test]
async fn renaming_to_a_name_taken_in_the_project_is_invalid_on_name() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let doomed = create_api(&gw, &f.project, "doomed").await;
    schedule(&gw, doomed["id"].as_str().unwrap()).await;

    // Taken by an active method, and by one only scheduled for deletion.
    for taken in ["hook key", "doomed"] {
        let (status, reply) = rename(&gw, &f.basic_method, json!({"name": taken})).await;
        assert_invalid(status, &reply, "name");
    }

    // The same name in another project is free.
    let other = new_project();
    let elsewhere = create_api(&gw, &other, "elsewhere").await;
    let id = elsewhere["id"].as_str().unwrap();
    let (status, reply) = rename(&gw, id, json!({"name": "hook key"})).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
}

#[tokio::test]
async fn renaming_needs_a_valid_name_and_an_existing_method() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    for body in [
        json!({}),
        json!({"name": null}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": "n".repeat(256)}),
        json!({"name": 7}),
    ] {
        let (status, reply) = rename(&gw, &f.api_method, body.clone()).await;
        assert_invalid(status, &reply, "name");
    }

    let (status, reply) = rename(&gw, &new_id(), json!({"name": "x"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    assert_eq!(reply["error"], "not_found");
}

// ---- a trigger's set of methods ---------------------------------------------------------

#[tokio::test]
async fn replacing_a_triggers_methods_records_one_event_per_change() {
    let gw = TestGateway::start().await;
    let project = new_project();
    let trigger = new_id();
    gw.put_trigger(&trigger, &project).await;
    let ids: Vec<String> = {
        let mut ids = Vec::new();
        for name in ["one", "two", "three"] {
            let m = create_api(&gw, &project, name).await;
            ids.push(m["id"].as_str().unwrap().to_string());
        }
        ids
    };
    let (one, two, three) = (ids[0].as_str(), ids[1].as_str(), ids[2].as_str());
    let (status, _) = set_methods(&gw, &trigger, &[one, two]).await;
    assert_eq!(status, StatusCode::OK);

    // two stays, one goes, three comes (named twice: it counts once).
    let (status, updated) = set_methods(&gw, &trigger, &[three, two, three]).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["id"], trigger.as_str());
    assert_eq!(updated["project_id"], project.as_str());
    assert_eq!(updated["auth_method_ids"], json!([three, two]));

    let one_events = event_names(&events_of(&gw, one).await).join(",");
    assert_eq!(one_events, "removed_from_trigger,added_to_trigger,created");
    let two_events = event_names(&events_of(&gw, two).await).join(",");
    assert_eq!(two_events, "added_to_trigger,created");
    let three_events = event_names(&events_of(&gw, three).await).join(",");
    assert_eq!(three_events, "added_to_trigger,created");

    let removed = &events_of(&gw, one).await[0];
    assert_eq!(
        removed["changes"],
        json!({"before": {"trigger_id": trigger}, "after": {"trigger_id": null}})
    );
    let added = &events_of(&gw, three).await[0];
    assert_eq!(
        added["changes"],
        json!({"before": {"trigger_id": null}, "after": {"trigger_id": trigger}})
    );

    // The methods see it too.
    let (_, method) = get_method(&gw, three).await;
    assert_eq!(method["trigger_ids"], json!([trigger]));
    let (_, method) = get_method(&gw, one).await;
    assert_eq!(method["trigger_ids"], json!([]));
}

#[tokio::test]
async fn replacing_with_the_same_set_or_an_empty_one_writes_only_real_changes() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let events_before = all_events(&gw).await.len();

    let (status, same) = set_methods(&gw, &f.trigger_a, &[&f.api_method, &f.basic_method]).await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(all_events(&gw).await.len(), events_before);

    let (status, emptied) = set_methods(&gw, &f.trigger_a, &[]).await;
    assert_eq!(status, StatusCode::OK, "{emptied}");
    assert_eq!(emptied["auth_method_ids"], json!([]));
    let events = all_events(&gw).await;
    assert_eq!(events.len(), events_before + 2);
    assert!(
        events[..2]
            .iter()
            .all(|e| e["event"] == "removed_from_trigger")
    );
}

#[tokio::test]
async fn replacing_with_anything_but_active_methods_of_the_project_changes_nothing() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let foreign = create_api(&gw, &new_project(), "foreign").await;
    let foreign = foreign["id"].as_str().unwrap().to_string();
    let doomed = create_api(&gw, &f.project, "doomed").await;
    let doomed = doomed["id"].as_str().unwrap().to_string();
    schedule(&gw, &doomed).await;
    let (_, trigger_before) = gw
        .admin("GET", &format!("/v1/triggers/{}", f.trigger_a), None)
        .await;
    let events_before = all_events(&gw).await.len();

    for bad in [foreign.clone(), doomed.clone(), new_id()] {
        let (status, reply) = set_methods(&gw, &f.trigger_a, &[&f.api_method, &bad]).await;
        assert_invalid(status, &reply, "auth_method_ids");
    }
    for body in [
        json!({"auth_method_ids": ["not-a-uuid"]}),
        json!({"auth_method_ids": [7]}),
        json!({"auth_method_ids": f.api_method}),
        json!({"auth_method_ids": null}),
        json!({}),
    ] {
        let path = format!("/v1/triggers/{}/auth-methods", f.trigger_a);
        let (status, reply) = gw.admin("PUT", &path, Some(body)).await;
        assert_invalid(status, &reply, "auth_method_ids");
    }
    let path = format!("/v1/triggers/{}/auth-methods", f.trigger_a);
    let body = json!({"auth_method_ids": [], "enabled": false});
    let (status, reply) = gw.admin("PUT", &path, Some(body)).await;
    assert_invalid(status, &reply, "enabled");

    let (_, trigger_after) = gw
        .admin("GET", &format!("/v1/triggers/{}", f.trigger_a), None)
        .await;
    assert_eq!(trigger_after, trigger_before);
    assert_eq!(all_events(&gw).await.len(), events_before);
}

#[tokio::test]
async fn replacing_the_methods_of_an_unknown_trigger_is_not_found() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let (status, reply) = set_methods(&gw, &new_id(), &[&f.api_method]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    let (status, _) = set_methods(&gw, &new_id(), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

// ---- scheduled deletion -----------------------------------------------------------------

#[tokio::test]
async fn scheduling_deletion_detaches_the_method_and_stops_it_at_once() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let path_a = format!("/i/{}", f.trigger_a);
    let key = [("x-api-key", f.api_key.as_str())];
    assert_eq!(
        gw.send("POST", &path_a, &key, "x").await.status,
        StatusCode::OK
    );

    // Attached to both triggers; B keeps its own method too.
    let (_, trigger_b) = gw
        .admin("GET", &format!("/v1/triggers/{}", f.trigger_b), None)
        .await;
    let b_method = trigger_b["auth_method_ids"][0]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = set_methods(&gw, &f.trigger_b, &[&f.api_method, &b_method]).await;
    assert_eq!(status, StatusCode::OK);

    let (status, method) = schedule(&gw, &f.api_method).await;
    assert_eq!(status, StatusCode::OK, "{method}");
    assert_eq!(method["id"], f.api_method.as_str());
    assert_eq!(method["trigger_ids"], json!([]));
    let scheduled = timestamp(&method["scheduled_deletion"]);
    let updated = timestamp(&method["updated_at"]);
    assert_eq!(scheduled - updated, time::Duration::days(7));

    // Refused at once on both triggers (each still has another method, so not open).
    assert_eq!(
        gw.send("POST", &path_a, &key, "x").await.status,
        StatusCode::NOT_FOUND
    );
    let path_b = format!("/i/{}", f.trigger_b);
    assert_eq!(
        gw.send("POST", &path_b, &key, "x").await.status,
        StatusCode::NOT_FOUND
    );

    let events = events_of(&gw, &f.api_method).await;
    assert_eq!(
        event_names(&events[..3]),
        ["deleted", "removed_from_trigger", "removed_from_trigger"]
    );
    assert_eq!(
        events[0]["changes"],
        json!({"before": {"scheduled_deletion": null},
               "after": {"scheduled_deletion": method["scheduled_deletion"]}})
    );
    let mut detached: Vec<&str> = events[1..3]
        .iter()
        .map(|e| e["changes"]["before"]["trigger_id"].as_str().unwrap())
        .collect();
    detached.sort();
    let mut expected = [f.trigger_a.as_str(), f.trigger_b.as_str()];
    expected.sort();
    assert_eq!(detached, expected);
    for event in &events[1..3] {
        assert_eq!(event["changes"]["after"], json!({"trigger_id": null}));
    }

    // Still readable by id, gone from lists.
    let (status, again) = get_method(&gw, &f.api_method).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["scheduled_deletion"], method["scheduled_deletion"]);
    let (_, trigger) = gw
        .admin("GET", &format!("/v1/triggers/{}", f.trigger_b), None)
        .await;
    assert_eq!(trigger["auth_method_ids"], json!([b_method]));
}

#[tokio::test]
async fn scheduling_the_last_method_of_a_trigger_that_requires_auth_shuts_it() {
    let gw = TestGateway::start().await;
    let project = new_project();
    let trigger = new_id();
    let body = json!({"project_id": project, "auth_required": true});
    let (status, _) = gw
        .admin("PUT", &format!("/v1/triggers/{trigger}"), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let method = gw
        .create_method(
            &project,
            json!({"name": "only", "auth_type": "api", "trigger_id": trigger}),
        )
        .await;
    let key = method["api_key"].as_str().unwrap();
    let path = format!("/i/{trigger}");
    let headers = [("x-api-key", key)];
    assert_eq!(
        gw.send("POST", &path, &headers, "x").await.status,
        StatusCode::OK
    );

    schedule(&gw, method["id"].as_str().unwrap()).await;
    let reply = gw.send("POST", &path, &headers, "x").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(gw.upstream.records().len(), 1);
}

#[tokio::test]
async fn scheduling_an_already_scheduled_method_is_a_conflict_that_writes_nothing() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let (status, first) = schedule(&gw, &f.basic_method).await;
    assert_eq!(status, StatusCode::OK);
    let events_before = all_events(&gw).await;

    let (status, reply) = schedule(&gw, &f.basic_method).await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    assert_eq!(reply["error"], "conflict");
    assert!(reply["message"].is_string());

    let (_, method) = get_method(&gw, &f.basic_method).await;
    assert_eq!(method, first);
    assert_eq!(all_events(&gw).await, events_before);
}

#[tokio::test]
async fn scheduling_an_unknown_method_is_not_found() {
    let gw = TestGateway::start().await;
    let (status, reply) = schedule(&gw, &new_id()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
}

#[tokio::test]
async fn scheduling_honours_purge_deleted_after_days() {
    let extra = [("HOOKGATE_PURGE_DELETED_AFTER_DAYS", "3")];
    let gw = TestGateway::start_with(UpstreamBehavior::Echo, &extra).await;
    let method = create_api(&gw, &new_project(), "soon").await;

    let (status, method) = schedule(&gw, method["id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let scheduled = timestamp(&method["scheduled_deletion"]);
    assert_eq!(
        scheduled - timestamp(&method["updated_at"]),
        time::Duration::days(3)
    );
}

// ---- delete now -----------------------------------------------------------------------

#[tokio::test]
async fn deleting_a_method_now_removes_it_with_a_purged_event() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let (status, body) = gw
        .admin(
            "DELETE",
            &format!("/v1/auth-methods/{}", f.api_method),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let (status, _) = get_method(&gw, &f.api_method).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let events = events_of(&gw, &f.api_method).await;
    assert_eq!(
        event_names(&events[..2]),
        ["purged", "removed_from_trigger"]
    );
    assert_eq!(
        events[0]["changes"],
        json!({"before": {"name": "hook key", "auth_type": "api"}, "after": null})
    );
    assert_eq!(
        events[1]["changes"]["before"],
        json!({"trigger_id": f.trigger_a})
    );

    // The key no longer opens trigger A, whose basic method still guards it.
    let path = format!("/i/{}", f.trigger_a);
    let reply = gw
        .send("POST", &path, &[("x-api-key", &f.api_key)], "x")
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let (_, trigger) = gw
        .admin("GET", &format!("/v1/triggers/{}", f.trigger_a), None)
        .await;
    assert_eq!(trigger["auth_method_ids"], json!([f.basic_method]));

    // A second delete finds nothing.
    let (status, _) = gw
        .admin(
            "DELETE",
            &format!("/v1/auth-methods/{}", f.api_method),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_scheduled_method_can_be_deleted_now() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    schedule(&gw, &f.basic_method).await;

    let path = format!("/v1/auth-methods/{}", f.basic_method);
    let (status, _) = gw.admin("DELETE", &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let events = events_of(&gw, &f.basic_method).await;
    assert_eq!(event_names(&events[..2]), ["purged", "deleted"]);

    // Its name is free again.
    gw.create_method(
        &f.project,
        json!({"name": "hook basic", "auth_type": "api"}),
    )
    .await;
}

// ---- verify ---------------------------------------------------------------------------

#[tokio::test]
async fn verify_finds_the_method_by_api_key_or_by_username_and_password() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    let (status, by_key) = verify(&gw, &f.project, json!({"api_key": f.api_key})).await;
    assert_eq!(status, StatusCode::OK, "{by_key}");
    assert_eq!(by_key["id"], f.api_method.as_str());
    assert_eq!(by_key["auth_type"], "api");

    let body = json!({"username": "hook", "password": "s3cret-pass"});
    let (status, by_password) = verify(&gw, &f.project, body).await;
    assert_eq!(status, StatusCode::OK, "{by_password}");
    assert_eq!(by_password["id"], f.basic_method.as_str());
    assert_eq!(by_password["username"], "hook");

    let text = format!("{by_key}{by_password}");
    assert!(!text.contains(&f.api_key) && !text.contains("s3cret-pass"));
    assert!(by_key.get("api_key").is_none());
}

#[tokio::test]
async fn verify_answers_404_for_wrong_credentials_and_other_projects_keys() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let other = new_project();
    let foreign = create_api(&gw, &other, "foreign").await;
    let foreign_key = foreign["api_key"].as_str().unwrap();
    let doomed = create_api(&gw, &f.project, "doomed").await;
    schedule(&gw, doomed["id"].as_str().unwrap()).await;

    for body in [
        json!({"api_key": "0".repeat(64)}),
        json!({"api_key": f.api_key.to_uppercase()}),
        json!({"api_key": format!(" {}", f.api_key)}),
        json!({"api_key": foreign_key}),
        json!({"api_key": doomed["api_key"]}),
        json!({"username": "hook", "password": "wrong-pass"}),
        json!({"username": "HOOK", "password": "s3cret-pass"}),
        json!({"username": "nobody", "password": "s3cret-pass"}),
    ] {
        let (status, reply) = verify(&gw, &f.project, body.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body} {reply}");
        assert_eq!(reply["error"], "not_found");
    }

    // The foreign key verifies in its own project, the fixture's not there.
    let (status, _) = verify(&gw, &other, json!({"api_key": foreign_key})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = verify(&gw, &other, json!({"api_key": f.api_key})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body = json!({"username": "hook", "password": "s3cret-pass"});
    let (status, _) = verify(&gw, &other, body).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn verify_needs_a_key_or_a_username_with_a_password() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;

    for body in [
        json!({}),
        json!({"username": "hook"}),
        json!({"password": "s3cret-pass"}),
        json!({"api_key": 5}),
        json!({"api_key": f.api_key, "name": "x"}),
    ] {
        let (status, reply) = verify(&gw, &f.project, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} {reply}");
        assert!(reply["details"].is_object(), "{reply}");
    }
}

// ---- validation -----------------------------------------------------------------------

#[tokio::test]
async fn creating_needs_a_name_of_1_to_255_characters() {
    let gw = TestGateway::start().await;
    let project = new_project();

    for name in [
        json!(null),
        json!(""),
        json!("  "),
        json!("n".repeat(256)),
        json!(1),
    ] {
        let (status, reply) =
            create(&gw, &project, json!({"name": name, "auth_type": "api"})).await;
        assert_invalid(status, &reply, "name");
    }
    let (status, reply) = create(&gw, &project, json!({"auth_type": "api"})).await;
    assert_invalid(status, &reply, "name");

    // 255 characters, counted as characters rather than bytes.
    for name in ["n".repeat(255), "é".repeat(255), "x".into()] {
        let (status, reply) =
            create(&gw, &project, json!({"name": name, "auth_type": "api"})).await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
    }
}

#[tokio::test]
async fn names_are_unique_in_a_project_including_scheduled_methods() {
    let gw = TestGateway::start().await;
    let project = new_project();
    let first = create_api(&gw, &project, "shared").await;

    let body = json!({"name": "shared", "auth_type": "basic",
                      "username": "u", "password": "long-enough"});
    let (status, reply) = create(&gw, &project, body.clone()).await;
    assert_invalid(status, &reply, "name");

    schedule(&gw, first["id"].as_str().unwrap()).await;
    let (status, reply) = create(&gw, &project, body.clone()).await;
    assert_invalid(status, &reply, "name");

    let (status, reply) = create(&gw, &new_project(), body).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
}

#[tokio::test]
async fn auth_type_must_be_basic_or_api() {
    let gw = TestGateway::start().await;
    let project = new_project();
    for auth_type in [
        json!(null),
        json!("API"),
        json!("bearer"),
        json!(""),
        json!(true),
    ] {
        let body = json!({"name": "m", "auth_type": auth_type});
        let (status, reply) = create(&gw, &project, body).await;
        assert_invalid(status, &reply, "auth_type");
    }
    let (status, reply) = create(&gw, &project, json!({"name": "m"})).await;
    assert_invalid(status, &reply, "auth_type");
}

#[tokio::test]
async fn basic_methods_need_a_username_and_a_password_of_8_to_72_characters() {
    let gw = TestGateway::start().await;
    let project = new_project();
    let basic = |username: Value, password: Value| {
        let mut body = json!({"name": "b", "auth_type": "basic"});
        body["username"] = username;
        body["password"] = password;
        body
    };

    for (body, field) in [
        (
            json!({"name": "b", "auth_type": "basic", "password": "long-enough"}),
            "username",
        ),
        (
            json!({"name": "b", "auth_type": "basic", "username": "u"}),
            "password",
        ),
        (basic(json!(""), json!("long-enough")), "username"),
        (
            basic(json!("u".repeat(256)), json!("long-enough")),
            "username",
        ),
        (basic(json!("u"), json!("")), "password"),
        (basic(json!("u"), json!("seven77")), "password"),
        (basic(json!("u"), json!("p".repeat(73))), "password"),
        (basic(json!("u"), json!(12345678)), "password"),
    ] {
        let (status, reply) = create(&gw, &project, body.clone()).await;
        assert_invalid(status, &reply, field);
    }

    // Both fields wrong: both are reported.
    let (status, reply) = create(&gw, &project, basic(json!(null), json!("short"))).await;
    assert_invalid(status, &reply, "username");
    assert_invalid(status, &reply, "password");

    // The bounds, in characters.
    for (i, password) in ["p".repeat(8), "p".repeat(72), "é".repeat(72)]
        .iter()
        .enumerate()
    {
        let username = format!("u{i}");
        let body = json!({"name": format!("b{i}"), "auth_type": "basic",
                          "username": username, "password": password});
        let (status, reply) = create(&gw, &project, body).await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
        let (status, _) = verify(
            &gw,
            &project,
            json!({"username": username, "password": password}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn api_methods_ignore_username_and_password() {
    let gw = TestGateway::start().await;
    let project = new_project();
    let body = json!({"name": "k", "auth_type": "api", "username": "u", "password": "x"});
    let (status, method) = create(&gw, &project, body).await;
    assert_eq!(status, StatusCode::CREATED, "{method}");
    assert!(method.get("username").is_none(), "{method}");
    assert!(method["api_key"].is_string());
}

#[tokio::test]
async fn a_supplied_api_key_is_checked_echoed_once_and_unique_in_its_project() {
    let gw = TestGateway::start().await;
    let project = new_project();
    let trigger = new_id();
    gw.put_trigger(&trigger, &project).await;

    for (i, key) in [
        "k".repeat(31),
        "k".repeat(257),
        format!("{} {}", "k".repeat(20), "k".repeat(20)),
        format!("{}\t", "k".repeat(40)),
        format!("{}é", "k".repeat(40)),
        String::new(),
    ]
    .iter()
    .enumerate()
    {
        let body = json!({"name": format!("k{i}"), "auth_type": "api", "api_key": key});
        let (status, reply) = create(&gw, &project, body).await;
        assert_invalid(status, &reply, "api_key");
    }

    let key = "migrated-key_0123456789~!@#$%^&*()ABCDwxyz";
    let body = json!({"name": "migrated", "auth_type": "api", "api_key": key,
                      "trigger_id": trigger});
    let (status, method) = create(&gw, &project, body).await;
    assert_eq!(status, StatusCode::CREATED, "{method}");
    assert_eq!(method["api_key"], key);
    assert_eq!(method["api_key_hint"], "wxyz");
    let (_, read) = get_method(&gw, method["id"].as_str().unwrap()).await;
    assert!(read.get("api_key").is_none() && !read.to_string().contains(key));
    let reply = gw
        .send("POST", &format!("/i/{trigger}"), &[("x-api-key", key)], "x")
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    // The bounds: 32 and 256 characters.
    for key in ["a".repeat(32), "b".repeat(256)] {
        let body = json!({"name": format!("len{}", key.len()), "auth_type": "api",
                          "api_key": key});
        let (status, reply) = create(&gw, &project, body).await;
        assert_eq!(status, StatusCode::CREATED, "{reply}");
    }

    let body = json!({"name": "again", "auth_type": "api", "api_key": key});
    let (status, reply) = create(&gw, &project, body.clone()).await;
    assert_invalid(status, &reply, "api_key");
    assert!(!reply.to_string().contains(key));
    let (status, _) = create(&gw, &new_project(), body).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn generated_api_keys_are_64_lowercase_hex_characters() {
    let gw = TestGateway::start().await;
    let method = create_api(&gw, &new_project(), "generated").await;
    let key = method["api_key"].as_str().unwrap();
    assert_eq!(key.len(), 64);
    assert!(
        key.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(method["api_key_hint"], &key[60..]);
}

#[tokio::test]
async fn unknown_fields_are_invalid() {
    let gw = TestGateway::start().await;
    let project = new_project();

    let body = json!({"name": "m", "auth_type": "api", "scopes": ["all"]});
    let (status, reply) = create(&gw, &project, body).await;
    assert_invalid(status, &reply, "scopes");
    let body = json!({"project_id": project, "colour": "red"});
    let (status, reply) = gw
        .admin("PUT", &format!("/v1/triggers/{}", new_id()), Some(body))
        .await;
    assert_invalid(status, &reply, "colour");

    let (_, list) = gw
        .admin("GET", &format!("/v1/projects/{project}/auth-methods"), None)
        .await;
    assert_eq!(list, json!({"items": []}));
}

#[tokio::test]
async fn trigger_id_must_be_a_trigger_of_the_same_project() {
    let gw = TestGateway::start().await;
    let project = new_project();
    let foreign_trigger = new_id();
    gw.put_trigger(&foreign_trigger, &new_project()).await;
    let events_before = all_events(&gw).await.len();

    for trigger in [foreign_trigger.clone(), new_id(), "not-a-uuid".into()] {
        let body = json!({"name": "m", "auth_type": "api", "trigger_id": trigger});
        let (status, reply) = create(&gw, &project, body).await;
        assert_invalid(status, &reply, "trigger_id");
    }

    // Nothing was written.
    let (_, list) = gw
        .admin("GET", &format!("/v1/projects/{project}/auth-methods"), None)
        .await;
    assert_eq!(list, json!({"items": []}));
    assert_eq!(all_events(&gw).await.len(), events_before);
    create_api(&gw, &project, "m").await;
}

#[tokio::test]
async fn creating_with_a_trigger_attaches_in_the_same_write() {
    let gw = TestGateway::start().await;
    let project = new_project();
    let trigger = new_id();
    gw.put_trigger(&trigger, &project).await;

    let body = json!({"name": "m", "auth_type": "api", "trigger_id": trigger});
    let (status, method) = create(&gw, &project, body).await;
    assert_eq!(status, StatusCode::CREATED, "{method}");
    assert_eq!(method["trigger_ids"], json!([trigger]));
    let id = method["id"].as_str().unwrap();
    let events = events_of(&gw, id).await;
    assert_eq!(event_names(&events), ["added_to_trigger", "created"]);
    assert_eq!(
        events[1]["changes"],
        json!({"before": null, "after": {"name": "m", "auth_type": "api",
               "project_id": project, "username": null}})
    );
}

// ---- paths, bodies, tokens --------------------------------------------------------------

#[tokio::test]
async fn malformed_ids_in_paths_are_not_found() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let rename_body = json!({"name": "x"});
    let create_body = json!({"name": "x", "auth_type": "api"});
    let set_body = json!({"auth_method_ids": []});

    for bad in [
        "not-a-uuid",
        "0b9f6f4e3c1a4a579e2b7d8c1f2a3b4c",
        "{0b9f6f4e-3c1a-4a57-9e2b-7d8c1f2a3b4c}",
        "0b9f6f4e-3c1a-4a57-9e2b-7d8c1f2a3b4cc",
        "%20",
    ] {
        let calls: Vec<(&str, String, Option<Value>)> = vec![
            ("GET", format!("/v1/auth-methods/{bad}"), None),
            (
                "PATCH",
                format!("/v1/auth-methods/{bad}"),
                Some(rename_body.clone()),
            ),
            ("DELETE", format!("/v1/auth-methods/{bad}"), None),
            (
                "POST",
                format!("/v1/auth-methods/{bad}/schedule-deletion"),
                None,
            ),
            ("GET", format!("/v1/triggers/{bad}"), None),
            ("DELETE", format!("/v1/triggers/{bad}"), None),
            (
                "PUT",
                format!("/v1/triggers/{bad}"),
                Some(json!({"project_id": f.project})),
            ),
            ("GET", format!("/v1/triggers/{bad}/auth-methods"), None),
            (
                "PUT",
                format!("/v1/triggers/{bad}/auth-methods"),
                Some(set_body.clone()),
            ),
            ("GET", format!("/v1/projects/{bad}/auth-methods"), None),
            (
                "POST",
                format!("/v1/projects/{bad}/auth-methods"),
                Some(create_body.clone()),
            ),
            (
                "POST",
                format!("/v1/projects/{bad}/auth-methods/verify"),
                Some(json!({"api_key": f.api_key})),
            ),
        ];
        for (method, path, body) in calls {
            let (status, reply) = gw.admin(method, &path, body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path} {reply}");
            assert_eq!(reply["error"], "not_found", "{method} {path}");
        }
    }

    // Well-formed but unknown ids are 404 too.
    for (method, path) in [
        ("GET", format!("/v1/auth-methods/{}", new_id())),
        ("DELETE", format!("/v1/auth-methods/{}", new_id())),
        ("GET", format!("/v1/triggers/{}", new_id())),
        ("DELETE", format!("/v1/triggers/{}", new_id())),
        ("GET", format!("/v1/triggers/{}/auth-methods", new_id())),
    ] {
        let (status, _) = gw.admin(method, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
}

#[tokio::test]
async fn malformed_json_is_a_bad_request_and_a_non_object_is_invalid() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let paths = [
        ("POST", format!("/v1/projects/{}/auth-methods", f.project)),
        ("PATCH", format!("/v1/auth-methods/{}", f.api_method)),
        ("PUT", format!("/v1/triggers/{}/auth-methods", f.trigger_a)),
        ("PUT", format!("/v1/triggers/{}", f.trigger_a)),
        (
            "POST",
            format!("/v1/projects/{}/auth-methods/verify", f.project),
        ),
    ];

    for (method, path) in &paths {
        for body in [
            "",
            "{",
            "{\"name\": }",
            "nul",
            "{\"name\": \"\\ud800\"}",
            "{} {}",
        ] {
            let reply = raw_admin(&gw, method, path, body).await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{method} {path} {body}"
            );
            assert_eq!(reply.json()["error"], "bad_request");
        }
        for body in ["[]", "\"name\"", "null", "42"] {
            let reply = raw_admin(&gw, method, path, body).await;
            assert_eq!(
                reply.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{method} {path} {body}"
            );
        }
    }
}

#[tokio::test]
async fn requests_without_a_valid_admin_token_are_unauthorized() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let path = format!("/v1/projects/{}/auth-methods", f.project);
    let wrong = format!("Bearer {ADMIN_TOKEN}x");
    let basic_token = basic("admin", ADMIN_TOKEN);
    let bare = ADMIN_TOKEN.to_string();

    for authorization in [None, Some(wrong.as_str()), Some(&basic_token), Some(&bare)] {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(value) = authorization {
            headers.push(("authorization", value));
        }
        for (method, path) in [
            ("GET", path.as_str()),
            ("POST", "/v1/purge"),
            ("GET", "/v1/audit-events"),
            ("DELETE", &format!("/v1/auth-methods/{}", f.api_method)),
            ("GET", "/v1/no-such-endpoint"),
        ] {
            let reply = send(gw.admin, method, path, &headers, "{}").await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert_eq!(reply.json()["error"], "unauthorized");
            assert!(reply.json()["message"].is_string());
        }
    }

    // Nothing was deleted, and the open endpoints need no token.
    let (status, _) = get_method(&gw, &f.api_method).await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/healthz", "/readyz", "/metrics"] {
        let reply = send(gw.admin, "GET", path, &[], "").await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn bad_input_never_causes_a_server_error() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let create_path = format!("/v1/projects/{}/auth-methods", f.project);
    let verify_path = format!("/v1/projects/{}/auth-methods/verify", f.project);
    let rename_path = format!("/v1/auth-methods/{}", f.api_method);
    let trigger_path = format!("/v1/triggers/{}", new_id());
    let nul = "with\u{0}nul";
    let huge = "x".repeat(100_000);

    let calls: Vec<(&str, &str, Value)> = vec![
        (
            "POST",
            &create_path,
            json!({"name": nul, "auth_type": "api"}),
        ),
        (
            "POST",
            &create_path,
            json!({"name": "n1", "auth_type": "basic", "username": nul,
                   "password": "long-enough"}),
        ),
        (
            "POST",
            &create_path,
            json!({"name": "n2", "auth_type": "basic", "username": "u",
                   "password": "long\u{0}enough"}),
        ),
        (
            "POST",
            &create_path,
            json!({"name": huge, "auth_type": "api"}),
        ),
        (
            "POST",
            &create_path,
            json!({"name": {"nested": [1, 2]}, "auth_type": "api"}),
        ),
        (
            "POST",
            &create_path,
            json!({"name": "n3", "auth_type": "api", "api_key": 1e300}),
        ),
        ("PATCH", &rename_path, json!({"name": nul})),
        (
            "POST",
            &verify_path,
            json!({"username": nul, "password": "whatever1"}),
        ),
        ("POST", &verify_path, json!({"api_key": nul})),
        (
            "POST",
            &verify_path,
            json!({"username": "hook", "password": huge}),
        ),
        (
            "PUT",
            &trigger_path,
            json!({"project_id": f.project, "upstream_url": nul}),
        ),
        (
            "PUT",
            &trigger_path,
            json!({"project_id": f.project, "upstream_url": "http://"}),
        ),
        (
            "PUT",
            &trigger_path,
            json!({"project_id": "x", "enabled": "yes"}),
        ),
    ];
    for (method, path, body) in calls {
        let (status, reply) = gw.admin(method, path, Some(body)).await;
        assert!(
            status.is_client_error() || status.is_success(),
            "{method} {path}: {status} {reply}"
        );
    }

    for query in [
        "item_type=%00",
        "item_type=with%00nul",
        "item_id=%00",
        "limit=0",
        "limit=501",
        "limit=99999999999999999999999",
        "before=-1",
        "before=%00",
        "item_id=1",
    ] {
        let (status, reply) = gw
            .admin("GET", &format!("/v1/audit-events?{query}"), None)
            .await;
        assert!(
            status.is_client_error() || status.is_success(),
            "{query}: {status} {reply}"
        );
    }
}

// ---- lists and shapes -------------------------------------------------------------------

#[tokio::test]
async fn lists_hold_active_methods_ordered_by_name() {
    let gw = TestGateway::start().await;
    let project = new_project();
    let trigger = new_id();
    gw.put_trigger(&trigger, &project).await;
    let mut ids = std::collections::HashMap::new();
    for name in ["delta", "alpha", "charlie", "bravo"] {
        let body = json!({"name": name, "auth_type": "api", "trigger_id": trigger});
        let method = gw.create_method(&project, body).await;
        ids.insert(name, method["id"].as_str().unwrap().to_string());
    }
    create_api(&gw, &new_project(), "aardvark").await;

    let project_path = format!("/v1/projects/{project}/auth-methods");
    let trigger_path = format!("/v1/triggers/{trigger}/auth-methods");
    let (_, list) = gw.admin("GET", &project_path, None).await;
    assert_eq!(item_names(&list), ["alpha", "bravo", "charlie", "delta"]);
    let (_, list) = gw.admin("GET", &trigger_path, None).await;
    assert_eq!(item_names(&list), ["alpha", "bravo", "charlie", "delta"]);

    schedule(&gw, &ids["charlie"]).await;
    set_methods(&gw, &trigger, &[&ids["delta"], &ids["alpha"]]).await;

    let (_, list) = gw.admin("GET", &project_path, None).await;
    assert_eq!(item_names(&list), ["alpha", "bravo", "delta"]);
    let (_, list) = gw.admin("GET", &trigger_path, None).await;
    assert_eq!(item_names(&list), ["alpha", "delta"]);
    let (_, trigger) = gw
        .admin("GET", &format!("/v1/triggers/{trigger}"), None)
        .await;
    assert_eq!(
        trigger["auth_method_ids"],
        json!([ids["alpha"], ids["delta"]])
    );

    // By id, a scheduled method is still there.
    let (status, charlie) = get_method(&gw, &ids["charlie"]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(charlie["scheduled_deletion"].is_string());

    // An unknown project has an empty list; an unknown trigger is 404.
    let empty = format!("/v1/projects/{}/auth-methods", new_project());
    assert_eq!(gw.admin("GET", &empty, None).await.1, json!({"items": []}));
    let unknown = format!("/v1/triggers/{}/auth-methods", new_id());
    assert_eq!(
        gw.admin("GET", &unknown, None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn responses_carry_no_secret_and_omit_fields_that_do_not_apply() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let method_keys = |m: &Value| {
        let mut keys: Vec<String> = m.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys.join(",")
    };

    let (_, basic_method) = get_method(&gw, &f.basic_method).await;
    assert_eq!(
        method_keys(&basic_method),
        "auth_type,id,inserted_at,name,project_id,scheduled_deletion,trigger_ids,\
         updated_at,username"
    );
    assert_eq!(basic_method["scheduled_deletion"], Value::Null);
    let (_, api_method) = get_method(&gw, &f.api_method).await;
    assert_eq!(
        method_keys(&api_method),
        "api_key_hint,auth_type,id,inserted_at,name,project_id,scheduled_deletion,\
         trigger_ids,updated_at"
    );
    assert_eq!(
        api_method["api_key_hint"],
        &f.api_key[f.api_key.len() - 4..]
    );
    for stamp in ["inserted_at", "updated_at"] {
        timestamp(&api_method[stamp]);
    }

    let (_, trigger) = gw
        .admin("GET", &format!("/v1/triggers/{}", f.trigger_a), None)
        .await;
    assert_eq!(
        method_keys(&trigger),
        "auth_method_ids,auth_required,enabled,id,inserted_at,project_id,updated_at,\
         upstream_url"
    );
    assert_eq!(trigger["upstream_url"], Value::Null);
    assert_eq!(trigger["enabled"], true);
    // Attaching a method made the trigger require auth (it never reopens by itself).
    assert_eq!(trigger["auth_required"], true);

    // No response after the create shows a secret or a hash.
    let mut texts = vec![
        basic_method.to_string(),
        api_method.to_string(),
        trigger.to_string(),
    ];
    for path in [
        format!("/v1/projects/{}/auth-methods", f.project),
        format!("/v1/triggers/{}/auth-methods", f.trigger_a),
    ] {
        texts.push(gw.admin("GET", &path, None).await.1.to_string());
    }
    texts.push(
        rename(&gw, &f.api_method, json!({"name": "k2"}))
            .await
            .1
            .to_string(),
    );
    texts.push(schedule(&gw, &f.basic_method).await.1.to_string());
    for text in texts {
        for secret in [
            f.api_key.as_str(),
            f.b_api_key.as_str(),
            "s3cret-pass",
            "$argon2",
        ] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(
            !text.contains("password") && !text.contains("sha256"),
            "{text}"
        );
    }
}

// ---- regressions ------------------------------------------------------------------------

/// Postgres text cannot hold NUL: such a name used to reach the database and get a 500.
#[tokio::test]
async fn a_nul_character_in_a_stored_or_searched_text_is_invalid_not_a_server_error() {
    let gw = TestGateway::start().await;
    let f = gw.fixture().await;
    let nul = "with\u{0}nul";
    let create_path = format!("/v1/projects/{}/auth-methods", f.project);
    let verify_path = format!("/v1/projects/{}/auth-methods/verify", f.project);

    let basic_body = json!({"name": "n", "auth_type": "basic", "username": nul,
                            "password": "long-enough"});
    for (method, path, body, field) in [
        (
            "POST",
            create_path.clone(),
            json!({"name": nul, "auth_type": "api"}),
            "name",
        ),
        ("POST", create_path.clone(), basic_body, "username"),
        (
            "PATCH",
            format!("/v1/auth-methods/{}", f.api_method),
            json!({"name": nul}),
            "name",
        ),
        (
            "POST",
            verify_path.clone(),
            json!({"username": nul, "password": "s3cret-pass"}),
            "username",
        ),
    ] {
        let (status, reply) = gw.admin(method, &path, Some(body)).await;
        assert_invalid(status, &reply, field);
    }
    let (status, reply) = gw
        .admin("GET", "/v1/audit-events?item_type=a%00b", None)
        .await;
    assert_invalid(status, &reply, "item_type");

    // Secrets are hashed, never stored as text: NUL there is just a wrong credential.
    for body in [
        json!({"username": "hook", "password": "s3cret\u{0}pass"}),
        json!({"api_key": format!("{}\u{0}", f.api_key)}),
    ] {
        let (status, _) = gw.admin("POST", &verify_path, Some(body)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let body = json!({"name": "nul pass", "auth_type": "basic", "username": "z",
                      "password": "pass\u{0}word"});
    let (status, reply) = gw.admin("POST", &create_path, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let body = json!({"username": "z", "password": "pass\u{0}word"});
    let (status, _) = gw.admin("POST", &verify_path, Some(body)).await;
    assert_eq!(status, StatusCode::OK);
}

/// Unknown `/v1` paths used to answer 404 to anyone, telling which endpoints exist.
#[tokio::test]
async fn unknown_admin_paths_and_methods_need_the_token_too() {
    let gw = TestGateway::start().await;

    for (method, path) in [
        ("GET", "/v1/no-such-endpoint"),
        ("GET", "/v1/auth-methods"),
        ("DELETE", "/v1/purge"),
    ] {
        let reply = send(gw.admin, method, path, &[], "").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(reply.json()["error"], "unauthorized");
    }

    let (status, reply) = gw.admin("GET", "/v1/no-such-endpoint", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    assert_eq!(reply["error"], "not_found");
    let (status, _) = gw.admin("DELETE", "/v1/purge", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let reply = send(gw.admin, "GET", "/elsewhere", &[], "").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

/// axum's own refusal of a body over its 2 MiB limit used to answer in plain text.
#[tokio::test]
async fn an_oversized_admin_body_is_refused_with_a_json_error() {
    let gw = TestGateway::start().await;
    let project = new_project();
    let body = json!({"name": "x".repeat(3_000_000), "auth_type": "api"}).to_string();
    let path = format!("/v1/projects/{project}/auth-methods");

    let reply = raw_admin(&gw, "POST", &path, &body).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(
        reply.json()["error"],
        "payload_too_large",
        "{}",
        reply.text()
    );

    let (_, list) = gw.admin("GET", &path, None).await;
    assert_eq!(list, json!({"items": []}));
}

/// Basic splits user and password on the first `:`, so such a username could never
/// match a request; it used to be accepted and stored as a method nobody could use.
#[tokio::test]
async fn a_username_with_a_colon_is_invalid() {
    let gw = TestGateway::start().await;
    let project = new_project();

    let body = json!({"name": "colon", "auth_type": "basic", "username": "svc:prod",
                      "password": "long-enough"});
    let (status, reply) = create(&gw, &project, body).await;
    assert_invalid(status, &reply, "username");

    // A colon in the password is fine: only the first one splits.
    let trigger = new_id();
    gw.put_trigger(&trigger, &project).await;
    let body = json!({"name": "ok", "auth_type": "basic", "username": "svc",
                      "password": "prod:pass:word", "trigger_id": trigger});
    let (status, reply) = create(&gw, &project, body).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let headers = [("authorization", basic("svc", "prod:pass:word"))];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let reply = gw
        .send("POST", &format!("/i/{trigger}"), &headers, "x")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

/// A presented username names one password hash: two active Basic methods of a project
/// may not share a username (a revoked one frees it).
#[tokio::test]
async fn basic_usernames_are_unique_among_a_projects_active_methods() {
    let gw = TestGateway::start().await;
    let project = uuid::Uuid::new_v4().to_string();
    let path = format!("/v1/projects/{project}/auth-methods");
    let first = json!({"name": "one", "auth_type": "basic", "username": "dup",
        "password": "password-1"});
    let (status, method) = gw.admin("POST", &path, Some(first)).await;
    assert_eq!(status, StatusCode::CREATED);

    let second = json!({"name": "two", "auth_type": "basic", "username": "dup",
        "password": "password-2"});
    let (status, reply) = gw.admin("POST", &path, Some(second.clone())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert!(reply["details"]["username"].is_array(), "{reply}");

    let id = method["id"].as_str().unwrap();
    let (status, _) = gw
        .admin(
            "POST",
            &format!("/v1/auth-methods/{id}/schedule-deletion"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, reply) = gw.admin("POST", &path, Some(second)).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
}

#[tokio::test]
async fn usernames_with_control_characters_and_purge_bodies_with_fields_are_invalid() {
    let gw = TestGateway::start().await;
    let project = uuid::Uuid::new_v4().to_string();
    let body = json!({"name": "crlf", "auth_type": "basic", "username": "a\r\nb",
        "password": "password-1"});
    let (status, reply) = gw
        .admin(
            "POST",
            &format!("/v1/projects/{project}/auth-methods"),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert!(reply["details"]["username"].is_array());

    let (status, reply) = gw.admin("POST", "/v1/purge", Some(json!({"x": 1}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert!(reply["details"]["x"].is_array());
    let (status, _) = gw.admin("POST", "/v1/purge", Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK);
}
