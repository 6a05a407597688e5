//! [`Session`]: what one client connection drives; [`Outbound`]: the bounded
//! stream of encoded server frames the transport writes to the socket.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::budget::{TYPING_GATED_ABOVE, cost, frame_cost};
use super::registry::{CloseReason, SessionShared};
use super::{ClientInfo, Engine, Inner, bounds};
use crate::cluster::Topic;
use crate::error::{Error, Result};
use crate::model::{
    ConversationId, MessageId, Presence, PresenceStatus, Receipt, ReceiptStatus, Retention, UserId,
    now_millis,
};
use crate::protocol::{ClientFrame, ServerFrame, decode_client};

/// Conversations with at most this many other members send read receipts
/// to all of them; bigger groups only to the senders of what was read.
const READ_RECEIPTS_TO_ALL: usize = 32;

/// History pages read to find the senders of newly read messages (of 100
/// each) before giving up and telling every member.
const READ_RECEIPT_PAGES: usize = 5;

/// One client connection's side of the engine. The transport feeds it client
/// frames ([`Session::handle_text`]) and writes what [`Outbound`] yields.
///
/// Call [`Session::start`] once the transport is ready to write: it runs the
/// automatic sync that follows every connect. Dropping a session (or calling
/// [`Session::close`]) unregisters it and updates presence.
pub struct Session {
    inner: Arc<Inner>,
    shared: Arc<SessionShared>,
    client: ClientInfo,
    watching: HashSet<UserId>,
    closed: bool,
}

/// The frames a session has for its client: each an encoded JSON text frame,
/// shared (not copied) among every recipient of the same message.
pub struct Outbound {
    rx: mpsc::Receiver<Bytes>,
    shared: Arc<SessionShared>,
}

impl Outbound {
    /// The next frame, or `None` once the engine closed the session (see
    /// [`Outbound::close_reason`]) or the session was dropped.
    pub async fn recv(&mut self) -> Option<Bytes> {
        if self.shared.is_closed() {
            return None;
        }
        tokio::select! {
            biased;
            _ = self.shared.closed() => None,
            frame = self.rx.recv() => frame,
        }
    }

    /// Why the engine closed the session, if it did.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.close_reason()
    }
}

impl Engine {
    /// Opens a session for an authenticated `user`: registers it for live
    /// delivery (held until [`Session::start`]'s sync has run) and marks the
    /// user online. The same as [`Engine::connect_with`] with no client
    /// address and no frame limit.
    pub async fn connect(&self, user: &UserId) -> Result<(Session, Outbound)> {
        self.connect_with(user, ClientInfo::default()).await
    }

    /// [`Engine::connect`] for a connection the transport describes: its
    /// frames are charged to the client address's budget too, and its
    /// `history` answers fit its largest frame.
    pub async fn connect_with(
        &self,
        user: &UserId,
        client: ClientInfo,
    ) -> Result<(Session, Outbound)> {
        let inner = &self.inner;
        if inner.membership.is_lost() {
            return Err(Error::unavailable_msg(
                "this node is shutting down (its id was taken): reconnect",
            ));
        }
        // Held until presence counted this connection: see Membership::gate.
        let gate = inner.membership.gate.read().await;
        let (tx, rx) = mpsc::channel(inner.limits.outbound_queue.max(1));
        let shared = Arc::new(SessionShared::new(
            inner.registry.next_session_id(),
            user.clone(),
            tx,
            inner.limits.sync_buffer,
        ));
        if inner.registry.insert(shared.clone())
            && let Err(e) = inner.bus.subscribe(&Topic::User(user.clone())).await
        {
            tracing::warn!(error = %e, %user, "bus subscribe failed; cross-node delivery waits for sync");
        }
        let counted = inner
            .presence
            .connect(user, &inner.node, now_millis())
            .await;
        drop(gate);
        match counted {
            Ok(true) => {
                inner
                    .announce_presence(Presence {
                        user_id: user.clone(),
                        status: PresenceStatus::Online,
                        last_seen: None,
                    })
                    .await
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, %user, "presence unavailable at connect; restoring at the next heartbeat");
                inner.membership.mark_dirty();
            }
        }
        let session = Session {
            inner: inner.clone(),
            shared: shared.clone(),
            client,
            watching: HashSet::new(),
            closed: false,
        };
        Ok((session, Outbound { rx, shared }))
    }
}

