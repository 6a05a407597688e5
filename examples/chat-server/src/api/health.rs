//! `GET /healthz` (the process is up) and `GET /readyz` (it can serve now).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chat_transport_ws::error_body;

use super::AppState;

/// How long each part (store, presence, discovery) may take to answer a
/// readiness probe. Well under the usual probe timeouts of load balancers
/// and orchestrators (Kubernetes: 1 s by default, often raised), and long
/// enough for one round trip to a loaded database.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// 200 `{"status":"ok"}` while the process serves HTTP, whatever its store.
pub(super) async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

/// 200 `{"status":"ready"}` when the store (and the cluster's presence and
/// discovery, when configured) answered a real call within
/// [`READY_TIMEOUT`]; otherwise 503 with the contract's error body, code
/// `unavailable`, whose message names the part (`store: cassandra: ping`).
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    match state.engine.ready(READY_TIMEOUT).await {
        Ok(()) => axum::Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(not_ready) => {
            // The body says which part; the log also has the backend's own
            // words (a refused connection, a keyspace that is gone).
            let mut detail = not_ready.to_string();
            let mut source = std::error::Error::source(not_ready.cause());
            while let Some(s) = source {
                // Many errors print their source too: say each thing once.
                let text = s.to_string();
                if !detail.ends_with(&text) {
                    detail += &format!(": {text}");
                }
                source = s.source();
            }
            tracing::warn!(error = %detail, "not ready");
            let body = error_body("unavailable", &not_ready.to_string());
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
    }
}
