//! Invite codes to groups.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chat_core::ConversationId;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{Caller, JsonBody};

/// `{"max_uses"?,"expires_in_secs"?}`.
#[derive(Deserialize)]
pub(crate) struct InviteBody {
    #[serde(default)]
    max_uses: Option<u32>,
    #[serde(default)]
    expires_in_secs: Option<u64>,
}

/// `POST /api/groups/{id}/invites` → 201 `{"code"}` (an owner or admin).
pub(crate) async fn create(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path(group): Path<String>,
    JsonBody(body): JsonBody<InviteBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let code = state
        .engine
        .create_invite(
            &me,
            &ConversationId::from(group),
            body.max_uses,
            body.expires_in_secs,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "code": code }))))
}

/// `POST /api/invites/{code}` → 200 `{"conversation_id"}`; 410 `gone` when
/// expired, used up or revoked; 404 for an unknown code.
pub(crate) async fn accept(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path(code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let group = state.engine.accept_invite(&me, &code).await?;
    Ok(Json(json!({ "conversation_id": group })))
}

/// `DELETE /api/groups/{id}/invites/{code}` → 204 (an owner or admin).
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path((group, code)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .engine
        .revoke_invite(&me, &ConversationId::from(group), &code)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
