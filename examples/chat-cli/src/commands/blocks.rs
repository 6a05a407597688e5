//! `block`, `unblock` and `blocked`.

use serde_json::json;

use super::Context;
use crate::error::Result;

/// `block USER` (or `unblock USER` when `block` is false).
pub(super) async fn block(ctx: &Context, user: &str, block: bool) -> Result<()> {
    let user_id = ctx.api.resolve_user(user).await?;
    if block {
        ctx.api.block(&user_id).await
    } else {
        ctx.api.unblock(&user_id).await
    }
}

/// `blocked`: `user_id  username` per line.
pub(super) async fn list(ctx: &Context) -> Result<()> {
    let mut printer = ctx.printer();
    for user_id in ctx.api.blocked().await? {
        let username = printer.username(&ctx.api, &user_id).await;
        if printer.json() {
            printer.value(&json!({ "user_id": user_id, "username": username }));
        } else {
            println!("{user_id}\t{username}");
        }
    }
    Ok(())
}
