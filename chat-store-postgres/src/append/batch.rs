//! The set-based statement that writes a whole batch at once
//! (`batch.sql`), and which batches it may be given.
//!
//! The statement checks each conversation's first append against its head
//! and writes every append of the batch, or fails. So it is only given a
//! batch whose appends agree among themselves, which this module checks
//! before anything is sent: within each conversation the ids rise and each
//! append expects the version the ones before it leave, and each sender
//! and each device appends at most once (so a sender's delivered cursor
//! depends on one prev: the statement moves it only when it covered that
//! entry); no dedup key comes twice; an edit, delete or reaction names a
//! target, no other event of the batch names the same one, and it is not
//! an entry of the batch. Anything else (a retry storm of equal keys, two
//! reactions to one message at once, a sender that did not wait for its
//! answer) goes to `append_entries`, one append at a time.

use std::collections::{HashMap, HashSet};

use chat_core::{MessageId, MessageKind};

use super::Job;

/// The statement (see `batch.sql`).
pub(super) const BATCH: &str = include_str!("batch.sql");

/// Whose cursors an append moves.
#[derive(PartialEq, Eq, Hash)]
enum Writer<'a> {
    User(&'a str),
    Device(&'a str),
}

/// Whether the appends of `jobs` agree among themselves (see the module docs).
pub(super) fn agrees(jobs: &[Job]) -> bool {
    // Per conversation: the last id so far, and the version the next
    // append must expect.
    let mut chains: HashMap<&str, (MessageId, u64)> = HashMap::new();
    let mut keys = HashSet::new();
    let mut targets = HashSet::new();
    let mut ids = HashSet::new();
    let mut writers = HashSet::new();
    for job in jobs {
        let m = &job.entry.message;
        let conversation = m.conversation_id.as_str();
        if !writers.insert((conversation, Writer::User(m.sender_id.as_str()))) {
            return false;
        }
        if let Some(device) = &job.entry.device
            && !writers.insert((conversation, Writer::Device(device.as_str())))
        {
            return false;
        }
        match chains.get_mut(conversation) {
            Some((last, version)) => {
                if m.message_id <= *last || job.expected_version != *version {
                    return false;
                }
                *last = m.message_id;
            }
            None => {
                chains.insert(conversation, (m.message_id, job.expected_version));
            }
        }
        if m.kind == MessageKind::GroupEvent
            && let Some((_, version)) = chains.get_mut(conversation)
        {
            *version += 1;
        }
        if let Some(key) = &job.entry.client_msg_id
            && !keys.insert((m.sender_id.as_str(), key.as_str()))
        {
            return false;
        }
        if m.kind.has_target() {
            match m.ref_id {
                Some(target) if targets.insert((conversation, target)) => {}
                _ => return false,
            }
        }
        ids.insert((conversation, m.message_id));
    }
    targets.is_disjoint(&ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_core::{Message, NewMessage, now_millis};
    use tokio::sync::oneshot;
    use tokio::time::Instant;

    /// An append by a sender of its own (`s<id>`).
    fn job(conversation: &str, id: u64, version: u64) -> Job {
        let (reply, _) = oneshot::channel();
        Job {
            entry: NewMessage {
                message: Message::text(
                    MessageId(id),
                    conversation.into(),
                    format!("s{id}").into(),
                    "hi",
                    now_millis(),
                ),
                client_msg_id: None,
                device: None,
            },
            expected_version: version,
            deadline: Instant::now(),
            reply,
        }
    }

    fn with(mut job: Job, f: impl FnOnce(&mut NewMessage)) -> Job {
        f(&mut job.entry);
        job
    }

    fn event(job: Job, kind: MessageKind, target: u64) -> Job {
        with(job, |e| {
            e.message.kind = kind;
            e.message.ref_id = Some(MessageId(target));
        })
    }

    fn keyed(job: Job, key: &str) -> Job {
        with(job, |e| e.client_msg_id = Some(key.to_owned()))
    }

    #[test]
    fn chains_must_rise_and_follow_their_versions() {
        assert!(agrees(&[job("a", 1, 0), job("b", 1, 3), job("a", 2, 0)]));
        assert!(!agrees(&[job("a", 2, 0), job("a", 1, 0)]), "ids fall");
        assert!(!agrees(&[job("a", 2, 0), job("a", 2, 0)]), "ids repeat");
        assert!(
            !agrees(&[job("a", 1, 0), job("a", 2, 1)]),
            "a version from nowhere"
        );
        let group_event = with(job("a", 1, 0), |e| e.message.kind = MessageKind::GroupEvent);
        assert!(
            agrees(&[group_event, job("a", 2, 1)]),
            "after a group event, the next version"
        );
        let group_event = with(job("a", 1, 0), |e| e.message.kind = MessageKind::GroupEvent);
        assert!(
            !agrees(&[group_event, job("a", 2, 0)]),
            "an append that missed the group event"
        );
    }

    #[test]
    fn a_sender_or_device_appends_once_per_conversation() {
        let by = |job: Job, sender: &str| with(job, |e| e.message.sender_id = sender.into());
        let on = |job: Job, device: &str| with(job, |e| e.device = Some(device.into()));
        assert!(agrees(&[by(job("a", 1, 0), "x"), by(job("b", 1, 0), "x")]));
        assert!(!agrees(&[by(job("a", 1, 0), "x"), by(job("a", 2, 0), "x")]));
        assert!(agrees(&[on(job("a", 1, 0), "d"), on(job("b", 1, 0), "d")]));
        assert!(!agrees(&[on(job("a", 1, 0), "d"), on(job("a", 2, 0), "d")]));
    }

    #[test]
    fn keys_and_targets_may_not_repeat() {
        assert!(agrees(&[
            keyed(job("a", 1, 0), "k"),
            keyed(job("b", 1, 0), "j")
        ]));
        assert!(!agrees(&[
            keyed(job("a", 1, 0), "k"),
            keyed(job("b", 1, 0), "k")
        ]));
        assert!(agrees(&[
            event(job("a", 5, 0), MessageKind::Reaction, 1),
            event(job("a", 6, 0), MessageKind::Edit, 2),
            event(job("b", 5, 0), MessageKind::Reaction, 1),
        ]));
        assert!(!agrees(&[
            event(job("a", 5, 0), MessageKind::Reaction, 1),
            event(job("a", 6, 0), MessageKind::Delete, 1),
        ]));
        assert!(
            !agrees(&[job("a", 5, 0), event(job("a", 6, 0), MessageKind::Edit, 5)]),
            "a target in the same batch"
        );
        let no_target = with(job("a", 5, 0), |e| e.message.kind = MessageKind::Edit);
        assert!(!agrees(&[no_target]));
    }
}
