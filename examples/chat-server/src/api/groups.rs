//! Groups and their members.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chat_core::{ConversationId, UserId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{Caller, JsonBody};

/// `{"name","members":[user_id]}`.
#[derive(Deserialize)]
pub(crate) struct NewGroup {
    name: String,
    #[serde(default)]
    members: Vec<UserId>,
}

/// `POST /api/groups` → 201 `{"conversation_id"}`; the caller is a member.
pub(crate) async fn create(
    State(state): State<AppState>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<NewGroup>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = state
        .engine
        .create_group(&me, &body.name, &body.members)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "conversation_id": id }))))
}

/// `{"user_id"}`.
#[derive(Deserialize)]
pub(crate) struct NewMember {
    user_id: UserId,
}

/// `POST /api/groups/{id}/members` → 204.
pub(crate) async fn add_member(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path(group): Path<String>,
    JsonBody(body): JsonBody<NewMember>,
) -> Result<StatusCode, ApiError> {
    state
        .engine
        .add_member(&me, &ConversationId::from(group), &body.user_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/groups/{id}/members/{user_id}` → 204.
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path((group, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .engine
        .remove_member(&me, &ConversationId::from(group), &UserId::from(user))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/groups/{id}/members` → `{"members":[user_id]}`; 403 for a non-member.
pub(crate) async fn members(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path(group): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let members = state
        .engine
        .members(&me, &ConversationId::from(group))
        .await?;
    Ok(Json(json!({ "members": members })))
}