impl Session {
    /// The user this session belongs to.
    pub fn user_id(&self) -> &UserId {
        &self.shared.user
    }

    /// Runs the automatic sync after connect: every unacked message, oldest
    /// first, then `synced`.
    pub async fn start(&mut self) -> Result<()> {
        self.sync(None).await
    }

    /// Decodes and handles one text frame. Bad frames are answered with an
    /// `error` frame (`bad_frame`); the session stays open.
    pub async fn handle_text(&mut self, text: &str) {
        match decode_client(text) {
            Ok(frame) => self.handle(frame).await,
            Err(bad) => {
                // A bad frame costs what a light one does: its answer is work too.
                let answer = match self.charge(cost::LIGHT) {
                    Ok(()) => ServerFrame::bad_frame(&bad),
                    Err(e) => ServerFrame::error_from(bad.reply_to.clone(), &e),
                };
                self.reply(answer).await;
            }
        }
    }

    /// Handles one decoded client frame; answers (and errors) go to
    /// [`Outbound`]. Every frame is first charged to the user's and the
    /// client address's write budgets: past either, it is answered
    /// `rate_limited` and not handled.
    pub async fn handle(&mut self, frame: ClientFrame) {
        let reply_to = frame.request_id().map(str::to_owned);
        let result = match self.charge(frame_cost(&frame)) {
            Ok(()) => self.dispatch(frame).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            self.reply(ServerFrame::error_from(reply_to, &e)).await;
        }
    }

    async fn dispatch(&mut self, frame: ClientFrame) -> Result<()> {
        match frame {
            ClientFrame::Send(send) => {
                let reply_to = send.id.clone();
                let sent = self
                    .inner
                    .send(&self.shared.user, self.shared.id, send)
                    .await?;
                self.reply(ServerFrame::Sent {
                    reply_to,
                    message_id: sent.message_id,
                    conversation_id: sent.conversation_id,
                    ts: sent.ts,
                })
                .await;
            }
            ClientFrame::Ack {
                conversation_id,
                message_id,
            } => self.ack(conversation_id, message_id).await?,
            ClientFrame::Read {
                conversation_id,
                message_id,
            } => self.read(conversation_id, message_id).await?,
            ClientFrame::Sync { id } => self.sync(id).await?,
            ClientFrame::History {
                id,
                conversation_id,
                before,
                limit,
            } => {
                let engine = Engine {
                    inner: self.inner.clone(),
                };
                let messages = engine
                    .history(
                        &self.shared.user,
                        &conversation_id,
                        before,
                        limit.map(|l| l as usize),
                    )
                    .await?;
                let frame = bounds::fitted_history(id, messages, self.client.max_frame_bytes)?;
                self.reply(frame).await;
            }
            ClientFrame::Typing { conversation_id } => {
                let others = self.others_in(&conversation_id).await?;
                // Typing is a hint: in a big group what the gate holds back is dropped.
                if others.len() > TYPING_GATED_ABOVE
                    && !self.inner.typing_gate.pass(&conversation_id)
                {
                    return Ok(());
                }
                let frame = ServerFrame::Typing {
                    conversation_id,
                    user_id: self.shared.user.clone(),
                }
                .encode();
                self.inner.send_to_users(&others, frame, None, None).await;
            }
            ClientFrame::PresenceSubscribe { user_ids, .. } => self.watch(user_ids).await?,
            ClientFrame::Ping { id } => self.reply(ServerFrame::Pong { reply_to: id }).await,
        }
        Ok(())
    }

    /// Charges `cost` to this user's and this client address's budgets.
    fn charge(&self, cost: f64) -> Result<()> {
        self.inner
            .budgets
            .charge(
                Some(&self.shared.user),
                self.client.addr.map(super::AddrKey::of),
                cost,
            )
            .map_err(|retry_after| Error::RateLimited { retry_after })
    }

    async fn reply(&self, frame: ServerFrame) {
        self.shared.push_wait(frame.encode()).await;
    }

    /// The other members of a conversation this session's user belongs to.
    async fn others_in(&self, conversation: &ConversationId) -> Result<Vec<UserId>> {
        let members = self.inner.conversations.members(conversation).await?;
        if !members.contains(&self.shared.user) {
            return Err(Error::NotMember {
                conversation: conversation.clone(),
            });
        }
        Ok(members
            .into_iter()
            .filter(|m| *m != self.shared.user)
            .collect())
    }

