//! The statements over each conversation's log and head: what
//! [`MessageStore`](chat_core::store::MessageStore) reads, removes and
//! purges (appends are in `append.rs`). Each is one statement, bounded by
//! its arguments: a primary-key lookup or one range of the primary key
//! `(conversation_id, message_id)`, never a scan of a conversation's
//! history or of the table.

use chat_core::{Head, MessageId};
use tokio_postgres::Row;

use crate::append::count;
use crate::ids::{from_db, to_db};
use crate::rows::entry_columns;

/// One head by primary key.
pub(crate) const HEAD: &str =
    "SELECT last_id, seq, version FROM heads WHERE conversation_id = $1::text";

/// The heads of a list of conversations, in its order (a conversation
/// without a head has no row): one probe of the primary key per element,
/// whatever the table's size. The `LIMIT 1` keeps each lookup a nested
/// index probe: as a plain join or `= ANY($1)` the planner may prefer a
/// scan of the whole table once the list is a percent of it, and with the
/// list as a parameter (a generic plan) `= ANY` is not hashed.
pub(crate) const HEADS: &str = "SELECT c.n, h.last_id, h.seq, h.version \
     FROM unnest($1::text[]) WITH ORDINALITY AS c(id, n) \
     CROSS JOIN LATERAL (SELECT last_id, seq, version FROM heads \
                         WHERE conversation_id = c.id LIMIT 1) AS h";

/// One entry as it is now.
pub(crate) const ENTRY: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM entries e WHERE e.conversation_id = $1::text AND e.message_id = $2::int8"
);

/// A history page: newest first within `[$2, $3]` (inclusive bounds, see
/// [`Window`]), group events (kind 4) left out. The inner query walks the
/// primary key backwards and stops after `$4` rows; the reactions are read
/// for those rows only.
pub(crate) const HISTORY: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM (SELECT * FROM entries WHERE conversation_id = $1::text \
       AND message_id BETWEEN $2::int8 AND $3::int8 AND kind <> 4 \
       ORDER BY message_id DESC LIMIT $4::int8) e \
     ORDER BY e.message_id DESC"
);

/// A range of the log: oldest first within `[$2, $3]`, every kind.
pub(crate) const RANGE: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM (SELECT * FROM entries WHERE conversation_id = $1::text \
       AND message_id BETWEEN $2::int8 AND $3::int8 \
       ORDER BY message_id LIMIT $4::int8) e \
     ORDER BY e.message_id"
);

/// Deletes one entry (its dedup key goes with it: it is the entry's own
/// column) and its reactions. The head stays.
pub(crate) const REMOVE: &str = r#"
WITH gone AS (
    DELETE FROM entries WHERE conversation_id = $1::text AND message_id = $2::int8
    RETURNING 1
), reacts AS (
    DELETE FROM reactions WHERE conversation_id = $1::text AND message_id = $2::int8
)
SELECT count(*) FROM gone
"#;

/// Deletes every entry up to `$2` (one range of the primary key) with their
/// reactions, and keeps the seq of the newest one for read cursors over the
/// gap. Running it again deletes nothing and changes nothing.
pub(crate) const PURGE: &str = r#"
WITH gone AS (
    DELETE FROM entries WHERE conversation_id = $1::text AND message_id <= $2::int8
    RETURNING seq
), reacts AS (
    DELETE FROM reactions WHERE conversation_id = $1::text AND message_id <= $2::int8
), mark AS (
    INSERT INTO purged AS p (conversation_id, seq)
    SELECT $1::text, max(seq) FROM gone HAVING count(*) > 0
    ON CONFLICT (conversation_id) DO UPDATE SET seq = GREATEST(p.seq, EXCLUDED.seq)
)
SELECT count(*) FROM gone
"#;

/// A head from `last_id, seq, version` starting at column `at`.
pub(crate) fn head(row: &Row, at: usize) -> Head {
    Head {
        last_id: row.get::<_, Option<i64>>(at).map(from_db),
        seq: count(row.get(at + 1)),
        version: count(row.get(at + 2)),
    }
}

/// An id window as inclusive column bounds, for `BETWEEN`: one statement
/// serves every combination of open and closed ends, and each bound is an
/// index condition whatever the plan (an `$n IS NULL OR …` bound would not
/// be in a generic plan).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) low: i64,
    pub(crate) high: i64,
}

impl Window {
    /// Ids in `(after, up_to]`; `None` when no id is.
    pub(crate) fn after_up_to(after: Option<MessageId>, up_to: Option<MessageId>) -> Option<Self> {
        let low = match after {
            Some(a) => to_db(MessageId(a.get().checked_add(1)?)),
            None => i64::MIN,
        };
        let high = up_to.map_or(i64::MAX, to_db);
        (low <= high).then_some(Self { low, high })
    }

    /// Ids in `(floor, before)`; `None` when no id is.
    pub(crate) fn between(floor: Option<MessageId>, before: Option<MessageId>) -> Option<Self> {
        let high = match before {
            Some(b) => to_db(MessageId(b.get().checked_sub(1)?)),
            None => i64::MAX,
        };
        Self::after_up_to(floor, None).and_then(|w| (w.low <= high).then_some(Self { high, ..w }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(low: u64, high: u64) -> Option<Window> {
        Some(Window {
            low: to_db(MessageId(low)),
            high: to_db(MessageId(high)),
        })
    }

    #[test]
    fn windows_cover_exactly_their_ids() {
        let id = |n| Some(MessageId(n));
        assert_eq!(Window::after_up_to(None, None), w(0, u64::MAX));
        assert_eq!(Window::after_up_to(id(3), id(7)), w(4, 7));
        assert_eq!(Window::after_up_to(id(7), id(7)), None);
        assert_eq!(Window::after_up_to(id(u64::MAX), None), None);
        assert_eq!(Window::between(None, None), w(0, u64::MAX));
        assert_eq!(Window::between(id(3), id(7)), w(4, 6));
        assert_eq!(Window::between(id(3), id(4)), None);
        assert_eq!(Window::between(None, id(0)), None);
        assert_eq!(Window::between(id(1), id(1)), None);
    }
}
