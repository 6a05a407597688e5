//! The server's own accept loop under axum's router: what `axum::serve`
//! cannot be told. Each accepted socket is first counted against the
//! connection caps (a refused one is answered 429 or 503, see [`refuse`]),
//! then served by hyper over a [`TimedIo`] that enforces the header, idle
//! and write timeouts, with the client's address in every request as
//! axum's `ConnectInfo<SocketAddr>`.

mod limiter;
mod refuse;
mod timed_io;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower_service::Service;

use limiter::ConnLimiter;
pub(crate) use limiter::auto_max_connections;
pub(crate) use timed_io::Timeouts;
use timed_io::{ConnState, TimedIo};

/// How the accept loop treats connections.
#[derive(Clone, Debug)]
pub(crate) struct NetConfig {
    pub(crate) timeouts: Timeouts,
    pub(crate) max_connections: usize,
    pub(crate) max_per_addr: Option<usize>,
}

/// Refusals that linger at once to read what the client still sends;
/// past this a refusal is written and its socket closed at once, so a flood
/// of refusals cannot itself hold many sockets.
const MAX_REFUSALS: usize = 256;

/// Serves `router` on `listener` until `shutdown` completes; then stops
/// accepting, lets every HTTP connection finish its request (upgraded
/// WebSockets are the engine's to close) and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    config: NetConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let limiter = ConnLimiter::new(config.max_connections, config.max_per_addr);
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let (stop, stopping) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        // A backstop only: TimedIo enforces the idle and header timeouts.
        .header_read_timeout(config.timeouts.idle + config.timeouts.header);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Chat frames are small and latency-bound: without TCP_NODELAY,
        // Nagle's algorithm meets the peer's delayed ACK and holds a frame
        // for up to 40 ms (the load generator measured exactly that).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let permit = match limiter.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(why) => {
                tracing::debug!(%peer, ?why, open = limiter.open(), "connection refused");
                let slot = refusals.clone().try_acquire_owned().ok();
                tokio::spawn(refuse::refuse(tcp, why, slot));
                continue;
            }
        };
        let state = ConnState::new();
        let io = TimedIo::new(tcp, state.clone(), config.timeouts, permit);
        let service = RouterService {
            router: router.clone(),
            peer,
            state,
        };
        let conn = http
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let mut stopping = stopping.clone();
        // The connection's state is boxed so that it is freed as soon as a
        // WebSocket upgrade hands the socket over, rather than sized into
        // this task.
        let mut conn = Box::pin(conn);
        tokio::spawn(async move {
            let result = tokio::select! {
                result = conn.as_mut() => Some(result),
                // The guard `wait_for` returns must not live across an await.
                _ = async { stopping.wait_for(|stop| *stop).await.map(|_| ()) } => None,
            };
            let result = match result {
                Some(result) => result,
                None => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    drop(stopping);
    let _ = stop.send(true);
    // Every connection task holds a receiver: this waits for all of them.
    stop.closed().await;
}

/// Accept errors: a connection that failed before we took it is nothing;
/// running out of files (or memory) is waited out briefly, as axum does,
/// instead of spinning.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind as K;
    if matches!(
        e.kind(),
        K::ConnectionAborted | K::ConnectionReset | K::ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(error = %e, "accept failed; pausing accepts for 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// The router as a hyper service of one connection: puts the peer address
/// into each request and tells the socket when a request is in progress.
#[derive(Clone)]
struct RouterService {
    router: Router,
    peer: SocketAddr,
    state: Arc<ConnState>,
}

impl hyper::service::Service<Request<Incoming>> for RouterService {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>,
    >;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.state.request_started();
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let mut router = self.router.clone();
        let state = self.state.clone();
        Box::pin(async move {
            // A Router is always ready and never fails.
            let response = router.call(req).await?;
            state.request_finished(response.status() == StatusCode::SWITCHING_PROTOCOLS);
            Ok(response)
        })
    }
}
