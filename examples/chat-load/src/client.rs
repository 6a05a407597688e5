//! One user's connection during the run: a writer that sends what the
//! scheduler hands it and acks what the reader hands it, and a reader that
//! times `sent` answers and `message` deliveries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chat_core::protocol::{ClientFrame, SendFrame, SendTarget, ServerFrame, decode_server};
use chat_core::{ConversationId, MessageId, UserId};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::conn::Ws;
use crate::schedule::{self, Clock};
use crate::scheduler::Due;
use crate::stats::{Progress, Recorder, Stats};
use crate::topology::{Roster, Targets};

/// What all connections share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The run's time line.
    pub(crate) clock: Clock,
    /// Run-wide counters.
    pub(crate) progress: Progress,
    /// Latencies, counts and errors.
    pub(crate) recorder: Recorder,
    /// Who is connected, and group sizes.
    pub(crate) roster: Arc<Roster>,
    /// Length of each body.
    pub(crate) body_bytes: usize,
    /// Receivers send `read` with each ack.
    pub(crate) read: bool,
    /// Senders send `typing` before each group send.
    pub(crate) typing: bool,
}

/// One user, connected and ready to run.
pub(crate) struct UserRun {
    /// Its index among all users.
    pub(crate) index: usize,
    /// Its id (its own messages are not deliveries).
    pub(crate) id: UserId,
    /// Its connection.
    pub(crate) ws: Ws,
    /// Its sends, as they fall due.
    pub(crate) dues: mpsc::UnboundedReceiver<Due>,
    /// Where it sends.
    pub(crate) targets: Targets,
}

/// Runs one user until `stop` turns true.
pub(crate) async fn run(user: UserRun, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let (sink, stream) = user.ws.split();
    // Unbounded: the reader must never wait on the writer, or the server's
    // queue for this session would fill while the writer is busy sending.
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let writer = Writer {
        sink,
        index: user.index,
        targets: user.targets,
        shared: shared.clone(),
    };
    let reader = Reader {
        index: user.index,
        me: user.id,
        acks: ack_tx,
        shared,
    };
    tokio::join!(
        writer.run(user.dues, ack_rx, stop.clone()),
        reader.run(stream, stop)
    );
}

/// A message to ack: its conversation and id.
type Ack = (ConversationId, MessageId);

struct Writer {
    sink: SplitSink<Ws, WsMessage>,
    index: usize,
    targets: Targets,
    shared: Arc<Shared>,
}

impl Writer {
    async fn run(
        mut self,
        mut dues: mpsc::UnboundedReceiver<Due>,
        mut acks: mpsc::UnboundedReceiver<Ack>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let ok = tokio::select! {
                biased;
                _ = stop.changed() => break,
                Some(first) = acks.recv() => self.ack(first, &mut acks).await,
                Some(due) = dues.recv() => self.send(due).await,
            };
            if !ok {
                // The reader sees the connection end and counts it.
                break;
            }
        }
        let _ = self.sink.close().await;
    }

    /// Sends a message that is due (or overdue: then it goes out at once,
    /// and its lateness counts as latency).
    async fn send(&mut self, due: Due) -> bool {
        let clock = &self.shared.clock;
        let stamp = clock.stamp(due.at);
        let (kind, target) = self.targets.next();
        if self.shared.typing
            && let SendTarget::Conversation(c) = &target
        {
            let typing = ClientFrame::Typing {
                conversation_id: c.clone(),
            };
            if self
                .sink
                .feed(WsMessage::text(typing.encode_text()))
                .await
                .is_err()
            {
                return false;
            }
        }
        let frame = ClientFrame::Send(SendFrame {
            id: Some(schedule::request_id(kind, stamp)),
            target,
            body: schedule::body(stamp, self.shared.body_bytes),
            client_msg_id: Some(format!("{}-{}", self.index, due.k)),
            in_reply_to: None,
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
        if clock.measured(due.at) {
            let lag = due.at.elapsed();
            self.shared.recorder.with(self.index, |s| {
                s.sends += 1;
                s.lag.record(lag);
            });
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
            let read = self.shared.read.then(|| ClientFrame::Read {
                conversation_id: conversation_id.clone(),
                message_id,
            });
            let ack = ClientFrame::Ack {
                conversation_id,
                message_id,
            };
            for frame in std::iter::once(ack).chain(read) {
                if self
                    .sink
                    .feed(WsMessage::text(frame.encode_text()))
                    .await
                    .is_err()
                {
                    return false;
                }
            }
        }
        self.sink.flush().await.is_ok()
    }
}

struct Reader {
    index: usize,
    me: UserId,
    acks: mpsc::UnboundedSender<Ack>,
    shared: Arc<Shared>,
}

impl Reader {
    async fn run(self, mut stream: SplitStream<Ws>, mut stop: watch::Receiver<bool>) {
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
                Some(Ok(WsMessage::Close(close))) => {
                    if !*stop.borrow() {
                        let code =
                            close.map_or("none".to_owned(), |c| u16::from(c.code).to_string());
                        self.shared.recorder.with(self.index, |s| {
                            s.dropped += 1;
                            *s.closes.entry(code).or_default() += 1;
                        });
                    }
                    break;
                }
                Some(Err(_)) | None => {
                    if !*stop.borrow() {
                        self.shared.recorder.with(self.index, |s| {
                            s.dropped += 1;
                            *s.closes.entry("none".to_owned()).or_default() += 1;
                        });
                    }
                    break;
                }
                Some(Ok(_)) => {}
            }
        }
    }

    fn handle(&self, text: &str, now: Instant) {
        let clock = self.shared.clock;
        let progress = &self.shared.progress;
        let record = |f: &mut dyn FnMut(&mut Stats)| self.shared.recorder.with(self.index, f);
        match decode_server(text) {
            Ok(ServerFrame::Message { message }) => {
                if message.sender_id == self.me {
                    return;
                }
                Progress::bump(&progress.delivered, 1);
                if let Some(due) = schedule::parse_body(&message.body).map(|s| clock.instant(s))
                    && clock.measured(due)
                {
                    record(&mut |s| {
                        s.deliveries += 1;
                        s.delivery.record(now.saturating_duration_since(due));
                    });
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
                    record(&mut |s| s.error("unexpected_reply"));
                    return;
                };
                Progress::bump(&progress.answered, 1);
                let recipients = self.shared.roster.recipients(kind, self.index);
                Progress::bump(&progress.expected, recipients);
                let due = clock.instant(stamp);
                if clock.measured(due) {
                    record(&mut |s| s.sent.record(now.saturating_duration_since(due)));
                }
            }
            Ok(ServerFrame::Error { reply_to, code, .. }) => {
                record(&mut |s| s.error(&code));
                if reply_to
                    .as_deref()
                    .and_then(schedule::parse_request_id)
                    .is_some()
                {
                    Progress::bump(&progress.answered, 1);
                }
            }
            Ok(ServerFrame::Receipt(_) | ServerFrame::Receipts { .. }) => {
                record(&mut |s| s.receipt_frames += 1);
            }
            // Presence, typing and the like are not measured.
            Ok(_) => {}
            Err(_) => record(&mut |s| s.error("client_decode")),
        }
    }
}
