//! `--config FILE`: settings from a TOML file, under the command line and
//! the environment.
//!
//! Each key is a flag's name with `_` for `-` (`listen`,
//! `max_connections_per_addr`, `tls_cert`), at the top level (no tables).
//! Precedence, highest first: the command line, the environment
//! (`CHAT_*`), the file, the built-in default. The file's values are turned
//! into flags and parsed by the same clap definitions, so a value is
//! checked exactly as on the command line, and `--help` stays the one list
//! of settings.

use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};

use super::Config;
use crate::error::ServerError;

impl Config {
    /// The configuration of this process: its arguments, its environment
    /// and the `--config` file they name. A clap error (`--help` included)
    /// is [`ServerError::Args`], for the caller to print and exit with.
    pub fn load() -> Result<Self, ServerError> {
        Self::load_from(std::env::args_os())
    }

    /// [`Config::load`] with these arguments (the first is the program name).
    pub fn load_from<I, T>(args: I) -> Result<Self, ServerError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let matches = Config::command().try_get_matches_from(&args)?;
        let mut config = match matches.get_one::<std::path::PathBuf>("config").cloned() {
            None => Config::from_arg_matches(&matches)?,
            Some(path) => {
                let extra = file_args(&path, &matches)?;
                let mut all = args;
                all.extend(extra);
                // The command line alone parsed: what fails now is a value of the file.
                Config::try_parse_from(all).map_err(|e| {
                    ServerError::ConfigFile(format!("{}: {}", path.display(), e.render()))
                })?
            }
        };
        config.read_secret_files()?;
        Ok(config)
    }

    /// Reads `--jwt-secret-file` into `jwt_secret`.
    fn read_secret_files(&mut self) -> Result<(), ServerError> {
        let Some(path) = &self.jwt_secret_file else {
            return Ok(());
        };
        let text = std::fs::read_to_string(path).map_err(|e| ServerError::SecretFile {
            path: path.clone(),
            source: e,
        })?;
        // `echo secret > file` and editors end the file with a newline.
        let secret = text.lines().next().unwrap_or("").to_owned();
        self.jwt_secret = Some(secret);
        Ok(())
    }
}

