//! `send`, `listen` and `history`.

use std::collections::HashSet;

use chat_core::model::GroupEvent;
use chat_core::protocol::{SendTarget, ServerFrame};
use chat_core::{ConversationId, Message, MessageId, UserId};
use serde_json::json;

use super::Context;
use crate::args::{HistoryArgs, ListenArgs, SendArgs};
use crate::error::{CliError, Result};
use crate::output::Printer;
use crate::ws::{Chat, Sent};

/// `send (--to USER | --conversation ID) TEXT`: prints the stored message's id.
pub(super) async fn send(ctx: &Context, args: SendArgs) -> Result<()> {
    let target = match (args.to, args.conversation) {
        (Some(user), None) => SendTarget::User(UserId::from(ctx.api.resolve_user(&user).await?)),
        (None, Some(conversation)) => SendTarget::Conversation(ConversationId::from(conversation)),
        // clap's argument group asks for exactly one.
        _ => return Err(CliError::Usage("give --to or --conversation".into())),
    };
    let mut chat = ctx.connect().await?;
    let sent = chat.send_message(target, args.text).await;
    chat.close().await;
    print_sent(ctx, &sent?);
    Ok(())
}

/// Prints a stored entry's id (or, with `--json`, its id, conversation and time).
pub(crate) fn print_sent(ctx: &Context, sent: &Sent) {
    if ctx.json {
        println!(
            "{}",
            json!({
                "message_id": sent.message_id,
                "conversation_id": sent.conversation_id,
                "ts": sent.ts,
            })
        );
    } else {
        println!("{}", sent.message_id);
    }
}

/// `listen [--count N]`: prints each message (and each edit, delete or
/// reaction) once and acks it, until Ctrl-C or N of them. Those not
/// delivered before come first (the server's sync after connect). Group
/// events print as lines of text too, but do not count.
pub(super) async fn listen(ctx: &Context, args: &ListenArgs) -> Result<()> {
    let mut chat = ctx.connect().await?;
    let mut inbox = Inbox::new(ctx.printer());
    let outcome = tokio::select! {
        done = receive(ctx, &mut chat, &mut inbox, args.count) => done,
        stop = tokio::signal::ctrl_c() => stop.map_err(CliError::from),
    };
    // The acks must reach the server before the connection goes, or these
    // messages come again at the next connect.
    let flushed = match &outcome {
        Err(e) if e.is_connection_lost() => Ok(()),
        _ => chat.flush().await,
    };
    chat.close().await;
    outcome.and(flushed)
}

async fn receive(
    ctx: &Context,
    chat: &mut Chat,
    inbox: &mut Inbox,
    count: Option<u64>,
) -> Result<()> {
    let mut shown = 0;
    while count.is_none_or(|n| shown < n) {
        match chat.next_frame().await? {
            ServerFrame::Message { message } => {
                // A repeat of a message already shown does not count.
                shown += u64::from(inbox.show(ctx, chat, &message).await?);
            }
            ServerFrame::GroupEvent {
                conversation_id,
                message_id,
                event,
                ..
            } => {
                inbox
                    .event(ctx, chat, &conversation_id, message_id, &event)
                    .await?;
            }
            ServerFrame::Error { code, message, .. } => {
                return Err(CliError::Chat { code, message });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Incoming messages: each printed and acked once, though delivery is at
/// least once (a message comes again at each connect until acked).
pub(crate) struct Inbox {
    printer: Printer,
    seen: HashSet<MessageId>,
}

impl Inbox {
    /// An empty inbox printing with `printer`.
    pub(crate) fn new(printer: Printer) -> Self {
        Self {
            printer,
            seen: HashSet::new(),
        }
    }

    /// Prints and acks `message` unless it was seen; whether it was new.
    pub(crate) async fn show(
        &mut self,
        ctx: &Context,
        chat: &mut Chat,
        message: &Message,
    ) -> Result<bool> {
        if !self.seen.insert(message.message_id) {
            return Ok(false);
        }
        self.printer.message(&ctx.api, message).await;
        chat.ack(message).await?;
        Ok(true)
    }

    /// Prints and acks a group event unless it was seen; the event that
    /// ends this user's membership too (the server takes that ack, and
    /// sends the event again at each connect until it has it).
    pub(crate) async fn event(
        &mut self,
        ctx: &Context,
        chat: &mut Chat,
        conversation_id: &ConversationId,
        message_id: MessageId,
        event: &GroupEvent,
    ) -> Result<()> {
        if !self.seen.insert(message_id) {
            return Ok(());
        }
        self.printer
            .group_event(&ctx.api, conversation_id, event)
            .await;
        chat.ack_entry(conversation_id, message_id).await
    }

    /// The printer, for other output in the same mode.
    pub(crate) fn printer(&mut self) -> &mut Printer {
        &mut self.printer
    }
}

/// `history CONVERSATION [--before ID] [--limit N]`: oldest first.
pub(super) async fn history(ctx: &Context, args: &HistoryArgs) -> Result<()> {
    let conversation = conversation_of(ctx, &args.conversation).await?;
    let messages = ctx
        .api
        .messages(&conversation, args.before.as_deref(), args.limit)
        .await?;
    print_oldest_first(ctx, &mut ctx.printer(), &messages).await;
    Ok(())
}

/// Prints a page the server gave newest first in reading order.
pub(crate) async fn print_oldest_first(ctx: &Context, printer: &mut Printer, page: &[Message]) {
    for message in page.iter().rev() {
        printer.message(&ctx.api, message).await;
    }
}

/// A conversation id as given, or for `@USER` the direct conversation with that user.
pub(crate) async fn conversation_of(ctx: &Context, given: &str) -> Result<String> {
    match given.strip_prefix('@') {
        Some(user) => {
            let them = UserId::from(ctx.api.resolve_user(user).await?);
            let me = UserId::from(ctx.me().await?);
            Ok(ConversationId::direct(&me, &them).to_string())
        }
        None => Ok(given.to_owned()),
    }
}
