//! Groups: creating one, its members with roles, roles, settings.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chat_core::engine::{GroupInfo, NewGroup};
use chat_core::{ConversationId, GroupSettings, HistoryVisibility, JoinPolicy, Role, UserId};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{Caller, JsonBody};

/// `{"name","members":[user_id],"join"?,"history"?}`.
#[derive(Deserialize)]
pub(crate) struct GroupBody {
    name: String,
    #[serde(default)]
    members: Vec<UserId>,
    #[serde(default)]
    join: JoinPolicy,
    #[serde(default)]
    history: HistoryVisibility,
}

/// `POST /api/groups` → 201 `{"conversation_id"}`; the caller is its owner.
pub(crate) async fn create(
    State(state): State<AppState>,
    Caller(me): Caller,
    JsonBody(body): JsonBody<GroupBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = state
        .engine
        .create_group(
            &me,
            NewGroup {
                name: body.name,
                members: body.members,
                join: body.join,
                history: body.history,
            },
        )
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

/// The group as the members answer and `PATCH` show it:
/// `{"members","roles","name","join","history"}` (a member missing from
/// `roles` is a plain member).
fn group_json(info: GroupInfo) -> Value {
    let mut roles = Map::new();
    for m in &info.members {
        if m.role != Role::Member {
            roles.insert(m.user_id.to_string(), json!(m.role));
        }
    }
    let members: Vec<&UserId> = info.members.iter().map(|m| &m.user_id).collect();
    json!({
        "conversation_id": info.conversation.id,
        "members": members,
        "roles": roles,
        "name": info.conversation.name,
        "join": info.conversation.join,
        "history": info.conversation.history,
    })
}

/// `GET /api/groups/{id}/members` → the group with its members and roles;
/// 403 for a non-member.
pub(crate) async fn members(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path(group): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let info = state
        .engine
        .group(&me, &ConversationId::from(group))
        .await?;
    Ok(Json(group_json(info)))
}

/// `{"role":"admin"|"member"}`.
#[derive(Deserialize)]
pub(crate) struct RoleBody {
    role: String,
}

/// `PUT /api/groups/{id}/members/{user_id}/role` → 204 (the owner only).
pub(crate) async fn set_role(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path((group, user)): Path<(String, String)>,
    JsonBody(body): JsonBody<RoleBody>,
) -> Result<StatusCode, ApiError> {
    let role = match Role::parse(&body.role) {
        Some(role @ (Role::Admin | Role::Member)) => role,
        _ => {
            return Err(ApiError::bad_input(format!(
                "role {:?} does not exist: it is \"admin\" or \"member\"",
                body.role
            )));
        }
    };
    state
        .engine
        .set_role(&me, &ConversationId::from(group), &UserId::from(user), role)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH /api/groups/{id}` `{"name"?,"join"?,"history"?}` → 200 the group
/// (an owner or admin).
pub(crate) async fn update(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path(group): Path<String>,
    JsonBody(settings): JsonBody<GroupSettings>,
) -> Result<Json<Value>, ApiError> {
    let info = state
        .engine
        .update_group(&me, &ConversationId::from(group), settings)
        .await?;
    Ok(Json(group_json(info)))
}
