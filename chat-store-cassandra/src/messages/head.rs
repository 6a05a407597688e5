//! The head of a conversation as stored: the static columns of its
//! partition of `heads`, which hold the head itself, the open bucket, the
//! low-water mark of purges, and the newest entry (`p_*`, "pending" until
//! its rows are written, see `roll`).

use std::collections::HashMap;

use chat_core::{
    ConversationId, DeviceId, Head, Message, MessageId, MessageKind, Reactions, Result, UserId,
};
use scylla::{DeserializeRow, SerializeRow};

use crate::codec::{
    MIN_CQL_ID, corrupt, count_from_cql, count_to_cql, id_from_cql, id_to_cql, kind_from_cql,
    kind_to_cql,
};
use crate::store::CassandraStore;

/// When an append starts a new bucket (see the crate docs, "Buckets").
#[derive(Clone, Copy, Debug)]
pub(crate) struct BucketLimits {
    max_entries: u32,
    max_bytes: u64,
}

impl BucketLimits {
    /// Limits of at least one entry and one byte.
    pub(crate) fn new(max_entries: u32, max_bytes: u64) -> Result<Self> {
        if max_entries == 0 || max_bytes == 0 {
            return Err(chat_core::Error::invalid(
                "bucket_max_entries and bucket_max_bytes must be at least 1",
            ));
        }
        Ok(Self {
            max_entries,
            max_bytes,
        })
    }

    /// The bucket that entry `id` of `size` body bytes goes to after
    /// `open`, and whether that is a new one (starting at `id`).
    pub(crate) fn place(
        &self,
        open: Option<OpenBucket>,
        id: MessageId,
        size: u64,
    ) -> (OpenBucket, bool) {
        match open {
            Some(b)
                if b.entries < self.max_entries
                    && b.bytes.saturating_add(size) <= self.max_bytes =>
            {
                (
                    OpenBucket {
                        start: b.start,
                        entries: b.entries + 1,
                        bytes: b.bytes + size,
                    },
                    false,
                )
            }
            _ => (
                OpenBucket {
                    start: id_to_cql(id),
                    entries: 1,
                    bytes: size,
                },
                true,
            ),
        }
    }
}

/// The bucket new entries go to: its first id (stored form), and what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OpenBucket {
    pub(crate) start: i64,
    pub(crate) entries: u32,
    pub(crate) bytes: u64,
}

/// The newest entry, as the append's transaction stored it with the head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pending {
    /// The entry as appended.
    pub(crate) message: Message,
    /// The head's seq with it (its own seq for a text entry).
    pub(crate) seq: u64,
    pub(crate) client_msg_id: Option<String>,
    pub(crate) device: Option<DeviceId>,
    /// Its bucket (stored form).
    pub(crate) bucket: i64,
    /// The bucket of its target, for an edit, delete or reaction.
    pub(crate) ref_bucket: Option<i64>,
    /// Whether it changes its target (an edit or reaction of a deleted
    /// message does not: decided when it was appended).
    pub(crate) apply: bool,
    /// Whether the sender's delivered cursor moves to it, and its device's
    /// (each only if it covered the entry before: decided when appended).
    pub(crate) move_delivered: bool,
    pub(crate) move_device: bool,
    /// `remove` took it back.
    pub(crate) removed: bool,
}

/// A conversation's head partition, statics only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) head: Head,
    /// As read, for the append's condition (`None`: nothing appended yet).
    pub(crate) stored_version: Option<i64>,
    pub(crate) open: Option<OpenBucket>,
    /// Entries up to this id were purged.
    pub(crate) purged: Option<MessageId>,
    /// The seq of the newest text entry purged.
    pub(crate) purged_seq: u64,
    pub(crate) pending: Option<Pending>,
}

impl State {
    /// Whether `id` is at or below the low-water mark.
    pub(crate) fn is_purged(&self, id: MessageId) -> bool {
        self.purged.is_some_and(|p| id <= p)
    }