    async fn ack(&mut self, conversation: ConversationId, up_to: MessageId) -> Result<()> {
        let user = self.shared.user.clone();
        if !self
            .inner
            .conversations
            .is_member(&conversation, &user)
            .await?
        {
            return Err(Error::NotMember { conversation });
        }
        let Some(up_to) = self.inner.bounded_by_newest(&conversation, up_to).await? else {
            return Ok(());
        };
        let acked = self.inner.messages.ack(&user, &conversation, up_to).await?;
        if acked.is_empty() {
            return Ok(());
        }
        if self.inner.retention == Retention::UntilDelivered {
            let ids: Vec<MessageId> = acked.iter().map(|a| a.message_id).collect();
            self.inner
                .messages
                .purge_delivered(&conversation, &ids)
                .await?;
        }
        // One receipt per sender, naming its newest message this ack covered.
        let mut newest: BTreeMap<UserId, MessageId> = BTreeMap::new();
        for a in acked {
            let entry = newest.entry(a.sender_id).or_default();
            *entry = (*entry).max(a.message_id);
        }
        for (sender, message_id) in newest {
            if sender == user {
                continue;
            }
            let frame = ServerFrame::Receipt(Receipt {
                conversation_id: conversation.clone(),
                message_id,
                user_id: user.clone(),
                status: ReceiptStatus::Delivered,
            })
            .encode();
            self.inner.send_to_users(&[sender], frame, None, None).await;
        }
        Ok(())
    }

    async fn read(&mut self, conversation: ConversationId, up_to: MessageId) -> Result<()> {
        let others = self.others_in(&conversation).await?;
        let Some(up_to) = self.inner.bounded_by_newest(&conversation, up_to).await? else {
            return Ok(());
        };
        let user = &self.shared.user;
        let previous = self.inner.messages.cursors(user, &conversation).await?.read;
        if !self
            .inner
            .messages
            .mark_read(user, &conversation, up_to)
            .await?
        {
            return Ok(());
        }
        // Small conversations tell every other member (only connected ones
        // get it; the cursor is in the store). Big groups tell only the
        // senders of the newly read messages: one read must not cost a frame
        // per member of a 10,000-member group.
        let targets = if others.len() <= READ_RECEIPTS_TO_ALL {
            others
        } else {
            // Nothing found (messages deleted under until_delivered): tell all.
            self.senders_between(&conversation, previous, up_to)
                .await
                .filter(|senders| !senders.is_empty())
                .unwrap_or(others)
        };
        let frame = ServerFrame::Receipt(Receipt {
            conversation_id: conversation,
            message_id: up_to,
            user_id: self.shared.user.clone(),
            status: ReceiptStatus::Read,
        })
        .encode();
        self.inner.send_to_users(&targets, frame, None, None).await;
        Ok(())
    }

    /// The other senders of the stored messages in `(after, up_to]`, or
    /// `None` when that range is too long to read (then everyone is told).
    async fn senders_between(
        &self,
        conversation: &ConversationId,
        after: Option<MessageId>,
        up_to: MessageId,
    ) -> Option<Vec<UserId>> {
        const PAGE: usize = 100;
        let mut senders = Vec::new();
        let mut before = up_to.0.checked_add(1).map(MessageId);
        for _ in 0..READ_RECEIPT_PAGES {
            let page = self
                .inner
                .messages
                .history(conversation, before, PAGE)
                .await
                .ok()?;
            let full = page.len() == PAGE;
            for m in page {
                if after.is_some_and(|a| m.message_id <= a) {
                    return Some(senders);
                }
                before = Some(m.message_id);
                if m.sender_id != self.shared.user && !senders.contains(&m.sender_id) {
                    senders.push(m.sender_id);
                }
            }
            if !full {
                return Some(senders);
            }
        }
        None
    }

    async fn sync(&mut self, reply_to: Option<String>) -> Result<()> {
        sync_session(&self.inner, &self.shared, reply_to).await
    }

    async fn watch(&mut self, users: Vec<UserId>) -> Result<()> {
        let limit = self.inner.limits.max_presence_watch;
        if users.len() + self.watching.len() > limit {
            return Err(Error::invalid(format!(
                "a session may watch the presence of at most {limit} users"
            )));
        }
        let fresh = self.inner.watchers.watch(&self.shared, &users);
        for u in fresh {
            if let Err(e) = self.inner.bus.subscribe(&Topic::Presence(u)).await {
                tracing::warn!(error = %e, "bus subscribe for presence failed");
            }
        }
        self.watching.extend(users.iter().cloned());
        let entries = self.inner.presence.presence(&users).await?;
        for entry in entries {
            self.reply(ServerFrame::Presence(entry.presence)).await;
        }
        Ok(())
    }

