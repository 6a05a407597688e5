//! The HTTP API of the contract, plus `GET /api/users?username=` (an extension).

mod accounts;
mod conversations;
mod error;
mod extract;
mod groups;
mod health;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use chat_core::engine::Engine;

pub use error::ApiError;
pub use health::READY_TIMEOUT;

/// What every handler reaches.
#[derive(Clone)]
pub struct AppState {
    /// The chat engine.
    pub engine: Engine,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
}

/// The `/api/…` routes, `/healthz` and `/readyz`, with request bodies capped
/// at `max_body` bytes and `body_timeout` of arrival time.
pub fn routes(engine: Engine, max_body: usize, body_timeout: Duration) -> Router {
    Router::new()
        .route("/api/signup", post(accounts::signup))
        .route("/api/login", post(accounts::login))
        .route("/api/me", get(accounts::me).patch(accounts::patch_me))
        .route("/api/users", get(accounts::user_by_name))
        .route("/api/users/{user_id}", get(accounts::user))
        .route("/api/groups", post(groups::create))
        .route(
            "/api/groups/{id}/members",
            get(groups::members).post(groups::add_member),
        )
        .route(
            "/api/groups/{id}/members/{user_id}",
            axum::routing::delete(groups::remove_member),
        )
        .route("/api/conversations", get(conversations::list))
        .route(
            "/api/conversations/{id}/messages",
            get(conversations::messages),
        )
        .route("/api/{*rest}", axum::routing::any(unknown))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        // JsonBody enforces `max_body` itself (it drains what is over, so the
        // client reads the 413); no other extractor reads a body.
        .layer(DefaultBodyLimit::disable())
        .with_state(AppState {
            engine,
            max_body,
            body_timeout,
        })
}

async fn unknown() -> ApiError {
    ApiError::not_found("no such API call")
}
