//! [`Session`]: what one client connection drives; [`Outbound`]: the bounded
//! stream of encoded server frames the transport writes to the socket.
//!
//! A session only decodes a frame, checks the budget, calls the action (a
//! file each under `actions/`) and answers.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;

use super::budget::{cost, frame_cost};
use super::envelope::SessionRef;
use super::registry::{CloseReason, SessionShared};
use super::{ClientInfo, Engine, Inner, bounds};
use crate::auth::Identity;
use crate::cluster::Topic;
use crate::error::{Error, Result};
use crate::model::{DeviceId, MessageKind, Presence, PresenceStatus, UserId, now_millis};
use crate::observe::Event;
use crate::protocol::{ClientFrame, ServerFrame, decode_client};

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
    shared: Arc<SessionShared>,
}

impl Outbound {
    /// The next frame, or `None` once the engine closed the session (see
    /// [`Outbound::close_reason`]) or the session was dropped.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.shared.next_frame().await
    }

    /// The next frame if one is queued now, without waiting: a transport
    /// that got one frame from [`Outbound::recv`] takes the others already
    /// waiting and writes them with one flush (`None`: none waiting, or the
    /// session is closed).
    pub fn try_recv(&mut self) -> Option<Bytes> {
        self.shared.try_frame()
    }

    /// Why the engine closed the session, if it did.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.close_reason()
    }
}

impl Engine {
    /// Opens a session for an authenticated device: registers it for live
    /// delivery (held until [`Session::start`]'s sync has run), marks the
    /// user online and the device seen. The same as
    /// [`Engine::connect_with`] with no client address.
    pub async fn connect(&self, identity: &Identity) -> Result<(Session, Outbound)> {
        self.connect_with(identity, ClientInfo::default()).await
    }

    /// [`Engine::connect`] for a connection the transport describes: its
    /// frames are charged to the client address's budget too, and its
    /// `history` answers fit its largest frame.
    pub async fn connect_with(
        &self,
        identity: &Identity,
        client: ClientInfo,
    ) -> Result<(Session, Outbound)> {
        let inner = &self.inner;
        let user = &identity.user_id;
        if inner.membership.is_lost() {
            return Err(crate::error::Error::unavailable_msg(
                "this node is shutting down (its id was taken): reconnect",
            ));
        }
        if inner.is_draining() {
            return Err(crate::error::Error::unavailable_msg(
                "this node is draining: reconnect to another node",
            ));
        }
        // Held until presence counted this connection: see Membership::gate.
        let gate = inner.membership.gate.read().await;
        let shared = Arc::new(SessionShared::new(
            inner.registry.next_session_id(),
            user.clone(),
            identity.device_id.clone(),
            inner.limits.outbound_queue_bytes,
            inner.limits.sync_buffer,
            inner.observer.clone(),
        ));
        inner.observer.event(&Event::SessionOpened);
        let first_here = inner.registry.insert(shared.clone());
        if first_here {
            if let Err(e) = inner.bus.subscribe(&Topic::User(user.clone())).await {
                tracing::warn!(error = %e, %user, "bus subscribe failed; notices for this user arrive late");
            }
            match inner.conversations.memberships(user).await {
                Ok(memberships) => inner.attach(user, &memberships).await,
                Err(e) => {
                    inner.registry.remove(user, shared.id);
                    drop(gate);
                    return Err(e);
                }
            }
        }
        if let Err(e) = inner
            .accounts
            .touch_device(&identity.device_id, now_millis())
            .await
        {
            tracing::warn!(error = %e, "could not mark the device seen");
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
        Ok((session, Outbound { shared }))
    }
}

impl Session {
    /// The user this session belongs to.
    pub fn user_id(&self) -> &UserId {
        &self.shared.user
    }

    /// The device this session belongs to.
    pub fn device_id(&self) -> &DeviceId {
        &self.shared.device
    }

    /// Runs the automatic sync after connect: every entry this device has
    /// not acked, oldest first, then `synced`.
    pub async fn start(&mut self) -> Result<()> {
        self.inner.sync_session(&self.shared, None, true).await
    }

