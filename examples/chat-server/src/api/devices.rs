//! A user's devices, and logging them out.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chat_core::DeviceId;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::Device;

/// `GET /api/devices` → `{"devices":[{"device_id","name","last_seen","current"}]}`.
pub(crate) async fn list(
    State(state): State<AppState>,
    Device(me): Device,
) -> Result<Json<Value>, ApiError> {
    let devices: Vec<Value> = state
        .engine
        .devices(&me)
        .await?
        .into_iter()
        .map(|d| {
            json!({
                "device_id": d.device_id,
                "name": d.name,
                "last_seen": d.last_seen,
                "current": d.current,
            })
        })
        .collect();
    Ok(Json(json!({ "devices": devices })))
}

/// `DELETE /api/devices/{device_id}` → 204 (own devices only): its tokens stop
/// working at once and its connections close with 4001.
pub(crate) async fn remove(
    State(state): State<AppState>,
    Device(me): Device,
    Path(device): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .engine
        .remove_device(&me.user_id, &DeviceId::from(device))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/logout` → 204: the caller's own device is logged out.
pub(crate) async fn logout(
    State(state): State<AppState>,
    Device(me): Device,
) -> Result<StatusCode, ApiError> {
    state.engine.logout(&me).await?;
    Ok(StatusCode::NO_CONTENT)
}
