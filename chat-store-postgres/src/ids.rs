//! Message ids in PostgreSQL's `bigint`.
//!
//! A [`MessageId`] is a `u64` and PostgreSQL has no unsigned integers. The
//! top bit is flipped on the way in, which maps `0..=u64::MAX` onto
//! `i64::MIN..=i64::MAX` in the same order, so `ORDER BY message_id` and
//! `message_id < $1` mean what they mean for the ids themselves, over the
//! whole range (the traits' callers use `u64::MAX` as "newest"). The price:
//! a Snowflake id reads as a negative number in `psql`; the decoded value is
//! `message_id # -9223372036854775808` (as `numeric`, since it may exceed
//! `bigint`).

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

/// A `LIMIT` for a page size: a page cannot be larger than `i64::MAX` rows.
pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
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
}
