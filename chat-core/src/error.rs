//! The one error type of chat-core: portable kinds that every adapter maps its
//! backend's failures onto, with the backend error kept as the source.

use crate::model::ConversationId;

/// A boxed backend error, kept as the source of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result with chat-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms every adapter and client understands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The thing asked for does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// A unique thing (username, group id) exists already.
    #[error("already exists: {what}")]
    AlreadyExists {
        /// What clashed.
        what: String,
    },
    /// The user is not a member of the conversation.
    #[error("not a member of conversation {conversation}")]
    NotMember {
        /// The conversation.
        conversation: ConversationId,
    },
    /// The request is malformed or breaks a rule.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// Why.
        reason: String,
    },
    /// Something is bigger than allowed.
    #[error("{what} is too large: {size} bytes, at most {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The caller sends faster than allowed, or is locked out for a while
    /// (login throttling).
    #[error("rate limited: retry in {:.1} s", retry_after.as_secs_f64())]
    RateLimited {
        /// How long until the same call could succeed.
        retry_after: std::time::Duration,
    },
    /// Missing, wrong or expired credentials.
    #[error("unauthorized: {reason}")]
    Unauthorized {
        /// Why.
        reason: String,
    },
    /// A backend (store, bus, …) cannot serve now. For a send this means the
    /// message was NOT stored: retry with the same client_msg_id.
    #[error("unavailable: {reason}")]
    Unavailable {
        /// What could not be reached.
        reason: String,
        /// The backend's own error.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// A [`Error::NotFound`].
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }
    /// An [`Error::AlreadyExists`].
    pub fn already_exists(what: impl Into<String>) -> Self {
        Self::AlreadyExists { what: what.into() }
    }
    /// An [`Error::InvalidInput`].
    pub fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            reason: reason.into(),
        }
    }
    /// An [`Error::Unauthorized`].
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::Unauthorized {
            reason: reason.into(),
        }
    }
    /// An [`Error::Unavailable`] that wraps a backend error.
    pub fn unavailable(reason: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            reason: reason.into(),
            source: Some(source.into()),
        }
    }
    /// An [`Error::Unavailable`] without a backend error.
    pub fn unavailable_msg(reason: impl Into<String>) -> Self {
        Self::Unavailable {
            reason: reason.into(),
            source: None,
        }
    }

    /// The contract's error code for this error (`bad_frame` is the
    /// protocol's own and not produced here).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::AlreadyExists { .. } => "already_exists",
            Self::NotMember { .. } => "not_member",
            Self::InvalidInput { .. } => "invalid_input",
            Self::TooLarge { .. } => "too_large",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unauthorized { .. } => "unauthorized",
            Self::Unavailable { .. } => "unavailable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_contract() {
        let e = Error::NotMember {
            conversation: ConversationId::from("g:1"),
        };
        assert_eq!(e.code(), "not_member");
        let limited = Error::RateLimited {
            retry_after: std::time::Duration::from_millis(1500),
        };
        assert_eq!(limited.code(), "rate_limited");
        assert_eq!(limited.to_string(), "rate limited: retry in 1.5 s");
        let io = std::io::Error::other("down");
        let e = Error::unavailable("postgres", io);
        assert_eq!(e.code(), "unavailable");
        assert!(std::error::Error::source(&e).is_some());
    }
}
