//! Extractors whose failures answer in the contract's error shape: the
//! authenticated caller, a JSON body, and query parameters.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chat_core::UserId;
use chat_core::auth::Identity;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;

/// The user whose `Authorization: Bearer` token came with the request.
pub(crate) struct Caller(pub(crate) UserId);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Device(identity) = Device::from_request_parts(parts, state).await?;
        Ok(Caller(identity.user_id))
    }
}

/// The user and device whose `Authorization: Bearer` token came with the request.
pub(crate) struct Device(pub(crate) Identity);

impl FromRequestParts<AppState> for Device {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token>"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer <token>"))?;
        Ok(Device(state.engine.authenticate(token).await?))
    }
}

/// A JSON body, whatever its content type says. Malformed JSON and missing
/// fields are a 400, a body over the limit a 413: never axum's plain 422.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = read_body(req, state.max_body).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_input(format!("bad JSON body: {e}")))
    }
}

/// How much of a too-large body is read and dropped so the client gets its
/// 413 instead of a reset connection; past this, the connection is closed.
const DRAIN_LIMIT: usize = 8 * 1024 * 1024;

/// The body, at most `max` bytes. A larger one is a 413 `too_large`, and the
/// rest of it is read and dropped (up to [`DRAIN_LIMIT`]): answering before
/// the client finished sending would make its HTTP client see a reset
/// connection rather than the answer.
async fn read_body(req: Request, max: usize) -> Result<Bytes, ApiError> {
    use futures::StreamExt;
    let mut stream = req.into_body().into_data_stream();
    let mut body = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_input(format!("cannot read the body: {e}")))?;
        seen = seen.saturating_add(chunk.len());
        if seen <= max {
            body.extend_from_slice(&chunk);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    if seen > max {
        return Err(ApiError::Request {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "too_large",
            message: format!("request body too large: {seen} bytes or more, at most {max}"),
        });
    }
    Ok(Bytes::from(body))
}

/// Query parameters; a malformed query is a 400 in the contract's shape.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::bad_input(e.body_text()))
    }
}
