//! The `GET /metrics` route, for the main listener and for the separate
//! `--metrics-listen` one.

use std::sync::Arc;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use chat_core::engine::Engine;

use super::Metrics;

/// The OpenMetrics text format that `prometheus-client` writes; Prometheus
/// asks for it and reads it.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A router with `GET /metrics` alone.
pub fn routes(engine: Engine, metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let text = metrics.render(&engine);
            async move { ([(CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response() }
        }),
    )
}
