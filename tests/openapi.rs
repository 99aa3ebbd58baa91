//! Keeps the OpenAPI description of the admin API true: every documented operation
//! exists, answers only documented statuses, with bodies that match the documented
//! schemas; and every route the router serves is documented.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::StatusCode;
use serde_json::{Value, json};

/// A small validator for the subset of JSON Schema the description uses.
struct Schemas<'a> {
    document: &'a Value,
}

impl Schemas<'_> {
    fn resolve<'v>(&'v self, schema: &'v Value) -> &'v Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.trim_start_matches('#');
                self.resolve(self.document.pointer(pointer).expect("reference resolves"))
            }
            None => schema,
        }
    }

    /// Every mismatch between `value` and `schema`, with its JSON path.
    fn check(&self, schema: &Value, value: &Value, path: &str, problems: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if value.is_null() {
            if schema.get("nullable") != Some(&json!(true)) && schema.get("type").is_some() {
                problems.push(format!("{path}: null where not nullable"));
            }
            return;
        }
        for part in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.check(part, value, path, problems);
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            problems.push(format!("{path}: {value} not in enum"));
        }
        let type_ok = match schema.get("type").and_then(Value::as_str) {
            Some("object") => value.is_object(),
            Some("array") => value.is_array(),
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("boolean") => value.is_boolean(),
            _ => true,
        };
        if !type_ok {
            problems.push(format!("{path}: {value} is not {}", schema["type"]));
            return;
        }
        if let Some(object) = value.as_object() {
            self.check_object(schema, object, path, problems);
        }
        if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
            for (i, item) in array.iter().enumerate() {
                self.check(items, item, &format!("{path}[{i}]"), problems);
            }
        }
    }

    fn check_object(
        &self,
        schema: &Value,
        object: &serde_json::Map<String, Value>,
        path: &str,
        problems: &mut Vec<String>,
    ) {
        let empty = serde_json::Map::new();
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !object.contains_key(required.as_str().unwrap()) {
                problems.push(format!("{path}: missing {required}"));
            }
        }
        for (key, value) in object {
            match (properties.get(key), schema.get("additionalProperties")) {
                (Some(property), _) => {
                    self.check(property, value, &format!("{path}.{key}"), problems)
                }
                (None, Some(Value::Bool(false))) => problems.push(format!("{path}: extra {key}")),
                (None, Some(extra @ Value::Object(_))) => {
                    self.check(extra, value, &format!("{path}.{key}"), problems)
                }
                (None, _) => {}
            }
        }
    }
}

fn document() -> Value {
    serde_json::from_str(hookgate::admin::OPENAPI).expect("the description is JSON")
}

/// Checks one response against the operation's documented responses.
fn conforms(document: &Value, path: &str, method: &str, status: StatusCode, body: &Value) {
    let operation = &document["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is documented");
    let response = &operation["responses"][status.as_str()];
    assert!(
        response.is_object(),
        "{method} {path} answered undocumented {status}: {body}"
    );
    let schemas = Schemas { document };
    let response = schemas.resolve(response);
    if let Some(schema) = response.pointer("/content/application~1json/schema") {
        let mut problems = Vec::new();
        schemas.check(schema, body, "$", &mut problems);
        assert!(
            problems.is_empty(),
            "{method} {path} {status}: {problems:?}\n{body}"
        );
    }
}

