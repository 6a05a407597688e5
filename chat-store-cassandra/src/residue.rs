//! Pending rows whose message was never stored: when a row counts as the
//! residue of a failed append rather than an append still in flight, and
//! how readers delete it without ever deleting a delivery that a later
//! attempt writes.
//!
//! An append writes its pending rows first and its message row last (see
//! `append`). A reader that finds a pending row without its message cannot
//! tell "still being written" from "the writer died" by looking, so it goes
//! by the message id's time: an append finishes within [`RESIDUE_AFTER_MS`]
//! of its id's time or gives up (see [`commit_in_time`]), so a row older
//! than that whose message is missing is residue.
//!
//! The delete is dated `id time + RESIDUE_AFTER_MS` (`USING TIMESTAMP`), not
//! now. It shadows the rows of the attempt that died (written before that
//! instant) and loses to rows that a retry with the same `client_msg_id`
//! writes later (a roll-forward, dated after it), whichever of the two
//! reaches Cassandra first.

use chat_core::{ConversationId, MessageId, UserId, now_millis};

use crate::codec::id_to_cql;
use crate::store::CassandraStore;

/// How long after its id's time an append may still commit its message.
pub(crate) const RESIDUE_AFTER_MS: u64 = 10 * 60 * 1000;

/// The clock difference tolerated between the processes and Cassandra
/// nodes that write and clean one message's rows.
const CLOCK_SKEW_MS: u64 = 60 * 1000;

/// The wall clock in Unix ms, as the id times are counted.
pub(crate) fn now_ms() -> u64 {
    u64::try_from(now_millis()).unwrap_or(0)
}

/// The instant (Unix ms) after which `id`'s pending rows without a message
/// are residue, and at which their deletes are dated.
fn cutoff(id: MessageId) -> u64 {
    id.unix_ms().saturating_add(RESIDUE_AFTER_MS)
}

/// Whether a pending row of `id` whose message is missing at `now` is the
/// residue of a failed append (else the append may still be in flight).
pub(crate) fn is_residue(id: MessageId, now: u64) -> bool {
    now > cutoff(id).saturating_add(CLOCK_SKEW_MS)
}

/// Whether an append of `id` whose pending rows were written from
/// `started` on may store its message at `now`. Yes when it is well before
/// the cutoff (no reader cleans its rows yet) or when it started well after
/// it (its rows are dated after the cleaners' deletes and survive them).
/// An attempt that straddles the cutoff must fail; its retry writes
/// everything again.
pub(crate) fn commit_in_time(id: MessageId, started: u64, now: u64) -> bool {
    let cutoff = cutoff(id);
    now.saturating_add(CLOCK_SKEW_MS) < cutoff || started > cutoff.saturating_add(CLOCK_SKEW_MS)
}

/// The write time of residue deletes, in microseconds as CQL takes it.
fn tombstone_micros(id: MessageId) -> i64 {
    i64::try_from(cutoff(id).saturating_mul(1000)).unwrap_or(i64::MAX)
}

impl CassandraStore {
    /// Deletes `user`'s three pending rows of `id` as residue, dated at the
    /// cutoff. Best effort: a reader that skips residue works the same
    /// whether or not its cleanup succeeded, so a failure is only logged.
    pub(crate) async fn clean_residue(
        &self,
        user: &UserId,
        conversation: &ConversationId,
        id: MessageId,
    ) {
        let (at, stored) = (tombstone_micros(id), id_to_cql(id));
        let (user, conversation) = (user.as_str(), conversation.as_str());
        let cleaned = futures::try_join!(
            self.run(
                &self.st.clean_pending_user,
                (at, user, stored, conversation),
                "clean residue"
            ),
            self.run(
                &self.st.clean_pending_conversation,
                (at, user, conversation, stored),
                "clean residue"
            ),
            self.run(
                &self.st.clean_pending_message,
                (at, conversation, stored, user),
                "clean residue"
            ),
        );
        match cleaned {
            Ok(_) => tracing::debug!(%user, %conversation, id = %id, "cleaned residue"),
            Err(e) => tracing::debug!(%user, %conversation, id = %id, "residue stays: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60 * 1000;

    #[test]
    fn rows_are_residue_only_well_after_their_ids_time() {
        let t = 1_750_000_000_000;
        let id = MessageId::first_at(t);
        assert!(!is_residue(id, t));
        assert!(!is_residue(id, t + RESIDUE_AFTER_MS + CLOCK_SKEW_MS));
        assert!(is_residue(id, t + RESIDUE_AFTER_MS + CLOCK_SKEW_MS + 1));
        // Ids ahead of the clock, up to the largest, are never residue yet.
        assert!(!is_residue(MessageId(u64::MAX), t));
    }

    #[test]
    fn commits_that_straddle_the_cutoff_are_refused() {
        let t = 1_750_000_000_000;
        let id = MessageId::first_at(t);
        // An append that runs at its id's time commits.
        assert!(commit_in_time(id, t, t + 1000));
        // One that started before the cutoff and ends near it does not:
        // a reader may have dated deletes after its pending rows.
        assert!(!commit_in_time(id, t, t + RESIDUE_AFTER_MS - CLOCK_SKEW_MS));
        assert!(!commit_in_time(id, t, t + 60 * MINUTE));
        // A retry (or an old id) that starts well after the cutoff commits:
        // its rows are dated after any residue delete.
        let late = t + RESIDUE_AFTER_MS + CLOCK_SKEW_MS + 1;
        assert!(commit_in_time(id, late, late + 1000));
        assert!(commit_in_time(MessageId(1), t, t + 1000));
    }

    #[test]
    fn residue_deletes_are_dated_at_the_cutoff() {
        let t = 1_750_000_000_000;
        let id = MessageId::first_at(t);
        assert_eq!(
            tombstone_micros(id),
            i64::try_from((t + RESIDUE_AFTER_MS) * 1000).unwrap()
        );
        assert!(tombstone_micros(MessageId(u64::MAX)) > 0);
    }
}
