//! `interactive`: a line-based chat. Lines starting with `/` are commands,
//! others are sent to the current conversation; incoming messages print as
//! they arrive. Status goes to stderr so that stdout holds only messages.

use chat_core::protocol::{SendTarget, ServerFrame};
use chat_core::{ConversationId, Message, UserId};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::commands::Context;
use crate::commands::messages::{Inbox, print_oldest_first};
use crate::error::{CliError, Result};
use crate::ws::Chat;

/// How many messages `/history` shows.
const HISTORY_PAGE: u32 = 20;

const HELP: &str = "/to USER: chat with a user; /group ID: chat in a group; \
/history: recent messages here; /quit: leave. Other lines are sent.";

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
        let members = self.ctx.api.members(id).await?;
        eprintln!("now chatting in group {id} ({} members)", members.len());
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

    /// Sends a line and shows it as a message line once stored; the server's
    /// copy of it to this connection is then a repeat and is not shown again.
    async fn send(&mut self, chat: &mut Chat, body: &str) -> Result<()> {
        let target = self.here()?.target.clone();
        let sent = chat.send_message(target, body.to_owned()).await?;
        let message = Message::text(
            sent.message_id,
            sent.conversation_id,
            self.me.clone(),
            body,
            sent.ts,
        );
        self.inbox.show(self.ctx, chat, &message).await?;
        Ok(())
    }

    fn here(&self) -> Result<&Here> {
        self.here
            .as_ref()
            .ok_or_else(|| CliError::Usage("no conversation yet: /to USER or /group ID".into()))
    }
}

fn needs<'a>(arg: &'a str, usage: &str) -> Result<&'a str> {
    if arg.is_empty() {
        Err(CliError::Usage(format!("usage: {usage}")))
    } else {
        Ok(arg)
    }
}
