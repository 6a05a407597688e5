//! Assembly: the engine from the configuration, the router, and serving
//! with a clean shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use chat_core::engine::Engine;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::auth::JwtAuthenticator;
use crate::config::{Config, retention_name};
use crate::error::ServerError;
use crate::metrics::Metrics;
use crate::net::{NetConfig, Timeouts};
use crate::push::{WebhookNotifier, WebhookOptions};
use crate::{api, net, stores, web};

/// Builds the engine that `config` describes and the router that serves it
/// (API, `/ws`, web page, and `/metrics` unless `--metrics-on-main false`).
/// `public_url` is the `chat_url` this node hands out.
pub async fn build_app(
    config: &Config,
    public_url: String,
) -> Result<(Router, Engine), ServerError> {
    let app = assemble(config, public_url).await?;
    Ok((app.router, app.engine))
}

/// What [`build_app`] builds, with the metrics for a separate listener.
struct App {
    router: Router,
    engine: Engine,
    metrics: Arc<Metrics>,
    /// The WebSockets still open (waited for at the end of serving).
    sockets: chat_transport_ws::OpenSockets,
}

async fn assemble(config: &Config, public_url: String) -> Result<App, ServerError> {
    config.validate()?;
    crate::tls::install_crypto_provider();
    let ttl = Duration::from_secs(config.token_ttl_secs);
    let auth = match &config.jwt_secret {
        Some(secret) => JwtAuthenticator::new(secret.as_bytes(), ttl),
        None => {
            tracing::warn!(
                "no --jwt-secret (CHAT_JWT_SECRET): using a random secret; tokens stop working at restart"
            );
            JwtAuthenticator::random(ttl)
        }
    };
    let metrics = Arc::new(Metrics::new());
    let mut builder = Engine::builder()
        .public_url(public_url.clone())
        .retention(config.retention)
        .limits(config.limits())
        .authenticator(Arc::new(auth))
        .observer(metrics.clone());
    if config.insecure_fast_hashing {
        builder = builder.insecure_fast_password_hashing();
    }
    if let Some(url) = &config.push_webhook {
        builder = builder.notifier(Arc::new(WebhookNotifier::start(
            url.clone(),
            WebhookOptions {
                metrics: Some(metrics.clone()),
                ..WebhookOptions::default()
            },
        )));
    }
    let backends = stores::Backends::from_config(config, Some(metrics.clone()))?;
    let builder = stores::with_store(builder, &config.store, config.retention, &backends).await?;
    let builder = stores::with_cluster(builder, config, &public_url, &backends).await?;
    let engine = builder.build().await?;
    let ws = config.ws();
    let sockets = ws.open_sockets.clone();
    let mut router = Router::new()
        .route("/ws", chat_transport_ws::ws_route(engine.clone(), ws))
        .merge(api::routes(
            engine.clone(),
            config.max_frame_bytes,
            config.protection.body_timeout(),
        ))
        .merge(web::routes());
    if config.ops.metrics_on_main {
        router = router.merge(crate::metrics::routes(engine.clone(), metrics.clone()));
    }
    let router = router
        .fallback(|| async { api::ApiError::not_found("no such page") })
        .layer(axum::middleware::map_response(web::security_headers));
    Ok(App {
        router,
        engine,
        metrics,
        sockets,
    })
}

/// A server that is bound and ready to accept.
pub struct Bound {
    listener: TcpListener,
    router: Router,
    engine: Engine,
    addr: SocketAddr,
    banner: String,
    net: NetConfig,
    metrics: Option<(TcpListener, Router)>,
    drain_grace: Duration,
    sockets: chat_transport_ws::OpenSockets,
    /// How long a closed socket lingers for the peer's close reply.
    close_linger: Duration,
}

