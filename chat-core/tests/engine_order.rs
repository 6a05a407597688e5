//! One order per conversation across nodes: senders on several nodes, a
//! store whose writes finish out of order, a bus that loses a message — and
//! every receiver still gets each message once, in ascending id order.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chat_core::cluster::{Bus, BusReceiver, Topic};
use chat_core::engine::{Engine, Limits};
use chat_core::memory::{MemoryBusHub, MemoryPresence, MemoryStore};
use chat_core::model::{
    ConversationId, DeviceId, Head, Message, MessageId, NewMessage, Retention, UserId,
};
use chat_core::store::{AckMoved, Appended, Cursors, DeviceCursor, Intent, MessageStore};
use serde_json::json;
use support::{Client, group, signup};

/// A store whose appends return after a random pause (0–4 ms): two sends
/// into one conversation finish in either order, on one node or several.
struct Uneven(Arc<MemoryStore>);

async fn pause() {
    let ms = rand::random_range(0..5u64);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[async_trait]
impl MessageStore for Uneven {
    async fn append(&self, entry: NewMessage, v: u64) -> chat_core::Result<Appended> {
        let out = self.0.append(entry, v).await;
        pause().await;
        out
    }
    async fn append_after(
        &self,
        entry: NewMessage,
        after: Option<MessageId>,
    ) -> chat_core::Result<Appended> {
        let out = self.0.append_after(entry, after).await;
        pause().await;
        out
    }
    async fn put_intent(&self, i: &Intent) -> chat_core::Result<()> {
        self.0.put_intent(i).await
    }
    async fn intents(
        &self,
        a: Option<MessageId>,
        b: MessageId,
        l: usize,
    ) -> chat_core::Result<Vec<Intent>> {
        self.0.intents(a, b, l).await
    }
    async fn clear_intent(&self, i: &Intent) -> chat_core::Result<()> {
        self.0.clear_intent(i).await
    }
    async fn head(&self, c: &ConversationId) -> chat_core::Result<Head> {
        self.0.head(c).await
    }
    async fn heads(&self, c: &[ConversationId]) -> chat_core::Result<Vec<Head>> {
        self.0.heads(c).await
    }
    async fn entry(&self, c: &ConversationId, id: MessageId) -> chat_core::Result<Option<Message>> {
        self.0.entry(c, id).await
    }
    async fn history(
        &self,
        c: &ConversationId,
        b: Option<MessageId>,
        f: Option<MessageId>,
        l: usize,
    ) -> chat_core::Result<Vec<Message>> {
        self.0.history(c, b, f, l).await
    }
    async fn range(
        &self,
        c: &ConversationId,
        a: Option<MessageId>,
        u: Option<MessageId>,
        l: usize,
    ) -> chat_core::Result<Vec<Message>> {
        self.0.range(c, a, u, l).await
    }
    async fn remove(&self, c: &ConversationId, id: MessageId) -> chat_core::Result<()> {
        self.0.remove(c, id).await
    }
    async fn purge(&self, c: &ConversationId, up_to: MessageId) -> chat_core::Result<u64> {
        self.0.purge(c, up_to).await
    }
    async fn cursors(
        &self,
        u: &UserId,
        d: Option<&DeviceId>,
        c: &ConversationId,
    ) -> chat_core::Result<Cursors> {
        self.0.cursors(u, d, c).await
    }
    async fn user_cursors(
        &self,
        u: &UserId,
        c: &[ConversationId],
    ) -> chat_core::Result<Vec<Cursors>> {
        self.0.user_cursors(u, c).await
    }
    async fn device_cursors(
        &self,
        d: &DeviceId,
    ) -> chat_core::Result<Vec<(ConversationId, MessageId)>> {
        self.0.device_cursors(d).await
    }
    async fn conversation_cursors(
        &self,
        c: &ConversationId,
    ) -> chat_core::Result<Vec<DeviceCursor>> {
        self.0.conversation_cursors(c).await
    }
    async fn ack(
        &self,
        u: &UserId,
        d: &DeviceId,
        c: &ConversationId,
        up_to: MessageId,
    ) -> chat_core::Result<AckMoved> {
        self.0.ack(u, d, c, up_to).await
    }
    async fn mark_read(
        &self,
        u: &UserId,
        c: &ConversationId,
        up_to: MessageId,
    ) -> chat_core::Result<(Option<MessageId>, bool)> {
        self.0.mark_read(u, c, up_to).await
    }
    async fn start_member(&self, u: &UserId, c: &ConversationId, h: Head) -> chat_core::Result<()> {
        self.0.start_member(u, c, h).await
    }
    async fn start_device(&self, u: &UserId, d: &DeviceId) -> chat_core::Result<()> {
        self.0.start_device(u, d).await
    }
    async fn forget_device(&self, d: &DeviceId) -> chat_core::Result<()> {
        self.0.forget_device(d).await
    }
    async fn ping(&self) -> chat_core::Result<()> {
        self.0.ping().await
    }
}

/// A bus that loses the `n`th entry a node publishes to a conversation
/// topic (it says it published it): what a node that died between storing
/// and publishing leaves behind.
struct LosesOne {
    inner: Arc<dyn Bus>,
    count: AtomicUsize,
    lose: usize,
}

#[async_trait]
impl Bus for LosesOne {
    async fn open(&self) -> chat_core::Result<BusReceiver> {
        self.inner.open().await
    }
    async fn publish(&self, topics: &[Topic], payload: Bytes) -> chat_core::Result<()> {
        if matches!(topics, [Topic::Conversation(_)])
            && payload.starts_with(br#"{"t":"entry""#)
            && self.count.fetch_add(1, Ordering::SeqCst) + 1 == self.lose
        {
            return Ok(());
        }
        self.inner.publish(topics, payload).await
    }
    async fn subscribe(&self, topic: &Topic) -> chat_core::Result<()> {
        self.inner.subscribe(topic).await
    }
    async fn unsubscribe(&self, topic: &Topic) -> chat_core::Result<()> {
        self.inner.unsubscribe(topic).await
    }
}

async fn nodes(n: u16, retention: Retention, lose: Option<usize>) -> Vec<Engine> {
    let store = Arc::new(MemoryStore::new());
    let presence = Arc::new(MemoryPresence::new());
    let hub = MemoryBusHub::new();
    let mut out = Vec::new();
    for i in 1..=n {
        let uneven = Arc::new(Uneven(store.clone()));
        let bus: Arc<dyn Bus> = Arc::new(hub.node(format!("node-{i}")));
        let bus: Arc<dyn Bus> = match lose {
            Some(k) if i == 1 => Arc::new(LosesOne {
                inner: bus,
                count: AtomicUsize::new(0),
                lose: k,
            }),
            _ => bus,
        };
        out.push(
            Engine::builder()
                .worker_id(i)
                .insecure_fast_password_hashing()
                .retention(retention)
                .message_store(uneven)
                .conversation_store(store.clone())
                .account_store(store.clone())
                .presence(presence.clone())
                .bus(bus)
                .limits(Limits {
                    user_budget: None,
                    addr_budget: None,
                    reorder_wait: Duration::from_millis(50),
                    ..Limits::default()
                })
                .build()
                .await
                .unwrap(),
        );
    }
    out
}

/// Reads `count` messages of `c` from `client`, acking each as a client
/// does, and checks they come once each, ascending.
async fn receive_in_order(client: &mut Client, c: &ConversationId, count: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    while ids.len() < count {
        let f = client.expect_after("message").await;
        let id: u64 = f["message"]["message_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        if let Some(last) = ids.last() {
            assert!(
                id > *last,
                "message {id} came after {last}: out of order or repeated"
            );
        }
        ids.push(id);
        client
            .send(json!({"type":"ack","conversation_id":c.as_str(),"message_id":id.to_string()}))
            .await;
    }
    ids
}

async fn senders_on_every_node(retention: Retention) {
    let engines = nodes(3, retention, None).await;
    let mut users = Vec::new();
    for (i, e) in engines.iter().enumerate() {
        users.push(signup(e, &format!("s{i}")).await);
    }
    let mut receivers = Vec::new();
    for (i, e) in engines.iter().enumerate() {
        receivers.push(signup(e, &format!("r{i}")).await);
    }
    let all: Vec<UserId> = users.iter().chain(&receivers).cloned().collect();
    let g = group(&engines[0], &users[0], "busy", &all[1..]).await;
    let per_sender = 40;
    let mut readers = Vec::new();
    for (e, r) in engines.iter().zip(&receivers) {
        let mut client = Client::connect_drained(e, r).await;
        let g = g.clone();
        readers.push(tokio::spawn(async move {
            receive_in_order(&mut client, &g, per_sender * 3).await
        }));
    }
    let mut writers = Vec::new();
    for (e, s) in engines.iter().zip(&users) {
        let mut client = Client::connect_drained(e, s).await;
        let g = g.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..per_sender {
                client
                    .send(json!({"type":"send","id":i.to_string(),"conversation_id":g.as_str(),"body":format!("{i}")}))
                    .await;
            }
            let mut sent = 0;
            while sent < per_sender {
                let f = client.next().await;
                if f["type"] == "sent" {
                    sent += 1;
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let mut seen = Vec::new();
    for r in readers {
        seen.push(
            tokio::time::timeout(Duration::from_secs(20), r)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "every receiver saw the same sequence"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn senders_on_three_nodes_one_order_for_every_receiver_forever() {
    senders_on_every_node(Retention::Forever).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn senders_on_three_nodes_one_order_for_every_receiver_until_delivered() {
    senders_on_every_node(Retention::UntilDelivered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_entry_lost_on_the_bus_is_read_from_the_store_in_its_place() {
    let engines = nodes(2, Retention::Forever, Some(2)).await;
    let sender = signup(&engines[0], "sender").await;
    let reader = signup(&engines[1], "reader").await;
    let g = group(&engines[0], &sender, "g", std::slice::from_ref(&reader)).await;
    let mut r = Client::connect_drained(&engines[1], &reader).await;
    let mut s = Client::connect_drained(&engines[0], &sender).await;
    for i in 0..4 {
        s.send(json!({"type":"send","id":i.to_string(),"conversation_id":g.as_str(),"body":format!("m{i}")})).await;
        s.expect_after("sent").await;
    }
    // The second publish never reached node 2; the third names it as prev,
    // so node 2 reads it from the store and keeps the order.
    let ids = receive_in_order(&mut r, &g, 4).await;
    assert_eq!(ids.len(), 4);
}
