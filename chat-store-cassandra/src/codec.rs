//! Conversions between chat-core's types and CQL values, and the mapping of
//! driver errors onto [`chat_core::Error`].

use std::collections::HashMap;

use chat_core::{Error, MessageId};
use scylla::response::query_result::QueryResult;
use scylla::value::{CqlValue, Row};

/// The top bit of a `u64`.
const TOP_BIT: u64 = 1 << 63;

/// A message id as stored: the top bit flipped, so that every `u64` fits a
/// signed `bigint` and the signed order is the unsigned order.
pub(crate) fn id_to_cql(id: MessageId) -> i64 {
    // Lossless bit reinterpretation; the flip makes it order-preserving.
    (id.0 ^ TOP_BIT) as i64
}

/// The inverse of [`id_to_cql`].
pub(crate) fn id_from_cql(stored: i64) -> MessageId {
    MessageId((stored as u64) ^ TOP_BIT)
}

/// The stored form of the largest id below `id`, or `None` when `id` is 0.
pub(crate) fn below(id: MessageId) -> Option<i64> {
    id.0.checked_sub(1).map(|prev| id_to_cql(MessageId(prev)))
}

/// The stored form of the smallest id above `id`, or `None` at `u64::MAX`.
pub(crate) fn above(id: MessageId) -> Option<i64> {
    id.0.checked_add(1).map(|next| id_to_cql(MessageId(next)))
}

/// A time bucket as stored (buckets are small: 41 bits of ms at most).
pub(crate) fn bucket_to_cql(bucket: u64) -> i64 {
    i64::try_from(bucket).unwrap_or(i64::MAX)
}

/// A `usize` page limit as a CQL `int` (`LIMIT` takes an `int`).
pub(crate) fn limit_to_cql(limit: usize) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX)
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

/// Rows of a result, untyped: what lightweight transactions and a few
/// variable-width selects need.
pub(crate) struct Rows {
    names: Vec<String>,
    rows: Vec<Row>,
}

impl Rows {
    /// Reads every row of `result` (a result without rows gives none).
    pub(crate) fn from_result(result: QueryResult, what: &'static str) -> chat_core::Result<Self> {
        if !result.is_rows() {
            return Ok(Self {
                names: Vec::new(),
                rows: Vec::new(),
            });
        }
        let rows = result.into_rows_result().map_err(backend(what))?;
        let names = rows
            .column_specs()
            .iter()
            .map(|spec| spec.name().to_owned())
            .collect();
        let rows = rows
            .rows::<Row>()
            .map_err(backend(what))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend(what))?;
        Ok(Self { names, rows })
    }

    /// The first row as a map from column name to value (nulls left out).
    pub(crate) fn first(self) -> Option<HashMap<String, CqlValue>> {
        let row = self.rows.into_iter().next()?;
        Some(
            self.names
                .into_iter()
                .zip(row.columns)
                .filter_map(|(name, value)| value.map(|v| (name, v)))
                .collect(),
        )
    }
}

/// What a lightweight transaction answered: whether it applied and, when
/// not, the row that stopped it (empty when there was none).
pub(crate) struct Lwt {
    pub(crate) applied: bool,
    pub(crate) existing: HashMap<String, CqlValue>,
}

impl Lwt {
    /// Reads the `[applied]` column and the rest of the first row.
    pub(crate) fn from_result(result: QueryResult, what: &'static str) -> chat_core::Result<Self> {
        let mut existing = Rows::from_result(result, what)?.first().ok_or_else(|| {
            Error::unavailable_msg(format!("cassandra: {what}: no [applied] row"))
        })?;
        let applied = existing
            .remove("[applied]")
            .and_then(|v| v.as_boolean())
            .ok_or_else(|| {
                Error::unavailable_msg(format!("cassandra: {what}: no [applied] column"))
            })?;
        Ok(Self { applied, existing })
    }

    /// A text column of the row that stopped the transaction.
    pub(crate) fn text(&self, column: &str) -> Option<String> {
        self.existing.get(column)?.as_text().cloned()
    }

    /// A bigint column of the row that stopped the transaction.
    pub(crate) fn bigint(&self, column: &str) -> Option<i64> {
        self.existing.get(column)?.as_bigint()
    }
}

/// A text column of an untyped row, or an error naming what is missing.
pub(crate) fn required_text(
    row: &HashMap<String, CqlValue>,
    column: &str,
    what: &'static str,
) -> chat_core::Result<String> {
    row.get(column)
        .and_then(|v| v.as_text().cloned())
        .ok_or_else(|| Error::unavailable_msg(format!("cassandra: {what}: {column} is missing")))
}

/// A bigint column of an untyped row, or an error naming what is missing.
pub(crate) fn required_bigint(
    row: &HashMap<String, CqlValue>,
    column: &str,
    what: &'static str,
) -> chat_core::Result<i64> {
    row.get(column)
        .and_then(CqlValue::as_bigint)
        .ok_or_else(|| Error::unavailable_msg(format!("cassandra: {what}: {column} is missing")))
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
        assert_eq!(below(MessageId(0)), None);
        assert_eq!(above(MessageId(u64::MAX)), None);
        assert_eq!(below(MessageId(5)), Some(id_to_cql(MessageId(4))));
        assert_eq!(above(MessageId(5)), Some(id_to_cql(MessageId(6))));
    }
}
