//! One conversation's chain as one node follows it: entries come from local
//! sends and from other nodes in any order, and go out to local sessions in
//! the chain's order, which is ascending id order (docs/cluster.md, "One
//! order per conversation").
//!
//! Every entry names the one before it (`prev`, from the store's
//! conditional append). An entry whose `prev` is the last one this node let
//! through goes out at once; one that came early waits for its
//! predecessor. If the predecessor does not come (its node died between
//! storing and publishing, or the bus dropped it), the node reads the
//! missing stretch from the store after a short wait ([`Chain::gap`] and
//! [`Chain::fill`]): the store has every entry the chain links to.
//!
//! This type is the bookkeeping only; reading the store and delivering is
//! the caller's (`local.rs`).

use std::collections::BTreeMap;

use crate::model::MessageId;

/// What [`Chain::offer`] did with an entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Offer<T> {
    /// These entries are due now, in order (the offered one and any that waited for it).
    Due(Vec<T>),
    /// It waits for its predecessor (or for the stage to start).
    Waiting,
    /// It is at or below what went out already: a repeat.
    Old,
}

/// The chain of one conversation at one node.
#[derive(Debug)]
pub(crate) struct Chain<T> {
    /// The newest entry let through; meaningful once started.
    last: Option<MessageId>,
    started: bool,
    /// Entries offered before the stage started.
    early: Vec<(MessageId, Option<MessageId>, T)>,
    /// Entries that came before their predecessor, by predecessor.
    waiting: BTreeMap<MessageId, (MessageId, T)>,
}

impl<T> Default for Chain<T> {
    fn default() -> Self {
        Self {
            last: None,
            started: false,
            early: Vec::new(),
            waiting: BTreeMap::new(),
        }
    }
}

impl<T> Chain<T> {
    /// Starts the stage at `last` (the head read from the store after
    /// subscribing): entries up to it are already handled (by sync or
    /// catch-up); what was offered meanwhile is sorted out now.
    pub(crate) fn start(&mut self, last: Option<MessageId>) -> Vec<T> {
        self.last = last;
        self.started = true;
        let mut due = Vec::new();
        let mut early = std::mem::take(&mut self.early);
        early.sort_by_key(|(id, _, _)| *id);
        for (id, prev, item) in early {
            if let Offer::Due(items) = self.offer(id, prev, item) {
                due.extend(items);
            }
        }
        due
    }

    /// Whether [`Chain::start`] ran.
    pub(crate) fn started(&self) -> bool {
        self.started
    }

    /// The newest entry let through.
    pub(crate) fn last(&self) -> Option<MessageId> {
        self.last
    }

    /// An entry `id` whose predecessor is `prev`.
    pub(crate) fn offer(&mut self, id: MessageId, prev: Option<MessageId>, item: T) -> Offer<T> {
        if !self.started {
            self.early.push((id, prev, item));
            return Offer::Waiting;
        }
        if self.last.is_some_and(|last| id <= last) {
            return Offer::Old;
        }
        if prev == self.last {
            self.last = Some(id);
            let mut due = vec![item];
            self.drain(&mut due);
            return Offer::Due(due);
        }
        match prev {
            Some(p) => {
                self.waiting.insert(p, (id, item));
                Offer::Waiting
            }
            // "First entry of the conversation" while this node has seen
            // others: impossible in one chain; a repeat from before a purge.
            None => Offer::Old,
        }
    }

    /// Lets through whatever waited for the current `last`, in order.
    fn drain(&mut self, due: &mut Vec<T>) {
        while let Some(last) = self.last {
            match self.waiting.remove(&last) {
                Some((id, item)) => {
                    self.last = Some(id);
                    due.push(item);
                }
                None => break,
            }
        }
    }

    /// The stretch the store must fill when entries wait: `(after, up_to]`,
    /// from the last entry let through to the newest missing predecessor.
    pub(crate) fn gap(&self) -> Option<(Option<MessageId>, MessageId)> {
        let up_to = *self.waiting.keys().next_back()?;
        Some((self.last, up_to))
    }

