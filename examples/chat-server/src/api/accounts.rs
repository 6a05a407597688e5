//! Sign-up, login and profiles.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chat_core::engine::cost;
use chat_core::{Profile, UserId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiQuery, Caller, ClientAddr, JsonBody};

/// `{"username","password"}`.
#[derive(Deserialize)]
pub(crate) struct Credentials {
    username: String,
    password: String,
}

/// `POST /api/signup` → 201 `{"user_id","token"}`. Charged to the
/// client address's write budget.
pub(crate) async fn signup(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state.engine.charge_write(None, addr, cost::WRITE)?;
    let ok = state.engine.signup(&body.username, &body.password).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user_id": ok.user_id, "token": ok.token })),
    ))
}

/// `POST /api/login` → 200 `{"user_id","token","chat_url"}`. Charged to
/// the client address's write budget, and throttled per username and per
/// address after failures (429 with `Retry-After`).
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<Json<Value>, ApiError> {
    state.engine.charge_write(None, addr, cost::WRITE)?;
    let ok = state
        .engine
        .login_from(&body.username, &body.password, addr)
        .await?;
    Ok(Json(
        json!({ "user_id": ok.user_id, "token": ok.token, "chat_url": ok.chat_url }),
    ))
}

/// `GET /api/me`.
pub(crate) async fn me(
    State(state): State<AppState>,
    Caller(me): Caller,
) -> Result<Json<Profile>, ApiError> {
    Ok(Json(state.engine.profile(&me).await?))
}

/// `{"display_name"?}`.
#[derive(Deserialize)]
pub(crate) struct ProfilePatch {
    display_name: Option<String>,
}

/// `PATCH /api/me` → the updated profile.
pub(crate) async fn patch_me(
    State(state): State<AppState>,
    Caller(me): Caller,
    JsonBody(patch): JsonBody<ProfilePatch>,
) -> Result<Json<Profile>, ApiError> {
    let profile = match patch.display_name {
        Some(name) => state.engine.set_display_name(&me, &name).await?,
        None => state.engine.profile(&me).await?,
    };
    Ok(Json(profile))
}

/// `GET /api/users/{user_id}`.
pub(crate) async fn user(
    State(state): State<AppState>,
    Caller(_): Caller,
    Path(user_id): Path<String>,
) -> Result<Json<Profile>, ApiError> {
    Ok(Json(state.engine.profile(&UserId::from(user_id)).await?))
}

/// `?username=NAME`.
#[derive(Deserialize)]
pub(crate) struct ByUsername {
    username: Option<String>,
}

/// `GET /api/users?username=NAME` (an extension): the profile of that user,
/// so a client can start a direct chat by username.
pub(crate) async fn user_by_name(
    State(state): State<AppState>,
    Caller(_): Caller,
    ApiQuery(q): ApiQuery<ByUsername>,
) -> Result<Json<Profile>, ApiError> {
    let name = q
        .username
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_input("give ?username=NAME"))?;
    Ok(Json(state.engine.profile_by_username(&name).await?))
}
