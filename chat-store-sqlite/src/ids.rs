//! Message ids in SQLite's signed 64-bit `INTEGER`, and the inclusive id
//! windows that history and range pages read.
//!
//! A [`MessageId`] is a `u64`. The top bit is flipped on the way in, which
//! maps `0..=u64::MAX` onto `i64::MIN..=i64::MAX` in the same order, so
//! `ORDER BY message_id`, `BETWEEN` and `max()` mean what they mean for the
//! ids themselves over the whole range (callers use `u64::MAX` as "newest").
//! The same mapping as chat-store-postgres. The price: in the `sqlite3`
//! shell a Snowflake id reads as a negative number (`message_id + 9223372036854775808`
//! as a real gives it back).

use chat_core::MessageId;

const FLIP: u64 = 1 << 63;

/// The column value for `id`.
pub(crate) fn to_db(id: MessageId) -> i64 {
    i64::from_ne_bytes((id.get() ^ FLIP).to_ne_bytes())
}

/// The id of a column value.
pub(crate) fn from_db(value: i64) -> MessageId {
    MessageId(u64::from_ne_bytes(value.to_ne_bytes()) ^ FLIP)
}

/// A nullable id column.
pub(crate) fn opt_to_db(id: Option<MessageId>) -> Option<i64> {
    id.map(to_db)
}

/// A nullable id column's value.
pub(crate) fn opt_from_db(value: Option<i64>) -> Option<MessageId> {
    value.map(from_db)
}

/// A `LIMIT` for a page size.
pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Ids from `low` to `high`, both included, as column values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) low: i64,
    pub(crate) high: i64,
}

impl Window {
    fn new(low: u64, high: u64) -> Option<Self> {
        (low <= high).then(|| Self {
            low: to_db(MessageId(low)),
            high: to_db(MessageId(high)),
        })
    }

    /// Ids in `(floor, before)` (history); `None` when no id fits.
    pub(crate) fn between(floor: Option<MessageId>, before: Option<MessageId>) -> Option<Self> {
        let low = match floor {
            Some(f) => f.get().checked_add(1)?,
            None => 0,
        };
        let high = match before {
            Some(b) => b.get().checked_sub(1)?,
            None => u64::MAX,
        };
        Self::new(low, high)
    }

    /// Ids in `(after, up_to]` (range); `None` when no id fits.
    pub(crate) fn after_up_to(after: Option<MessageId>, up_to: Option<MessageId>) -> Option<Self> {
        let low = match after {
            Some(a) => a.get().checked_add(1)?,
            None => 0,
        };
        Self::new(low, up_to.map_or(u64::MAX, MessageId::get))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_keeps_order_and_round_trips() {
        let ids = [0, 1, 42, FLIP - 1, FLIP, FLIP + 1, u64::MAX - 1, u64::MAX];
        for pair in ids.windows(2) {
            let (a, b) = (MessageId(pair[0]), MessageId(pair[1]));
            assert!(to_db(a) < to_db(b), "{a:?} and {b:?} must keep their order");
        }
        for id in ids {
            assert_eq!(from_db(to_db(MessageId(id))), MessageId(id));
        }
        assert_eq!(to_db(MessageId(0)), i64::MIN);
        assert_eq!(to_db(MessageId(u64::MAX)), i64::MAX);
    }

    #[test]
    fn windows_are_open_or_closed_as_asked() {
        let id = |n| Some(MessageId(n));
        let w = Window::between(id(5), id(9)).unwrap();
        assert_eq!(
            (from_db(w.low), from_db(w.high)),
            (MessageId(6), MessageId(8))
        );
        assert_eq!(Window::between(id(5), id(6)), None, "(5, 6) is empty");
        assert_eq!(Window::between(None, id(0)), None);
        assert_eq!(Window::between(id(u64::MAX), None), None);
        let w = Window::after_up_to(id(5), id(9)).unwrap();
        assert_eq!(
            (from_db(w.low), from_db(w.high)),
            (MessageId(6), MessageId(9))
        );
        assert_eq!(Window::after_up_to(id(9), id(9)), None);
        let all = Window::after_up_to(None, None).unwrap();
        assert_eq!((all.low, all.high), (i64::MIN, i64::MAX));
    }
}
