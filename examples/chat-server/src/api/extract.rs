//! Extractors whose failures answer in the contract's error shape: the
//! authenticated caller, a JSON body, and query parameters.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use chat_core::UserId;
use chat_core::engine::cost;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;

/// The client's address: the TCP peer of the connection (the server's
/// accept loop puts it in every request), `None` when the router runs
/// without one (in-process tests).
pub(crate) struct ClientAddr(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_addr(parts)))
    }
}

fn client_addr(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// The user whose `Authorization: Bearer` token came with the request.
/// For a write (any method but GET and HEAD) one write is also charged to
/// that user's budget and to the client address's: past either, the
/// request is answered 429 with `Retry-After` before it does anything.
pub(crate) struct Caller(pub(crate) UserId);

impl FromRequestParts<AppState> for Caller {
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
        let user = state.engine.authenticate(token).await?;
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            state
                .engine
                .charge_write(Some(&user), client_addr(parts), cost::WRITE)?;
        }
        Ok(Caller(user))
    }
}

/// A JSON body sent as `Content-Type: application/json` (parameters such
/// as `charset=utf-8` allowed). Another or no content type is a 415: a
/// page elsewhere cannot make a browser post JSON here as a "simple"
/// cross-site form or text request. Malformed JSON and missing fields are
/// a 400, a body over the limit a 413, one that takes longer than the
/// body timeout a 408: never axum's plain 422.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        require_json(req.headers())?;
        let bytes = tokio::time::timeout(state.body_timeout, read_body(req, state.max_body))
            .await
            .map_err(|_| ApiError::Request {
                status: StatusCode::REQUEST_TIMEOUT,
                code: "timeout",
                message: format!(
                    "the request body did not arrive within {:.0} s",
                    state.body_timeout.as_secs_f64()
                ),
            })??;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Decodes a JSON body into `T`; a 400 in the contract's shape when it
/// does not fit. Public to the crate for the fuzz targets' twin.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_input(format!("bad JSON body: {e}")))
}

/// A 415 unless the content type is `application/json`.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    Err(ApiError::Request {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code: "unsupported_media_type",
        message: if content_type.is_empty() {
            "send the JSON body with Content-Type: application/json".to_owned()
        } else {
            format!("send the JSON body with Content-Type: application/json, not {content_type:?}")
        },
    })
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
