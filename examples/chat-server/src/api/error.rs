//! [`ApiError`]: every failure of the HTTP API as the contract's body
//! `{"error":{"code","message"}}` with a fitting status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chat_transport_ws::{error_body, status_of};

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// What the engine answered.
    #[error(transparent)]
    Engine(#[from] chat_core::Error),
    /// The request itself is malformed (JSON, query, …).
    #[error("{message}")]
    Request {
        /// The status to answer with.
        status: StatusCode,
        /// The contract code.
        code: &'static str,
        /// For a human.
        message: String,
    },
}

impl ApiError {
    /// A 400 with code `invalid_input`.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::Request {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_input",
            message: message.into(),
        }
    }

    /// A 401 with code `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Request {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
        }
    }

    /// A 404 with code `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::Request {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::Engine(e) => (status_of(e), e.code()),
            Self::Request { status, code, .. } => (*status, *code),
        };
        if status.is_server_error() {
            tracing::warn!(error = %self, "API call failed");
        }
        (status, axum::Json(error_body(code, &self.to_string()))).into_response()
    }
}