    /// Entries read from the store for the gap, ascending: each one above
    /// `last` goes out (the chain is id order, so they are the missing
    /// links), then whatever waited for them.
    pub(crate) fn fill(&mut self, stored: impl IntoIterator<Item = (MessageId, T)>) -> Vec<T> {
        let mut due = Vec::new();
        for (id, item) in stored {
            if self.last.is_some_and(|last| id <= last) {
                continue;
            }
            // A waiting entry may be this very one (it came, then was read).
            self.waiting.retain(|_, (waiting_id, _)| *waiting_id != id);
            self.last = Some(id);
            due.push(item);
            self.drain(&mut due);
        }
        due
    }

    /// After a fill that did not reach every waiting entry (the store does
    /// not have its predecessor: an append that never completed, or one
    /// purged since), the waiting entries go out in id order anyway.
    pub(crate) fn skip_gap(&mut self) -> Vec<T> {
        let mut waiting: Vec<(MessageId, T)> =
            std::mem::take(&mut self.waiting).into_values().collect();
        waiting.sort_by_key(|(id, _)| *id);
        let mut due = Vec::new();
        for (id, item) in waiting {
            if self.last.is_none_or(|last| id > last) {
                self.last = Some(id);
                due.push(item);
            }
        }
        due
    }

    /// How many entries wait.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.len() + self.early.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: u64) -> MessageId {
        MessageId(id)
    }

    #[test]
    fn in_order_entries_go_out_at_once() {
        let mut c = Chain::default();
        assert!(c.start(Some(m(1))).is_empty());
        assert_eq!(c.offer(m(2), Some(m(1)), "2"), Offer::Due(vec!["2"]));
        assert_eq!(c.offer(m(3), Some(m(2)), "3"), Offer::Due(vec!["3"]));
        assert_eq!(c.offer(m(3), Some(m(2)), "3"), Offer::Old);
        assert_eq!(c.last(), Some(m(3)));
    }

    #[test]
    fn an_early_entry_waits_for_its_predecessor() {
        let mut c = Chain::default();
        c.start(None);
        assert_eq!(c.offer(m(5), Some(m(3)), "5"), Offer::Waiting);
        assert_eq!(c.offer(m(7), Some(m(5)), "7"), Offer::Waiting);
        assert_eq!(c.gap(), Some((None, m(5))));
        assert_eq!(c.offer(m(3), None, "3"), Offer::Due(vec!["3", "5", "7"]));
        assert_eq!(c.gap(), None);
    }

    #[test]
    fn a_gap_is_filled_from_the_store() {
        let mut c = Chain::default();
        c.start(Some(m(1)));
        assert_eq!(c.offer(m(9), Some(m(4)), "9"), Offer::Waiting);
        assert_eq!(c.gap(), Some((Some(m(1)), m(4))));
        let due = c.fill([(m(2), "2"), (m(4), "4")]);
        assert_eq!(due, vec!["2", "4", "9"]);
        assert_eq!(c.waiting(), 0);
    }

    #[test]
    fn a_missing_link_is_skipped_in_order() {
        let mut c = Chain::default();
        c.start(Some(m(1)));
        c.offer(m(9), Some(m(4)), "9");
        c.offer(m(6), Some(m(3)), "6");
        assert!(c.fill([(m(3), "3")]) == vec!["3", "6"]);
        assert_eq!(c.skip_gap(), vec!["9"]);
        assert_eq!(c.last(), Some(m(9)));
    }

    #[test]
    fn entries_before_start_are_sorted_out_at_start() {
        let mut c = Chain::default();
        assert_eq!(c.offer(m(3), Some(m(2)), "3"), Offer::Waiting);
        assert_eq!(c.offer(m(2), Some(m(1)), "2"), Offer::Waiting);
        assert_eq!(c.offer(m(1), None, "1"), Offer::Waiting);
        assert_eq!(
            c.start(Some(m(1))),
            vec!["2", "3"],
            "1 was read by the start"
        );
    }
}
