//! The command line: global options and subcommands (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A terminal client for the example chat server.
#[derive(Debug, Parser)]
#[command(name = "chat-cli", version, about)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// The server's base URL [default: the session's server, else http://127.0.0.1:8080].
    #[arg(long, env = "CHAT_SERVER", global = true)]
    pub(crate) server: Option<String>,
    /// A bearer token to use instead of the session file's.
    #[arg(long, env = "CHAT_TOKEN", global = true, hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// The session file [default: $XDG_CONFIG_HOME/chat-cli/session.json].
    #[arg(long, env = "CHAT_SESSION", global = true)]
    pub(crate) session: Option<PathBuf>,
    /// Print JSON, one value per line, instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create an account, save the session and print the user id.
    Signup(Credentials),
    /// Log in, save the session and print the user id.
    Login(Credentials),
    /// Send one message and print its id.
    Send(SendArgs),
    /// Print messages as they arrive (and those not yet delivered), acking each.
    Listen(ListenArgs),
    /// Print a page of a conversation's messages, oldest first.
    History(HistoryArgs),
    /// Create and manage groups.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// List this user's conversations, most recent first.
    Conversations,
    /// A line-based chat: `/to USER`, `/group ID`, `/history`, `/quit`; other lines are sent.
    Interactive,
}

/// A username and password.
#[derive(Debug, Args)]
pub(crate) struct Credentials {
    /// The username.
    pub(crate) username: String,
    /// The password.
    pub(crate) password: String,
}

/// Where a message goes, and what it says.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to", "conversation"])))]
pub(crate) struct SendArgs {
    /// A user, by username or user id: their direct conversation.
    #[arg(long)]
    pub(crate) to: Option<String>,
    /// A conversation (group or direct) by its id.
    #[arg(long)]
    pub(crate) conversation: Option<String>,
    /// The text.
    pub(crate) text: String,
}

/// How long to listen.
#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    /// Stop after this many messages [default: run until Ctrl-C].
    #[arg(long)]
    pub(crate) count: Option<u64>,
}

/// Which page of which conversation.
#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    /// A conversation id, or `@USER` for the direct conversation with a user.
    pub(crate) conversation: String,
    /// Only messages older than this message id.
    #[arg(long)]
    pub(crate) before: Option<String>,
    /// At most this many messages (the server caps it).
    #[arg(long)]
    pub(crate) limit: Option<u32>,
}

/// Group subcommands. Users are given by username or user id.
#[derive(Debug, Subcommand)]
pub(crate) enum GroupsCommand {
    /// Create a group (you are a member) and print its conversation id.
    Create {
        /// The group's name.
        name: String,
        /// Another member; repeat for more.
        #[arg(long = "member")]
        members: Vec<String>,
    },
    /// Add a user to a group.
    Add {
        /// The group's conversation id.
        group: String,
        /// The user to add.
        user: String,
    },
    /// Leave a group.
    Leave {
        /// The group's conversation id.
        group: String,
    },
    /// List a group's members.
    Members {
        /// The group's conversation id.
        group: String,
    },
}
