//! `groups …` and `conversations`.

use chat_core::ConversationKind;
use serde_json::json;

use super::Context;
use crate::args::GroupsCommand;
use crate::error::Result;

/// Runs a `groups` subcommand.
pub(super) async fn run(ctx: &Context, cmd: GroupsCommand) -> Result<()> {
    match cmd {
        GroupsCommand::Create { name, members } => {
            let mut ids = Vec::with_capacity(members.len());
            for member in &members {
                ids.push(ctx.api.resolve_user(member).await?);
            }
            let id = ctx.api.create_group(&name, &ids).await?;
            if ctx.json {
                println!("{}", json!({ "conversation_id": id }));
            } else {
                println!("{id}");
            }
        }
        GroupsCommand::Add { group, user } => {
            let user_id = ctx.api.resolve_user(&user).await?;
            ctx.api.add_member(&group, &user_id).await?;
        }
        GroupsCommand::Leave { group } => {
            let me = ctx.me().await?;
            ctx.api.remove_member(&group, &me).await?;
        }
        GroupsCommand::Members { group } => {
            let mut printer = ctx.printer();
            for user_id in ctx.api.members(&group).await? {
                let username = printer.username(&ctx.api, &user_id).await;
                if printer.json() {
                    printer.value(&json!({ "user_id": user_id, "username": username }));
                } else {
                    println!("{user_id}\t{username}");
                }
            }
        }
    }
    Ok(())
}

/// `conversations`: `id  kind  unread  name` per line, most recent first. A
/// direct conversation is named by the other user's username.
pub(super) async fn conversations(ctx: &Context) -> Result<()> {
    let mut printer = ctx.printer();
    let list = ctx.api.conversations().await?;
    if printer.json() {
        list.iter().for_each(|c| printer.value(c));
        return Ok(());
    }
    let me = if list.iter().any(|c| c.kind == ConversationKind::Direct) {
        Some(ctx.me().await?)
    } else {
        None
    };
    for c in &list {
        let (kind, name) = match (&c.kind, c.conversation_id.direct_pair()) {
            (ConversationKind::Direct, Some((a, b))) => {
                let other = if Some(a.as_str()) == me.as_deref() {
                    b
                } else {
                    a
                };
                ("direct", printer.username(&ctx.api, other.as_str()).await)
            }
            (ConversationKind::Direct, None) => ("direct", String::new()),
            (ConversationKind::Group, _) => ("group", c.name.clone().unwrap_or_default()),
        };
        println!("{}\t{kind}\t{} unread\t{name}", c.conversation_id, c.unread);
    }
    Ok(())
}
