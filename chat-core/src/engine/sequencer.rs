//! Keeps each conversation's live messages in id order on this node while
//! their store writes run concurrently.
//!
//! Two sends into one conversation may finish storing in either order. So
//! each send takes its id and its place in the conversation's line in one
//! short critical section, stores, then waits for the send before it to
//! finish fanning out (or fail) before fanning out itself. Store writes
//! overlap; deliveries come out in ascending id order.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::id::IdGenerator;
use crate::model::{ConversationId, MessageId};

#[derive(Default)]
pub(crate) struct Sequencer {
    /// The newest send of each conversation with sends in flight.
    tails: Mutex<HashMap<ConversationId, Arc<watch::Sender<bool>>>>,
}

/// One send's place in its conversation's line. Dropping it (also when the
/// send fails or its task is cancelled) lets the next send go.
pub(crate) struct Place<'a> {
    sequencer: &'a Sequencer,
    conversation: ConversationId,
    done: Arc<watch::Sender<bool>>,
    previous: Option<watch::Receiver<bool>>,
}

impl Sequencer {
    /// Assigns the next id and queues behind the conversation's previous send.
    pub(crate) fn enter(
        &self,
        conversation: &ConversationId,
        ids: &IdGenerator,
    ) -> (MessageId, Place<'_>) {
        let done = Arc::new(watch::channel(false).0);
        let mut tails = self.tails.lock();
        // The id is taken under the lock so that line order equals id order.
        let id = ids.next_id();
        let previous = tails
            .insert(conversation.clone(), done.clone())
            .map(|prev| prev.subscribe());
        drop(tails);
        (
            id,
            Place {
                sequencer: self,
                conversation: conversation.clone(),
                done,
                previous,
            },
        )
    }
}

impl Place<'_> {
    /// Waits until every earlier send of the conversation has fanned out or failed.
    pub(crate) async fn turn(&mut self) {
        if let Some(mut prev) = self.previous.take() {
            // An error means the previous place was dropped: it is done too.
            let _ = prev.wait_for(|done| *done).await;
        }
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.done.send_replace(true);
        let mut tails = self.sequencer.tails.lock();
        if tails
            .get(&self.conversation)
            .is_some_and(|tail| Arc::ptr_eq(tail, &self.done))
        {
            tails.remove(&self.conversation);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn later_send_waits_for_earlier_one() {
        let seq = Sequencer::default();
        let ids = IdGenerator::new(1).unwrap();
        let conv = ConversationId::from("g:1");
        let (a, place_a) = seq.enter(&conv, &ids);
        let (b, mut place_b) = seq.enter(&conv, &ids);
        assert!(a < b);
        let mut waiting = Box::pin(place_b.turn());
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        drop(place_a);
        waiting.await;
        drop(place_b);
        assert!(seq.tails.lock().is_empty());
    }

    #[tokio::test]
    async fn other_conversations_do_not_wait() {
        let seq = Sequencer::default();
        let ids = IdGenerator::new(1).unwrap();
        let (_, _a) = seq.enter(&ConversationId::from("g:1"), &ids);
        let (_, mut b) = seq.enter(&ConversationId::from("g:2"), &ids);
        b.turn().await;
    }
}
