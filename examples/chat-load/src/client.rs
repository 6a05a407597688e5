//! One user's connection during the run: a writer that sends on the
//! user's open-loop schedule and acks what the reader hands it, and a
//! reader that times `sent` answers and `message` deliveries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chat_core::protocol::{ClientFrame, SendFrame, ServerFrame, decode_server};
use chat_core::{ConversationId, MessageId, UserId};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::conn::Ws;
use crate::schedule::{self, Clock, Schedule};
use crate::stats::{ConnStats, Progress};
use crate::topology::{Roster, Targets};

/// What all connections share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The run's time line.
    pub(crate) clock: Clock,
    /// Run-wide counters.
    pub(crate) progress: Progress,
    /// Who is connected, and group sizes.
    pub(crate) roster: Arc<Roster>,
    /// Length of each body.
    pub(crate) body_bytes: usize,
}

/// One user, connected and ready to run.
pub(crate) struct UserRun {
    /// Its index among all users.
    pub(crate) index: usize,
    /// Its id (its own messages are not deliveries).
    pub(crate) id: UserId,
    /// Its connection.
    pub(crate) ws: Ws,
    /// When it sends.
    pub(crate) schedule: Schedule,
    /// Where it sends.
    pub(crate) targets: Targets,
}

/// Runs one user until `stop` turns true, and returns what it counted.
pub(crate) async fn run(
    user: UserRun,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> ConnStats {
    let (sink, stream) = user.ws.split();
    // Unbounded: the reader must never wait on the writer, or the server's
    // queue for this session would fill while the writer is busy sending.
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let writer = Writer {
        sink,
        index: user.index,
        schedule: user.schedule,
        targets: user.targets,
        shared: shared.clone(),
        stats: ConnStats::new(),
    };
    let reader = Reader {
        index: user.index,
        me: user.id,
        acks: ack_tx,
        shared,
        stats: ConnStats::new(),
    };
    let (mut written, read) =
        tokio::join!(writer.run(ack_rx, stop.clone()), reader.run(stream, stop));
    written.merge(&read);
    written
}

/// A message to ack: its conversation and id.
type Ack = (ConversationId, MessageId);

struct Writer {
    sink: SplitSink<Ws, WsMessage>,
    index: usize,
    schedule: Schedule,
    targets: Targets,
    shared: Arc<Shared>,
    stats: ConnStats,
}

impl Writer {
    async fn run(
        mut self,
        mut acks: mpsc::UnboundedReceiver<Ack>,
        mut stop: watch::Receiver<bool>,
    ) -> ConnStats {
        let mut k = 0;
        let mut next = self.schedule.due(k);
        loop {
            let due = next.map(tokio::time::Instant::from_std);
            let ok = tokio::select! {
                biased;
                _ = stop.changed() => break,
                Some(first) = acks.recv() => self.ack(first, &mut acks).await,
                () = sleep_until(due), if due.is_some() => {
                    let ok = self.send(next.unwrap_or_else(Instant::now), k).await;
                    k += 1;
                    next = self.schedule.due(k);
                    ok
                }
            };
            if !ok {
                // The reader sees the connection end and reports it.
                break;
            }
        }
        let _ = self.sink.close().await;
        self.stats
    }

    /// Sends message `k`, due at `due` (which may have passed: then it goes
    /// out at once, late, and its lateness counts as latency).
    async fn send(&mut self, due: Instant, k: u64) -> bool {
        let clock = &self.shared.clock;
        let stamp = clock.stamp(due);
        let (kind, target) = self.targets.next();
        let frame = ClientFrame::Send(SendFrame {
            id: Some(schedule::request_id(kind, stamp)),
            target,
            body: schedule::body(stamp, self.shared.body_bytes),
            client_msg_id: Some(format!("{}-{k}", self.index)),
        });
        if self
            .sink
            .send(WsMessage::text(frame.encode_text()))
            .await
            .is_err()
        {
            return false;
        }
        Progress::bump(&self.shared.progress.written, 1);
        if clock.measured(due) {
            self.stats.sends += 1;
            self.stats.lag.record(due.elapsed());
        }
        true
    }

    /// Acks `first` and everything else waiting, one ack per conversation
    /// (an ack covers every earlier message of its conversation).
    async fn ack(&mut self, first: Ack, acks: &mut mpsc::UnboundedReceiver<Ack>) -> bool {
        let mut newest: HashMap<ConversationId, MessageId> = HashMap::new();
        let mut note = |(c, m): Ack| {
            let slot = newest.entry(c).or_insert(m);
            *slot = (*slot).max(m);
        };
        note(first);
        while let Ok(more) = acks.try_recv() {
            note(more);
        }
        for (conversation_id, message_id) in newest {
            let frame = ClientFrame::Ack {
                conversation_id,
                message_id,
            };
            if self
                .sink
                .feed(WsMessage::text(frame.encode_text()))
                .await
                .is_err()
            {
                return false;
            }
        }
        self.sink.flush().await.is_ok()
    }
}

/// Sleeps until `due`; never completes without one (its select arm is off then).
async fn sleep_until(due: Option<tokio::time::Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct Reader {
    index: usize,
    me: UserId,
    acks: mpsc::UnboundedSender<Ack>,
    shared: Arc<Shared>,
    stats: ConnStats,
}

impl Reader {
    async fn run(
        mut self,
        mut stream: SplitStream<Ws>,
        mut stop: watch::Receiver<bool>,
    ) -> ConnStats {
        loop {
            let frame = tokio::select! {
                biased;
                _ = stop.changed() => break,
                frame = stream.next() => frame,
            };
            let now = Instant::now();
            match frame {
                Some(Ok(WsMessage::Text(text))) => self.handle(&text, now),
                // Pings are answered by tungstenite itself; nothing else is sent.
                Some(Ok(WsMessage::Close(_)) | Err(_)) | None => {
                    if !*stop.borrow() {
                        self.stats.dropped = true;
                    }
                    break;
                }
                Some(Ok(_)) => {}
            }
        }
        self.stats
    }

    fn handle(&mut self, text: &str, now: Instant) {
        let clock = self.shared.clock;
        let progress = &self.shared.progress;
        match decode_server(text) {
            Ok(ServerFrame::Message { message }) => {
                if message.sender_id == self.me {
                    return;
                }
                Progress::bump(&progress.delivered, 1);
                if let Some(due) = schedule::parse_body(&message.body).map(|s| clock.instant(s))
                    && clock.measured(due)
                {
                    self.stats.deliveries += 1;
                    self.stats
                        .delivery
                        .record(now.saturating_duration_since(due));
                }
                // The writer is gone only when the run ends: nothing left to ack.
                let _ = self
                    .acks
                    .send((message.conversation_id, message.message_id));
            }
            Ok(ServerFrame::Sent {
                reply_to: Some(id), ..
            }) => {
                let Some((kind, stamp)) = schedule::parse_request_id(&id) else {
                    self.stats.error("unexpected_reply");
                    return;
                };
                Progress::bump(&progress.answered, 1);
                let recipients = self.shared.roster.recipients(kind, self.index);
                Progress::bump(&progress.expected, recipients);
                let due = clock.instant(stamp);
                if clock.measured(due) {
                    self.stats.sent.record(now.saturating_duration_since(due));
                }
            }
            Ok(ServerFrame::Error { reply_to, code, .. }) => {
                self.stats.error(&code);
                if reply_to
                    .as_deref()
                    .and_then(schedule::parse_request_id)
                    .is_some()
                {
                    Progress::bump(&progress.answered, 1);
                }
            }
            // Receipts, presence, typing and the like are not measured.
            Ok(_) => {}
            Err(_) => self.stats.error("client_decode"),
        }
    }
}
