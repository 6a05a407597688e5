//! The `GET /ws` handler: authenticate before the upgrade, then hand the
//! socket to [`crate::connection`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::extract::rejection::{ExtensionRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Query, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use chat_core::engine::{ClientInfo, Engine};
use serde::Deserialize;
use tracing::Instrument;

use crate::config::WsConfig;
use crate::connection;
use crate::error::WsError;

/// The `?token=` query parameter (browsers cannot set headers on a WebSocket).
#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// A `GET` route that turns each authenticated WebSocket connection into an
/// engine [`Session`](chat_core::engine::Session). Mount it where clients
/// expect the chat, e.g. `Router::new().route("/ws", ws_route(engine, config))`.
///
/// Before any upgrade: a page of an origin the [`WsConfig::origins`] policy
/// refuses gets 403, a bad or missing token 401, a user at its
/// [`WsConfig::max_sockets_per_user`] 429, a request that is no WebSocket
/// upgrade 400, each with the contract's JSON error body.
pub fn ws_route<S>(engine: Engine, config: WsConfig) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let shared = Arc::new((engine, config));
    get(
        move |headers: HeaderMap,
              peer: Result<ConnectInfo<SocketAddr>, ExtensionRejection>,
              query: Result<Query<TokenQuery>, QueryRejection>,
              upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>| {
            let shared = shared.clone();
            async move {
                let (engine, config) = &*shared;
                let query_token = query.ok().and_then(|Query(q)| q.token);
                // The peer is known when the server was started with
                // `into_make_service_with_connect_info` (or puts it there).
                let peer = peer.ok().map(|ConnectInfo(addr)| addr);
                accept(engine, config, &headers, peer, query_token, upgrade)
                    .await
                    .unwrap_or_else(IntoResponse::into_response)
            }
        },
    )
}

async fn accept(
    engine: &Engine,
    config: &WsConfig,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    query_token: Option<String>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, WsError> {
    let origin = headers
        .get(ORIGIN)
        .map(|v| v.to_str().unwrap_or("<not text>"));
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    if !config.origins.allows(origin, host) {
        return Err(WsError::OriginNotAllowed(
            origin.unwrap_or_default().to_owned(),
        ));
    }
    let token = bearer_token(headers)
        .map(str::to_owned)
        .or(query_token)
        .filter(|t| !t.is_empty())
        .ok_or(WsError::MissingToken)?;
    let identity = engine.authenticate(&token).await?;
    if let Some(max) = config.max_sockets_per_user
        && engine.user_connection_count(&identity.user_id) >= max
    {
        return Err(WsError::TooManySockets { max });
    }
    let upgrade = upgrade.map_err(|e| WsError::NotUpgrade(e.body_text()))?;
    let engine = engine.clone();
    let config = config.clone();
    // A frame must fit the write buffer whole, or the connection fails.
    let max_frame = config
        .max_write_buffer_bytes
        .saturating_sub(FRAME_HEADER_ROOM);
    let client = ClientInfo::new(peer.map(|p| p.ip()), Some(max_frame));
    // The upgraded connection runs on a task of its own: its span is made
    // here, under the request's (connection id, peer), and names whom it
    // serves. Never the token.
    let span = tracing::info_span!(
        "ws",
        user = %identity.user_id,
        device = %identity.device_id,
    );
    let response = upgrade
        .read_buffer_size(config.read_buffer_bytes)
        .write_buffer_size(config.write_buffer_bytes)
        .max_write_buffer_size(config.max_write_buffer_bytes)
        .max_message_size(config.max_message_bytes)
        .max_frame_size(config.max_message_bytes)
        .on_failed_upgrade(|e| tracing::debug!(error = %e, "WebSocket upgrade failed"))
        .on_upgrade(move |socket| {
            connection::run(socket, engine, identity, client, config).instrument(span)
        });
    Ok(response)
}

/// Bytes of a WebSocket frame's header (at most 14) and some room to spare.
const FRAME_HEADER_ROOM: usize = 64;

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("bearer  xyz "));
        assert_eq!(bearer_token(&h), Some("xyz"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&h), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer"));
        assert_eq!(bearer_token(&h), None);
    }
}
