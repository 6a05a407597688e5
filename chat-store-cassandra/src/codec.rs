//! Conversions between chat-core's types and CQL values: message ids,
//! the write times derived from them, kinds and roles as stored, the answer
//! of a lightweight transaction, and the mapping of driver errors onto
//! [`chat_core::Error`].

use chat_core::{
    ConversationKind, Error, HistoryVisibility, JoinPolicy, MessageId, MessageKind, Role,
};
use scylla::response::query_result::QueryResult;
use scylla::value::Row;

/// The top bit of a `u64`.
const TOP_BIT: u64 = 1 << 63;

/// A message id as stored: the top bit flipped, so that every `u64` fits a
/// signed `bigint` and the signed order is the unsigned order. Real ids
/// (top bit 0) are stored with the top bit set, so their big-endian bytes
/// also sort in id order, which is how Cassandra breaks a tie between two
/// cells written at the same time (see [`write_time`]).
pub(crate) fn id_to_cql(id: MessageId) -> i64 {
    // Lossless bit reinterpretation; the flip makes it order-preserving.
    (id.0 ^ TOP_BIT) as i64
}

/// The inverse of [`id_to_cql`].
pub(crate) fn id_from_cql(stored: i64) -> MessageId {
    MessageId((stored as u64) ^ TOP_BIT)
}

/// The smallest stored id.
pub(crate) const MIN_CQL_ID: i64 = i64::MIN;

/// The bits of an id below its millisecond (worker and sequence).
const BELOW_MS_BITS: u32 = 22;

/// The write time (CQL `USING TIMESTAMP`, microseconds) that stands for
/// `id`: the id's millisecond in microseconds, plus the id's place within
/// its millisecond scaled to 0..1000.
///
/// It never decreases as the id grows, so "the last write wins" becomes
/// "the highest id wins" for every cell written this way (cursors, the
/// effects of edits, deletes and reactions, the low-water mark), whatever
/// order the writes reach Cassandra in. Ids of one microsecond share a
/// write time; Cassandra then keeps the greater value, which for a stored
/// id ([`id_to_cql`]) or a seq is again the higher one. Being close to the
/// wall clock, it also orders sensibly against plain deletes, which are
/// dated now.
pub(crate) fn write_time(id: MessageId) -> i64 {
    let ms = id.unix_ms();
    let within = ((id.0 & ((1 << BELOW_MS_BITS) - 1)) * 1000) >> BELOW_MS_BITS;
    // At most about 6.1e15 µs for u64::MAX (the 42-bit ms field plus the
    // epoch): far inside i64.
    i64::try_from(ms * 1000 + within).unwrap_or(i64::MAX)
}

/// The write time of a delete that must shadow every cell written for ids
/// up to `id` ([`write_time`]) and every plain write made before now.
pub(crate) fn delete_time(id: MessageId) -> i64 {
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros()),
    )
    .unwrap_or(i64::MAX);
    now.max(write_time(id).saturating_add(1))
}

/// A `usize` page limit as a CQL `int` (`LIMIT` takes an `int`).
pub(crate) fn limit_to_cql(limit: usize) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX)
}

/// A count or seq as a CQL `bigint`.
pub(crate) fn count_to_cql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A CQL `bigint` count or seq (never negative as written).
pub(crate) fn count_from_cql(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// An entry's kind as stored (a `tinyint`).
pub(crate) fn kind_to_cql(kind: MessageKind) -> i8 {
    match kind {
        MessageKind::Text => 0,
        MessageKind::Edit => 1,
        MessageKind::Delete => 2,
        MessageKind::Reaction => 3,
        MessageKind::GroupEvent => 4,
    }
}

/// The inverse of [`kind_to_cql`].
pub(crate) fn kind_from_cql(kind: i8) -> chat_core::Result<MessageKind> {
    MessageKind::ALL
        .into_iter()
        .find(|k| kind_to_cql(*k) == kind)
        .ok_or_else(|| corrupt(format!("unknown entry kind {kind}")))
}

/// A conversation kind as stored.
pub(crate) fn conversation_kind_to_cql(kind: ConversationKind) -> &'static str {
    match kind {
        ConversationKind::Direct => "direct",
        ConversationKind::Group => "group",
    }
}

/// The inverse of [`conversation_kind_to_cql`].
pub(crate) fn conversation_kind_from_cql(kind: &str) -> chat_core::Result<ConversationKind> {
    match kind {
        "direct" => Ok(ConversationKind::Direct),
        "group" => Ok(ConversationKind::Group),
        other => Err(corrupt(format!("unknown conversation kind {other:?}"))),
    }
}

/// A join policy as stored.
pub(crate) fn join_to_cql(join: JoinPolicy) -> &'static str {
    match join {
        JoinPolicy::Invite => "invite",
        JoinPolicy::Open => "open",
    }
}

/// The inverse of [`join_to_cql`].
pub(crate) fn join_from_cql(join: &str) -> chat_core::Result<JoinPolicy> {
    match join {
        "invite" => Ok(JoinPolicy::Invite),
        "open" => Ok(JoinPolicy::Open),
        other => Err(corrupt(format!("unknown join policy {other:?}"))),
    }
}

/// A history visibility as stored.
pub(crate) fn history_to_cql(history: HistoryVisibility) -> &'static str {
    match history {
        HistoryVisibility::SinceJoin => "since_join",
        HistoryVisibility::All => "all",
    }
}

