//! Why a frame could not be decoded: [`BadFrame`] and its [`FrameErrorKind`].

/// The contract's error code for a frame that could not be decoded.
pub const BAD_FRAME: &str = "bad_frame";

/// How long an echoed piece of client input may be in an error message, so
/// that a huge `type` cannot make the answer huge.
const ECHO_MAX: usize = 64;

/// A frame that could not be decoded, with what is needed to answer it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad frame: {kind}")]
pub struct BadFrame {
    /// The frame's `id`, when it could be read, so that the error frame can
    /// carry it as `reply_to`.
    pub reply_to: Option<String>,
    /// What is wrong with the frame.
    pub kind: FrameErrorKind,
}

impl BadFrame {
    /// A bad frame whose `id` could not be read (or that had none).
    pub fn new(kind: FrameErrorKind) -> Self {
        Self {
            reply_to: None,
            kind,
        }
    }

    /// The contract's error code: always [`BAD_FRAME`].
    pub fn code(&self) -> &'static str {
        BAD_FRAME
    }

    /// A message for a human, naming what is wrong (the error frame's `message`).
    pub fn message(&self) -> String {
        self.kind.to_string()
    }
}

/// Every way a frame can be bad.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameErrorKind {
    /// The text is not JSON at all (the parser's own detail).
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The text is JSON, but not an object.
    #[error("a frame must be a JSON object")]
    NotAnObject,
    /// The object has no `type`.
    #[error("the frame has no \"type\"")]
    MissingType,
    /// `type` is there but is not a string.
    #[error("\"type\" must be a string")]
    TypeNotString,
    /// `type` names no frame this side knows (clipped to 64 bytes).
    #[error("unknown frame type {0:?}")]
    UnknownType(String),
    /// The same key appears twice in the object, which JSON leaves undefined.
    #[error("{frame} frame: \"{field}\" appears more than once")]
    DuplicateField {
        /// The frame's type.
        frame: &'static str,
        /// The repeated key.
        field: &'static str,
    },
    /// A field that this frame type requires is absent.
    #[error("{frame} frame: \"{field}\" is missing")]
    MissingField {
        /// The frame's type.
        frame: &'static str,
        /// The absent field.
        field: &'static str,
    },
    /// A field is present but its value does not fit.
    #[error("{frame} frame: \"{field}\" is invalid: {reason}")]
    InvalidField {
        /// The frame's type.
        frame: &'static str,
        /// The offending field.
        field: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// A `send` names both `conversation_id` and `to`.
    #[error("send frame: give exactly one of \"conversation_id\" and \"to\", not both")]
    BothTargets,
    /// A `send` names neither `conversation_id` nor `to`.
    #[error("send frame: give exactly one of \"conversation_id\" and \"to\"")]
    NoTarget,
    /// A frame of a known type whose fields do not fit it, as told by the
    /// serde decoder of server frames (which does not name fields structurally).
    #[error("{frame} frame is malformed: {reason}")]
    Malformed {
        /// The frame's type.
        frame: &'static str,
        /// The decoder's explanation.
        reason: String,
    },
}

impl FrameErrorKind {
    /// An [`FrameErrorKind::UnknownType`] that echoes at most 64 bytes of `ty`.
    pub(crate) fn unknown_type(ty: &str) -> Self {
        Self::UnknownType(clip(ty).to_owned())
    }
}

/// The longest prefix of `s` of at most [`ECHO_MAX`] bytes that ends on a
/// character boundary.
fn clip(s: &str) -> &str {
    if s.len() <= ECHO_MAX {
        return s;
    }
    let mut end = ECHO_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_cuts_on_a_char_boundary() {
        assert_eq!(clip("send"), "send");
        let long = "é".repeat(40); // 80 bytes, 2 per char
        let clipped = clip(&long);
        assert_eq!(clipped.len(), 64);
        assert_eq!(clip(&"ab€".repeat(30)).len(), 60 + 2);
    }

    #[test]
    fn bad_frame_has_the_contract_code_and_a_clear_message() {
        let bad = BadFrame::new(FrameErrorKind::MissingField {
            frame: "send",
            field: "body",
        });
        assert_eq!(bad.code(), "bad_frame");
        assert_eq!(bad.message(), "send frame: \"body\" is missing");
        assert_eq!(
            bad.to_string(),
            "bad frame: send frame: \"body\" is missing"
        );
    }
}