    /// Unregisters the session and updates presence (the user goes offline
    /// when this was its last connection anywhere).
    pub async fn close(mut self) {
        self.closed = true;
        cleanup(
            self.inner.clone(),
            self.shared.clone(),
            std::mem::take(&mut self.watching),
        )
        .await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let inner = self.inner.clone();
        let shared = self.shared.clone();
        let watching = std::mem::take(&mut self.watching);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(cleanup(inner, shared, watching));
            }
            Err(_) => {
                // No runtime (the engine is being torn down): at least stop delivery.
                inner.registry.remove(&shared.user, shared.id);
                shared.close(CloseReason::Disconnected);
            }
        }
    }
}

async fn cleanup(inner: Arc<Inner>, shared: Arc<SessionShared>, watching: HashSet<UserId>) {
    shared.close(CloseReason::Disconnected);
    for u in inner.watchers.unwatch(shared.id, &watching) {
        if let Err(e) = inner.bus.unsubscribe(&Topic::Presence(u)).await {
            tracing::warn!(error = %e, "bus unsubscribe failed");
        }
    }
    let user = shared.user.clone();
    // Held from leaving the registry until presence counted this connection
    // out: see Membership::gate.
    let gate = inner.membership.gate.read().await;
    let last_here = inner.registry.remove(&user, shared.id);
    release_presence(&inner, &shared).await;
    drop(gate);
    if last_here && let Err(e) = inner.bus.unsubscribe(&Topic::User(user)).await {
        tracing::warn!(error = %e, "bus unsubscribe failed");
    }
}

/// Counts this session's connection out of presence, once (the engine's
/// shutdown and the session's own cleanup may both try); announces the user
/// offline when it was its last connection anywhere. The caller holds the
/// membership gate. A node whose id was taken leaves presence alone: its
/// name is another node's now.
pub(crate) async fn release_presence(inner: &Inner, shared: &SessionShared) {
    if !shared.release() || inner.membership.is_lost() {
        return;
    }
    let now = now_millis();
    match inner
        .presence
        .disconnect(&shared.user, &inner.node, now)
        .await
    {
        Ok(true) => {
            inner
                .announce_presence(Presence {
                    user_id: shared.user.clone(),
                    status: PresenceStatus::Offline,
                    last_seen: Some(now),
                })
                .await
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(error = %e, "presence unavailable at disconnect; restoring at the next heartbeat");
            inner.membership.mark_dirty();
        }
    }
}

/// Sends every pending message oldest first, then `synced`. Live messages
/// that arrive meanwhile are held and sent after, so that each
/// conversation's messages reach the client in id order.
pub(crate) async fn sync_session(
    inner: &Inner,
    shared: &Arc<SessionShared>,
    reply_to: Option<String>,
) -> Result<()> {
    shared.held.lock().get_or_insert_with(Vec::new);
    let result = send_pending(inner, shared).await;
    let sent = result.as_ref().ok();
    {
        let mut held = shared.held.lock();
        // Flushed under the lock: a live message that comes now waits for
        // the flush, so it cannot overtake the held ones.
        for h in held.take().unwrap_or_default() {
            if sent.is_some_and(|s| s.contains(&h.id)) {
                continue;
            }
            shared.push(h.frame);
        }
    }
    result?;
    shared
        .push_wait(ServerFrame::Synced { reply_to }.encode())
        .await;
    Ok(())
}

async fn send_pending(inner: &Inner, shared: &SessionShared) -> Result<HashSet<MessageId>> {
    let page = inner.limits.sync_page.max(1);
    let mut sent = HashSet::new();
    let mut after = None;
    loop {
        let messages = inner.messages.pending(&shared.user, after, page).await?;
        let full = messages.len() >= page;
        for message in messages {
            after = Some(message.message_id);
            sent.insert(message.message_id);
            if !shared
                .push_wait(ServerFrame::Message { message }.encode())
                .await
            {
                return Ok(sent);
            }
        }
        if !full {
            return Ok(sent);
        }
    }
}
