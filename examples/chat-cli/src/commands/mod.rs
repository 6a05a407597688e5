//! The subcommands, and the [`Context`] they share: which server, which
//! token, which user, where the chat connection goes.

mod account;
mod blocks;
mod devices;
pub(crate) mod events;
mod groups;
pub(crate) mod messages;

use std::path::{Path, PathBuf};

use reqwest::Url;

use crate::args::{Cli, Command, Global};
use crate::error::{CliError, Result};
use crate::http::Api;
use crate::output::Printer;
use crate::session::{self, Session};
use crate::ws::Chat;

/// The server used when neither `--server`, `CHAT_SERVER` nor a session names one.
const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// Runs the command line's command.
pub(crate) async fn run(cli: Cli) -> Result<()> {
    let Cli { global, command } = cli;
    let session_path = global.session.clone().unwrap_or_else(session::default_path);
    // Every command but signup and login works as the logged-in user.
    let ctx = || Context::new(&global, &session_path);
    match command {
        Command::Signup(c) => account::signup(&global, &session_path, &c).await,
        Command::Login(c) => account::login(&global, &session_path, &c).await,
        Command::Send(args) => messages::send(&ctx()?, args).await,
        Command::Reply(args) => events::reply(&ctx()?, args).await,
        Command::Edit(args) => events::edit(&ctx()?, args).await,
        Command::Delete(target) => events::delete(&ctx()?, &target).await,
        Command::React(args) => events::react(&ctx()?, args).await,
        Command::Listen(args) => messages::listen(&ctx()?, &args).await,
        Command::History(args) => messages::history(&ctx()?, &args).await,
        Command::Groups(cmd) => groups::run(&ctx()?, cmd).await,
        Command::Conversations => groups::conversations(&ctx()?).await,
        Command::Block { user } => blocks::block(&ctx()?, &user, true).await,
        Command::Unblock { user } => blocks::block(&ctx()?, &user, false).await,
        Command::Blocked => blocks::list(&ctx()?).await,
        Command::Devices => devices::list(&ctx()?).await,
        Command::Logout { device } => devices::logout(&ctx()?, device.as_deref()).await,
        Command::Interactive => crate::repl::run(&ctx()?).await,
    }
}

/// What an authenticated command works with.
pub(crate) struct Context {
    /// The HTTP API, with the token.
    pub(crate) api: Api,
    /// The token, for the chat connection.
    token: String,
    /// The logged-in user, when the session says (else asked with `/api/me`).
    user_id: Option<String>,
    /// The session's device, when the token came from the session file and it says.
    device_id: Option<String>,
    /// The session file the token came from (`None` with `--token`/`CHAT_TOKEN`).
    session_file: Option<PathBuf>,
    /// Where the chat connection goes.
    chat_url: String,
    /// Text or JSON lines.
    pub(crate) json: bool,
}

impl Context {
    /// The server is `--server`, else the session's, else the default. The
    /// session's token, user and chat URL are used only for its own server.
    fn new(global: &Global, session_path: &Path) -> Result<Self> {
        let saved = session::load(session_path)?;
        let server = server_of(global, saved.as_ref());
        let saved = saved.filter(|s| same_server(&s.server, &server));
        let (token, user_id, chat_url, device_id, session_file) = match (&global.token, saved) {
            (Some(token), _) => (token.clone(), None, None, None, None),
            (None, Some(s)) => (
                s.token,
                Some(s.user_id),
                Some(s.chat_url),
                s.device_id,
                Some(session_path.to_owned()),
            ),
            (None, None) => return Err(CliError::NotLoggedIn),
        };
        let api = Api::new(&server, Some(token.clone()))?;
        let chat_url = match chat_url {
            Some(url) => url,
            None => ws_url_of(api.base())?,
        };
        Ok(Self {
            api,
            token,
            user_id,
            device_id,
            session_file,
            chat_url,
            json: global.json,
        })
    }

    /// The logged-in user's id.
    pub(crate) async fn me(&self) -> Result<String> {
        match &self.user_id {
            Some(id) => Ok(id.clone()),
            None => Ok(self.api.me().await?.user_id.to_string()),
        }
    }

    /// Opens the chat connection.
    pub(crate) async fn connect(&self) -> Result<Chat> {
        Chat::connect(&self.chat_url, &self.token).await
    }

    /// A printer in this command's output mode.
    pub(crate) fn printer(&self) -> Printer {
        Printer::new(self.json)
    }
}

/// `--server`, else the session's server, else [`DEFAULT_SERVER`].
fn server_of(global: &Global, saved: Option<&Session>) -> String {
    global
        .server
        .clone()
        .or_else(|| saved.map(|s| s.server.clone()))
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned())
}

fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The WebSocket URL of a server: `ws://` for `http://`, `wss://` for
/// `https://`, at `/ws`. Used when no login handed out a `chat_url`.
pub(crate) fn ws_url_of(base: &Url) -> Result<String> {
    let mut url = base.clone();
    let scheme = if base.scheme() == "https" {
        "wss"
    } else {
        "ws"
    };
    url.set_scheme(scheme).map_err(|()| CliError::BadUrl {
        url: base.to_string(),
        reason: format!("cannot be turned into a {scheme}:// URL"),
    })?;
    url.set_path("/ws");
    url.set_query(None);
    url.set_fragment(None);
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chat_url_follows_the_servers_scheme() {
        let ws = |s: &str| ws_url_of(&Url::parse(s).unwrap()).unwrap();
        assert_eq!(ws("http://127.0.0.1:8080"), "ws://127.0.0.1:8080/ws");
        assert_eq!(ws("https://chat.example/app/"), "wss://chat.example/ws");
    }
}
