//! The server's own accept loop under axum's router: what `axum::serve`
//! cannot be told. Each accepted socket is first counted against the
//! connection caps (a refused one is answered 429 or 503, see [`refuse`]),
//! then served by hyper over a [`TimedIo`] that enforces the header, idle
//! and write timeouts, with the client's address in every request as
//! axum's `ConnectInfo<SocketAddr>`.

mod limiter;
mod refuse;
mod request_id;
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
use tokio_rustls::TlsAcceptor;
use tower_service::Service;
use tracing::Instrument;

use limiter::ConnLimiter;
pub(crate) use limiter::auto_max_connections;
pub(crate) use timed_io::Timeouts;
use timed_io::{ConnState, TimedIo};

/// How the accept loop treats connections.
#[derive(Clone)]
pub(crate) struct NetConfig {
    pub(crate) timeouts: Timeouts,
    pub(crate) max_connections: usize,
    pub(crate) max_per_addr: Option<usize>,
    /// TLS on every accepted connection (HTTPS and WSS), if configured.
    pub(crate) tls: Option<TlsAcceptor>,
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
    let mut conn_ids: u64 = 0;
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
                if config.tls.is_some() {
                    // A plain-text refusal means nothing to a TLS client,
                    // and a handshake per refusal would make a flood cheap
                    // to aim at us: the socket is just closed.
                    continue;
                }
                let slot = refusals.clone().try_acquire_owned().ok();
                tokio::spawn(refuse::refuse(tcp, why, slot));
                continue;
            }
        };
        conn_ids += 1;
        let span = tracing::info_span!("conn", conn = conn_ids, %peer);
        let state = ConnState::new();
        let io = TimedIo::new(tcp, state.clone(), config.timeouts, permit);
        let service = RouterService {
            router: router.clone(),
            peer,
            state,
        };
        let stopping = stopping.clone();
        let http = http.clone();
        let tls = config.tls.clone();
        let handshake = config.timeouts.header;
        tokio::spawn(
            async move {
                match tls {
                    None => serve_conn(&http, io, service, stopping).await,
                    Some(acceptor) => {
                        // The handshake is part of the request head: it
                        // gets the header timeout.
                        match tokio::time::timeout(handshake, acceptor.accept(io)).await {
                            Ok(Ok(tls_io)) => serve_conn(&http, tls_io, service, stopping).await,
                            Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!("TLS handshake timed out"),
                        }
                    }
                }
            }
            .instrument(span),
        );
    }
    drop(listener);
    drop(stopping);
    let _ = stop.send(true);
    // Every connection task holds a receiver: this waits for all of them.
    stop.closed().await;
}

/// Serves one connection (plain or TLS) until it ends, or until the
/// server stops (then the request in progress finishes first).
async fn serve_conn<I>(
    http: &hyper::server::conn::http1::Builder,
    io: I,
    service: RouterService,
    mut stopping: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // Boxed, so that the connection's state is freed as soon as a WebSocket
    // upgrade hands the socket over instead of being sized into this task.
    let mut conn = Box::pin(
        http.serve_connection(TokioIo::new(io), service)
            .with_upgrades(),
    );
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
        tracing::debug!(error = %e, "connection ended");
    }
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
        let id = request_id::of(req.headers());
        let span = tracing::info_span!(
            "http",
            method = %req.method(),
            path = %log_path(req.uri().path()),
            req = %String::from_utf8_lossy(id.as_bytes()),
        );
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let mut router = self.router.clone();
        let state = self.state.clone();
        let started = std::time::Instant::now();
        let probe = matches!(req.uri().path(), "/healthz" | "/readyz" | "/metrics");
        Box::pin(
            async move {
                // A Router is always ready and never fails.
                let mut response = router.call(req).await?;
                let status = response.status();
                state.request_finished(status == StatusCode::SWITCHING_PROTOCOLS);
                // The request log: one line per request, under its span
                // (probes and scrapes, every few seconds, only at debug).
                let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                if probe {
                    tracing::debug!(status = status.as_u16(), ms, "request");
                } else {
                    tracing::info!(status = status.as_u16(), ms, "request");
                }
                response.headers_mut().insert(request_id::HEADER, id);
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// A request path as logs show it: an invite code is a secret (whoever has
/// it joins the group), so the segment after `invites/` is hidden. The
/// query, which may hold a token (`/ws?token=`), is never logged.
fn log_path(path: &str) -> String {
    match path.split_once("/invites/") {
        Some((before, after)) => {
            let rest = after.split_once('/').map_or("", |(_, rest)| rest);
            if rest.is_empty() {
                format!("{before}/invites/{{code}}")
            } else {
                format!("{before}/invites/{{code}}/{rest}")
            }
        }
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn invite_codes_stay_out_of_logs() {
        assert_eq!(
            super::log_path("/api/invites/abc123"),
            "/api/invites/{code}"
        );
        assert_eq!(
            super::log_path("/api/groups/g:1/invites/abc123"),
            "/api/groups/g:1/invites/{code}"
        );
        assert_eq!(super::log_path("/api/me"), "/api/me");
    }
}
