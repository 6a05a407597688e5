//! The conversation list and history pages.

use axum::Json;
use axum::extract::{Path, State};
use chat_core::{ConversationId, MessageId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiQuery, Caller};

/// `GET /api/conversations` → `{"conversations":[…]}`, most recent first.
pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(me): Caller,
) -> Result<Json<Value>, ApiError> {
    let conversations = state.engine.conversations(&me).await?;
    Ok(Json(json!({ "conversations": conversations })))
}

/// `?before=&limit=`; empty values count as absent.
#[derive(Deserialize)]
pub(crate) struct Page {
    before: Option<String>,
    limit: Option<String>,
}

/// `GET /api/conversations/{id}/messages?before=&limit=` → newest first.
pub(crate) async fn messages(
    State(state): State<AppState>,
    Caller(me): Caller,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Value>, ApiError> {
    let before = match page.before.as_deref().filter(|b| !b.is_empty()) {
        None => None,
        Some(b) => Some(
            b.parse::<MessageId>()
                .map_err(|_| ApiError::bad_input(format!("before={b:?} is not a message id")))?,
        ),
    };
    let limit =
        match page.limit.as_deref().filter(|l| !l.is_empty()) {
            None => None,
            Some(l) => Some(l.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                ApiError::bad_input(format!("limit={l:?} is not a positive number"))
            })?),
        };
    let messages = state
        .engine
        .history(&me, &ConversationId::from(id), before, limit)
        .await?;
    Ok(Json(json!({ "messages": messages })))
}
