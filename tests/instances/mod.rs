//! Support for tests that run more than one gateway: Redis settings with a namespace of
//! their own, bounded polling, real `hookgate serve` processes, a private Redis server
//! that a test may kill, and a TCP relay in front of Postgres that a test may cut.
//!
//! Everything here binds loopback only and stops exactly the processes it started.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::common::*;

/// A Redis key prefix no other test uses; both instances of one test share it.
pub fn namespace() -> String {
    format!("test-{}", uuid::Uuid::new_v4().simple())
}

/// Polls `check` every 10 ms until it holds; the time that took, or `None` once `bound`
/// has passed without it holding.
pub async fn time_until<F, Fut>(bound: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return Some(started.elapsed());
        }
        if started.elapsed() > bound {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The status of one webhook request to `/i/{trigger}` with these headers.
pub async fn status_of(public: SocketAddr, trigger: &str, headers: &[(&str, &str)]) -> StatusCode {
    send(public, "POST", &format!("/i/{trigger}"), headers, "{}")
        .await
        .status
}

/// The `/readyz` body of an instance.
pub async fn readiness(addr: SocketAddr) -> (StatusCode, serde_json::Value) {
    let reply = send(addr, "GET", "/readyz", &[], "").await;
    (reply.status, reply.json())
}

/// Waits until the instance holds a live Redis subscription (its `/readyz` says so).
pub async fn wait_subscribed(admin: SocketAddr) {
    let subscribed = time_until(Duration::from_secs(15), || async move {
        readiness(admin).await.1["checks"]["redis"] == "ok"
    })
    .await;
    assert!(
        subscribed.is_some(),
        "instance {admin} never subscribed to Redis"
    );
}

/// Schedules a method for deletion through one instance's admin port.
pub async fn revoke(admin: SocketAddr, method_id: &str) {
    let path = format!("/v1/auth-methods/{method_id}/schedule-deletion");
    let (status, body) = admin_request(admin, "POST", &path, None, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A trigger that requires auth, with two API-key methods: `method` (the one tests
/// revoke) and a spare, so that the trigger stays protected after the revocation and
/// a revoked key meets a 404 (an unprotected trigger with no methods is open).
pub struct KeyedTrigger {
    pub project: String,
    pub trigger: String,
    pub method: String,
    pub api_key: String,
}

impl KeyedTrigger {
    pub async fn create(admin: SocketAddr) -> Self {
        let project = uuid::Uuid::new_v4().to_string();
        let trigger = uuid::Uuid::new_v4().to_string();
        let put = json!({ "project_id": project, "auth_required": true });
        let path = format!("/v1/triggers/{trigger}");
        let (status, body) = admin_request(admin, "PUT", &path, Some(put), Some(ADMIN_TOKEN)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let mut created = Vec::new();
        for name in ["key", "spare key"] {
            let method = json!({"name": name, "auth_type": "api", "trigger_id": trigger});
            let path = format!("/v1/projects/{project}/auth-methods");
            let token = Some(ADMIN_TOKEN);
            let (status, body) = admin_request(admin, "POST", &path, Some(method), token).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            created.push(body);
        }
        Self {
            project,
            trigger,
            method: created[0]["id"].as_str().unwrap().to_string(),
            api_key: created[0]["api_key"].as_str().unwrap().to_string(),
        }
    }

    pub async fn status_on(&self, public: SocketAddr) -> StatusCode {
        status_of(public, &self.trigger, &[("x-api-key", &self.api_key)]).await
    }
}

/// A file under the system temp directory, removed on drop.
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    pub fn new(suffix: &str, contents: &str) -> Self {
        let name = format!("hookgate-test-{}{suffix}", uuid::Uuid::new_v4().simple());
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, contents).expect("write temp file");
        Self { path }
    }

    pub fn read(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A real `hookgate serve` child process; killed (by its own handle) on drop.
pub struct ServeProcess {
    pub public: SocketAddr,
    pub admin: SocketAddr,
    child: Child,
    pub log: TempFile,
    _config: TempFile,
}

impl ServeProcess {
    /// Starts `hookgate serve` on fresh loopback ports and waits until `/readyz` is 200.
    pub async fn start(database_url: &str, upstream: &str, extra: &[(&str, &str)]) -> Self {
        let config = TempFile::new(".toml", "");
        let log = TempFile::new(".log", "");
        let public: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();

        let mut command = Command::new(env!("CARGO_BIN_EXE_hookgate"));
        command
            .arg("serve")
            .env_clear()
            .env("HOOKGATE_CONFIG", &config.path)
            .env("DATABASE_URL", database_url)
            .env("HOOKGATE_PUBLIC_LISTEN", public.to_string())
            .env("HOOKGATE_ADMIN_LISTEN", admin.to_string())
            .env("HOOKGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("HOOKGATE_UPSTREAM_URL", upstream)
            .env("HOOKGATE_AUTH_ARGON2_MEMORY_KIB", "1024")
            .env("HOOKGATE_AUTH_ARGON2_ITERATIONS", "1")
            .env("HOOKGATE_SHUTDOWN_GRACE_MS", "0");
        for (key, value) in extra {
            command.env(key, value);
        }
        let output = std::fs::File::create(&log.path).expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("log file"))
            .stderr(output)
            .spawn()
            .expect("spawn hookgate serve");

        let mut process = Self {
            public,
            admin,
            child,
            log,
            _config: config,
        };
        process.wait_ready().await;
        process
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("hookgate serve exited with {status}:\n{}", self.log.read());
            }
            if TcpStream::connect(self.admin).await.is_ok()
                && readiness(self.admin).await.0 == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("hookgate serve never became ready:\n{}", self.log.read());
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Redis server of this test's own on a free loopback port, which the test may kill
/// and restart. The shared Redis on 6379 is never touched.
pub struct PrivateRedis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    pub async fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("hookgate-redis-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut redis = Self {
            port: free_port(),
            dir,
            child: None,
        };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server at once (SIGKILL to the child this test started).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server on its port (again) and waits until it answers PING.
    pub async fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let port = self.port;
        let up = time_until(Duration::from_secs(10), || async move { pong(port).await }).await;
        assert!(
            up.is_some(),
            "private redis-server on {port} never answered"
        );
    }
}

async fn pong(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").await.is_ok()
        && stream.read_exact(&mut reply).await.is_ok()
        && &reply == b"+PONG\r\n"
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP relay in front of Postgres. `cut` closes every relayed connection and the
/// listening socket (new connections are refused); `restore` listens again on the
/// same port.
pub struct PgRelay {
    pub addr: SocketAddr,
    target: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl PgRelay {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        Self {
            addr,
            target,
            task: Some(tokio::spawn(relay(listener, target))),
        }
    }

    pub async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    pub async fn restore(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(e) if Instant::now() > deadline => panic!("relay cannot listen again: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        self.task = Some(tokio::spawn(relay(listener, self.target)));
    }

    /// `url` with its host and port replaced by the relay's.
    pub fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let user = authority
            .rsplit_once('@')
            .map(|(user, _)| format!("{user}@"))
            .unwrap_or_default();
        format!("{scheme}://{user}{}/{path}", self.addr)
    }
}

impl Drop for PgRelay {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Accepts and relays until aborted; dropping the task drops every relayed connection.
async fn relay(listener: TcpListener, target: SocketAddr) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        connections.spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

/// The address of the Postgres server the tests use, from its URL.
pub async fn postgres_addr() -> SocketAddr {
    let url = server_url();
    let rest = url.split_once("://").expect("a URL").1;
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host_port = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    };
    tokio::net::lookup_host(host_port)
        .await
        .expect("resolve Postgres")
        .next()
        .expect("a Postgres address")
}
