//! The conversations this node delivers: those with a member connected here.
//!
//! For each, the node keeps which of its connected users are members (and
//! from which entry on: their join point), and the conversation's [`Chain`],
//! through which every entry passes, local or from another node, on its
//! way to the local sessions. The node subscribes to a conversation's bus
//! topic while it has a member connected, so a group message is published
//! once and reaches each node once, whatever the group's size.
//!
//! Attaching (a user connects, or joins a conversation while connected)
//! subscribes first and reads the head second, so that nothing published in
//! between is lost: entries at or below the head are what the store read
//! (sync, catch-up) sends; the chain takes over above it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use super::Inner;
use super::chain::{Chain, Offer};
use super::envelope::SessionRef;
use super::frames::{StoredEvent, entry_frame};
use super::registry::CloseReason;
use crate::cluster::Topic;
use crate::model::{ConversationId, GroupEventKind, Member, Message, MessageId, UserId};
use crate::observe::Event;

/// An entry on its way through a node's chain.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) id: MessageId,
    pub(crate) frame: Bytes,
    pub(crate) skip: Option<SessionRef>,
    pub(crate) event: Option<StoredEvent>,
}

impl Item {
    pub(crate) fn from_entry(entry: &Message, skip: Option<SessionRef>) -> Self {
        let (frame, event) = entry_frame(entry);
        Self {
            id: entry.message_id,
            frame,
            skip,
            event,
        }
    }
}

/// One conversation this node delivers.
pub(crate) struct LocalConv {
    pub(crate) id: ConversationId,
    state: Mutex<ConvState>,
}

struct ConvState {
    chain: Chain<Item>,
    /// Connected members and the entry after which they receive it.
    members: HashMap<UserId, MessageId>,
    /// A task is filling a gap of the chain.
    filling: bool,
}

/// Every conversation this node delivers, and which of them each connected user has.
#[derive(Default)]
pub(crate) struct Local {
    convs: RwLock<HashMap<ConversationId, Arc<LocalConv>>>,
    users: RwLock<HashMap<UserId, HashSet<ConversationId>>>,
    /// Attaching and detaching subscribe and unsubscribe on the bus: one at
    /// a time, so that a quick detach-attach cannot end unsubscribed.
    pub(crate) bus_lock: tokio::sync::Mutex<()>,
}

impl Local {
    pub(crate) fn get(&self, c: &ConversationId) -> Option<Arc<LocalConv>> {
        self.convs.read().get(c).cloned()
    }

    /// Whether `user` is a connected member of `c` here, and from which entry on.
    pub(crate) fn member_floor(&self, c: &ConversationId, user: &UserId) -> Option<MessageId> {
        self.get(c)?.state.lock().members.get(user).copied()
    }

