//! The delivery gate of one session: what keeps each conversation's entries
//! reaching the client once and in ascending id order, whether they come
//! live (from this node's chain stage) or from the store (a sync, or a
//! catch-up after the user joined a conversation).
//!
//! - Per conversation it remembers the newest entry it let through
//!   (`last_sent`); anything at or below it is a repeat and is dropped. The
//!   entries it lets through form an unbroken stretch of the conversation's
//!   chain (live entries come in chain order; a catch-up reads the store),
//!   which is why an `ack` may be clamped to `last_sent`: everything up to
//!   it was sent on this connection.
//! - While entries are read from the store for a conversation (or for all of
//!   them, the sync after connect), live entries of it wait in a hold and go
//!   out after, minus what the read already sent.

use std::collections::HashMap;

use bytes::Bytes;

use crate::model::{ConversationId, MessageId};

/// An entry that waits in a hold. `frame` is `None` for one of the
/// session's own entries: it only moves `last_sent` (the session got `sent`).
#[derive(Debug)]
struct Held {
    conversation: ConversationId,
    id: MessageId,
    frame: Option<Bytes>,
}

/// What the gate decided about one live entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Send it now.
    Send,
    /// Already sent (or older than what was): drop it.
    Repeat,
    /// Kept in a hold.
    Held,
    /// A hold is full: the session is too slow to keep up.
    Overflow,
}

/// The gate state; lives in the session's shared part under a mutex.
#[derive(Debug)]
pub(crate) struct Gate {
    last_sent: HashMap<ConversationId, MessageId>,
    /// Conversations being caught up from the store, with how many catch-ups run.
    holding: HashMap<ConversationId, u32>,
    /// The whole session waits (its sync after connect runs).
    hold_all: bool,
    held: Vec<Held>,
    cap: usize,
}

