//! `interactive`: a line-based chat. Lines starting with `/` are commands,
//! others are sent to the current conversation; incoming messages print as
//! they arrive. Status goes to stderr so that stdout holds only messages.

use chat_core::protocol::{SendTarget, ServerFrame};
use chat_core::{ConversationId, UserId};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::commands::Context;
use crate::commands::events::{entry_of, message_id_of};
use crate::commands::messages::{Inbox, print_oldest_first};
use crate::error::{CliError, Result};
use crate::ws::{Chat, Outgoing};

/// How many messages `/history` shows.
const HISTORY_PAGE: u32 = 20;

const HELP: &str = "/to USER: chat with a user; /group ID: chat in a group; \
/history: recent messages here; /reply ID TEXT, /edit ID TEXT, /delete ID, \
/react ID [EMOJI]: about a message here (no emoji: take yours back); /quit: leave. \
Other lines are sent.";

/// Runs the REPL until `/quit` or the end of input.
pub(crate) async fn run(ctx: &Context) -> Result<()> {
    let me = UserId::from(ctx.me().await?);
    let mut chat = ctx.connect().await?;
    // What arrived while away is shown before the first line is read.
    chat.wait_synced().await?;
    eprintln!("{HELP}");
    let mut repl = Repl {
        ctx,
        me,
        inbox: Inbox::new(ctx.printer()),
        here: None,
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let outcome = loop {
        // Frames first: the backlog left by a send is shown before the next line.
        let step = tokio::select! {
            biased;
            frame = chat.next_frame() => match frame {
                Ok(frame) => repl.on_frame(&mut chat, frame).await.map(|()| Flow::Go),
                Err(e) => Err(e),
            },
            line = lines.next_line() => match line {
                Ok(Some(line)) => repl.on_line(&mut chat, line.trim()).await,
                Ok(None) => Ok(Flow::Quit),
                Err(e) => Err(e.into()),
            },
        };
        match step {
            Ok(Flow::Go) => {}
            Ok(Flow::Quit) => break Ok(()),
            Err(e) if e.is_connection_lost() => break Err(e),
            Err(e) => eprintln!("error: {e}"),
        }
    };
    // Acks sent, then the connection closed: shown messages do not come again.
    let flushed = match &outcome {
        Err(_) => Ok(()),
        Ok(()) => chat.flush().await,
    };
    chat.close().await;
    outcome.and(flushed)
}

/// Whether the REPL goes on.
enum Flow {
    Go,
    Quit,
}

/// Where plain lines go.
struct Here {
    target: SendTarget,
    conversation: ConversationId,
}

struct Repl<'a> {
    ctx: &'a Context,
    me: UserId,
    inbox: Inbox,
    here: Option<Here>,
}

