//! `signup` and `login`: get a token and save the session.

use std::path::Path;

use serde_json::json;

use super::{DEFAULT_SERVER, ws_url_of};
use crate::args::{Credentials, Global};
use crate::error::Result;
use crate::http::{Api, LoggedIn};
use crate::session::{self, Session};

/// `signup USER PASS`.
pub(super) async fn signup(global: &Global, path: &Path, c: &Credentials) -> Result<()> {
    let api = Api::new(server(global), None)?;
    let done = api.signup(&c.username, &c.password, &c.device).await?;
    save(global, path, &api, done)
}

/// `login USER PASS`.
pub(super) async fn login(global: &Global, path: &Path, c: &Credentials) -> Result<()> {
    let api = Api::new(server(global), None)?;
    let done = api.login(&c.username, &c.password, &c.device).await?;
    save(global, path, &api, done)
}

/// A new login goes to `--server` or the default, never silently to the
/// server of an older session.
fn server(global: &Global) -> &str {
    global.server.as_deref().unwrap_or(DEFAULT_SERVER)
}

/// Saves the session and prints the user id. Sign-up hands out no
/// `chat_url`, so the server's own `/ws` stands in until the next login.
fn save(global: &Global, path: &Path, api: &Api, done: LoggedIn) -> Result<()> {
    let chat_url = match done.chat_url {
        Some(url) => url,
        None => ws_url_of(api.base())?,
    };
    let session = Session {
        server: api.base().as_str().trim_end_matches('/').to_owned(),
        user_id: done.user_id,
        device_id: done.device_id,
        token: done.token,
        chat_url,
    };
    session::save(path, &session)?;
    if global.json {
        println!("{}", json!({ "user_id": session.user_id }));
    } else {
        println!("{}", session.user_id);
    }
    Ok(())
}
