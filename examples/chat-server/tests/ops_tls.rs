//! TLS against real servers, with a CA and a certificate (for `localhost`
//! and 127.0.0.1) that the test makes with rcgen:
//! - the listener (`--tls-cert`/`--tls-key`): HTTPS and WSS, `chat_url`
//!   says `wss://`, plain HTTP gets no answer;
//! - PostgreSQL of the test's own (`scripts/services` with ssl on and TCP
//!   logins only over TLS): `sslmode=verify-full` with `--backend-ca`
//!   serves chat; without the CA, or without TLS, the server refuses to
//!   start;
//! - Redis of the test's own on a `tls-port` only: `rediss://` with
//!   `--backend-ca` clusters and carries a message; without the CA the
//!   server refuses to start.
//!
//! - Cassandra of the test's own (`scripts/services` with client TLS on a
//!   PEM keystore and `PasswordAuthenticator`): `?tls=true` with a login
//!   and `--backend-ca` serves chat; without the login, or without TLS, the
//!   server refuses to start.

mod common;
mod db_restart;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::Retention;
use chat_server::config::Operations;
use chat_server::{Bound, Config};
use common::{HANG, TestServer};
use futures::StreamExt;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A CA and one server certificate it signed, as PEM files.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// The key and the certificate in one file (Cassandra's PEM keystore).
    key_and_cert: PathBuf,
    ca_pem: String,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "chat-engine test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", &ca.pem()),
        cert: write("server.pem", &cert.pem()),
        key: write("server.key", &key.serialize_pem()),
        key_and_cert: write("node.pem", &(key.serialize_pem() + &cert.pem())),
        ca_pem: ca.pem(),
        _dir: dir,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// Signs up alice and bob on the plain listener of `server` and has alice
/// send bob a message over WebSockets: the store (and the bus) work.
async fn chat_works(server: &TestServer) {
    let (alice, bob) = (server.signup("alice").await, server.signup("bob").await);
    let (mut bob_ws, _) = server.ws(&bob).await;
    let (mut alice_ws, _) = server.ws(&alice).await;
    alice_ws.send_text(&bob.id, "over TLS", "1").await;
    let (message, _) = bob_ws.until("message").await;
    assert_eq!(message["message"]["body"], "over TLS");
}

