//! No secret ever reaches a log line (bad-inputs C35 and C11, SPEC §2.2 and §3): a real
//! `hookgate serve` process runs at `RUST_LOG=trace` while good and bad credentials of
//! every kind pass through it, and its whole log is searched afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::*;
use http::StatusCode;
use serde_json::{Value, json};

/// A `hookgate serve` child process whose stderr goes to a file; killed on drop.
struct LoggedGateway {
    child: Child,
    log: PathBuf,
    config: PathBuf,
    public: SocketAddr,
    admin: SocketAddr,
    admin_token: String,
    _upstream: Upstream,
    _db: TestDb,
}

impl LoggedGateway {
    async fn start() -> Self {
        let db = TestDb::create().await;
        let upstream = Upstream::start(UpstreamBehavior::Echo).await;
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir();
        let log = dir.join(format!("hookgate-log-secrecy-{unique}.log"));
        let config = dir.join(format!("hookgate-log-secrecy-{unique}.toml"));
        std::fs::write(&config, "").unwrap();
        let public: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let admin_token = format!("log-secrecy-admin-{unique}");

        let child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .arg("serve")
            .env_clear()
            .env("RUST_LOG", "trace")
            .env("DATABASE_URL", &db.url)
            .env("HOOKGATE_CONFIG", &config)
            .env("HOOKGATE_PUBLIC_LISTEN", public.to_string())
            .env("HOOKGATE_ADMIN_LISTEN", admin.to_string())
            .env("HOOKGATE_ADMIN_TOKEN", &admin_token)
            .env("HOOKGATE_UPSTREAM_URL", upstream.url())
            .env("HOOKGATE_AUTH_ARGON2_MEMORY_KIB", "1024")
            .env("HOOKGATE_AUTH_ARGON2_ITERATIONS", "1")
            .env("HOOKGATE_SHUTDOWN_GRACE_MS", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("hookgate serve starts");
        let gateway = Self {
            child,
            log,
            config,
            public,
            admin,
            admin_token,
            _upstream: upstream,
            _db: db,
        };
        gateway.wait_until_ready().await;
        gateway
    }

    /// Polls the admin port's readiness; fails with the log when the process gives up.
    async fn wait_until_ready(&self) {
        for _ in 0..600 {
            if tokio::net::TcpStream::connect(self.admin).await.is_ok() {
                let reply = send(self.admin, "GET", "/readyz", &[], "").await;
                if reply.status == StatusCode::OK {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("hookgate did not become ready:\n{}", self.log_text());
    }

    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        admin_request(self.admin, method, path, body, Some(&self.admin_token)).await
    }

    /// Sends a webhook request tagged with `request_id`, so its access line can be found.
    async fn webhook(&self, path: &str, request_id: &str, credential: &[(&str, &str)]) -> Reply {
        let mut headers = credential.to_vec();
        headers.push(("x-request-id", request_id));
        send(self.public, "POST", path, &headers, "{\"event\":\"ping\"}").await
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log once every id has its access line (stderr is written per event).
    async fn log_with(&self, request_ids: &[&str]) -> String {
        for _ in 0..200 {
            let text = self.log_text();
            if request_ids.iter().all(|id| text.contains(id)) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("access lines missing from the log:\n{}", self.log_text());
    }
}

impl Drop for LoggedGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(&self.config);
    }
}

/// The fixtures of bad-inputs.md on a logged gateway: trigger A with a basic and an API
/// method. Returns the project and the API key.
async fn fixture(gw: &LoggedGateway) -> (String, String) {
    let project = uuid::Uuid::new_v4().to_string();
    let (status, body) = gw
        .admin(
            "PUT",
            &format!("/v1/triggers/{TRIGGER_A}"),
            Some(json!({"project_id": project})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let methods = [
        json!({"name": "hook basic", "auth_type": "basic", "username": "hook",
            "password": "s3cret-pass", "trigger_id": TRIGGER_A}),
        json!({"name": "hook key", "auth_type": "api", "trigger_id": TRIGGER_A}),
    ];
    let mut key = String::new();
    for method in methods {
        let path = format!("/v1/projects/{project}/auth-methods");
        let (status, body) = gw.admin("POST", &path, Some(method)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        if let Some(api_key) = body["api_key"].as_str() {
            key = api_key.to_string();
        }
    }
    (project, key)
}

/// Asserts that no line of `log` contains any of `secrets`, naming the first that does.
fn assert_no_line_contains(log: &str, secrets: &[(&str, &str)]) {
    for line in log.lines() {
        for (what, secret) in secrets {
            assert!(
                !line.contains(secret),
                "the {what} is in a log line: {line}"
            );
        }
    }
}

/// C35 (Radicale#309, wazuh#39433): at trace level, good and bad credentials of each kind
/// leave no password, key, base64 token or admin token in the log
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_line_contains_a_password_key_token_or_admin_token_at_trace_level() {
    let gw = LoggedGateway::start().await;
    let (project, key) = fixture(&gw).await;
    let path = format!("/i/{TRIGGER_A}");

    let b64 = |raw: &str| base64::engine::general_purpose::STANDARD.encode(raw);
    let good_token = b64("hook:s3cret-pass");
    let bad_token = b64("hook:wr0ng-passw0rd");
    let bad_key = "f".repeat(63) + "0";
    let good_basic = format!("Basic {good_token}");
    let bad_basic = format!("Basic {bad_token}");
    let ids = [
        "c35-good-basic",
        "c35-bad-basic",
        "c35-good-key",
        "c35-bad-key",
        "c35-malformed-basic",
        "c35-ambiguous",
    ];
    let cases: [&[(&str, &str)]; 6] = [
        &[("authorization", &good_basic)],
        &[("authorization", &bad_basic)],
        &[("x-api-key", &key)],
        &[("x-api-key", &bad_key)],
        &[("authorization", "Basic czNjcmV0LXBhc3M_")],
        &[("x-api-key", &key), ("x-api-key", &bad_key)],
    ];
    let forwarded = [true, false, true, false, false, false];
    for ((id, credential), forwarded) in ids.iter().zip(cases).zip(forwarded) {
        let reply = gw.webhook(&path, id, credential).await;
        let expected = if forwarded {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(reply.status, expected, "{id}: {}", reply.text());
    }

    // The verify endpoint carries secrets too, in a JSON body.
    let verify = format!("/v1/projects/{project}/auth-methods/verify");
    let (status, _) = gw
        .admin("POST", &verify, Some(json!({"api_key": key})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = gw
        .admin(
            "POST",
            &verify,
            Some(json!({"username": "hook", "password": "wr0ng-passw0rd"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let log = gw.log_with(&ids).await;
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "not logging verbosely"
    );
    // stderr is a file here, not a terminal: no colour codes.
    assert!(!log.contains('\u{1b}'), "colour codes in a log file");
    assert_no_line_contains(
        &log,
        &[
            ("password", "s3cret-pass"),
            ("wrong password", "wr0ng-passw0rd"),
            ("base64 token", good_token.trim_end_matches('=')),
            ("wrong base64 token", bad_token.trim_end_matches('=')),
            ("malformed token", "czNjcmV0LXBhc3M"),
            ("API key", &key),
            ("wrong API key", &bad_key),
            ("admin token", &gw.admin_token),
        ],
    );
}

/// C11 (Kong#4366, st2#4589): a key sent in the query string is refused and never logged
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_in_the_query_string_is_refused_and_never_logged() {
    let gw = LoggedGateway::start().await;
    let (_, key) = fixture(&gw).await;

    let path = format!("/i/{TRIGGER_A}?api_key={key}");
    let reply = gw.webhook(&path, "c11-query-key", &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    let path = format!("/i/{TRIGGER_A}/x?token={key}&api_key={key}");
    let reply = gw
        .webhook(&path, "c11-query-and-header", &[("x-api-key", &key)])
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

    let log = gw
        .log_with(&["c11-query-key", "c11-query-and-header"])
        .await;
    assert_no_line_contains(&log, &[("API key", &key)]);
}
