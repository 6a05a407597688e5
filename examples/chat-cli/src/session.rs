//! The session file: who is logged in, on which server, with which token.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};

/// What `signup` and `login` save, and the other commands read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Session {
    /// The server's base URL the token came from.
    pub(crate) server: String,
    /// The logged-in user.
    pub(crate) user_id: String,
    /// The device this login is (absent in sessions saved before devices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) device_id: Option<String>,
    /// The bearer token.
    pub(crate) token: String,
    /// The WebSocket URL the server chose for this user.
    pub(crate) chat_url: String,
}

/// `$XDG_CONFIG_HOME/chat-cli/session.json`, else `$HOME/.config/chat-cli/session.json`,
/// else `chat-cli-session.json` in the current directory.
pub(crate) fn default_path() -> PathBuf {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".config"))
        });
    match config {
        Some(dir) => dir.join("chat-cli").join("session.json"),
        None => PathBuf::from("chat-cli-session.json"),
    }
}

/// The saved session, or `None` when there is no file yet.
pub(crate) fn load(path: &Path) -> Result<Option<Session>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CliError::Session {
                path: path.to_owned(),
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| CliError::SessionFormat {
            path: path.to_owned(),
            source,
        })
}

/// Deletes the session file (its token was logged out); a missing one is no error.
pub(crate) fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CliError::Session {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Saves the session, readable by its owner only (it holds a token).
pub(crate) fn save(path: &Path, session: &Session) -> Result<()> {
    let io = |source| CliError::Session {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut text = serde_json::to_string_pretty(session).expect("a session always serializes");
    text.push('\n');
    write_private(path, text.as_bytes()).map_err(io)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` applies only when the file is created; an older file is narrowed too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_session_loads_back_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("session.json");
        assert_eq!(load(&path).unwrap(), None);
        let session = Session {
            server: "http://127.0.0.1:1".into(),
            user_id: "u1".into(),
            device_id: Some("d1".into()),
            token: "t".into(),
            chat_url: "ws://127.0.0.1:1/ws".into(),
        };
        save(&path, &session).unwrap();
        assert_eq!(load(&path).unwrap(), Some(session));
    }

    #[test]
    fn a_session_saved_before_devices_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.json");
        std::fs::write(
            &path,
            r#"{"server":"http://h","user_id":"u1","token":"t","chat_url":"ws://h/ws"}"#,
        )
        .unwrap();
        assert_eq!(load(&path).unwrap().unwrap().device_id, None);
        remove(&path).unwrap();
        assert_eq!(load(&path).unwrap(), None);
        remove(&path).unwrap();
    }

    #[test]
    fn a_damaged_session_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.json");
        std::fs::write(&path, "not json").unwrap();
        let err = load(&path).unwrap_err();
        assert!(matches!(err, CliError::SessionFormat { .. }), "{err}");
    }
}