    /// The connected members of `c` here.
    pub(crate) fn members_of(&self, c: &ConversationId) -> Vec<UserId> {
        self.get(c)
            .map(|conv| conv.state.lock().members.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The conversations attached for `user`.
    pub(crate) fn conversations_of(&self, user: &UserId) -> Vec<ConversationId> {
        self.users
            .read()
            .get(user)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The newest entry of `c` this node let through, if it follows `c`.
    pub(crate) fn last(&self, c: &ConversationId) -> Option<MessageId> {
        let conv = self.get(c)?;
        let state = conv.state.lock();
        state.chain.started().then(|| state.chain.last()).flatten()
    }

    /// How many conversations this node follows.
    pub(crate) fn len(&self) -> usize {
        self.convs.read().len()
    }
}

impl Inner {
    /// Makes `user` a connected member of each conversation of
    /// `memberships` here: subscribes to the new ones and starts their
    /// chains at their heads.
    pub(crate) async fn attach(&self, user: &UserId, memberships: &[(ConversationId, Member)]) {
        let _guard = self.local.bus_lock.lock().await;
        let mut fresh = Vec::new();
        {
            let mut convs = self.local.convs.write();
            let mut users = self.local.users.write();
            let mine = users.entry(user.clone()).or_default();
            for (c, member) in memberships {
                let conv = convs.entry(c.clone()).or_insert_with(|| {
                    fresh.push(c.clone());
                    Arc::new(LocalConv {
                        id: c.clone(),
                        state: Mutex::new(ConvState {
                            chain: Chain::default(),
                            members: HashMap::new(),
                            filling: false,
                        }),
                    })
                });
                conv.state
                    .lock()
                    .members
                    .insert(user.clone(), member.joined);
                mine.insert(c.clone());
            }
        }
        if fresh.is_empty() {
            return;
        }
        let topics: Vec<Topic> = fresh.iter().cloned().map(Topic::Conversation).collect();
        if let Err(e) = self.bus.subscribe_many(&topics).await {
            tracing::warn!(error = %e, "bus subscribe failed; other nodes' entries wait for sync");
        }
        let heads = match self.messages.heads(&fresh).await {
            Ok(heads) => heads.into_iter().map(|h| h.last_id).collect(),
            Err(e) => {
                // Without a head the chain cannot know where it stands:
                // follow from what comes (the sync reads the store anyway).
                tracing::warn!(error = %e, "heads unavailable at attach");
                vec![None; fresh.len()]
            }
        };
        for (c, last) in fresh.iter().zip(heads) {
            if let Some(conv) = self.local.get(c) {
                let mut state = conv.state.lock();
                let due = state.chain.start(last);
                self.process(&conv, &mut state, due);
            }
        }
    }

    /// `user` has no session left here: it stops being a connected member;
    /// conversations with nobody left are dropped and unsubscribed.
    pub(crate) async fn detach(&self, user: &UserId) {
        let _guard = self.local.bus_lock.lock().await;
        let Some(conversations) = self.local.users.write().remove(user) else {
            return;
        };
        let mut gone = Vec::new();
        {
            let mut convs = self.local.convs.write();
            for c in conversations {
                if let Some(conv) = convs.get(&c) {
                    let mut state = conv.state.lock();
                    state.members.remove(user);
                    if state.members.is_empty() {
                        drop(state);
                        convs.remove(&c);
                        gone.push(Topic::Conversation(c));
                    }
                }
            }
        }
        for topic in gone {
            if let Err(e) = self.bus.unsubscribe(&topic).await {
                tracing::warn!(error = %e, "bus unsubscribe failed");
            }
        }
    }

    /// `user` left `c` (or was removed): it stops receiving it here.
    fn drop_member(&self, conv: &LocalConv, state: &mut ConvState, user: &UserId) {
        state.members.remove(user);
        if let Some(mine) = self.local.users.write().get_mut(user) {
            mine.remove(&conv.id);
        }
    }

    /// An entry of `c` for this node's sessions, from a local send or the
    /// bus: it goes out in chain order.
    pub(crate) fn offer(&self, c: &ConversationId, prev: Option<MessageId>, item: Item) {
        let Some(conv) = self.local.get(c) else {
            return;
        };
        let mut state = conv.state.lock();
        match state.chain.offer(item.id, prev, item) {
            Offer::Due(due) => self.process(&conv, &mut state, due),
            Offer::Old => {}
            Offer::Waiting => {
                if state.chain.started() && !state.filling {
                    state.filling = true;
                    self.spawn_fill(conv.clone());
                }
            }
        }
    }

    /// An entry outside the chain (a retried send that was stored before):
    /// the sessions' gates drop it where it went out already.
    pub(crate) fn redeliver(&self, c: &ConversationId, item: Item) {
        let Some(conv) = self.local.get(c) else {
            return;
        };
        let state = conv.state.lock();
        self.deliver_item(c, &state.members, &item);
    }

    /// Delivers due entries to the connected members, applying group events
    /// to the member index on the way.
    fn process(&self, conv: &LocalConv, state: &mut ConvState, due: Vec<Item>) {
        for item in due {
            match item.event.as_ref().map(|e| (e.event.event, e)) {
                Some((GroupEventKind::Added, stored)) => {
                    if let Some((user, _)) = stored.subject() {
                        let user = user.clone();
                        if self.registry.has_user(&user) && !state.members.contains_key(&user) {
                            // It receives the conversation from its join on,
                            // read from the store (the event included), while
                            // its live entries wait.
                            let joined = stored.joined.unwrap_or(item.id);
                            state.members.insert(user.clone(), joined);
                            self.local
                                .users
                                .write()
                                .entry(user.clone())
                                .or_default()
                                .insert(conv.id.clone());
                            self.spawn_catch_up(conv.id.clone(), user.clone(), joined);
                        }
                    }
                    self.deliver_item(&conv.id, &state.members, &item);
                }
                Some((GroupEventKind::Removed | GroupEventKind::Left, stored)) => {
                    // The affected user gets the event too, then nothing more.
                    self.deliver_item(&conv.id, &state.members, &item);
                    if let Some((user, _)) = stored.subject() {
                        let user = user.clone();
                        self.drop_member(conv, state, &user);
                    }
                }
                _ => self.deliver_item(&conv.id, &state.members, &item),
            }
        }
    }

    fn deliver_item(&self, c: &ConversationId, members: &HashMap<UserId, MessageId>, item: &Item) {
        let started = std::time::Instant::now();
        let mut sessions = 0;
        for (user, floor) in members {
            if item.id <= *floor {
                continue;
            }
            self.registry.for_each(user, |session| {
                let own = item
                    .skip
                    .as_ref()
                    .is_some_and(|s| s.node == self.node && s.session == session.id);
                // The sender's own session only moves past it (it got `sent`).
                sessions += usize::from(!own);
                session.deliver_entry(c, item.id, (!own).then_some(&item.frame));
            });
        }
        self.observer.event(&Event::FanOut {
            sessions,
            latency: started.elapsed(),
        });
    }

    /// Waits a moment for missing links to arrive, then reads them from the store.
    fn spawn_fill(&self, conv: Arc<LocalConv>) {
        let Some(inner) = self.me.upgrade() else {
            return;
        };
        let wait = self.limits.reorder_wait;
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            inner.fill(&conv).await;
        });
    }

    async fn fill(&self, conv: &Arc<LocalConv>) {
        for attempt in 0..5u32 {
            let gap = {
                let mut state = conv.state.lock();
                match state.chain.gap() {
                    Some(gap) => gap,
                    None => {
                        state.filling = false;
                        return;
                    }
                }
            };
            let (after, up_to) = gap;
            match self
                .messages
                .range(&conv.id, after, Some(up_to), self.limits.sync_page.max(1))
                .await
            {
                Ok(entries) => {
                    let full = entries.len() >= self.limits.sync_page.max(1);
                    let items: Vec<(MessageId, Item)> = entries
                        .iter()
                        .map(|e| (e.message_id, Item::from_entry(e, None)))
                        .collect();
                    let mut state = conv.state.lock();
                    let mut due = state.chain.fill(items);
                    if !full && state.chain.gap().is_some_and(|(_, u)| u <= up_to) {
                        // The store has no such predecessor: an append that
                        // never completed. What waited goes out in order.
                        due.extend(state.chain.skip_gap());
                    }
                    self.process(conv, &mut state, due);
                    if state.chain.gap().is_none() {
                        state.filling = false;
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, conversation = %conv.id, attempt, "could not fill a gap of the chain");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
            }
        }
        // The store cannot say what is missing: this node can no longer
        // promise order for the conversation. Its members reconnect and sync.
        let members: Vec<UserId> = {
            let mut state = conv.state.lock();
            state.filling = false;
            state.members.keys().cloned().collect()
        };
        tracing::error!(conversation = %conv.id, "gap in a conversation's chain not filled; its sessions resync");
        for user in members {
            self.registry
                .for_each(&user, |s| s.close(CloseReason::Resync));
        }
    }

    /// `user` became a member of `c` while connected here: each of its
    /// sessions reads `c` from the store from its join (and its device's
    /// cursor) on, its live entries waiting meanwhile.
    fn spawn_catch_up(&self, c: ConversationId, user: UserId, joined: MessageId) {
        let Some(inner) = self.me.upgrade() else {
            return;
        };
        let mut sessions = Vec::new();
        self.registry.for_each(&user, |s| {
            s.hold(&c);
            sessions.push(s.clone());
        });
        tokio::spawn(async move {
            for session in sessions {
                if let Err(e) = inner.catch_up(&session, &c, Some(joined)).await {
                    tracing::warn!(error = %e, conversation = %c, "catch-up after a join failed; the next sync sends it");
                }
                session.release_hold(Some(&c)).await;
            }
        });
    }
}

/// For tests and metrics: what a node follows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalStats {
    /// Conversations followed.
    pub conversations: usize,
}

impl Local {
    pub(crate) fn stats(&self) -> LocalStats {
        LocalStats {
            conversations: self.len(),
        }
    }
}
