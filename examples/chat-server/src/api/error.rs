//! [`ApiError`]: every failure of the HTTP API as the contract's body
//! `{"error":{"code","message"}}` with a fitting status.

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
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
        let retry_after = match &self {
            // Whole seconds, rounded up: a client that waits that long succeeds.
            Self::Engine(chat_core::Error::RateLimited { retry_after }) => {
                Some(retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0))
            }
            _ if status == StatusCode::SERVICE_UNAVAILABLE => Some(1),
            _ => None,
        };
        let mut response =
            (status, axum::Json(error_body(code, &self.to_string()))).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}