#[tokio::test]
async fn the_description_is_served_and_is_openapi_3() {
    let gw = TestGateway::start().await;
    let (status, served) = gw.admin("GET", "/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, document());
    assert!(served["openapi"].as_str().unwrap().starts_with("3."));
}

#[tokio::test]
async fn every_documented_operation_answers_as_documented() {
    let gw = TestGateway::start().await;
    let doc = document();
    let f = gw.fixture().await;
    let project = f.project.clone();
    let unknown = uuid::Uuid::new_v4().to_string();

    // (documented path, method, concrete path, body)
    let calls: Vec<(&str, &str, String, Option<Value>)> = vec![
        (
            "/v1/triggers/{id}",
            "put",
            format!("/v1/triggers/{unknown}"),
            Some(json!({"project_id": project})),
        ),
        (
            "/v1/triggers/{id}",
            "put",
            format!("/v1/triggers/{}", f.trigger_a),
            Some(json!({"project_id": project, "enabled": true})),
        ),
        (
            "/v1/triggers/{id}",
            "put",
            format!("/v1/triggers/{}", f.trigger_a),
            Some(json!({"project_id": uuid::Uuid::new_v4()})),
        ),
        (
            "/v1/triggers/{id}",
            "put",
            format!("/v1/triggers/{}", f.trigger_a),
            Some(json!({})),
        ),
        (
            "/v1/triggers/{id}",
            "get",
            format!("/v1/triggers/{}", f.trigger_a),
            None,
        ),
        (
            "/v1/triggers/{id}",
            "get",
            "/v1/triggers/not-a-uuid".into(),
            None,
        ),
        (
            "/v1/triggers/{id}/auth-methods",
            "get",
            format!("/v1/triggers/{}/auth-methods", f.trigger_a),
            None,
        ),
        (
            "/v1/triggers/{id}/auth-methods",
            "put",
            format!("/v1/triggers/{}/auth-methods", f.trigger_a),
            Some(json!({"auth_method_ids": [f.api_method, f.basic_method]})),
        ),
        (
            "/v1/triggers/{id}/auth-methods",
            "put",
            format!("/v1/triggers/{}/auth-methods", f.trigger_a),
            Some(json!({"auth_method_ids": [unknown]})),
        ),
        (
            "/v1/projects/{pid}/auth-methods",
            "post",
            format!("/v1/projects/{project}/auth-methods"),
            Some(json!({"name": "another", "auth_type": "api"})),
        ),
        (
            "/v1/projects/{pid}/auth-methods",
            "post",
            format!("/v1/projects/{project}/auth-methods"),
            Some(json!({"name": "", "auth_type": "nope"})),
        ),
        (
            "/v1/projects/{pid}/auth-methods",
            "get",
            format!("/v1/projects/{project}/auth-methods"),
            None,
        ),
        (
            "/v1/projects/{pid}/auth-methods/verify",
            "post",
            format!("/v1/projects/{project}/auth-methods/verify"),
            Some(json!({"api_key": f.api_key})),
        ),
        (
            "/v1/projects/{pid}/auth-methods/verify",
            "post",
            format!("/v1/projects/{project}/auth-methods/verify"),
            Some(json!({"username": "hook", "password": "wrong-password"})),
        ),
        (
            "/v1/auth-methods/{id}",
            "get",
            format!("/v1/auth-methods/{}", f.basic_method),
            None,
        ),
        (
            "/v1/auth-methods/{id}",
            "patch",
            format!("/v1/auth-methods/{}", f.basic_method),
            Some(json!({"name": "renamed"})),
        ),
        (
            "/v1/auth-methods/{id}",
            "patch",
            format!("/v1/auth-methods/{}", f.basic_method),
            Some(json!({"username": "x"})),
        ),
        (
            "/v1/auth-methods/{id}/schedule-deletion",
            "post",
            format!("/v1/auth-methods/{}/schedule-deletion", f.basic_method),
            None,
        ),
        (
            "/v1/auth-methods/{id}/schedule-deletion",
            "post",
            format!("/v1/auth-methods/{}/schedule-deletion", f.basic_method),
            None,
        ),
        (
            "/v1/auth-methods/{id}",
            "patch",
            format!("/v1/auth-methods/{}", f.basic_method),
            Some(json!({"name": "again"})),
        ),
        ("/v1/purge", "post", "/v1/purge".into(), None),
        (
            "/v1/audit-events",
            "get",
            "/v1/audit-events?limit=3".into(),
            None,
        ),
        (
            "/v1/audit-events",
            "get",
            format!("/v1/audit-events?item_id={}", f.basic_method),
            None,
        ),
        (
            "/v1/audit-events",
            "get",
            "/v1/audit-events?limit=zero".into(),
            None,
        ),
        (
            "/v1/auth-methods/{id}",
            "delete",
            format!("/v1/auth-methods/{}", f.api_method),
            None,
        ),
        (
            "/v1/auth-methods/{id}",
            "get",
            format!("/v1/auth-methods/{}", f.api_method),
            None,
        ),
        (
            "/v1/triggers/{id}",
            "delete",
            format!("/v1/triggers/{}", f.trigger_b),
            None,
        ),
        (
            "/v1/triggers/{id}",
            "delete",
            format!("/v1/triggers/{}", f.trigger_b),
            None,
        ),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (documented, method, path, body) in calls {
        let (status, reply) = gw.admin(&method.to_uppercase(), &path, body).await;
        assert!(status.as_u16() < 500, "{method} {path}: {status} {reply}");
        conforms(&doc, documented, method, status, &reply);
        seen.insert((documented, method));
    }

    // Every documented operation was exercised (the description itself aside).
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for method in operations
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| *m != "parameters")
        {
            if path != "/v1/openapi.json" {
                assert!(
                    seen.contains(&(path.as_str(), method.as_str())),
                    "{method} {path} untested"
                );
            }
        }
    }
}

#[tokio::test]
async fn methods_the_description_leaves_out_are_not_served() {
    let gw = TestGateway::start().await;
    let doc = document();
    let id = uuid::Uuid::new_v4();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{id}", &id.to_string())
            .replace("{pid}", &id.to_string());
        for method in ["get", "put", "post", "patch", "delete"] {
            if operations.get(method).is_none() {
                let (status, body) = gw.admin(&method.to_uppercase(), &concrete, None).await;
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path}: {body}"
                );
            }
        }
    }
}

#[tokio::test]
async fn calls_without_a_token_get_documented_401s() {
    let gw = TestGateway::start().await;
    let doc = document();
    let (status, body) = admin_request(gw.admin, "GET", "/v1/audit-events", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    conforms(&doc, "/v1/audit-events", "get", status, &body);
    let (status, _) = admin_request(gw.admin, "GET", "/v1/audit-events", None, Some("wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
