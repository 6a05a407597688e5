//! The log subscriber: text or JSON lines on stdout, filtered by
//! `--log-filter` (or `RUST_LOG`). Connection spans put `conn` and `peer`
//! on every line of a connection, `user` and `device` on a WebSocket's;
//! request spans put `method` and `path` (never the query, never a token
//! or message body).

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
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
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
