//! Blocking users.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chat_core::UserId;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{Caller, JsonBody};

/// `{"user_id"}`.
#[derive(Deserialize)]
pub(crate) struct BlockBody {
    user_id: UserId,
}

/// `POST /api/blocks` → 204.
pub(crate) async fn block(
    State(state): State<AppState>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<BlockBody>,
) -> Result<StatusCode, ApiError> {
    state.engine.block(&me, &body.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/blocks/{user_id}` → 204.
pub(crate) async fn unblock(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.unblock(&me, &UserId::from(user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/blocks` → `{"blocked":[user_id]}`.
pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(me): Caller,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "blocked": state.engine.blocked(&me).await? })))
}
