//! `reply`, `edit`, `delete` and `react`: a message answering another, and
//! the events about a message, each stored with its own id.

use chat_core::protocol::SendTarget;
use chat_core::{ConversationId, Message, MessageId, MessageKind, UserId};

use super::Context;
use super::messages::{conversation_of, print_sent};
use crate::args::{MessageRef, ReactArgs, TextArgs};
use crate::error::{CliError, Result};
use crate::ws::{Outgoing, Sent};

/// `reply CONVERSATION MESSAGE_ID TEXT`: prints the reply's id.
pub(super) async fn reply(ctx: &Context, args: TextArgs) -> Result<()> {
    let (conversation, message_id) = target_of(ctx, &args.target).await?;
    let outgoing = Outgoing::Message {
        target: SendTarget::Conversation(conversation),
        body: args.text,
        in_reply_to: Some(message_id),
    };
    store(ctx, outgoing).await
}

/// `edit CONVERSATION MESSAGE_ID TEXT`: prints the edit's id.
pub(super) async fn edit(ctx: &Context, args: TextArgs) -> Result<()> {
    let target = target_of(ctx, &args.target).await?;
    store(
        ctx,
        Outgoing::Edit {
            target,
            body: args.text,
        },
    )
    .await
}

/// `delete CONVERSATION MESSAGE_ID`: prints the delete's id.
pub(super) async fn delete(ctx: &Context, target: &MessageRef) -> Result<()> {
    let target = target_of(ctx, target).await?;
    store(ctx, Outgoing::Delete { target }).await
}

/// `react CONVERSATION MESSAGE_ID (EMOJI | --remove)`: prints the reaction's id.
pub(super) async fn react(ctx: &Context, args: ReactArgs) -> Result<()> {
    let target = target_of(ctx, &args.target).await?;
    // clap's argument group asks for exactly one of the two.
    let emoji = if args.remove {
        String::new()
    } else {
        args.emoji.unwrap_or_default()
    };
    store(ctx, Outgoing::React { target, emoji }).await
}

/// Stores `outgoing` over a chat connection and prints what `sent` said.
async fn store(ctx: &Context, outgoing: Outgoing) -> Result<()> {
    let mut chat = ctx.connect().await?;
    let sent = chat.store(outgoing).await;
    chat.close().await;
    print_sent(ctx, &sent?);
    Ok(())
}

/// The conversation (an id, or `@USER`) and the message id of `target`.
async fn target_of(ctx: &Context, target: &MessageRef) -> Result<(ConversationId, MessageId)> {
    let message_id = message_id_of(&target.message_id)?;
    let conversation = conversation_of(ctx, &target.conversation).await?;
    Ok((ConversationId::from(conversation), message_id))
}

/// A message id as typed: its decimal digits.
pub(crate) fn message_id_of(given: &str) -> Result<MessageId> {
    given
        .trim()
        .parse()
        .map_err(|_| CliError::Usage(format!("{given:?} is not a message id")))
}

/// The entry the server stored for `outgoing` as this user, to show it like
/// the ones that arrive.
pub(crate) fn entry_of(me: &UserId, sent: Sent, outgoing: &Outgoing) -> Message {
    let mut entry = Message::text(
        sent.message_id,
        sent.conversation_id,
        me.clone(),
        String::new(),
        sent.ts,
    );
    match outgoing {
        Outgoing::Message {
            body, in_reply_to, ..
        } => {
            entry.body.clone_from(body);
            entry.in_reply_to = *in_reply_to;
        }
        Outgoing::Edit { target, body } => {
            entry.kind = MessageKind::Edit;
            entry.ref_id = Some(target.1);
            entry.body.clone_from(body);
        }
        Outgoing::Delete { target } => {
            entry.kind = MessageKind::Delete;
            entry.ref_id = Some(target.1);
        }
        Outgoing::React { target, emoji } => {
            entry.kind = MessageKind::Reaction;
            entry.ref_id = Some(target.1);
            entry.body.clone_from(emoji);
        }
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_decimal_digits() {
        assert_eq!(message_id_of(" 42 ").unwrap(), MessageId(42));
        let err = message_id_of("abc").unwrap_err();
        assert_eq!(err.to_string(), "\"abc\" is not a message id");
    }
}
