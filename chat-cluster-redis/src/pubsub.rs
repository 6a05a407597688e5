//! The pub/sub connection of one node: the topics it holds, and the task
//! that reads messages, notices a lost connection, reconnects with backoff
//! and subscribes again to every held topic.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chat_core::NodeId;
use chat_core::cluster::{BusMessage, Topic};
use chat_core::{Error, Result};
use futures::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::{Notify, watch};

use crate::conn::within;
use crate::frame;
use crate::keys::Keys;
use crate::options::RedisOptions;

/// Channels per SUBSCRIBE when subscribing again after a reconnect: big
/// enough to be few round trips, small enough to keep each reply short.
const RESUBSCRIBE_CHUNK: usize = 1000;

/// The channels a node holds and the sink that subscribes them.
pub(crate) struct Subscriptions {
    client: redis::Client,
    options: RedisOptions,
    /// One lock for the set and the sink, held across the SUBSCRIBE round
    /// trip: the channels subscribed on the server then always follow the
    /// order of calls, and a reconnect subscribes exactly the set.
    state: tokio::sync::Mutex<State>,
    /// Where messages go: the receiver the engine opened.
    output: parking_lot::Mutex<Option<mpsc::Sender<BusMessage>>>,
    /// A subscribe or unsubscribe failed on a connection that looked alive:
    /// the driver replaces the connection so the server's subscriptions
    /// match the set again.
    broken: Notify,
    /// Reconnections so far.
    reconnects: watch::Sender<u64>,
}

struct State {
    channels: HashSet<String>,
    /// `None` while the connection is down.
    sink: Option<PubSubSink>,
}

fn down() -> Error {
    Error::unavailable_msg("redis: the pub/sub connection is down; reconnecting")
}

async fn open(
    client: &redis::Client,
    options: &RedisOptions,
) -> Result<(PubSubSink, PubSubStream)> {
    let limit = options.connect_timeout + options.response_timeout;
    let pubsub = within("pub/sub connect", limit, client.get_async_pubsub()).await?;
    Ok(pubsub.split())
}

impl Subscriptions {
    /// Opens the first connection; the driver gets its stream.
    pub(crate) async fn connect(
        client: redis::Client,
        options: &RedisOptions,
    ) -> Result<(Self, (PubSubSink, PubSubStream))> {
        let (sink, stream) = open(&client, options).await?;
        let subs = Self {
            client,
            options: options.clone(),
            state: tokio::sync::Mutex::new(State {
                channels: HashSet::new(),
                sink: Some(sink.clone()),
            }),
            output: parking_lot::Mutex::new(None),
            broken: Notify::new(),
            reconnects: watch::Sender::new(0),
        };
        Ok((subs, (sink, stream)))
    }

    pub(crate) fn set_output(&self, tx: mpsc::Sender<BusMessage>) {
        *self.output.lock() = Some(tx);
    }

    pub(crate) fn reconnects(&self) -> u64 {
        *self.reconnects.borrow()
    }

    pub(crate) async fn wait_for_reconnect(&self, seen: u64) {
        let mut rx = self.reconnects.subscribe();
        // The sender lives as long as self, so this cannot fail.
        let _ = rx.wait_for(|n| *n > seen).await;
    }

    /// Holds `channel` and subscribes it now if connected. The channel stays
    /// held even when this fails: the next connection subscribes it.
    pub(crate) async fn subscribe(&self, channel: String) -> Result<()> {
        let mut state = self.state.lock().await;
        state.channels.insert(channel.clone());
        let Some(sink) = state.sink.as_mut() else {
            return Err(down());
        };
        let result = within(
            "subscribe",
            self.options.response_timeout,
            sink.subscribe(&channel),
        )
        .await;
        if result.is_err() {
            state.sink = None;
            self.broken.notify_one();
        }
        result
    }

    /// Drops `channel`. While disconnected this succeeds at once: nothing
    /// arrives now, and the next connection will not subscribe it.
    pub(crate) async fn unsubscribe(&self, channel: String) -> Result<()> {
        let mut state = self.state.lock().await;
        state.channels.remove(&channel);
        let Some(sink) = state.sink.as_mut() else {
            return Ok(());
        };
        let result = within(
            "unsubscribe",
            self.options.response_timeout,
            sink.unsubscribe(&channel),
        )
        .await;
        if result.is_err() {
            state.sink = None;
            self.broken.notify_one();
        }
        result
    }