/// The inverse of [`history_to_cql`].
pub(crate) fn history_from_cql(history: &str) -> chat_core::Result<HistoryVisibility> {
    match history {
        "since_join" => Ok(HistoryVisibility::SinceJoin),
        "all" => Ok(HistoryVisibility::All),
        other => Err(corrupt(format!("unknown history visibility {other:?}"))),
    }
}

/// A role as stored (the wire's name).
pub(crate) fn role_from_cql(role: &str) -> chat_core::Result<Role> {
    Role::parse(role).ok_or_else(|| corrupt(format!("unknown role {role:?}")))
}

/// Maps a driver error onto [`Error::Unavailable`], naming the operation.
///
/// Every driver failure an adapter can meet at run time (timeouts, no
/// reachable replica, too few replicas for the consistency level, a
/// connection reset) means "the store cannot serve now"; the source keeps
/// the driver's detail.
pub(crate) fn backend<E>(what: &'static str) -> impl Fn(E) -> Error + Copy
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| Error::unavailable(format!("cassandra: {what}"), e)
}

/// A stored value that this crate never writes: an [`Error::Unavailable`]
/// (the data cannot be served), naming it.
pub(crate) fn corrupt(what: impl Into<String>) -> Error {
    Error::unavailable_msg(format!(
        "cassandra: unexpected stored value: {}",
        what.into()
    ))
}

/// What a lightweight transaction answered: whether it applied. (When it
/// did not, the answer also holds the current values of the columns it was
/// conditional on; every caller reads what it needs again instead.)
pub(crate) struct Lwt {
    pub(crate) applied: bool,
}

impl Lwt {
    /// Reads the `[applied]` column of the answer.
    pub(crate) fn from_result(result: QueryResult, what: &'static str) -> chat_core::Result<Self> {
        let missing = || Error::unavailable_msg(format!("cassandra: {what}: no [applied] row"));
        if !result.is_rows() {
            return Err(missing());
        }
        let rows = result.into_rows_result().map_err(backend(what))?;
        let names: Vec<String> = rows
            .column_specs()
            .iter()
            .map(|spec| spec.name().to_owned())
            .collect();
        let row = rows
            .rows::<Row>()
            .map_err(backend(what))?
            .next()
            .ok_or_else(missing)?
            .map_err(backend(what))?;
        let applied = names
            .iter()
            .zip(row.columns)
            .find(|(name, _)| *name == "[applied]")
            .and_then(|(_, value)| value.and_then(|v| v.as_boolean()))
            .ok_or_else(missing)?;
        Ok(Self { applied })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_encoding_round_trips_and_keeps_order() {
        let ids = [
            0,
            1,
            42,
            (1 << 62) + 7,
            u64::MAX / 2,
            u64::MAX / 2 + 1,
            u64::MAX,
        ];
        for pair in ids.windows(2) {
            let (a, b) = (MessageId(pair[0]), MessageId(pair[1]));
            assert!(
                id_to_cql(a) < id_to_cql(b),
                "{a:?} < {b:?} must hold stored"
            );
        }
        for id in ids {
            assert_eq!(id_from_cql(id_to_cql(MessageId(id))), MessageId(id));
        }
    }

    #[test]
    fn real_ids_sort_the_same_as_big_endian_bytes() {
        let ids = chat_core::id::IdGenerator::new(3).expect("ids");
        let (a, b) = (ids.next_id(), ids.next_id());
        assert!(a < b);
        assert!(
            id_to_cql(a).to_be_bytes() < id_to_cql(b).to_be_bytes(),
            "Cassandra's tie-break (the greater bytes) must pick the higher id"
        );
    }

    #[test]
    fn write_times_follow_ids() {
        let ids = chat_core::id::IdGenerator::new(7).expect("ids");
        let mut last = 0;
        for _ in 0..10_000 {
            let t = write_time(ids.next_id());
            assert!(t >= last, "write times never decrease as ids grow");
            last = t;
        }
        let id = ids.next_id();
        let ms = i64::try_from(id.unix_ms()).unwrap();
        assert!((ms * 1000..ms * 1000 + 1000).contains(&write_time(id)));
        assert_eq!(
            write_time(MessageId::first_at(id.unix_ms() + 1)),
            (ms + 1) * 1000,
            "the next millisecond starts a new range of write times"
        );
        assert!(write_time(MessageId(u64::MAX)) > write_time(id));
        assert!(delete_time(id) > write_time(id));
        assert!(delete_time(MessageId(u64::MAX)) > write_time(MessageId(u64::MAX)));
    }

    #[test]
    fn kinds_round_trip() {
        for kind in MessageKind::ALL {
            assert_eq!(kind_from_cql(kind_to_cql(kind)).unwrap(), kind);
        }
        assert!(kind_from_cql(99).is_err());
        for kind in [ConversationKind::Direct, ConversationKind::Group] {
            assert_eq!(
                conversation_kind_from_cql(conversation_kind_to_cql(kind)).unwrap(),
                kind
            );
        }
        for join in [JoinPolicy::Invite, JoinPolicy::Open] {
            assert_eq!(join_from_cql(join_to_cql(join)).unwrap(), join);
        }
        for history in [HistoryVisibility::SinceJoin, HistoryVisibility::All] {
            assert_eq!(history_from_cql(history_to_cql(history)).unwrap(), history);
        }
        assert!(role_from_cql("king").is_err());
    }
}
