//! Bounds the engine puts on what clients name: a cumulative `ack` or
//! `read` covers at most the newest message there is (a cursor set to
//! u64::MAX would otherwise hide every later message from `unread`), and a
//! `history` answer fits in one frame of the connection.

use super::Inner;
use crate::error::{Error, Result};
use crate::model::{ConversationId, Message, MessageId, Retention, now_millis};
use crate::protocol::ServerFrame;

/// How far ahead of this node's clock an id may be and still count as
/// possible: other nodes' clocks may run a little ahead.
const CLOCK_SKEW_MS: u64 = 5_000;

impl Inner {
    /// `up_to`, or the newest message of `conversation` that may be named
    /// when that is older: under `forever` retention the newest stored one
    /// (`None` when the conversation stores none); under `until_delivered`,
    /// where delivered messages are deleted and the newest stored one may
    /// be older than what a client rightly acks, the newest id the clock
    /// allows now (5 s of skew included).
    pub(crate) async fn bounded_by_newest(
        &self,
        conversation: &ConversationId,
        up_to: MessageId,
    ) -> Result<Option<MessageId>> {
        if self.retention == Retention::UntilDelivered {
            let now = u64::try_from(now_millis()).unwrap_or(0);
            return Ok(Some(up_to.min(MessageId::last_at(now + CLOCK_SKEW_MS))));
        }
        Ok(self
            .messages
            .last_message_id(conversation)
            .await?
            .map(|newest| newest.min(up_to)))
    }
}

/// The `history` answer with as many of `messages` (newest first) as fit
/// in `max_bytes` once encoded: a page is cut short, and the client asks
/// for the rest with `before`. [`Error::TooLarge`] when not even the
/// newest one fits.
pub(crate) fn fitted_history(
    reply_to: Option<String>,
    mut messages: Vec<Message>,
    max_bytes: Option<usize>,
) -> Result<ServerFrame> {
    let Some(max) = max_bytes else {
        return Ok(ServerFrame::History { reply_to, messages });
    };
    let asked = messages.len();
    let newest_size = messages
        .first()
        .map_or(0, |m| serde_json::to_vec(m).map_or(usize::MAX, |v| v.len()));
    // A first cut from each message's own size, then the exact check.
    let mut used = ServerFrame::History {
        reply_to: reply_to.clone(),
        messages: Vec::new(),
    }
    .encode()
    .len();
    let mut keep = 0;
    for m in &messages {
        let size = serde_json::to_vec(m).map_or(usize::MAX, |v| v.len()) + 1;
        if used.saturating_add(size) > max {
            break;
        }
        used += size;
        keep += 1;
    }
    messages.truncate(keep);
    loop {
        let frame = ServerFrame::History {
            reply_to: reply_to.clone(),
            messages: messages.clone(),
        };
        let fits = frame.encode().len() <= max;
        if fits && (asked == 0 || !messages.is_empty()) {
            return Ok(frame);
        }
        if fits || messages.pop().is_none() {
            return Err(Error::TooLarge {
                what: "the newest message of this history page",
                size: newest_size,
                max,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConversationId, UserId};

    fn message(id: u64, body_bytes: usize) -> Message {
        Message {
            message_id: MessageId(id),
            conversation_id: ConversationId::from("g_1"),
            sender_id: UserId::from("u1"),
            body: "x".repeat(body_bytes),
            ts: 1,
        }
    }

    #[test]
    fn a_page_is_cut_to_fit_the_frame() {
        let page: Vec<Message> = (0..50).rev().map(|i| message(i, 10_000)).collect();
        let max = 256 * 1024;
        let frame = fitted_history(Some("h".into()), page.clone(), Some(max)).unwrap();
        assert!(frame.encode().len() <= max);
        let ServerFrame::History { messages, .. } = frame else {
            panic!()
        };
        // 25 messages of 10 KB fit in 256 KiB, and they are the newest.
        assert!((20..=26).contains(&messages.len()), "{}", messages.len());
        assert_eq!(messages[..], page[..messages.len()]);
        // Without a limit nothing is cut.
        let frame = fitted_history(None, page.clone(), None).unwrap();
        assert!(matches!(frame, ServerFrame::History { messages, .. } if messages.len() == 50));
    }

    #[test]
    fn a_message_bigger_than_the_frame_is_too_large() {
        let err = fitted_history(None, vec![message(1, 5000)], Some(1000)).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
        // An empty page always fits.
        assert!(fitted_history(None, Vec::new(), Some(100)).is_ok());
    }
}
