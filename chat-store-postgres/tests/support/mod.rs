//! Shared by this crate's integration tests: a TCP proxy that a test can
//! cut, freeze and restore (to take PostgreSQL away from one store without
//! touching the shared server), and URL helpers.

#![allow(dead_code, unreachable_pub)] // Each test binary uses a part of it.

use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Forwards both ways.
    Open,
    /// Holds every connection open and forwards nothing, like a network
    /// that drops packets. Whatever was held is dropped, never forwarded,
    /// when the mode changes again.
    Frozen,
    /// Refuses connections and closes the open ones.
    Cut,
}

/// A TCP proxy on 127.0.0.1 in front of `target`.
pub struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    mode: watch::Sender<Mode>,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Proxy {
    /// Starts forwarding to `target` on a free port.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (mode, _) = watch::channel(Mode::Open);
        let proxy = Self {
            addr,
            target,
            mode,
            listener: Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn serve(&self, listener: TcpListener) {
        let (target, mode) = (self.target, self.mode.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(forward(client, target, mode.subscribe()));
            }
        });
        *self.listener.lock().expect("proxy lock") = Some(task);
    }

    /// Refuses new connections and closes the open ones.
    pub async fn cut(&self) {
        let running = self.listener.lock().expect("proxy lock").take();
        if let Some(task) = running {
            task.abort();
            let _ = task.await;
        }
        self.mode.send_replace(Mode::Cut);
    }

    /// Keeps connections open but forwards nothing.
    pub fn freeze(&self) {
        self.mode.send_replace(Mode::Frozen);
    }

    /// Forwards again on the same port; what was held or open is dropped.
    pub async fn restore(&self) {
        // Connections held or open end on this change.
        self.mode.send_replace(Mode::Cut);
        let running = self.listener.lock().expect("proxy lock").is_some();
        if !running {
            let listener = TcpListener::bind(self.addr).await.expect("rebind proxy");
            self.serve(listener);
        }
        self.mode.send_replace(Mode::Open);
    }
}

async fn forward(mut client: TcpStream, target: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let start = *mode.borrow_and_update();
    match start {
        Mode::Cut => return,
        Mode::Frozen => {
            // Hold the connection, say nothing, then drop it.
            let _ = mode.changed().await;
            return;
        }
        Mode::Open => {}
    }
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        // A mode change wins over bytes that are ready at the same poll: a
        // freeze set before a send must hold that send, or the server could
        // commit a statement whose reply the test meant to lose.
        biased;
        _ = mode.changed() => {
            if *mode.borrow_and_update() == Mode::Frozen {
                // Stop forwarding but keep both ends open until the next change.
                let _ = mode.changed().await;
            }
        }
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
    }
}

/// The test server's address and a URL for the same role and database at
/// `addr` instead.
pub fn server_and_url_via(url: &str, addr: SocketAddr) -> (SocketAddr, String) {
    let config: tokio_postgres::Config = url.parse().expect("test URL parses");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        other => panic!("the test URL must name a TCP host, got {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let server = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .expect("resolve test host")
        .next()
        .expect("test host has an address");
    let user = config.get_user().unwrap_or("postgres");
    let password = config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    let db = config.get_dbname().unwrap_or(user);
    (server, format!("postgres://{user}:{password}@{addr}/{db}"))
}

/// The test server's address.
pub fn server_addr(url: &str) -> SocketAddr {
    server_and_url_via(url, "127.0.0.1:1".parse().expect("address")).0
}

/// A plain connection to the test server working in `schema`.
pub async fn raw_client(url: &str, schema: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect for the test's own queries");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("SET search_path TO {schema}"))
        .await
        .expect("search_path");
    client
}