    /// The newest entry, unless removed or purged: what readers add to
    /// what they read, and the next append makes sure is written.
    pub(crate) fn visible_pending(&self) -> Option<&Pending> {
        self.pending
            .as_ref()
            .filter(|p| !p.removed && !self.is_purged(p.message.message_id))
    }

    /// Applies the newest entry's change to `message`, if it targets it:
    /// the newest entry is the last change of any message, so applying it
    /// again to a message it already changed changes nothing.
    pub(crate) fn apply_pending(&self, message: &mut Message) {
        if let Some(p) = self.visible_pending()
            && p.apply
            && p.message.ref_id == Some(message.message_id)
        {
            message.apply(&p.message);
        }
    }
}

/// The statics row of `heads`, as `statements::head` selects it.
#[derive(DeserializeRow)]
struct HeadRow {
    #[allow(dead_code)]
    conversation_id: String,
    last_id: Option<i64>,
    seq: Option<i64>,
    version: Option<i64>,
    bucket_start: Option<i64>,
    bucket_entries: Option<i32>,
    bucket_bytes: Option<i64>,
    purged_up_to: Option<i64>,
    purged_seq: Option<i64>,
    p_sender: Option<String>,
    p_kind: Option<i8>,
    p_body: Option<String>,
    p_ts: Option<i64>,
    p_ref: Option<i64>,
    p_ref_bucket: Option<i64>,
    p_reply: Option<i64>,
    p_keyed: Option<bool>,
    p_key: Option<String>,
    p_device: Option<String>,
    p_apply: Option<bool>,
    p_move_delivered: Option<bool>,
    p_move_device: Option<bool>,
    p_removed: Option<bool>,
}

/// An optional id as a `p_*` column: never null (a null is a tombstone).
fn opt_id_to_cql(id: Option<MessageId>) -> i64 {
    id.map_or(MIN_CQL_ID, id_to_cql)
}

fn opt_id_from_cql(stored: Option<i64>) -> Option<MessageId> {
    stored.filter(|s| *s != MIN_CQL_ID).map(id_from_cql)
}

impl HeadRow {
    fn into_state(self, conversation: &ConversationId) -> Result<State> {
        let Some(last) = self.last_id else {
            // Purge and remove never write a head with nothing appended.
            return Ok(State::default());
        };
        let last_id = id_from_cql(last);
        let head = Head {
            last_id: Some(last_id),
            seq: count_from_cql(self.seq.unwrap_or(0)),
            version: count_from_cql(self.version.unwrap_or(0)),
        };
        let open = self.bucket_start.map(|start| OpenBucket {
            start,
            entries: u32::try_from(self.bucket_entries.unwrap_or(0)).unwrap_or(0),
            bytes: count_from_cql(self.bucket_bytes.unwrap_or(0)),
        });
        let missing = |c: &str| corrupt(format!("head of {conversation} without {c}"));
        let kind = kind_from_cql(self.p_kind.ok_or_else(|| missing("p_kind"))?)?;
        let message = Message {
            message_id: last_id,
            conversation_id: conversation.clone(),
            sender_id: UserId::from(self.p_sender.ok_or_else(|| missing("p_sender"))?),
            body: self.p_body.unwrap_or_default(),
            ts: self.p_ts.ok_or_else(|| missing("p_ts"))?,
            kind,
            ref_id: opt_id_from_cql(self.p_ref),
            in_reply_to: opt_id_from_cql(self.p_reply),
            edited: false,
            deleted: false,
            reactions: Reactions::default(),
        };
        let pending = Pending {
            message,
            seq: head.seq,
            client_msg_id: self
                .p_keyed
                .unwrap_or(false)
                .then(|| self.p_key.unwrap_or_default()),
            device: self.p_device.filter(|d| !d.is_empty()).map(DeviceId::from),
            bucket: open
                .map(|b| b.start)
                .ok_or_else(|| missing("bucket_start"))?,
            ref_bucket: self.p_ref_bucket.filter(|b| *b != MIN_CQL_ID),
            apply: self.p_apply.unwrap_or(false),
            move_delivered: self.p_move_delivered.unwrap_or(false),
            move_device: self.p_move_device.unwrap_or(false),
            removed: self.p_removed.unwrap_or(false),
        };
        Ok(State {
            head,
            stored_version: self.version,
            open,
            purged: self.purged_up_to.map(id_from_cql),
            purged_seq: count_from_cql(self.purged_seq.unwrap_or(0)),
            pending: Some(pending),
        })
    }
}

