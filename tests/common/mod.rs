//! Test harness: a fresh Postgres database per test, a recording upstream on loopback,
//! an in-process gateway (or a real `hookgate` process), and small HTTP helpers that
//! can send exactly the headers a test names (duplicates included).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use hookgate::config::Settings;

/// The admin token every test gateway accepts (as the bootstrap actor).
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// The server tests use; override with HOOKGATE_TEST_DATABASE_URL.
pub fn server_url() -> String {
    std::env::var("HOOKGATE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("HOOKGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A database of its own, dropped when the test ends.
pub struct TestDb {
    pub url: String,
    name: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let name = format!("hookgate_test_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&server_url())
            .await
            .expect("test Postgres reachable");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let base = server_url();
        let url = match base.rfind('/') {
            Some(slash) => format!("{}/{name}", &base[..slash]),
            None => panic!("HOOKGATE_TEST_DATABASE_URL needs a database path"),
        };
        Self { url, name }
    }

    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.url)
            .await
            .expect("connect test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // A runtime of its own: Drop may run inside or outside the test's runtime.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(admin) = sqlx::PgPool::connect(&server_url()).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&admin).await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

/// One request the upstream received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub uri: String,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How the recording upstream answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamBehavior {
    /// 200 `{"ok":true}` after reading the whole body.
    Echo,
    /// Accept the connection and never answer.
    Hang,
    /// Promise `content-length: 100`, send 10 bytes, close.
    Truncate,
    /// Answer `101 Switching Protocols`.
    SwitchProtocols,
}

/// A recording upstream on loopback.
pub struct Upstream {
    pub addr: SocketAddr,
    records: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start(behavior: UpstreamBehavior) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("addr");
        let records = Arc::new(Mutex::new(Vec::new()));
        let recorded = records.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve_upstream_connection(
                    stream,
                    behavior,
                    recorded.clone(),
                ));
            }
        });
        Self {
            addr,
            records,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn records(&self) -> Vec<Recorded> {
        self.records.lock().expect("records").clone()
    }

    pub fn last(&self) -> Recorded {
        self.records()
            .pop()
            .expect("the upstream received a request")
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_upstream_connection(
    mut stream: TcpStream,
    behavior: UpstreamBehavior,
    records: Arc<Mutex<Vec<Recorded>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    match behavior {
        UpstreamBehavior::Hang => {
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {}
            return;
        }
        UpstreamBehavior::Truncate => {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789")
                .await;
            return;
        }
        UpstreamBehavior::SwitchProtocols => {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(
                    concat!(
                        "HTTP/1.1 101 Switching Protocols\r\n",
                        "connection: upgrade\r\nupgrade: h2c\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            return;
        }
        UpstreamBehavior::Echo => {}
    }
    let service = service_fn(move |request: Request<Incoming>| {
        let records = records.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            records.lock().expect("records").push(Recorded {
                method: parts.method,
                uri: parts.uri.to_string(),
                version: parts.version,
                headers: parts.headers,
                body,
            });
            let response = http::Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .header("x-upstream", "recording")
                .body(Full::new(Bytes::from_static(b"{\"ok\":true}")))
                .expect("response");
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Settings for a test gateway: loopback ports, cheap argon2, the test admin token.
pub fn settings(db: &TestDb, upstream: &str, extra: &[(&str, &str)]) -> Settings {
    let mut env: BTreeMap<String, String> = [
        ("HOOKGATE_PUBLIC_LISTEN", "127.0.0.1:0"),
        ("HOOKGATE_ADMIN_LISTEN", "127.0.0.1:0"),
        ("HOOKGATE_AUTH_ARGON2_MEMORY_KIB", "1024"),
        ("HOOKGATE_AUTH_ARGON2_ITERATIONS", "1"),
        ("HOOKGATE_AUTH_ARGON2_CONCURRENCY", "2"),
        ("HOOKGATE_SHUTDOWN_GRACE_MS", "0"),
        ("HOOKGATE_ADMIN_TOKEN", ADMIN_TOKEN),
        ("HOOKGATE_UPSTREAM_RESPONSE_TIMEOUT_MS", "5000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.insert("DATABASE_URL".into(), db.url.clone());
    env.insert("HOOKGATE_UPSTREAM_URL".into(), upstream.to_string());
    for (key, value) in extra {
        env.insert(key.to_string(), value.to_string());
    }
    Settings::from_toml("", &env).expect("test settings are valid")
}

/// An in-process gateway with its own database and upstream.
pub struct TestGateway {
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub upstream: Upstream,
    pub db: TestDb,
    gateway: Option<hookgate::Gateway>,
}

impl TestGateway {
    pub async fn start() -> Self {
        Self::start_with(UpstreamBehavior::Echo, &[]).await
    }

    pub async fn start_with(behavior: UpstreamBehavior, extra: &[(&str, &str)]) -> Self {
        let db = TestDb::create().await;
        let upstream = Upstream::start(behavior).await;
        let settings = settings(&db, &upstream.url(), extra);
        let gateway = hookgate::start(settings, hookgate::StartOptions { migrate: true })
            .await
            .expect("gateway starts");
        Self {
            public: gateway.public_addr,
            admin: gateway.admin_addr,
            upstream,
            db,
            gateway: Some(gateway),
        }
    }

    /// Another instance on the same database and upstream.
    pub async fn another_instance(&self, extra: &[(&str, &str)]) -> hookgate::Gateway {
        let settings = settings(&self.db, &self.upstream.url(), extra);
        hookgate::start(settings, hookgate::StartOptions { migrate: false })
            .await
            .expect("second gateway starts")
    }

    pub async fn stop(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.shutdown().await;
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        send(self.public, method, path, headers, body).await
    }

    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        admin_request(self.admin, method, path, body, Some(ADMIN_TOKEN)).await
    }
}

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one HTTP/1.1 request on a fresh connection, headers exactly as given.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);

    let mut request = Request::builder().method(method).uri(path);
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request = request.header("host", addr.to_string());
    }
    let mut request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    for (name, value) in headers {
        request.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_bytes(value.as_bytes()).expect("header value"),
        );
    }
    let response = sender.send_request(request).await.expect("response");
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// One admin API call; the body is JSON when given.
pub async fn admin_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let reply = send(addr, method, path, &headers, &body).await;
    (reply.status, reply.json())
}

/// `Basic` header value for a username and password.
pub fn basic(username: &str, password: &str) -> String {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {token}")
}

/// The fixtures of `shared/cases/bad-inputs.md`: trigger A with a basic method
/// hook / s3cret-pass and an API method; trigger B in the same project with others.
pub struct Fixture {
    pub project: String,
    pub trigger_a: String,
    pub trigger_b: String,
    pub basic_method: String,
    pub api_method: String,
    pub api_key: String,
    pub b_api_key: String,
}

pub const TRIGGER_A: &str = "0b9f6f4e-3c1a-4a57-9e2b-7d8c1f2a3b4c";
pub const TRIGGER_B: &str = "5d2e8a10-7b3c-4e6f-8a9d-0c1b2e3f4a5b";
pub const HOOK_BASIC: &str = "Basic aG9vazpzM2NyZXQtcGFzcw==";

impl TestGateway {
    pub async fn put_trigger(&self, id: &str, project: &str) -> Value {
        let (status, trigger) = self
            .admin(
                "PUT",
                &format!("/v1/triggers/{id}"),
                Some(json!({ "project_id": project })),
            )
            .await;
        assert!(status.is_success(), "{status} {trigger}");
        trigger
    }

    /// Creates a method; returns the create response (with `api_key` for api methods).
    pub async fn create_method(&self, project: &str, body: Value) -> Value {
        let (status, method) = self
            .admin(
                "POST",
                &format!("/v1/projects/{project}/auth-methods"),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{method}");
        method
    }

    pub async fn fixture(&self) -> Fixture {
        let project = uuid::Uuid::new_v4().to_string();
        self.put_trigger(TRIGGER_A, &project).await;
        self.put_trigger(TRIGGER_B, &project).await;
        let basic = self
            .create_method(
                &project,
                json!({"name": "hook basic", "auth_type": "basic",
                "username": "hook", "password": "s3cret-pass", "trigger_id": TRIGGER_A}),
            )
            .await;
        let api = self
            .create_method(
                &project,
                json!({"name": "hook key", "auth_type": "api",
                "trigger_id": TRIGGER_A}),
            )
            .await;
        let b_api = self
            .create_method(
                &project,
                json!({"name": "b key", "auth_type": "api",
                "trigger_id": TRIGGER_B}),
            )
            .await;
        Fixture {
            project,
            trigger_a: TRIGGER_A.into(),
            trigger_b: TRIGGER_B.into(),
            basic_method: basic["id"].as_str().unwrap().into(),
            api_method: api["id"].as_str().unwrap().into(),
            api_key: api["api_key"].as_str().unwrap().into(),
            b_api_key: b_api["api_key"].as_str().unwrap().into(),
        }
    }

    /// The value of one Prometheus sample, e.g. `hookgate_argon2_verifications_total`.
    pub async fn metric(&self, name: &str) -> f64 {
        metric(self.admin, name).await
    }
}

pub async fn metric(admin: SocketAddr, name: &str) -> f64 {
    let reply = send(admin, "GET", "/metrics", &[], "").await;
    reply
        .text()
        .lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A free loopback port (for child processes that need a fixed address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What came back on a raw connection: the bytes read, and whether the server closed
/// the connection (EOF or reset) before the read bound passed.
pub struct RawReply {
    pub bytes: Vec<u8>,
    pub closed: bool,
}

impl std::fmt::Debug for RawReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawReply")
            .field("text", &String::from_utf8_lossy(&self.bytes))
            .field("closed", &self.closed)
            .finish()
    }
}

impl RawReply {
    /// The status code of the first response line, if one arrived.
    pub fn status(&self) -> Option<u16> {
        let line = self.bytes.split(|b| *b == b'\n').next()?;
        let line = std::str::from_utf8(line).ok()?;
        let mut words = line.split(' ');
        words.next().filter(|v| v.starts_with("HTTP/1."))?;
        words.next()?.parse().ok()
    }

    fn head_len(&self) -> Option<usize> {
        self.bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| i + 4)
    }

    /// The value of the first response header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = String::from_utf8_lossy(&self.bytes[..self.head_len()?]).into_owned();
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }

    /// The bytes after the response head.
    pub fn body(&self) -> &[u8] {
        self.head_len().map_or(&[], |len| &self.bytes[len..])
    }

    /// True when a whole response (head and a `content-length` body) has arrived.
    fn is_complete(&self) -> bool {
        let Some(len) = self.header("content-length") else {
            return false;
        };
        len.parse::<usize>()
            .is_ok_and(|len| self.body().len() >= len)
    }
}

/// Writes `request` byte for byte on a fresh connection and reads until a whole
/// response has arrived, the server closes, or `bound` passes. The write half stays
/// open while reading (no FIN), and write errors are ignored: a server may answer
/// and close before it has read everything.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8], bound: Duration) -> RawReply {
    exchange(addr, request, bound, true).await
}

/// Like [`raw_exchange`], but reads on after a whole response until the server closes
/// the connection or `bound` passes.
pub async fn raw_exchange_until_closed(
    addr: SocketAddr,
    request: &[u8],
    bound: Duration,
) -> RawReply {
    exchange(addr, request, bound, false).await
}

async fn exchange(addr: SocketAddr, request: &[u8], bound: Duration, whole: bool) -> RawReply {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let request = request.to_vec();
    let written = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let _ = writer.write_all(&request).await;
        writer
    });
    let reply = read_until(&mut reader, bound, whole).await;
    written.abort();
    reply
}