impl Repl<'_> {
    async fn on_frame(&mut self, chat: &mut Chat, frame: ServerFrame) -> Result<()> {
        match frame {
            ServerFrame::Message { message } => {
                self.inbox.show(self.ctx, chat, &message).await?;
            }
            ServerFrame::GroupEvent {
                conversation_id,
                message_id,
                event,
                ..
            } => {
                self.inbox
                    .event(self.ctx, chat, &conversation_id, message_id, &event)
                    .await?;
            }
            ServerFrame::Error { code, message, .. } => eprintln!("server: {message} ({code})"),
            _ => {}
        }
        Ok(())
    }

    async fn on_line(&mut self, chat: &mut Chat, line: &str) -> Result<Flow> {
        let (command, rest) = match line.split_once(char::is_whitespace) {
            Some((command, rest)) => (command, rest.trim()),
            None => (line, ""),
        };
        match command {
            "" => {}
            "/quit" | "/exit" => return Ok(Flow::Quit),
            "/help" => eprintln!("{HELP}"),
            "/to" => self.to(needs(rest, "/to USER")?).await?,
            "/group" => self.group(needs(rest, "/group ID")?).await?,
            "/history" => self.history().await?,
            "/reply" => {
                let (id, text) = id_and_text(rest, "/reply ID TEXT")?;
                let target = self.here()?.target.clone();
                let outgoing = Outgoing::Message {
                    target,
                    body: text.to_owned(),
                    in_reply_to: Some(id),
                };
                self.store(chat, outgoing).await?;
            }
            "/edit" => {
                let (id, text) = id_and_text(rest, "/edit ID TEXT")?;
                let target = (self.here()?.conversation.clone(), id);
                let body = text.to_owned();
                self.store(chat, Outgoing::Edit { target, body }).await?;
            }
            "/delete" => {
                let id = message_id_of(needs(rest, "/delete ID")?)?;
                let target = (self.here()?.conversation.clone(), id);
                self.store(chat, Outgoing::Delete { target }).await?;
            }
            "/react" => {
                let (id, emoji) = match needs(rest, "/react ID [EMOJI]")?.split_once(' ') {
                    Some((id, emoji)) => (message_id_of(id)?, emoji.trim().to_owned()),
                    None => (message_id_of(rest)?, String::new()),
                };
                let target = (self.here()?.conversation.clone(), id);
                self.store(chat, Outgoing::React { target, emoji }).await?;
            }
            _ if command.starts_with('/') => {
                return Err(CliError::Usage(format!("unknown command {command}; /help")));
            }
            _ => self.send(chat, line).await?,
        }
        Ok(Flow::Go)
    }

    async fn to(&mut self, user: &str) -> Result<()> {
        let them = UserId::from(self.ctx.api.resolve_user(user).await?);
        let conversation = ConversationId::direct(&self.me, &them);
        eprintln!("now chatting with {user} in {conversation}");
        self.here = Some(Here {
            target: SendTarget::User(them),
            conversation,
        });
        Ok(())
    }

    /// Asking for the members checks, before any line is typed, that the
    /// group exists and that this user is in it.
    async fn group(&mut self, id: &str) -> Result<()> {
        let group = self.ctx.api.group(id).await?;
        eprintln!(
            "now chatting in group {id} ({} members)",
            group.members.len()
        );
        let conversation = ConversationId::from(id);
        self.here = Some(Here {
            target: SendTarget::Conversation(conversation.clone()),
            conversation,
        });
        Ok(())
    }

    async fn history(&mut self) -> Result<()> {
        let here = self.here()?;
        let page = self
            .ctx
            .api
            .messages(here.conversation.as_str(), None, Some(HISTORY_PAGE))
            .await?;
        print_oldest_first(self.ctx, self.inbox.printer(), &page).await;
        Ok(())
    }

    /// Sends a line as a message of the current conversation.
    async fn send(&mut self, chat: &mut Chat, body: &str) -> Result<()> {
        let target = self.here()?.target.clone();
        let outgoing = Outgoing::Message {
            target,
            body: body.to_owned(),
            in_reply_to: None,
        };
        self.store(chat, outgoing).await
    }

    /// Stores a message or event and shows it as a line once stored; the
    /// server's copy of it to this connection is then a repeat and is not
    /// shown again.
    async fn store(&mut self, chat: &mut Chat, outgoing: Outgoing) -> Result<()> {
        let sent = chat.store(outgoing.clone()).await?;
        let entry = entry_of(&self.me, sent, &outgoing);
        self.inbox.show(self.ctx, chat, &entry).await?;
        Ok(())
    }

    fn here(&self) -> Result<&Here> {
        self.here
            .as_ref()
            .ok_or_else(|| CliError::Usage("no conversation yet: /to USER or /group ID".into()))
    }
}

/// `ID TEXT`: a message id and the rest of the line.
fn id_and_text<'a>(arg: &'a str, usage: &str) -> Result<(chat_core::MessageId, &'a str)> {
    match arg.split_once(char::is_whitespace) {
        Some((id, text)) if !text.trim().is_empty() => Ok((message_id_of(id)?, text.trim())),
        _ => Err(CliError::Usage(format!("usage: {usage}"))),
    }
}

fn needs<'a>(arg: &'a str, usage: &str) -> Result<&'a str> {
    if arg.is_empty() {
        Err(CliError::Usage(format!("usage: {usage}")))
    } else {
        Ok(arg)
    }
}