/// The values of the append's transaction, in the order of
/// `statements::append` (assignments, key, condition).
#[derive(SerializeRow)]
#[scylla(flavor = "enforce_order", skip_name_checks)]
pub(crate) struct AppendValues {
    last_id: i64,
    seq: i64,
    version: i64,
    bucket_start: i64,
    bucket_entries: i32,
    bucket_bytes: i64,
    p_sender: String,
    p_kind: i8,
    p_body: String,
    p_ts: i64,
    p_ref: i64,
    p_ref_bucket: i64,
    p_reply: i64,
    p_keyed: bool,
    p_key: String,
    p_device: String,
    p_apply: bool,
    p_move_delivered: bool,
    p_move_device: bool,
    conversation_id: String,
    if_last_id: Option<i64>,
    if_version: Option<i64>,
}

impl AppendValues {
    /// The transaction that makes `next` the head after `state` (as read).
    pub(crate) fn new(state: &State, next: &State) -> Self {
        let p = next
            .pending
            .as_ref()
            .expect("the next head carries its entry");
        let open = next.open.expect("the next head has an open bucket");
        let m = &p.message;
        Self {
            last_id: id_to_cql(m.message_id),
            seq: count_to_cql(next.head.seq),
            version: count_to_cql(next.head.version),
            bucket_start: open.start,
            bucket_entries: i32::try_from(open.entries).unwrap_or(i32::MAX),
            bucket_bytes: count_to_cql(open.bytes),
            p_sender: m.sender_id.to_string(),
            p_kind: kind_to_cql(m.kind),
            p_body: m.body.clone(),
            p_ts: m.ts,
            p_ref: opt_id_to_cql(m.ref_id),
            p_ref_bucket: p.ref_bucket.unwrap_or(MIN_CQL_ID),
            p_reply: opt_id_to_cql(m.in_reply_to),
            p_keyed: p.client_msg_id.is_some(),
            p_key: p.client_msg_id.clone().unwrap_or_default(),
            p_device: p.device.as_ref().map(|d| d.to_string()).unwrap_or_default(),
            p_apply: p.apply,
            p_move_delivered: p.move_delivered,
            p_move_device: p.move_device,
            conversation_id: m.conversation_id.to_string(),
            if_last_id: state.head.last_id.map(id_to_cql),
            if_version: state.stored_version,
        }
    }
}

/// What an append makes of `state`: the head after `entry`, which goes to
/// the bucket `limits` pick. The caller checked the conditions.
pub(crate) fn next_state(state: &State, limits: &BucketLimits, entry: Pending) -> (State, bool) {
    let m = &entry.message;
    let size = u64::try_from(m.body.len()).unwrap_or(u64::MAX);
    let (open, new_bucket) = limits.place(state.open, m.message_id, size);
    let head = Head {
        last_id: Some(m.message_id),
        seq: state.head.seq + u64::from(m.kind == MessageKind::Text),
        version: state.head.version + u64::from(m.kind == MessageKind::GroupEvent),
    };
    let pending = Pending {
        seq: head.seq,
        bucket: open.start,
        ..entry
    };
    (
        State {
            head,
            stored_version: Some(count_to_cql(head.version)),
            open: Some(open),
            purged: state.purged,
            purged_seq: state.purged_seq,
            pending: Some(pending),
        },
        new_bucket,
    )
}

impl CassandraStore {
    /// The head partition's statics of `conversation` (all default when
    /// nothing was appended).
    pub(crate) async fn state(&self, conversation: &ConversationId) -> Result<State> {
        self.read_state(conversation, false).await
    }

    /// The same, read at the serial level: linearizable with the appends'
    /// transactions (it completes one in flight), for confirming a conflict.
    pub(crate) async fn state_serial(&self, conversation: &ConversationId) -> Result<State> {
        self.read_state(conversation, true).await
    }