/// Reads a response from `reader` as [`raw_exchange`] does.
pub async fn read_reply(
    reader: &mut (impl tokio::io::AsyncRead + Unpin),
    bound: Duration,
) -> RawReply {
    read_until(reader, bound, true).await
}

async fn read_until(
    reader: &mut (impl tokio::io::AsyncRead + Unpin),
    bound: Duration,
    stop_when_whole: bool,
) -> RawReply {
    use tokio::io::AsyncReadExt;
    let mut reply = RawReply {
        bytes: Vec::new(),
        closed: false,
    };
    let deadline = tokio::time::Instant::now() + bound;
    let mut buf = [0u8; 8192];
    while !(stop_when_whole && reply.is_complete()) {
        match tokio::time::timeout_at(deadline, reader.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(0)) | Ok(Err(_)) => {
                reply.closed = true;
                break;
            }
            Ok(Ok(n)) => reply.bytes.extend_from_slice(&buf[..n]),
        }
    }
    reply
}

/// Asserts the generic hide-mode denial: 404 `Webhook not found`.
pub fn assert_hidden(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "{what}: {}",
        reply.text()
    );
    assert_eq!(
        reply.json(),
        json!({"error": "Webhook not found"}),
        "{what}"
    );
    assert_eq!(reply.headers["content-type"], "application/json", "{what}");
}