impl Gate {
    /// A gate that starts holding everything: the sync after connect runs first.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            last_sent: HashMap::new(),
            holding: HashMap::new(),
            hold_all: true,
            held: Vec::new(),
            cap,
        }
    }

    fn holds(&self, c: &ConversationId) -> bool {
        self.hold_all || self.holding.contains_key(c)
    }

    /// A live entry: send, drop, or hold it. A `Send` verdict has already
    /// moved `last_sent`, so the caller must queue the frame before it lets
    /// go of the gate.
    pub(crate) fn live(
        &mut self,
        c: &ConversationId,
        id: MessageId,
        frame: Option<&Bytes>,
    ) -> Verdict {
        if self.holds(c) {
            if self.held.len() >= self.cap {
                return Verdict::Overflow;
            }
            self.held.push(Held {
                conversation: c.clone(),
                id,
                frame: frame.cloned(),
            });
            return Verdict::Held;
        }
        self.admit(c, id)
    }

    /// Whether an entry is new here; if so it counts as sent.
    pub(crate) fn admit(&mut self, c: &ConversationId, id: MessageId) -> Verdict {
        match self.last_sent.get(c) {
            Some(last) if *last >= id => Verdict::Repeat,
            _ => {
                self.last_sent.insert(c.clone(), id);
                Verdict::Send
            }
        }
    }

    /// Every live entry waits until [`Gate::release`] of `None`.
    pub(crate) fn hold_everything(&mut self) {
        self.hold_all = true;
    }

    /// Live entries of `c` wait until the matching [`Gate::release`].
    pub(crate) fn hold(&mut self, c: &ConversationId) {
        *self.holding.entry(c.clone()).or_default() += 1;
    }

    /// Whether a held entry of `c` would go out if the hold `scope` ended
    /// (`None`: the hold of everything): no other hold keeps it.
    fn freed_by(&self, scope: Option<&ConversationId>, c: &ConversationId) -> bool {
        match scope {
            None => !self.holding.contains_key(c),
            Some(s) => s == c && !self.hold_all && self.holding.get(c) == Some(&1),
        }
    }

    /// Takes the held entries that ending the hold `scope` would let out,
    /// in arrival order (chain order within each conversation), repeats
    /// left out; the hold stays, so that later live entries keep waiting
    /// behind these.
    pub(crate) fn take_due(&mut self, scope: Option<&ConversationId>) -> Vec<Bytes> {
        let held = std::mem::take(&mut self.held);
        let mut due = Vec::new();
        for h in held {
            if !self.freed_by(scope, &h.conversation) {
                self.held.push(h);
                continue;
            }
            if self.admit(&h.conversation, h.id) == Verdict::Send
                && let Some(frame) = h.frame
            {
                due.push(frame);
            }
        }
        due
    }

    /// Ends the hold `scope` if nothing it holds is left to send (the caller
    /// sent what [`Gate::take_due`] gave); false when more came meanwhile.
    pub(crate) fn end(&mut self, scope: Option<&ConversationId>) -> bool {
        if self
            .held
            .iter()
            .any(|h| self.freed_by(scope, &h.conversation))
        {
            return false;
        }
        match scope {
            None => self.hold_all = false,
            Some(c) => {
                if let Some(n) = self.holding.get_mut(c) {
                    *n -= 1;
                    if *n == 0 {
                        self.holding.remove(c);
                    }
                }
            }
        }
        true
    }

    /// Ends a hold at once, returning what it let out (for tests).
    #[cfg(test)]
    pub(crate) fn release(&mut self, scope: Option<&ConversationId>) -> Vec<Bytes> {
        let due = self.take_due(scope);
        assert!(self.end(scope));
        due
    }

    /// The newest entry of `c` sent on this connection.
    pub(crate) fn last_sent(&self, c: &ConversationId) -> Option<MessageId> {
        self.last_sent.get(c).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn live_entries_pass_once_in_order() {
        let mut g = Gate::new(10);
        assert!(g.release(None).is_empty());
        let c = ConversationId::from("c");
        assert_eq!(g.live(&c, MessageId(2), Some(&f("2"))), Verdict::Send);
        assert_eq!(g.live(&c, MessageId(2), Some(&f("2"))), Verdict::Repeat);
        assert_eq!(g.live(&c, MessageId(1), Some(&f("1"))), Verdict::Repeat);
        assert_eq!(g.last_sent(&c), Some(MessageId(2)));
    }

    #[test]
    fn a_hold_keeps_live_entries_until_the_catch_up_is_done() {
        let mut g = Gate::new(10);
        g.release(None);
        let (c, d) = (ConversationId::from("c"), ConversationId::from("d"));
        g.hold(&c);
        assert_eq!(g.live(&c, MessageId(5), Some(&f("5"))), Verdict::Held);
        assert_eq!(g.live(&c, MessageId(6), None), Verdict::Held);
        assert_eq!(g.live(&c, MessageId(7), Some(&f("7"))), Verdict::Held);
        assert_eq!(
            g.live(&d, MessageId(1), Some(&f("d1"))),
            Verdict::Send,
            "other conversations go on"
        );
        // The catch-up read the store up to 5.
        assert_eq!(g.admit(&c, MessageId(4)), Verdict::Send);
        assert_eq!(g.admit(&c, MessageId(5)), Verdict::Send);
        let due = g.release(Some(&c));
        assert_eq!(
            due,
            vec![f("7")],
            "5 was sent by the catch-up, 6 was the session's own"
        );
        assert_eq!(g.last_sent(&c), Some(MessageId(7)));
    }

    #[test]
    fn holds_nest_and_overflow_is_reported() {
        let mut g = Gate::new(1);
        let c = ConversationId::from("c");
        assert_eq!(
            g.live(&c, MessageId(1), Some(&f("1"))),
            Verdict::Held,
            "the sync after connect holds"
        );
        assert_eq!(g.live(&c, MessageId(2), Some(&f("2"))), Verdict::Overflow);
        g.hold(&c);
        assert!(
            g.release(None).is_empty(),
            "c is still held by its own catch-up"
        );
        assert_eq!(g.release(Some(&c)), vec![f("1")]);
    }
}