impl Bound {
    /// Binds `config.listen` and builds the app.
    pub async fn bind(config: &Config) -> Result<Self, ServerError> {
        config.validate()?;
        crate::tls::install_crypto_provider();
        let tls = match (&config.ops.tls_cert, &config.ops.tls_key) {
            (Some(cert), Some(key)) => {
                Some(TlsAcceptor::from(crate::tls::server_config(cert, key)?))
            }
            _ => None,
        };
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let App {
            router,
            engine,
            metrics,
            sockets,
        } = assemble(config, config.public_url_for(addr)).await?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut banner = format!(
            "chat-server ready on {scheme}://{addr} (store {}, retention {})",
            stores::store_label(&config.store),
            retention_name(config.retention)
        );
        let metrics = match config.ops.metrics_listen {
            Some(at) => {
                let listener = TcpListener::bind(at).await?;
                banner += &format!(", metrics on http://{}/metrics", listener.local_addr()?);
                Some((listener, crate::metrics::routes(engine.clone(), metrics)))
            }
            None => None,
        };
        if let Some(cluster) = &config.cluster {
            banner += &format!(
                " as {} of cluster {} (prefix {})",
                engine.node_id(),
                stores::store_label(cluster),
                config.cluster_prefix
            );
        }
        let p = &config.protection;
        let net = NetConfig {
            timeouts: Timeouts {
                header: p.header_timeout(),
                idle: p.idle_timeout(),
                write: p.write_timeout(),
            },
            max_connections: match p.max_connections {
                0 => net::auto_max_connections(),
                n => n,
            },
            max_per_addr: (p.max_connections_per_addr > 0).then_some(p.max_connections_per_addr),
            tls,
        };
        banner += &format!(", at most {} connections", net.max_connections);
        Ok(Self {
            listener,
            router,
            engine,
            addr,
            banner,
            net,
            metrics,
            drain_grace: config.ops.drain_grace(),
            sockets,
            close_linger: config.ws().close_linger,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The engine behind the server.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Serves until `shutdown` completes, then drains: stops accepting,
    /// answers `/readyz` 503, leaves discovery, lets every WebSocket finish
    /// the frame in hand and write out its queue before closing it with
    /// 1012 (at most `--drain-grace-secs`), lets HTTP requests finish, and
    /// releases the node's id (see [`Engine::drain`]). A node whose id was
    /// taken stops at once instead, closing its sockets with 1001.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        tracing::info!("{}", self.banner);
        let engine = self.engine.clone();
        let metrics = self.metrics.map(|(listener, router)| {
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            })
        });
        // Serving ends at the caller's shutdown, or when another node took
        // this node's id: then it must stop, not serve on without minting.
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let accepting = tokio::spawn(net::serve(self.listener, self.router, self.net, async {
            let _ = stop_rx.await;
        }));
        let lost = tokio::select! {
            () = shutdown => false,
            () = engine.id_lost() => true,
        };
        let _ = stop_tx.send(());
        if lost {
            engine.shutdown().await;
        } else {
            let drained = engine.drain(self.drain_grace).await;
            tracing::info!(
                sessions = drained.sessions,
                forced = drained.forced,
                "drained"
            );
        }
        if let Err(e) = accepting.await {
            tracing::warn!(error = %e, "the accept loop ended badly");
        }
        // Upgraded connections are not awaited by axum: wait until their
        // close frames are out (a session ends before its socket does), for
        // at most their linger and a margin.
        let deadline = tokio::time::Instant::now() + self.close_linger + Duration::from_secs(1);
        while self.sockets.count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(task) = metrics {
            task.abort();
        }
        if engine.is_id_lost() {
            return Err(ServerError::NodeIdLost(engine.node_id().clone()));
        }
        tracing::info!("chat-server stopped");
        Ok(())
    }
}

/// Binds, serves until `shutdown`, and stops cleanly.
pub async fn serve(
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    Bound::bind(config).await?.serve(shutdown).await
}

/// Completes at SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_node_lease_no_longer_than_the_heartbeat_is_refused() {
        let config = Config {
            heartbeat_ms: 5000,
            node_lease_ms: Some(5000),
            store: "memory".into(),
            ..Config::default()
        };
        let err = build_app(&config, "ws://x/ws".into()).await.err().unwrap();
        assert!(
            matches!(
                err,
                ServerError::Engine(chat_core::Error::InvalidInput { .. })
            ),
            "{err}"
        );
        assert!(err.to_string().contains("id lease"), "{err}");
    }
}