/// The flags that `path`'s keys stand for, leaving out those the command
/// line or the environment already set.
fn file_args(path: &Path, matches: &clap::ArgMatches) -> Result<Vec<OsString>, ServerError> {
    let fail = |why: String| ServerError::ConfigFile(format!("{}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| fail(e.to_string()))?;
    let command = Config::command();
    let mut args = Vec::new();
    for (key, value) in &table {
        let arg = command
            .get_arguments()
            .find(|a| a.get_id().as_str() == key && a.get_long().is_some())
            .filter(|_| key != "config")
            .ok_or_else(|| fail(format!("unknown key {key:?} (see docs/operations.md)")))?;
        if matches!(
            matches.value_source(key),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let flag = format!("--{}", arg.get_long().unwrap_or(key));
        let values = match value {
            toml::Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for value in values {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => {
                    return Err(fail(format!(
                        "{key}: a string, number or true/false (or a list of them) is expected"
                    )));
                }
            };
            if matches!(arg.get_action(), ArgAction::SetTrue) {
                match value {
                    toml::Value::Boolean(true) => args.push(OsString::from(&flag)),
                    toml::Value::Boolean(false) => {}
                    _ => return Err(fail(format!("{key}: true or false is expected"))),
                }
            } else {
                args.push(OsString::from(format!("{flag}={text}")));
            }
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, text: &str) -> String {
        let path = dir.path().join("chat-server.toml");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    #[test]
    fn the_file_sets_what_flags_leave_unset() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            r#"
listen = "127.0.0.1:9000"
retention = "until_delivered"
heartbeat_ms = 1000
user_rate = 2.5
allowed_origins = ["https://a.example", "https://b.example"]
insecure_fast_hashing = true
metrics_on_main = false
log_format = "json"
"#,
        );
        let c = Config::load_from(["chat-server", "--config", &path]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.retention, chat_core::Retention::UntilDelivered);
        assert_eq!(c.heartbeat_ms, 1000);
        assert_eq!(c.protection.user_rate, 2.5);
        assert_eq!(
            c.protection.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        assert!(c.insecure_fast_hashing);
        assert!(!c.ops.metrics_on_main);
        assert_eq!(c.ops.log_format, super::super::LogFormat::Json);

        // A flag wins over the file.
        let c = Config::load_from([
            "chat-server",
            "--config",
            &path,
            "--listen",
            "127.0.0.1:9001",
        ])
        .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9001");
        assert_eq!(c.heartbeat_ms, 1000);
    }

    #[test]
    fn bad_files_are_refused_with_the_key_named() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("lisen = \"127.0.0.1:1\"", "unknown key \"lisen\""),
            ("[protection]\nuser_rate = 1", "unknown key \"protection\""),
            ("listen = 5", "invalid value"),
            ("heartbeat_ms = \"often\"", "invalid value"),
            ("insecure_fast_hashing = \"yes\"", "true or false"),
            ("config = \"other.toml\"", "unknown key \"config\""),
            ("listen = ", "chat-server.toml"),
        ];
        for (text, want) in cases {
            let path = write(&dir, text);
            let err = Config::load_from(["chat-server", "--config", &path]).unwrap_err();
            assert!(err.to_string().contains(want), "{text}: {err}");
        }
        let err =
            Config::load_from(["chat-server", "--config", "/nonexistent/chat.toml"]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/chat.toml"), "{err}");
    }

    /// The packaged example (/etc/chat-server/chat-server.toml) names
    /// every setting, and each of its commented settings is valid.
    #[test]
    fn the_example_file_names_every_setting_with_a_valid_value() {
        let example = include_str!("../../packaging/chat-server.toml");
        let settings: Vec<&str> = example
            .lines()
            .filter_map(|l| l.strip_prefix('#'))
            .filter(|l| l.split_once(" = ").is_some_and(|(k, _)| !k.contains(' ')))
            .collect();
        let named: Vec<&str> = settings
            .iter()
            .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
            .collect();
        // Not in the file: the file itself, the secret in clear (the file
        // explains why), the hidden test switch, clap's own.
        let skipped = [
            "config",
            "jwt_secret",
            "insecure_fast_hashing",
            "help",
            "version",
        ];
        for arg in Config::command().get_arguments() {
            let id = arg.get_id().as_str();
            assert!(
                named.contains(&id) || skipped.contains(&id),
                "packaging/chat-server.toml does not mention {id}"
            );
        }
        // The secret file is read at load: one of the test's stands in.
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("jwt-secret");
        std::fs::write(&secret, "s".repeat(40)).unwrap();
        let text = settings
            .iter()
            .map(|l| match l.strip_prefix("jwt_secret_file = ") {
                Some(_) => format!("jwt_secret_file = {:?}", secret.display().to_string()),
                None => (*l).to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let path = write(&dir, &text);
        let c = Config::load_from(["chat-server", "--config", &path]).unwrap();
        assert_eq!(c.public_url.as_deref(), Some("wss://chat.example.com/ws"));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn the_jwt_secret_comes_from_its_file_without_the_newline() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "s".repeat(40);
        let file = dir.path().join("jwt");
        std::fs::write(&file, format!("{secret}\n")).unwrap();
        let file = file.to_str().unwrap();
        let c = Config::load_from(["chat-server", "--jwt-secret-file", file]).unwrap();
        assert_eq!(c.jwt_secret.as_deref(), Some(secret.as_str()));
        assert!(c.validate().is_ok());
        // From the config file too.
        let path = write(&dir, &format!("jwt_secret_file = {file:?}"));
        let c = Config::load_from(["chat-server", "--config", &path]).unwrap();
        assert_eq!(c.jwt_secret.as_deref(), Some(secret.as_str()));
        // A short secret in a file is refused like one on the command line.
        std::fs::write(dir.path().join("short"), "short\n").unwrap();
        let short = dir.path().join("short");
        let c = Config::load_from(["chat-server", "--jwt-secret-file", short.to_str().unwrap()])
            .unwrap();
        assert!(matches!(
            c.validate(),
            Err(ServerError::WeakJwtSecret { bytes: 5, .. })
        ));
        let err = Config::load_from(["chat-server", "--jwt-secret-file", "/nonexistent/jwt"])
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/jwt"), "{err}");
        let err = Config::load_from([
            "chat-server",
            "--jwt-secret-file",
            file,
            "--jwt-secret",
            &secret,
        ])
        .unwrap_err();
        assert!(err.to_string().contains("cannot be used with"), "{err}");
    }
}