    /// Decodes and handles one text frame. Bad frames are answered with an
    /// `error` frame (`bad_frame`); the session stays open.
    pub async fn handle_text(&mut self, text: &str) {
        match decode_client(text) {
            Ok(frame) => self.handle(frame).await,
            Err(bad) => {
                self.inner
                    .observer
                    .event(&Event::FrameIn { kind: "invalid" });
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
        let kind = frame.type_name();
        self.inner.observer.event(&Event::FrameIn { kind });
        let result = match self.charge(frame_cost(&frame)) {
            Ok(()) => self.dispatch(frame).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            if matches!(kind, "send" | "edit" | "delete" | "react") {
                self.inner
                    .observer
                    .event(&Event::SendFailed { code: e.code() });
            }
            self.reply(ServerFrame::error_from(reply_to, &e)).await;
        }
    }

    fn me(&self) -> SessionRef {
        SessionRef {
            node: self.inner.node.clone(),
            session: self.shared.id,
        }
    }

    async fn dispatch(&mut self, frame: ClientFrame) -> Result<()> {
        let inner = self.inner.clone();
        let shared = &self.shared.clone();
        match frame {
            ClientFrame::Send(send) => {
                let reply_to = send.id.clone();
                let sent = inner.send(shared, self.me(), send).await?;
                self.reply(sent.frame(reply_to)).await;
            }
            ClientFrame::Edit(e) => self.event(MessageKind::Edit, e).await?,
            ClientFrame::Delete(e) => self.event(MessageKind::Delete, e).await?,
            ClientFrame::React(e) => self.event(MessageKind::Reaction, e).await?,
            ClientFrame::Ack {
                conversation_id,
                message_id,
            } => inner.ack(shared, &conversation_id, message_id).await?,
            ClientFrame::Read {
                conversation_id,
                message_id,
            } => inner.read(shared, &conversation_id, message_id).await?,
            ClientFrame::Sync { id } => inner.sync_session(shared, id, false).await?,
            ClientFrame::History {
                id,
                conversation_id,
                before,
                limit,
            } => {
                let messages = inner
                    .history(
                        &shared.user,
                        &conversation_id,
                        before,
                        limit.map(|l| l as usize),
                    )
                    .await?;
                let frame = bounds::fitted_history(id, messages, self.client.max_frame_bytes)?;
                self.reply(frame).await;
            }
            ClientFrame::Typing { conversation_id } => {
                inner.typing(&shared.user, &conversation_id).await?;
            }
            ClientFrame::PresenceSubscribe { user_ids, .. } => {
                let refused = inner.watch(shared, &mut self.watching, user_ids).await?;
                if let Some(e) = refused {
                    return Err(e);
                }
            }
            ClientFrame::Ping { id } => self.reply(ServerFrame::Pong { reply_to: id }).await,
        }
        Ok(())
    }

    async fn event(&mut self, kind: MessageKind, frame: crate::protocol::EventFrame) -> Result<()> {
        let reply_to = frame.id.clone();
        let sent = self
            .inner
            .message_event(&self.shared, self.me(), kind, frame)
            .await?;
        self.reply(sent.frame(reply_to)).await;
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
            .map_err(|retry_after| {
                self.inner
                    .observer
                    .event(&Event::RateLimited { source: "frame" });
                Error::RateLimited { retry_after }
            })
    }

    /// Resolves once the engine asks this session to finish because the
    /// node drains ([`Engine::drain`]). The transport then stops reading
    /// new frames (the one in hand is answered first) and calls
    /// [`Session::finish_draining`].
    ///
    /// The future holds no borrow of the session (a transport that hands
    /// the session to its work between frames can still wait on it).
    pub fn drain_asked(&self) -> impl Future<Output = ()> + Send + 'static {
        let shared = self.shared.clone();
        async move { shared.drain_asked().await }
    }

    /// Ends the session for a drain once what is queued for the client has
    /// gone out: [`Outbound`] yields the rest, then ends with
    /// [`CloseReason::Draining`]. Call [`Session::close`] after the writer
    /// is done.
    pub fn finish_draining(&self) {
        self.shared.finish(CloseReason::Draining);
    }

    async fn reply(&self, frame: ServerFrame) {
        self.shared.push_wait(frame.encode()).await;
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
    if last_here {
        if let Err(e) = inner.bus.unsubscribe(&Topic::User(user.clone())).await {
            tracing::warn!(error = %e, "bus unsubscribe failed");
        }
        inner.detach(&user).await;
    }
    if let Err(e) = inner
        .accounts
        .touch_device(&shared.device, now_millis())
        .await
    {
        tracing::warn!(error = %e, "could not mark the device seen");
    }
}

/// Counts this session's connection out of presence, once (the engine's
/// shutdown and the session's own cleanup may both try); announces the user
/// offline when it was its last connection anywhere.
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