/// Whether a server with `config` fails to start within [`HANG`].
async fn refuses_to_start(config: &Config) -> String {
    let result = tokio::time::timeout(HANG, Bound::bind(config))
        .await
        .expect("start gives up within the timeout");
    match result {
        Ok(_) => panic!("started with {config:?}"),
        Err(e) => chat_server::logging::error_chain(&e),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_serves_https_and_wss() {
    let pki = pki();
    let server = TestServer::start_with(Config {
        ops: Operations {
            tls_cert: Some(pki.cert.clone()),
            tls_key: Some(pki.key.clone()),
            ..Operations::default()
        },
        ..TestServer::config()
    })
    .await;
    let port = server.addr.port();
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .timeout(HANG)
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    let res = https
        .post(format!("{base}/api/signup"))
        .json(&json!({"username": "alice", "password": "alice's password"}))
        .send()
        .await
        .expect("HTTPS answers");
    assert_eq!(res.status(), 201);
    let res = https
        .post(format!("{base}/api/login"))
        .json(&json!({"username": "alice", "password": "alice's password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["chat_url"],
        format!("wss://127.0.0.1:{port}/ws"),
        "{body}"
    );
    let token = body["token"].as_str().unwrap();

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::builder().timeout(HANG).build().unwrap();
    assert!(
        plain
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_err()
    );
    // A client that does not trust the CA is refused.
    assert!(plain.get(format!("{base}/healthz")).send().await.is_err());

    // WSS: TLS under the WebSocket, then the first sync ends with `synced`.
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(&pki.ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .expect("TLS handshake");
    let mut req = format!("wss://localhost:{port}/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio::time::timeout(HANG, tokio_tungstenite::client_async(req, stream))
        .await
        .unwrap()
        .expect("WebSocket over TLS");
    let first = tokio::time::timeout(HANG, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let frame: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(frame["type"], "synced", "{frame}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_with_the_backend_ca() {
    let pki = pki();
    // The key is copied for the postgres user by scripts/services.
    let Some(db) = db_restart::Database::start_with(
        "postgres",
        vec![
            ("CHAT_POSTGRES_TLS_CERT", pki.cert.display().to_string()),
            ("CHAT_POSTGRES_TLS_KEY", pki.key.display().to_string()),
        ],
    )
    .await
    else {
        return;
    };
    let url = |mode: &str| format!("{}?sslmode={mode}&connect_timeout=5", db.url());
    let with = |store: String, ca: Option<PathBuf>| Config {
        store,
        retention: Retention::Forever,
        ops: Operations {
            backend_ca: ca,
            ..Operations::default()
        },
        ..TestServer::config()
    };
    // TCP logins without TLS are rejected by this server's pg_hba.
    let why = refuses_to_start(&with(url("disable"), None)).await;
    assert!(
        why.contains("no encryption") || why.contains("pg_hba"),
        "{why}"
    );
    // TLS to a certificate the system does not trust.
    let why = refuses_to_start(&with(url("verify-full"), None)).await;
    assert!(why.to_lowercase().contains("certificate"), "{why}");

    let server = TestServer::start_with(with(url("verify-full"), Some(pki.ca.clone()))).await;
    chat_works(&server).await;
    let (status, body) = server
        .call(reqwest::Method::GET, "/readyz", None, None)
        .await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}

/// A `redis-server` of the test's own that speaks only TLS; killed on drop.
struct TlsRedis {
    child: Child,
    port: u16,
}

impl TlsRedis {
    fn start(pki: &Pki) -> Self {
        let port = free_port();
        let path = |p: &PathBuf| p.display().to_string();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .args(["--tls-port", &port.to_string()])
            .args(["--tls-cert-file", &path(&pki.cert)])
            .args(["--tls-key-file", &path(&pki.key)])
            .args(["--tls-ca-cert-file", &path(&pki.ca)])
            .args(["--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server is installed (scripts/services up redis installs it)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < HANG, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls_with_the_backend_ca() {
    let pki = pki();
    let redis = TlsRedis::start(&pki);
    let with = |ca: Option<PathBuf>| Config {
        cluster: Some(format!("rediss://localhost:{}", redis.port)),
        cluster_prefix: format!("tls{:08x}", rand::random::<u32>()),
        ops: Operations {
            backend_ca: ca,
            ..Operations::default()
        },
        ..TestServer::config()
    };
    let why = refuses_to_start(&with(None)).await;
    assert!(why.to_lowercase().contains("certificate"), "{why}");

    let server = TestServer::start_with(with(Some(pki.ca.clone()))).await;
    chat_works(&server).await;
    let (status, body) = server
        .call(reqwest::Method::GET, "/readyz", None, None)
        .await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_over_tls_with_a_login_and_the_backend_ca() {
    let pki = pki();
    let Some(db) = db_restart::Database::start_with(
        "cassandra",
        vec![(
            "CHAT_CASSANDRA_TLS_PEM",
            pki.key_and_cert.display().to_string(),
        )],
    )
    .await
    else {
        return;
    };
    // scripts/services prints cassandra://127.0.0.1:PORT; the superuser
    // the node made at its first start logs in.
    let hosts = db.url().strip_prefix("cassandra://").unwrap();
    let keyspace = format!("tls_{:08x}", rand::random::<u32>());
    let with = |login: &str, query: &str, ca: Option<PathBuf>| Config {
        store: format!("cassandra://{login}{hosts}/{keyspace}{query}"),
        ops: Operations {
            backend_ca: ca,
            ..Operations::default()
        },
        ..TestServer::config()
    };
    let ca = Some(pki.ca.clone());
    // No TLS: the node speaks only TLS on its CQL port.
    let why = refuses_to_start(&with("cassandra:cassandra@", "", ca.clone())).await;
    assert!(why.contains("cassandra"), "{why}");
    // TLS, but no login.
    let why = refuses_to_start(&with("", "?tls=true", ca.clone())).await;
    assert!(why.to_lowercase().contains("auth"), "{why}");

    let server = TestServer::start_with(with("cassandra:cassandra@", "?tls=true", ca)).await;
    chat_works(&server).await;
    server.stop().await;
}