    /// A new connection with every held channel subscribed; only then does
    /// `subscribe` use it.
    async fn reconnect(&self) -> Result<(PubSubSink, PubSubStream)> {
        let (mut sink, stream) = open(&self.client, &self.options).await?;
        let mut state = self.state.lock().await;
        let channels: Vec<String> = state.channels.iter().cloned().collect();
        for chunk in channels.chunks(RESUBSCRIBE_CHUNK) {
            within(
                "resubscribe",
                self.options.response_timeout,
                sink.subscribe(chunk),
            )
            .await?;
        }
        state.sink = Some(sink.clone());
        drop(state);
        self.reconnects.send_modify(|n| *n += 1);
        Ok((sink, stream))
    }

    /// Tells the engine the connection was down: it re-syncs its sessions.
    fn resumed(&self, node: &NodeId) {
        let output = self.output.lock();
        if let Some(tx) = output.as_ref() {
            let resumed = BusMessage {
                origin: node.clone(),
                topic: Topic::Resumed,
                payload: bytes::Bytes::new(),
            };
            if tx.try_send(resumed).is_err() {
                tracing::warn!("redis bus: could not tell the engine to re-sync after a reconnect");
            }
        }
    }

    /// Hands one message to the engine, never waiting: a full queue drops
    /// it (the store still has it for the next sync).
    fn forward(&self, keys: &Keys, msg: &redis::Msg) {
        let Some(topic) = keys.topic(msg.get_channel_name()) else {
            return;
        };
        let Some((origin, payload)) = frame::decode(msg.get_payload_bytes()) else {
            tracing::warn!(
                channel = msg.get_channel_name(),
                "redis bus: malformed message dropped"
            );
            return;
        };
        let mut output = self.output.lock();
        let Some(tx) = output.as_ref() else { return };
        match tx.try_send(BusMessage {
            origin,
            topic,
            payload,
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(m)) => {
                tracing::warn!(topic = ?m.topic, "redis bus: engine queue full, message dropped; recipients will sync");
            }
            Err(TrySendError::Closed(_)) => *output = None,
        }
    }
}

/// Reads the connection until it is lost, then reconnects; forever, until
/// the bus aborts it.
pub(crate) async fn drive(
    subs: Arc<Subscriptions>,
    first: (PubSubSink, PubSubStream),
    keys: Keys,
    options: RedisOptions,
    node: NodeId,
) {
    let (mut pinger, mut stream) = first;
    loop {
        read_until_lost(&subs, &keys, &options, &mut pinger, &mut stream).await;
        subs.state.lock().await.sink = None;
        let mut delay = options.reconnect_min;
        loop {
            tokio::time::sleep(jittered(delay)).await;
            match subs.reconnect().await {
                Ok((sink, fresh)) => {
                    tracing::info!("redis bus: pub/sub connection back; topics subscribed again");
                    subs.resumed(&node);
                    (pinger, stream) = (sink, fresh);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "redis bus: reconnect failed");
                    delay = (delay * 2).min(options.reconnect_max.max(options.reconnect_min));
                }
            }
        }
    }
}

async fn read_until_lost(
    subs: &Subscriptions,
    keys: &Keys,
    options: &RedisOptions,
    pinger: &mut PubSubSink,
    stream: &mut PubSubStream,
) {
    let mut tick = tokio::time::interval(options.ping_every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(msg) => subs.forward(keys, &msg),
                None => {
                    tracing::warn!("redis bus: pub/sub connection lost");
                    return;
                }
            },
            _ = tick.tick() => {
                let ping = within("ping", options.response_timeout, pinger.ping::<redis::Value>()).await;
                if let Err(e) = ping {
                    tracing::warn!(error = %e, "redis bus: pub/sub connection does not answer");
                    return;
                }
            }
            () = subs.broken.notified() => return,
        }
    }
}

/// `delay` scaled by a random factor in [0.5, 1): nodes that lost Redis
/// together do not all come back in the same millisecond.
fn jittered(delay: Duration) -> Duration {
    delay.mul_f64(rand::random_range(0.5..1.0))
}
