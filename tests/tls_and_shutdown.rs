//! TLS on the public port (HTTP/1.1 and h2 by ALPN), certificate reload on SIGHUP
//! without dropping connections, and graceful shutdown of a real process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Kills the child process when the test ends, however it ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct TestCert {
    der: CertificateDer<'static>,
    cert_path: PathBuf,
    key_path: PathBuf,
}

fn write_cert(dir: &Path, name: &str) -> TestCert {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("certificate");
    let cert_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&cert_path, generated.cert.pem()).expect("write cert");
    std::fs::write(&key_path, generated.signing_key.serialize_pem()).expect("write key");
    TestCert {
        der: generated.cert.der().clone(),
        cert_path,
        key_path,
    }
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hookgate-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A TLS connection that trusts only `cert`, offering `alpn`.
async fn connect_tls(
    addr: std::net::SocketAddr,
    cert: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("name");
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

fn webhook(path: &str, key: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method("POST")
        .uri(path)
        .header("host", "localhost")
        .header("x-api-key", key)
        .body(Full::new(Bytes::from_static(b"tls body")))
        .expect("request")
}

#[tokio::test]
async fn webhooks_pass_over_tls_with_http1_and_h2() {
    let dir = temp_dir();
    let cert = write_cert(&dir, "a");
    let gw = TestGateway::start_with(
        UpstreamBehavior::Echo,
        &[
            ("HOOKGATE_PUBLIC_TLS_CERT", cert.cert_path.to_str().unwrap()),
            ("HOOKGATE_PUBLIC_TLS_KEY", cert.key_path.to_str().unwrap()),
        ],
    )
    .await;
    let f = gw.fixture().await;
    let path = format!("https://localhost/i/{}", f.trigger_a);

    let tls = connect_tls(gw.public, &cert.der, &[b"http/1.1"])
        .await
        .expect("tls");
    let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = h1
        .send_request(webhook(&path, &f.api_key))
        .await
        .expect("h1 response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(gw.upstream.last().headers["x-forwarded-proto"], "https");

    let tls = connect_tls(gw.public, &cert.der, &[b"h2"])
        .await
        .expect("tls");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let response = h2
        .send_request(webhook(&path, &f.api_key))
        .await
        .expect("h2 response");
    assert_eq!(response.status(), StatusCode::OK);
    let got = gw.upstream.last();
    assert_eq!(got.version, http::Version::HTTP_11);
    assert_eq!(got.body, "tls body");
    let _ = std::fs::remove_dir_all(dir);
}

/// Environment of a real `hookgate serve` process for these tests.
fn spawn_gateway(db: &TestDb, upstream: &str, extra: &[(&str, String)]) -> (ChildGuard, u16, u16) {
    let public = free_port();
    let admin = free_port();
    // An empty configuration file: every setting comes from the environment.
    let config = Path::new("/dev/null");
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookgate"));
    command
        .arg("serve")
        .env("HOOKGATE_CONFIG", config)
        .env("DATABASE_URL", &db.url)
        .env("HOOKGATE_PUBLIC_LISTEN", format!("127.0.0.1:{public}"))
        .env("HOOKGATE_ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .env("HOOKGATE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("HOOKGATE_UPSTREAM_URL", upstream)
        .env("HOOKGATE_AUTH_ARGON2_MEMORY_KIB", "1024")
        .env("HOOKGATE_AUTH_ARGON2_ITERATIONS", "1")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in extra {
        command.env(key, value);
    }
    (
        ChildGuard(command.spawn().expect("spawn hookgate")),
        public,
        admin,
    )
}

async fn wait_ready(admin: u16) {
    for _ in 0..200 {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", admin)).await {
            drop(stream);
            let reply = send(
                format!("127.0.0.1:{admin}").parse().unwrap(),
                "GET",
                "/readyz",
                &[],
                "",
            )
            .await;
            if reply.status == StatusCode::OK {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("hookgate did not become ready");
}

fn signal(child: &ChildGuard, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

async fn setup_trigger(admin: u16) -> (String, String) {
    let addr = format!("127.0.0.1:{admin}").parse().unwrap();
    let project = uuid::Uuid::new_v4().to_string();
    let (status, _) = admin_request(
        addr,
        "PUT",
        &format!("/v1/triggers/{TRIGGER_A}"),
        Some(json!({"project_id": project})),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, method) = admin_request(
        addr,
        "POST",
        &format!("/v1/projects/{project}/auth-methods"),
        Some(json!({"name": "k", "auth_type": "api", "trigger_id": TRIGGER_A})),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    (
        TRIGGER_A.to_string(),
        method["api_key"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn sighup_reloads_the_certificate_and_keeps_open_connections() {
    let dir = temp_dir();
    let first = write_cert(&dir, "first");
    let live_cert = dir.join("live.crt");
    let live_key = dir.join("live.key");
    std::fs::copy(&first.cert_path, &live_cert).unwrap();
    std::fs::copy(&first.key_path, &live_key).unwrap();

    let db = TestDb::create().await;
    let upstream = Upstream::start(UpstreamBehavior::Echo).await;
    let (child, public, admin) = spawn_gateway(
        &db,
        &upstream.url(),
        &[
            ("HOOKGATE_PUBLIC_TLS_CERT", live_cert.display().to_string()),
            ("HOOKGATE_PUBLIC_TLS_KEY", live_key.display().to_string()),
        ],
    );
    wait_ready(admin).await;
    let (trigger, key) = setup_trigger(admin).await;
    let public_addr = format!("127.0.0.1:{public}").parse().unwrap();
    let path = format!("https://localhost/i/{trigger}");

    // A connection opened before the reload.
    let tls = connect_tls(public_addr, &first.der, &[b"http/1.1"])
        .await
        .expect("first cert");
    let (mut open, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    assert_eq!(
        open.send_request(webhook(&path, &key))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // Swap the files and signal.
    let second = write_cert(&dir, "second");
    std::fs::copy(&second.cert_path, &live_cert).unwrap();
    std::fs::copy(&second.key_path, &live_key).unwrap();
    signal(&child, "HUP");

    let mut reloaded = false;
    for _ in 0..100 {
        if connect_tls(public_addr, &second.der, &[b"http/1.1"])
            .await
            .is_ok()
        {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reloaded, "new handshakes use the new certificate");
    assert!(
        connect_tls(public_addr, &first.der, &[b"http/1.1"])
            .await
            .is_err()
    );

    // The old connection still serves requests.
    let response = open
        .send_request(webhook(&path, &key))
        .await
        .expect("old connection");
    assert_eq!(response.status(), StatusCode::OK);
    drop(child);
    let _ = std::fs::remove_dir_all(dir);
}

/// An upstream that answers 200 only after `delay`.
async fn slow_upstream(delay: Duration) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper::service::service_fn(
                move |request: Request<hyper::body::Incoming>| async move {
                    let _ = request.into_body().collect().await;
                    tokio::time::sleep(delay).await;
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                        Bytes::from_static(b"late"),
                    )))
                },
            );
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    addr
}

#[tokio::test]
async fn sigterm_drains_readiness_first_then_finishes_in_flight_requests_and_exits_zero() {
    let db = TestDb::create().await;
    let upstream = slow_upstream(Duration::from_millis(1500)).await;
    let (mut child, public, admin) = spawn_gateway(
        &db,
        &format!("http://{upstream}"),
        &[("HOOKGATE_SHUTDOWN_GRACE_MS", "800".into())],
    );
    wait_ready(admin).await;
    let (trigger, key) = setup_trigger(admin).await;
    let public_addr: std::net::SocketAddr = format!("127.0.0.1:{public}").parse().unwrap();
    let admin_addr: std::net::SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();

    let path = format!("/i/{trigger}");
    let key_header = key.clone();
    let in_flight = tokio::spawn(async move {
        send(
            public_addr,
            "POST",
            &path,
            &[("x-api-key", &key_header)],
            "payload",
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&child, "TERM");

    // Readiness turns 503 at once (polled: the signal is asynchronous).
    let mut draining = false;
    for _ in 0..40 {
        let reply = send(admin_addr, "GET", "/readyz", &[], "").await;
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(reply.json()["checks"]["draining"], true);
            draining = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(draining, "/readyz answers 503 while draining");

    let reply = in_flight.await.expect("in-flight request");
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "the in-flight request finishes"
    );
    assert_eq!(reply.text(), "late");

    let mut exit = None;
    for _ in 0..200 {
        if let Some(status) = child.0.try_wait().expect("wait") {
            exit = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exit = exit.expect("hookgate exits after draining");
    assert!(exit.success(), "exit status {exit:?}");
    assert!(
        TcpStream::connect(public_addr).await.is_err(),
        "no longer accepting"
    );
}
