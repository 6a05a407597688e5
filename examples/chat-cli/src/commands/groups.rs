//! `groups …` and `conversations`.

use chat_core::{ConversationKind, GroupSettings};
use serde_json::json;

use super::Context;
use crate::args::GroupsCommand;
use crate::error::{CliError, Result};
use crate::http::Group;

/// Runs a `groups` subcommand.
pub(super) async fn run(ctx: &Context, cmd: GroupsCommand) -> Result<()> {
    match cmd {
        GroupsCommand::Create {
            name,
            members,
            join,
            history,
        } => {
            let mut ids = Vec::with_capacity(members.len());
            for member in &members {
                ids.push(ctx.api.resolve_user(member).await?);
            }
            let id = ctx
                .api
                .create_group(&name, &ids, join.map(Into::into), history.map(Into::into))
                .await?;
            print_id(ctx, &id);
        }
        GroupsCommand::Add { group, user } => {
            let user_id = ctx.api.resolve_user(&user).await?;
            ctx.api.add_member(&group, &user_id).await?;
        }
        GroupsCommand::Remove { group, user } => {
            let user_id = ctx.api.resolve_user(&user).await?;
            ctx.api.remove_member(&group, &user_id).await?;
        }
        GroupsCommand::Role { group, user, role } => {
            let user_id = ctx.api.resolve_user(&user).await?;
            ctx.api.set_role(&group, &user_id, role.into()).await?;
        }
        GroupsCommand::Settings {
            group,
            name,
            join,
            history,
        } => {
            let settings = GroupSettings {
                name,
                join: join.map(Into::into),
                history: history.map(Into::into),
            };
            // Without a change, only show them: any member may.
            let info = if settings == GroupSettings::default() {
                ctx.api.group(&group).await?
            } else {
                ctx.api.update_group(&group, &settings).await?
            };
            print_settings(ctx, &info);
        }
        GroupsCommand::Invite {
            group,
            max_uses,
            expires_in,
        } => {
            let code = ctx.api.create_invite(&group, max_uses, expires_in).await?;
            if ctx.json {
                println!("{}", json!({ "code": code }));
            } else {
                println!("{code}");
            }
        }
        GroupsCommand::Revoke { group, code } => {
            ctx.api.revoke_invite(&group, &code).await?;
        }
        GroupsCommand::Join { invite } => {
            let id = ctx.api.accept_invite(&invite_code(&invite)?).await?;
            print_id(ctx, &id);
        }
        GroupsCommand::Leave { group } => {
            let me = ctx.me().await?;
            ctx.api.remove_member(&group, &me).await?;
        }
        GroupsCommand::Members { group } => {
            let mut printer = ctx.printer();
            let info = ctx.api.group(&group).await?;
            for user_id in &info.members {
                let username = printer.username(&ctx.api, user_id).await;
                let role = info.role_of(user_id).as_str();
                if printer.json() {
                    printer
                        .value(&json!({ "user_id": user_id, "username": username, "role": role }));
                } else {
                    println!("{user_id}\t{username}\t{role}");
                }
            }
        }
    }
    Ok(())
}

fn print_id(ctx: &Context, conversation_id: &str) {
    if ctx.json {
        println!("{}", json!({ "conversation_id": conversation_id }));
    } else {
        println!("{conversation_id}");
    }
}

/// A group's name, join policy and history visibility, one per line.
fn print_settings(ctx: &Context, info: &Group) {
    if ctx.json {
        println!(
            "{}",
            json!({
                "conversation_id": info.conversation_id,
                "name": info.name,
                "join": info.join,
                "history": info.history,
            })
        );
        return;
    }
    let json_word = |v: serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    println!("name\t{}", info.name.as_deref().unwrap_or_default());
    println!("join\t{}", json_word(json!(info.join)));
    println!("history\t{}", json_word(json!(info.history)));
}

/// The code of an invite given as a code, or as a link that ends with one
/// (`…#/invite/CODE` from the web page, or `…?invite=CODE`).
fn invite_code(given: &str) -> Result<String> {
    let given = given.trim();
    let code = if let Some((_, code)) = given.rsplit_once("#/invite/") {
        code
    } else if let Some((_, rest)) = given.split_once("invite=") {
        rest.split('&').next().unwrap_or_default()
    } else {
        given
    };
    if code.is_empty() || !code.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        return Err(CliError::Usage(format!(
            "{given:?} is not an invite code, nor a link with one"
        )));
    }
    Ok(code.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invite_is_a_code_or_a_link_with_one() {
        let code = "0123456789abcdef0123456789abcdef";
        assert_eq!(invite_code(code).unwrap(), code);
        let link = format!("http://127.0.0.1:8080/#/invite/{code}");
        assert_eq!(invite_code(&link).unwrap(), code);
        let link = format!("https://chat.example/?invite={code}&x=1");
        assert_eq!(invite_code(&link).unwrap(), code);
        assert!(matches!(invite_code(""), Err(CliError::Usage(_))));
        assert!(matches!(
            invite_code("http://x/#/invite/"),
            Err(CliError::Usage(_))
        ));
        assert!(matches!(invite_code("a b"), Err(CliError::Usage(_))));
    }
}
