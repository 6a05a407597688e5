//! The command line: global options and subcommands (clap derive).

use std::path::PathBuf;

use chat_core::{HistoryVisibility, JoinPolicy, Role};
use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// Reply to a message (the reply quotes it) and print the reply's id.
    Reply(TextArgs),
    /// Replace the text of one of your messages; prints the edit's id.
    Edit(TextArgs),
    /// Delete a message (yours, or any in a group you own or administer); prints the delete's id.
    Delete(MessageRef),
    /// React to a message with an emoji (one per user), or take it back with --remove.
    React(ReactArgs),
    /// Print messages as they arrive (and those not yet delivered), acking each.
    Listen(ListenArgs),
    /// Print a page of a conversation's messages, oldest first.
    History(HistoryArgs),
    /// Create and manage groups: members, roles, settings, invites.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// List this user's conversations, most recent first.
    Conversations,
    /// Block a user: they cannot send you direct messages, add you to groups or see your presence.
    Block {
        /// A username or user id.
        user: String,
    },
    /// Unblock a user.
    Unblock {
        /// A username or user id.
        user: String,
    },
    /// List the users you blocked.
    Blocked,
    /// List your devices (each login is one); `*` marks this one.
    Devices,
    /// Log this device out and forget the session, or log out another device by its id.
    Logout {
        /// The device to log out [default: this one].
        device: Option<String>,
    },
    /// A line-based chat: `/to USER`, `/group ID`, `/history`, `/reply`, `/edit`, `/delete`,
    /// `/react`, `/quit`; other lines are sent.
    Interactive,
}

/// A username and password, and the name of the device this login is.
#[derive(Debug, Args)]
pub(crate) struct Credentials {
    /// The username.
    pub(crate) username: String,
    /// The password.
    pub(crate) password: String,
    /// The name this login gets in the list of devices.
    #[arg(long, default_value = "chat-cli")]
    pub(crate) device: String,
}

/// One message: its conversation and its id.
#[derive(Debug, Args)]
pub(crate) struct MessageRef {
    /// A conversation id, or `@USER` for the direct conversation with a user.
    pub(crate) conversation: String,
    /// The message's id.
    pub(crate) message_id: String,
}

/// A message, and a text about it (a reply, or an edit's new text).
#[derive(Debug, Args)]
pub(crate) struct TextArgs {
    #[command(flatten)]
    pub(crate) target: MessageRef,
    /// The text.
    pub(crate) text: String,
}

/// A message, and the reaction to it.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("reaction").required(true).args(["emoji", "remove"])))]
pub(crate) struct ReactArgs {
    #[command(flatten)]
    pub(crate) target: MessageRef,
    /// The emoji.
    pub(crate) emoji: Option<String>,
    /// Take your reaction back.
    #[arg(long)]
    pub(crate) remove: bool,
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
    /// Create a group (you are its owner) and print its conversation id.
    Create {
        /// The group's name.
        name: String,
        /// Another member; repeat for more.
        #[arg(long = "member")]
        members: Vec<String>,
        /// Who may join [default: invite].
        #[arg(long, value_enum)]
        join: Option<JoinArg>,
        /// What history new members see [default: since_join].
        #[arg(long, value_enum)]
        history: Option<HistoryArg>,
    },
    /// Add a user to a group (owners and admins; yourself to an open group).
    Add {
        /// The group's conversation id.
        group: String,
        /// The user to add.
        user: String,
    },
    /// Remove a member (admins remove plain members, the owner anyone).
    Remove {
        /// The group's conversation id.
        group: String,
        /// The member to remove.
        user: String,
    },
    /// Make a member an admin, or a plain member again (the owner only).
    Role {
        /// The group's conversation id.
        group: String,
        /// The member.
        user: String,
        /// The new role.
        #[arg(value_enum)]
        role: RoleArg,
    },
    /// Show a group's settings, or change them (owners and admins).
    Settings {
        /// The group's conversation id.
        group: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// Who may join.
        #[arg(long, value_enum)]
        join: Option<JoinArg>,
        /// What history new members see.
        #[arg(long, value_enum)]
        history: Option<HistoryArg>,
    },
    /// Make an invite code to a group (owners and admins) and print it.
    Invite {
        /// The group's conversation id.
        group: String,
        /// How many times it may be used [default: no limit].
        #[arg(long)]
        max_uses: Option<u32>,
        /// Seconds until it expires [default: never].
        #[arg(long)]
        expires_in: Option<u64>,
    },
    /// Revoke an invite code: it stops working at once.
    Revoke {
        /// The group's conversation id.
        group: String,
        /// The code.
        code: String,
    },
    /// Join a group with an invite code (or a link that ends with one); prints the group's id.
    Join {
        /// The code, or a link `…#/invite/CODE` or `…?invite=CODE`.
        invite: String,
    },
    /// Leave a group.
    Leave {
        /// The group's conversation id.
        group: String,
    },
    /// List a group's members with their roles.
    Members {
        /// The group's conversation id.
        group: String,
    },
}

/// Who may join a group, as the command line spells it.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum JoinArg {
    /// Owners and admins add members (or an invite code does).
    Invite,
    /// Anyone may add itself.
    Open,
}

impl From<JoinArg> for JoinPolicy {
    fn from(arg: JoinArg) -> Self {
        match arg {
            JoinArg::Invite => Self::Invite,
            JoinArg::Open => Self::Open,
        }
    }
}

/// What history new members of a group see, as the command line spells it.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum HistoryArg {
    /// Messages from their latest join on.
    #[value(name = "since_join")]
    SinceJoin,
    /// Everything the group still stores.
    All,
}

impl From<HistoryArg> for HistoryVisibility {
    fn from(arg: HistoryArg) -> Self {
        match arg {
            HistoryArg::SinceJoin => Self::SinceJoin,
            HistoryArg::All => Self::All,
        }
    }
}

/// A role the owner can give.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum RoleArg {
    /// Adds anyone, removes plain members, changes settings, makes invites.
    Admin,
    /// A plain member.
    Member,
}

impl From<RoleArg> for Role {
    fn from(arg: RoleArg) -> Self {
        match arg {
            RoleArg::Admin => Self::Admin,
            RoleArg::Member => Self::Member,
        }
    }
}
