//! [`WsError`]: why a WebSocket request was refused before the upgrade, and
//! its HTTP answer in the contract's error shape.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Why a `GET /ws` was refused before the upgrade.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// Neither an `Authorization: Bearer` header nor a `token` query parameter.
    #[error("missing token: send Authorization: Bearer <token> or ?token=<token>")]
    MissingToken,
    /// The engine refused the token, or could not check it.
    #[error(transparent)]
    Engine(#[from] chat_core::Error),
    /// The request is not a WebSocket upgrade.
    #[error("not a WebSocket upgrade: {0}")]
    NotUpgrade(String),
    /// A browser page of an origin the [`crate::OriginPolicy`] does not allow.
    #[error("WebSocket connections from origin {0:?} are not allowed")]
    OriginNotAllowed(String),
    /// The user holds `max` WebSockets on this node already.
    #[error("too many open WebSockets for this user (at most {max}); close one first")]
    TooManySockets {
        /// The cap.
        max: usize,
    },
}

impl WsError {
    /// The HTTP status of this refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken => StatusCode::UNAUTHORIZED,
            Self::NotUpgrade(_) => StatusCode::BAD_REQUEST,
            Self::OriginNotAllowed(_) => StatusCode::FORBIDDEN,
            Self::TooManySockets { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Engine(e) => status_of(e),
        }
    }

    /// The contract's error code of this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "unauthorized",
            Self::NotUpgrade(_) => "bad_request",
            Self::OriginNotAllowed(_) => "forbidden",
            Self::TooManySockets { .. } => "rate_limited",
            Self::Engine(e) => e.code(),
        }
    }
}

/// The HTTP status that fits a chat-core error.
pub fn status_of(error: &chat_core::Error) -> StatusCode {
    use chat_core::Error as E;
    match error {
        E::NotFound { .. } => StatusCode::NOT_FOUND,
        E::AlreadyExists { .. } => StatusCode::CONFLICT,
        E::NotMember { .. } => StatusCode::FORBIDDEN,
        E::InvalidInput { .. } => StatusCode::BAD_REQUEST,
        E::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        E::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        E::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
        E::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        // A kind added to chat-core later: a server-side failure until mapped.
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The contract's error body: `{"error":{"code","message"}}`.
pub fn error_body(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": { "code": code, "message": message } })
}

impl IntoResponse for WsError {
    fn into_response(self) -> Response {
        if let Self::Engine(chat_core::Error::Unavailable { .. }) = &self {
            tracing::warn!(error = %self, "cannot check a WebSocket token");
        }
        let body = error_body(self.code(), &self.to_string());
        (self.status(), axum::Json(body)).into_response()
    }
}
