//! The log subscriber: text or JSON lines on stdout, filtered by
//! `--log-filter` (or `RUST_LOG`). Connection spans put `conn` and `peer`
//! on every line of a connection, `user` and `device` on a WebSocket's;
//! request spans put `method`, `path` (never the query, never a token or
//! message body) and the request id `req`. Colour codes only when stdout is
//! a terminal (and `NO_COLOR` is unset): a file or a journal gets plain text.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Operations};
use crate::error::ServerError;

/// Installs the global subscriber that `ops` describes. Fails for a filter
/// that does not parse; a second call (tests) keeps the first subscriber.
pub fn init(ops: &Operations) -> Result<(), ServerError> {
    let filter = match &ops.log_filter {
        Some(f) => EnvFilter::try_new(f)
            .map_err(|e| ServerError::LogFilter(format!("--log-filter {f:?}: {e}")))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let installed = match ops.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
    };
    if let Err(e) = installed {
        tracing::debug!(error = %e, "a log subscriber is installed already");
    }
    Ok(())
}

/// `error` and every cause under it, joined by `: `, each once: a cause
/// whose text the line already holds (an `#[error("store: {0}")]` wrapper
/// prints its source itself) is not repeated. A fatal line names the root
/// cause ("Connection refused", "certificate expired"), not only the layer
/// that gave up.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("engine: {0}")]
        Shown(#[source] Inner),
        #[error("cluster unreachable")]
        Hidden(#[source] Inner),
    }

    #[derive(Debug, thiserror::Error)]
    #[error("store down")]
    struct Inner(#[source] std::io::Error);

    #[test]
    fn every_cause_is_named_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(
            error_chain(&Outer::Shown(Inner(io()))),
            "engine: store down: refused"
        );
        assert_eq!(
            error_chain(&Outer::Hidden(Inner(io()))),
            "cluster unreachable: store down: refused"
        );
    }
}