    async fn read_state(&self, conversation: &ConversationId, serial: bool) -> Result<State> {
        let st = if serial {
            &self.st.head_serial
        } else {
            &self.st.head
        };
        let rows: Vec<HeadRow> = self.rows(st, (conversation.as_str(),), "read head").await?;
        match rows.into_iter().next() {
            Some(row) => row.into_state(conversation),
            None => Ok(State::default()),
        }
    }

    /// The heads of `conversations`, in order: `IN` reads of up to
    /// [`HEADS_PER_READ`] partition keys, a few at a time (measured faster
    /// than one read per conversation: see the crate docs, "Figures").
    pub(crate) async fn read_heads(&self, conversations: &[ConversationId]) -> Result<Vec<Head>> {
        use futures::{StreamExt, TryStreamExt, stream};
        type HeadRow = (String, Option<i64>, Option<i64>, Option<i64>);
        let head = |(_, last, seq, version): &HeadRow| Head {
            last_id: last.map(id_from_cql),
            seq: count_from_cql(seq.unwrap_or(0)),
            version: count_from_cql(version.unwrap_or(0)),
        };
        if let [one] = conversations {
            let rows: Vec<HeadRow> = self
                .rows(&self.st.head_short, (one.as_str(),), "read head")
                .await?;
            return Ok(vec![rows.first().map_or_else(Head::default, head)]);
        }
        // Owned keys: a stream of borrowed ones trips the `Send` check of
        // the trait's boxed future (a higher-ranked lifetime error).
        let chunks: Vec<Vec<String>> = conversations
            .chunks(HEADS_PER_READ)
            .map(|chunk| chunk.iter().map(|c| c.to_string()).collect())
            .collect();
        let found: Vec<Vec<HeadRow>> = stream::iter(chunks)
            .map(|keys| async move {
                self.rows::<HeadRow>(&self.st.heads_in, (keys,), "read heads")
                    .await
            })
            .buffer_unordered(HEAD_READS_IN_FLIGHT)
            .try_collect()
            .await?;
        let by_id: HashMap<&str, Head> = found
            .iter()
            .flatten()
            .map(|row| (row.0.as_str(), head(row)))
            .collect();
        Ok(conversations
            .iter()
            .map(|c| by_id.get(c.as_str()).copied().unwrap_or_default())
            .collect())
    }
}

/// Partition keys per `IN` read of `heads`.
pub(crate) const HEADS_PER_READ: usize = 250;

/// `IN` reads of `heads` in flight at once.
const HEAD_READS_IN_FLIGHT: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_close_by_count_or_bytes() {
        let limits = BucketLimits::new(2, 100).unwrap();
        let (a, new) = limits.place(None, MessageId(10), 5);
        assert!(new);
        assert_eq!(a.start, id_to_cql(MessageId(10)));
        let (b, new) = limits.place(Some(a), MessageId(11), 5);
        assert!(!new && b.entries == 2 && b.bytes == 10 && b.start == a.start);
        let (c, new) = limits.place(Some(b), MessageId(12), 5);
        assert!(new, "the third entry opens a bucket");
        assert_eq!(c.start, id_to_cql(MessageId(12)));
        let (d, new) = limits.place(Some(c), MessageId(13), 96);
        assert!(
            new,
            "an entry that would pass the byte limit opens a bucket"
        );
        assert_eq!((d.entries, d.bytes), (1, 96));
        assert!(BucketLimits::new(0, 1).is_err());
        assert!(BucketLimits::new(1, 0).is_err());
    }

    #[test]
    fn optional_ids_never_store_null() {
        assert_eq!(opt_id_to_cql(None), MIN_CQL_ID);
        assert_eq!(opt_id_from_cql(Some(MIN_CQL_ID)), None);
        assert_eq!(opt_id_from_cql(None), None);
        let id = MessageId(77);
        assert_eq!(opt_id_from_cql(Some(opt_id_to_cql(Some(id)))), Some(id));
    }
}
