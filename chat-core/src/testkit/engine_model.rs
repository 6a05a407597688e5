//! The engine driven by random operations and checked against a simple model.
//!
//! A few users send to groups and to each other (with a `client_msg_id`, and
//! again with the same one), ack, read, type, ask for history, join, leave,
//! connect (up to two connections each), disconnect and sync, all through
//! real [`Session`]s of TWO engines (nodes) that share the store under test,
//! one in-memory bus and one presence store: a user's connections alternate
//! between the nodes. After every step the model says exactly which frames
//! each connection must have received, and what the store must still hold:
//! - a sync (also the automatic one at connect) hands a device exactly the
//!   messages it has not acked, oldest first per conversation: nothing acked
//!   comes again, everything unacked does, also what it left a group with
//!   (while the store holds it), but nothing of a group sent after it left;
//! - live delivery reaches exactly the connected members' connections (the
//!   sender's other connection too, never the sending one, not non-members,
//!   nobody after leaving, no earlier messages after joining), in ascending
//!   id order per conversation, on either node;
//! - a repeated `client_msg_id` answers the first `message_id` and stores
//!   nothing new (the stored message may be sent out again: at least once);
//!   under until_delivered only while the message is still held;
//! - every `receipt` names a reader that acked (delivered) or read that far,
//!   and goes to someone it concerns; an ack that delivers a sender's
//!   messages gets that sender a `delivered` receipt, a read gets every
//!   other connected member a `read` receipt naming exactly the read id;
//! - `typing` reaches exactly the other members' connections;
//! - `history` shows exactly the messages since the caller's latest join
//!   (under until_delivered: a subset of them, holding every one not yet
//!   acked by all), newest first; non-members get `not_member` for ack,
//!   read, typing, history and send;
//! - no other frame comes: a stray `error` fails the run; a message a
//!   connection already got may come again (at least once; clients drop
//!   repeats by id) and is not counted;
//! - under [`Retention::UntilDelivered`] nothing is gone that some
//!   recipient has not acked, and what is gone is a prefix (the store purges
//!   below a low-water mark); under [`Retention::Forever`] nothing is gone.
//!
//! `group_event` frames (joins and leaves) are not modelled: they are only
//! noted as entries the connection was sent.
//!
//! One's own messages are not pending for oneself in the model; the engine
//! may send one back to its sender's device when that device had not acked
//! everything before it (a cumulative cursor cannot skip others' entries),
//! so syncs are compared on others' messages.
//!
//! Steps run one after another: the concurrency the model leaves out is
//! covered by the store conformance suite's racing appenders and by
//! `tests/engine_order.rs` (concurrent senders on three nodes over a store
//! of uneven latency).
//!
//! Adapter crates run it over their own store:
//! ```ignore
//! proptest::proptest! {
//!     #[test]
//!     fn engine_matches_model(ops in chat_core::testkit::engine_model::ops()) {
//!         let store = /* Arc<MyStore> */;
//!         runtime.block_on(chat_core::testkit::engine_model::run(store, Retention::Forever, &ops));
//!     }
//! }
//! ```

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::FutureExt;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::auth::Identity;
use crate::cluster::Bus;
use crate::engine::{Engine, Limits, NewGroup, Outbound, Session};
use crate::memory::{MemoryBusHub, MemoryPresence};
use crate::model::{ConversationId, JoinPolicy, MessageId, Retention, UserId};
use crate::store::{AccountStore, ConversationStore, MessageStore};

/// Users in a run.
pub const USERS: usize = 4;
/// Groups in a run (users 0, 1 and 2 start in each).
pub const GROUPS: usize = 2;
/// Engines (nodes) in a run, sharing the store, a bus and presence.
pub const NODES: usize = 2;
/// Connections one user holds at most at once.
pub const SESSIONS: usize = 2;

/// One step of a run. Indices are taken modulo the number of users, groups,
/// conversations, connections or messages, so any value is valid.
#[derive(Clone, Debug)]
pub enum Op {
    /// Open a connection for a user (if it has fewer than [`SESSIONS`]),
    /// on the next node in turn.
    Connect(usize),
    /// Close one of the user's connections (if it has one).
    Disconnect(usize, usize),
    /// The user sends to a group (refused when not a member).
    SendGroup(usize, usize),
    /// The user sends to another user, by `to`.
    SendDirect(usize, usize),
    /// The user sends one of its earlier messages again, with the same
    /// `client_msg_id` (a client's retry).
    Resend(usize, usize),
    /// The user acks a conversation up to its nth message.
    Ack(usize, usize, usize),
    /// The user reads a conversation up to its nth message.
    Read(usize, usize, usize),
    /// The user types in a conversation.
    Typing(usize, usize),
    /// The user asks for a conversation's history.
    History(usize, usize),
    /// The user joins a group.
    Join(usize, usize),
    /// The user leaves a group.
    Leave(usize, usize),
    /// The user asks for a sync on one of its connections.
    Sync(usize, usize),
}

/// Random operations, weighted towards sends and acks.
pub fn op() -> impl Strategy<Value = Op> {
    let u = 0..USERS;
    let g = 0..GROUPS;
    let c = 0..conversation_count();
    let k = 0..SESSIONS;
    prop_oneof![
        3 => u.clone().prop_map(Op::Connect),
        1 => (u.clone(), k.clone()).prop_map(|(u, k)| Op::Disconnect(u, k)),
        4 => (u.clone(), g.clone()).prop_map(|(u, g)| Op::SendGroup(u, g)),
        4 => (u.clone(), u.clone()).prop_map(|(u, v)| Op::SendDirect(u, v)),
        1 => (u.clone(), 0..8usize).prop_map(|(u, n)| Op::Resend(u, n)),
        4 => (u.clone(), c.clone(), 0..8usize).prop_map(|(u, c, n)| Op::Ack(u, c, n)),
        2 => (u.clone(), c.clone(), 0..8usize).prop_map(|(u, c, n)| Op::Read(u, c, n)),
        1 => (u.clone(), c.clone()).prop_map(|(u, c)| Op::Typing(u, c)),
        1 => (u.clone(), c).prop_map(|(u, c)| Op::History(u, c)),
        1 => (u.clone(), g.clone()).prop_map(|(u, g)| Op::Join(u, g)),
        1 => (u.clone(), g).prop_map(|(u, g)| Op::Leave(u, g)),
        2 => (u, k).prop_map(|(u, k)| Op::Sync(u, k)),
    ]
}

/// A run's worth of operations.
pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..40)
}

/// Groups first, then one direct conversation per pair of users.
fn conversation_count() -> usize {
    GROUPS + USERS * (USERS - 1) / 2
}

struct ModelMessage {
    id: MessageId,
    sender: usize,
    conversation: usize,
    client_msg_id: String,
    /// Recipients that have not acked it (nor left the group).
    pending: BTreeSet<usize>,
    /// Recipients that left the group (their latest leave) without having
    /// acked it: their sync still sends it while the store holds it (a
    /// former member holds nothing back under until_delivered).
    left_pending: BTreeSet<usize>,
}

/// How long a step waits for a frame the model expects before calling it
/// missing: far above any healthy delivery, bounded so a lost frame fails
/// the test instead of hanging it.
const LIVE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

struct Client {
    session: Session,
    out: Outbound,
    /// Newest live message per conversation, for the order check.
    last_live: HashMap<usize, MessageId>,
    /// Newest entry this connection was sent (or sent itself) per
    /// conversation: an ack is clamped to it.
    last_sent: HashMap<usize, MessageId>,
    /// Every message this connection got: delivery is at least once, and a
    /// repeat of one of these (which clients drop by id) is not counted.
    seen: BTreeSet<MessageId>,
    /// Typing frames (conversation, typist) this connection got: a typing
    /// frame is a hint of state, and a repeat of one is not counted.
    typing_seen: BTreeSet<(usize, usize)>,
}

/// A receipt the model requires at one connection: from `reader` about
/// conversation `c`, naming an id in `min..=max`.
#[derive(Clone, Debug, PartialEq)]
struct WantReceipt {
    c: usize,
    reader: usize,
    read: bool,
    min: MessageId,
    max: MessageId,
}

/// What each connection, keyed (user, connection), must get in one step.
#[derive(Default)]
struct Expect {
    messages: HashMap<(usize, usize), Vec<MessageId>>,
    receipts: HashMap<(usize, usize), Vec<WantReceipt>>,
    /// Typing frames: (conversation, typist).
    typing: HashMap<(usize, usize), Vec<(usize, usize)>>,
    /// Messages that connections may get (again) at this or any later
    /// step, but need not (see [`Run::send`]): over a slow store they may
    /// come after the step that sent them ended.
    optional: Vec<MessageId>,
}

struct Run<S> {
    store: Arc<S>,
    nodes: Vec<Engine>,
    retention: Retention,
    users: Vec<UserId>,
    devices: Vec<Identity>,
    conversations: Vec<ConversationId>,
    index: HashMap<String, usize>,
    members: Vec<BTreeSet<usize>>,
    /// Per group and user: how many model messages there were at its
    /// latest join (its history starts after them).
    joined_at: Vec<HashMap<usize, usize>>,
    /// Per group, the users that ever left it (their acks there are taken).
    departed: Vec<BTreeSet<usize>>,
    messages: Vec<ModelMessage>,
    /// Per user and conversation: how far it acked (delivered) and read.
    acked: Vec<HashMap<usize, MessageId>>,
    read: Vec<HashMap<usize, MessageId>>,
    clients: Vec<Vec<Client>>,
    /// Connections opened per user so far (picks the next one's node).
    opened: Vec<usize>,
    /// Messages any connection may get (again) at any step: see `optional`.
    may_repeat: BTreeSet<MessageId>,
    step: usize,
}

/// Runs `ops` against two engines over `store` and panics at the first
/// difference from the model. Users and groups are fresh (random names), so
/// a persistent store can be shared between runs.
pub async fn run<S>(store: Arc<S>, retention: Retention, ops: &[Op])
where
    S: MessageStore + ConversationStore + AccountStore,
{
    let hub = MemoryBusHub::new();
    let presence = Arc::new(MemoryPresence::new());
    let tag: u64 = rand::random();
    let mut nodes = Vec::new();
    for n in 0..NODES {
        let bus: Arc<dyn Bus> = Arc::new(hub.node(format!("model-{tag:x}-{n}")));
        let worker = u16::try_from(n + 1).expect("few nodes");
        nodes.push(
            Engine::builder()
                .worker_id(worker)
                .store(store.clone())
                .presence(presence.clone())
                .bus(bus)
                .retention(retention)
                .insecure_fast_password_hashing()
                .limits(Limits {
                    user_budget: None,
                    addr_budget: None,
                    ..Limits::default()
                })
                .build()
                .await
                .expect("engine builds"),
        );
    }
    let engine = &nodes[0];
    let mut users = Vec::new();
    let mut devices = Vec::new();
    for i in 0..USERS {
        let ok = engine
            .signup(&format!("model-{tag:x}-{i}"), "model password", None)
            .await
            .expect("signup");
        users.push(ok.user_id.clone());
        devices.push(ok.identity());
    }
    let mut conversations = Vec::new();
    let mut members = Vec::new();
    let mut joined_at = Vec::new();
    for g in 0..GROUPS {
        let start: Vec<UserId> = users[1..3].to_vec();
        let id = engine
            .create_group(
                &users[0],
                NewGroup {
                    name: format!("group {g}"),
                    members: start,
                    join: JoinPolicy::Open,
                    ..NewGroup::default()
                },
            )
            .await
            .expect("create group");
        conversations.push(id);
        members.push((0..3).collect());
        joined_at.push((0..3).map(|u| (u, 0)).collect());
    }
    for a in 0..USERS {
        for b in a + 1..USERS {
            conversations.push(ConversationId::direct(&users[a], &users[b]));
        }
    }
    let index = conversations
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str().to_owned(), i))
        .collect();
    let mut run = Run {
        store,
        nodes,
        retention,
        users,
        devices,
        conversations,
        index,
        members,
        joined_at,
        departed: (0..GROUPS).map(|_| BTreeSet::new()).collect(),
        messages: Vec::new(),
        acked: (0..USERS).map(|_| HashMap::new()).collect(),
        read: (0..USERS).map(|_| HashMap::new()).collect(),
        clients: (0..USERS).map(|_| Vec::new()).collect(),
        opened: vec![0; USERS],
        may_repeat: BTreeSet::new(),
        step: 0,
    };
    for op in ops {
        run.apply(op).await;
        run.check_store().await;
        run.step += 1;
    }
    for u in 0..USERS {
        while !run.clients[u].is_empty() {
            run.disconnect(u, 0).await;
        }
    }
    for node in &run.nodes {
        node.shutdown().await;
    }
}

fn message_id(v: &Value) -> MessageId {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a message id, got {v}"))
}

impl<S> Run<S>
where
    S: MessageStore + ConversationStore + AccountStore,
{
    fn direct_index(&self, a: usize, b: usize) -> usize {
        let (a, b) = (a.min(b), a.max(b));
        // Pairs are numbered row by row: (0,1), (0,2), …, (1,2), …
        GROUPS + (0..a).map(|i| USERS - 1 - i).sum::<usize>() + (b - a - 1)
    }

    fn is_member(&self, user: usize, conversation: usize) -> bool {
        if conversation < GROUPS {
            return self.members[conversation].contains(&user);
        }
        // A direct conversation exists once a message went into it.
        let (a, b) = self.pair_of(conversation);
        (user == a || user == b) && self.messages.iter().any(|m| m.conversation == conversation)
    }

    /// The members of a conversation now (a direct one's pair once it exists).
    fn members_of(&self, conversation: usize) -> BTreeSet<usize> {
        (0..USERS)
            .filter(|u| self.is_member(*u, conversation))
            .collect()
    }

    fn pair_of(&self, conversation: usize) -> (usize, usize) {
        for a in 0..USERS {
            for b in a + 1..USERS {
                if self.direct_index(a, b) == conversation {
                    return (a, b);
                }
            }
        }
        unreachable!("not a direct conversation index")
    }

    /// What a sync must hand `user`'s device, sorted by id: what it has
    /// not acked as a member, and what it left its groups with unacked that
    /// the store still holds.
    async fn pending_for(&self, user: usize) -> Vec<MessageId> {
        let mut stored: HashMap<usize, BTreeSet<MessageId>> = HashMap::new();
        let mut ids = Vec::new();
        for m in &self.messages {
            if m.pending.contains(&user) {
                ids.push(m.id);
            } else if m.left_pending.contains(&user) {
                let held = match stored.entry(m.conversation) {
                    Entry::Occupied(held) => held.into_mut(),
                    Entry::Vacant(slot) => slot.insert(
                        self.store
                            .history(&self.conversations[m.conversation], None, None, 10_000)
                            .await
                            .expect("history")
                            .into_iter()
                            .map(|e| e.message_id)
                            .collect(),
                    ),
                };
                if held.contains(&m.id) {
                    ids.push(m.id);
                }
            }
        }
        ids.sort();
        ids
    }

    /// Ids of `user`'s own messages (which a sync may send back to it).
    fn own(&self, user: usize) -> BTreeSet<MessageId> {
        self.messages
            .iter()
            .filter(|m| m.sender == user)
            .map(|m| m.id)
            .collect()
    }

    fn ctx(&self) -> String {
        format!("step {}", self.step)
    }

    fn conversation_of(&self, v: &Value) -> usize {
        let name = v
            .as_str()
            .unwrap_or_else(|| panic!("a conversation id, got {v}"));
        *self
            .index
            .get(name)
            .unwrap_or_else(|| panic!("{}: a frame names unknown conversation {name}", self.ctx()))
    }

    fn user_of(&self, v: &Value) -> usize {
        self.users
            .iter()
            .position(|u| Some(u.as_str()) == v.as_str())
            .unwrap_or_else(|| panic!("{}: a frame names unknown user {v}", self.ctx()))
    }

    async fn apply(&mut self, op: &Op) {
        match *op {
            Op::Connect(u) => self.connect(u % USERS).await,
            Op::Disconnect(u, k) => {
                let u = u % USERS;
                if !self.clients[u].is_empty() {
                    let k = k % self.clients[u].len();
                    self.disconnect(u, k).await;
                }
            }
            Op::SendGroup(u, g) => {
                let (u, g) = (u % USERS, g % GROUPS);
                let target = json!({"conversation_id": self.conversations[g].as_str()});
                self.send(u, g, target, None).await;
            }
            Op::SendDirect(u, v) => {
                let u = u % USERS;
                let v = (u + 1 + v % (USERS - 1)) % USERS;
                let c = self.direct_index(u, v);
                let target = json!({"to": self.users[v].as_str()});
                self.send(u, c, target, None).await;
            }
            Op::Resend(u, nth) => {
                let u = u % USERS;
                // Under until_delivered a message every recipient acked may
                // be purged, and its dedup record with it: a retry then
                // stores a new message (a gap of the engine, see
                // docs/testing.md). Only retries of messages still held.
                let own: Vec<usize> = (0..self.messages.len())
                    .filter(|i| self.messages[*i].sender == u)
                    .filter(|i| {
                        self.retention == Retention::Forever
                            || !self.messages[*i].pending.is_empty()
                    })
                    .collect();
                if let Some(&i) = own.get(nth % own.len().max(1)) {
                    let c = self.messages[i].conversation;
                    let target = json!({"conversation_id": self.conversations[c].as_str()});
                    self.send(u, c, target, Some(i)).await;
                }
            }
            Op::Ack(u, c, nth) => self.ack(u % USERS, c % conversation_count(), nth).await,
            Op::Read(u, c, nth) => self.read(u % USERS, c % conversation_count(), nth).await,
            Op::Typing(u, c) => self.typing(u % USERS, c % conversation_count()).await,
            Op::History(u, c) => self.history(u % USERS, c % conversation_count()).await,
            Op::Join(u, g) => {
                let (u, g) = (u % USERS, g % GROUPS);
                self.nodes[0]
                    .add_member(&self.users[u], &self.conversations[g], &self.users[u])
                    .await
                    .expect("join");
                if self.members[g].insert(u) {
                    self.joined_at[g].insert(u, self.messages.len());
                }
                self.expect(Expect::default()).await;
            }
            Op::Leave(u, g) => {
                let (u, g) = (u % USERS, g % GROUPS);
                let result = self.nodes[0]
                    .remove_member(&self.users[u], &self.conversations[g], &self.users[u])
                    .await;
                if self.members[g].remove(&u) {
                    result.expect("leave");
                    // One departure per user and group is kept: this one
                    // replaces an earlier one.
                    for m in self.messages.iter_mut().filter(|m| m.conversation == g) {
                        m.left_pending.remove(&u);
                        if m.pending.remove(&u) {
                            m.left_pending.insert(u);
                        }
                    }
                    self.departed[g].insert(u);
                } else {
                    assert!(
                        result.is_err(),
                        "{}: leaving a group one is not in",
                        self.ctx()
                    );
                }
                self.expect(Expect::default()).await;
            }
            Op::Sync(u, k) => {
                let u = u % USERS;
                if !self.clients[u].is_empty() {
                    let k = k % self.clients[u].len();
                    self.expect(Expect::default()).await;
                    self.frame(u, k, json!({"type":"sync","id":"model-sync"}))
                        .await;
                    self.check_sync(u, k, Some("model-sync")).await;
                }
            }
        }
    }

    async fn connect(&mut self, u: usize) {
        if self.clients[u].len() >= SESSIONS {
            return;
        }
        let node = (u + self.opened[u]) % NODES;
        self.opened[u] += 1;
        let (mut session, out) = self.nodes[node]
            .connect(&self.devices[u])
            .await
            .expect("connect");
        // The automatic sync: read while it runs, as a transport would.
        session.start().await.expect("sync at connect");
        self.clients[u].push(Client {
            session,
            out,
            last_live: HashMap::new(),
            last_sent: HashMap::new(),
            seen: BTreeSet::new(),
            typing_seen: BTreeSet::new(),
        });
        let k = self.clients[u].len() - 1;
        self.check_sync(u, k, None).await;
        self.expect(Expect::default()).await;
    }

    async fn disconnect(&mut self, u: usize, k: usize) {
        if k < self.clients[u].len() {
            let client = self.clients[u].remove(k);
            client.session.close().await;
        }
    }

    async fn frame(&mut self, u: usize, k: usize, frame: Value) {
        let client = &mut self.clients[u][k];
        client.session.handle_text(&frame.to_string()).await;
    }

    /// Reads a sync's frames up to its `synced` on connection `k` of `u`
    /// and compares the others' messages with what the model holds pending.
    async fn check_sync(&mut self, u: usize, k: usize, reply_to: Option<&str>) {
        let ctx = self.ctx();
        let own = self.own(u);
        let mut got = Vec::new();
        let mut last_per_conversation: HashMap<usize, MessageId> = HashMap::new();
        loop {
            let frame = try_next(&mut self.clients[u][k].out)
                .flatten()
                .unwrap_or_else(|| panic!("{ctx}: sync ended without synced"));
            let v: Value = serde_json::from_slice(&frame).expect("JSON frame");
            match v["type"].as_str() {
                Some("message") => {
                    let id = message_id(&v["message"]["message_id"]);
                    let c = self.conversation_of(&v["message"]["conversation_id"]);
                    if self.may_repeat.contains(&id) && got.contains(&id) {
                        continue;
                    }
                    if self.may_repeat.contains(&id)
                        && last_per_conversation
                            .get(&c)
                            .is_some_and(|last| *last >= id)
                    {
                        continue;
                    }
                    if let Some(last) = last_per_conversation.insert(c, id) {
                        assert!(id > last, "{ctx}: sync is oldest first per conversation");
                    }
                    let client = &mut self.clients[u][k];
                    let sent = client.last_sent.entry(c).or_insert(id);
                    *sent = (*sent).max(id);
                    client.seen.insert(id);
                    if !own.contains(&id) {
                        got.push(id);
                    }
                }
                Some("synced") => {
                    assert_eq!(v["reply_to"].as_str(), reply_to, "{ctx}: synced reply_to");
                    break;
                }
                Some("group_event") => self.note_event(u, k, &v),
                _ => panic!("{ctx}: unexpected frame during the sync of user {u}: {v}"),
            }
        }
        // Live order restarts after a sync: it may repeat unacked messages.
        self.clients[u][k].last_live.clear();
        got.sort();
        assert_eq!(
            got,
            self.pending_for(u).await,
            "{ctx}: sync of user {u} (connection {k})"
        );
    }

    /// A `group_event` is an entry of the log: it moves what the connection
    /// was sent.
    fn note_event(&mut self, u: usize, k: usize, v: &Value) {
        if v["message_id"].is_string() {
            let id = message_id(&v["message_id"]);
            let c = self.conversation_of(&v["conversation_id"]);
            let sent = self.clients[u][k].last_sent.entry(c).or_insert(id);
            *sent = (*sent).max(id);
        }
    }

    /// Sends (a new message, or message `again` once more with its
    /// `client_msg_id`) through a temporary connection when the user has none.
    async fn send(&mut self, u: usize, c: usize, target: Value, again: Option<usize>) {
        let temporary = self.clients[u].is_empty();
        if temporary {
            self.connect(u).await;
        }
        let allowed = c >= GROUPS || self.members[c].contains(&u);
        let client_msg_id = match again {
            Some(i) => self.messages[i].client_msg_id.clone(),
            None => format!("cmid-{}-{u}", self.step),
        };
        let mut frame = json!({"type":"send","id":"model-send",
            "body":format!("step {}", self.step), "client_msg_id": client_msg_id});
        frame
            .as_object_mut()
            .expect("object")
            .extend(target.as_object().expect("object").clone());
        self.frame(u, 0, frame).await;
        let ctx = self.ctx();
        let reply = next_reply(
            &mut self.clients[u][0],
            &self.users[u],
            &self.may_repeat,
            &ctx,
        );
        if !allowed {
            assert_eq!(reply["type"], "error", "{ctx}: a non-member's send");
            assert_eq!(reply["code"], "not_member", "{ctx}");
            assert_eq!(reply["reply_to"], "model-send", "{ctx}");
            self.expect(Expect::default()).await;
        } else {
            assert_eq!(reply["type"], "sent", "{ctx}: send answered {reply}");
            assert_eq!(reply["reply_to"], "model-send", "{ctx}");
            let id = message_id(&reply["message_id"]);
            assert_eq!(
                reply["conversation_id"],
                self.conversations[c].as_str(),
                "{ctx}"
            );
            let sent = self.clients[u][0].last_sent.entry(c).or_insert(id);
            *sent = (*sent).max(id);
            self.clients[u][0].seen.insert(id);
            // One reads a conversation one writes in: the sender's read
            // cursor moves to its message (no receipt says so).
            let read = self.read[u].entry(c).or_insert(id);
            *read = (*read).max(id);
            if let Some(i) = again {
                assert_eq!(
                    id, self.messages[i].id,
                    "{ctx}: a repeated client_msg_id answers the first message_id"
                );
                // Nothing new is stored (check_store sees to it). The engine
                // sends the stored message out again (a retry may follow a
                // send whose delivery was cut short), so any member's
                // connection may get it once more; clients drop repeats.
                let mut expect = Expect::default();
                expect.optional.push(id);
                self.expect(expect).await;
            } else {
                let recipients: BTreeSet<usize> = if c < GROUPS {
                    self.members[c]
                        .iter()
                        .copied()
                        .filter(|m| *m != u)
                        .collect()
                } else {
                    let (a, b) = self.pair_of(c);
                    [a, b].into_iter().filter(|m| *m != u).collect()
                };
                if let Some(last) = self.messages.iter().rev().find(|m| m.conversation == c) {
                    assert!(id > last.id, "{ctx}: ids ascend in a conversation");
                }
                let mut expect = Expect::default();
                // The first message of a direct conversation creates it. A
                // sender's other connection on the other node attaches to it
                // when the node hears of it, and catches up only past the
                // device's delivered cursor, which the send itself moved:
                // that connection does not get the message live (a gap of
                // the engine, docs/testing.md). It may, so it is optional.
                let new_direct = c >= GROUPS && !self.messages.iter().any(|m| m.conversation == c);
                for r in recipients.iter().copied().chain([u]) {
                    for k in 0..self.clients[r].len() {
                        // Never back to the sending connection.
                        if (r, k) == (u, 0) {
                            continue;
                        }
                        if r == u && new_direct {
                            expect.optional.push(id);
                        } else {
                            expect.messages.insert((r, k), vec![id]);
                        }
                    }
                }
                self.messages.push(ModelMessage {
                    id,
                    sender: u,
                    conversation: c,
                    client_msg_id,
                    pending: recipients,
                    left_pending: BTreeSet::new(),
                });
                self.expect(expect).await;
            }
        }
        if temporary {
            self.disconnect(u, 0).await;
        }
    }

    /// The nth message of `c`, if `u` is connected and `c` has any.
    fn nth_of(&self, u: usize, c: usize, nth: usize) -> Option<MessageId> {
        let ids: Vec<MessageId> = self
            .messages
            .iter()
            .filter(|m| m.conversation == c)
            .map(|m| m.id)
            .collect();
        if ids.is_empty() || self.clients[u].is_empty() {
            return None;
        }
        Some(ids[nth % ids.len()])
    }

    /// Answers `not_member` (with `reply_to` when the frame had an id).
    async fn expect_not_member(&mut self, u: usize, what: &str, reply_to: Option<&str>) {
        let ctx = self.ctx();
        let reply = next_reply(
            &mut self.clients[u][0],
            &self.users[u],
            &self.may_repeat,
            &ctx,
        );
        assert_eq!(reply["type"], "error", "{ctx}: a non-member's {what}");
        assert_eq!(reply["code"], "not_member", "{ctx}: a non-member's {what}");
        if let Some(id) = reply_to {
            assert_eq!(reply["reply_to"], id, "{ctx}: {what}");
        }
        self.expect(Expect::default()).await;
    }

    async fn ack(&mut self, u: usize, c: usize, nth: usize) {
        let Some(up_to) = self.nth_of(u, c, nth) else {
            return;
        };
        let frame = json!({"type":"ack","conversation_id":self.conversations[c].as_str(),"message_id":up_to.to_string()});
        self.frame(u, 0, frame).await;
        // A former member acks up to the end of its membership.
        let taken = self.is_member(u, c) || (c < GROUPS && self.departed[c].contains(&u));
        if !taken {
            return self.expect_not_member(u, "ack", None).await;
        }
        // Clamped to what this connection was sent.
        let effective = self.clients[u][0]
            .last_sent
            .get(&c)
            .map(|sent| up_to.min(*sent));
        let mut expect = Expect::default();
        if let Some(to) = effective {
            let cursor = self.acked[u].entry(c).or_insert(to);
            *cursor = (*cursor).max(to);
            // Each sender of messages this ack delivers gets a receipt
            // naming at least the newest of them (and no more than the ack).
            let mut newest: HashMap<usize, MessageId> = HashMap::new();
            for m in self
                .messages
                .iter_mut()
                .filter(|m| m.conversation == c && m.id <= to)
            {
                m.left_pending.remove(&u);
                if m.pending.remove(&u) {
                    let n = newest.entry(m.sender).or_insert(m.id);
                    *n = (*n).max(m.id);
                }
            }
            for (sender, min) in newest {
                for k in 0..self.clients[sender].len() {
                    expect
                        .receipts
                        .entry((sender, k))
                        .or_default()
                        .push(WantReceipt {
                            c,
                            reader: u,
                            read: false,
                            min,
                            max: to,
                        });
                }
            }
        }
        self.expect(expect).await;
    }

    async fn read(&mut self, u: usize, c: usize, nth: usize) {
        let Some(up_to) = self.nth_of(u, c, nth) else {
            return;
        };
        let frame = json!({"type":"read","conversation_id":self.conversations[c].as_str(),"message_id":up_to.to_string()});
        self.frame(u, 0, frame).await;
        if !self.is_member(u, c) {
            return self.expect_not_member(u, "read", None).await;
        }
        let mut expect = Expect::default();
        let before = self.read[u].get(&c).copied();
        if before.is_none_or(|b| b < up_to) {
            self.read[u].insert(c, up_to);
            // A small conversation: every other member's connections learn
            // the exact id.
            for other in self.members_of(c) {
                if other == u {
                    continue;
                }
                for k in 0..self.clients[other].len() {
                    expect
                        .receipts
                        .entry((other, k))
                        .or_default()
                        .push(WantReceipt {
                            c,
                            reader: u,
                            read: true,
                            min: up_to,
                            max: up_to,
                        });
                }
            }
        }
        self.expect(expect).await;
    }

    async fn typing(&mut self, u: usize, c: usize) {
        if self.clients[u].is_empty() {
            return;
        }
        let frame = json!({"type":"typing","conversation_id":self.conversations[c].as_str()});
        self.frame(u, 0, frame).await;
        if !self.is_member(u, c) {
            return self.expect_not_member(u, "typing", None).await;
        }
        let mut expect = Expect::default();
        for other in self.members_of(c) {
            if other == u {
                continue;
            }
            for k in 0..self.clients[other].len() {
                expect.typing.insert((other, k), vec![(c, u)]);
            }
        }
        self.expect(expect).await;
    }

    async fn history(&mut self, u: usize, c: usize) {
        if self.clients[u].is_empty() {
            return;
        }
        let frame = json!({"type":"history","id":"model-history","conversation_id":self.conversations[c].as_str()});
        self.frame(u, 0, frame).await;
        if !self.is_member(u, c) {
            return self
                .expect_not_member(u, "history", Some("model-history"))
                .await;
        }
        let ctx = self.ctx();
        let answer = next_of(&mut self.clients[u][0].out, "history", &ctx);
        assert_eq!(answer["reply_to"], "model-history", "{ctx}");
        let got: Vec<MessageId> = answer["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| message_id(&m["message_id"]))
            .collect();
        let mut sorted = got.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(got, sorted, "{ctx}: history is newest first");
        let since = if c < GROUPS {
            self.joined_at[c].get(&u).copied().unwrap_or(0)
        } else {
            0
        };
        let visible: Vec<&ModelMessage> = self
            .messages
            .iter()
            .enumerate()
            .filter(|(i, m)| m.conversation == c && *i >= since)
            .map(|(_, m)| m)
            .collect();
        let mut want: Vec<MessageId> = visible.iter().map(|m| m.id).collect();
        want.sort_by(|a, b| b.cmp(a));
        if self.retention == Retention::Forever {
            assert_eq!(got, want, "{ctx}: history of conversation {c} for user {u}");
        } else {
            let got: BTreeSet<MessageId> = got.into_iter().collect();
            assert!(
                got.iter().all(|id| want.contains(id)),
                "{ctx}: history of {c} for user {u} shows only its messages since its join: {got:?} of {want:?}"
            );
            let oldest_pending = visible.iter().find(|m| !m.pending.is_empty()).map(|m| m.id);
            for id in &want {
                if oldest_pending.is_some_and(|p| *id >= p) {
                    assert!(
                        got.contains(id),
                        "{ctx}: history of {c} for user {u} lacks {id}, which a recipient has not acked"
                    );
                }
            }
        }
        self.expect(Expect::default()).await;
    }

    /// Every connection must get exactly the message and typing frames
    /// `expected` names since the last step (messages in ascending order per
    /// conversation), at least its required receipts, and nothing else but
    /// receipts that are true and `group_event`s.
    async fn expect(&mut self, mut expected: Expect) {
        // Let the engines' own tasks run first (a member added while
        // connected catches up from the store in a task of its own).
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        self.may_repeat.extend(expected.optional.drain(..));
        let ctx = self.ctx();
        for u in 0..USERS {
            for k in 0..self.clients[u].len() {
                let want = expected.messages.remove(&(u, k)).unwrap_or_default();
                let mut want_receipts = expected.receipts.remove(&(u, k)).unwrap_or_default();
                let mut want_typing = expected.typing.remove(&(u, k)).unwrap_or_default();
                let mut got = Vec::new();
                loop {
                    let waiting = got.len() < want.len()
                        || !want_receipts.is_empty()
                        || !want_typing.is_empty();
                    let frame = match try_next(&mut self.clients[u][k].out) {
                        Some(Some(frame)) => frame,
                        Some(None) => break,
                        // Nothing queued. A frame the model still waits for
                        // may be behind a store read or the bus on a loaded
                        // machine: wait for it, boundedly. Extras show up at
                        // a later step, so an early stop here loses no check.
                        None if waiting => {
                            let out = &mut self.clients[u][k].out;
                            match tokio::time::timeout(LIVE_WAIT, out.recv()).await {
                                Ok(Some(frame)) => frame,
                                _ => break,
                            }
                        }
                        None => break,
                    };
                    let v: Value = serde_json::from_slice(&frame).expect("JSON frame");
                    match v["type"].as_str() {
                        Some("message") => {
                            let id = message_id(&v["message"]["message_id"]);
                            let c = self.conversation_of(&v["message"]["conversation_id"]);
                            // A message that may come again, and is not
                            // one this step still waits for, is not counted.
                            let client = &mut self.clients[u][k];
                            let repeat = (self.may_repeat.contains(&id)
                                || client.seen.contains(&id))
                                && !want[got.len().min(want.len())..].contains(&id);
                            client.seen.insert(id);
                            let sent = client.last_sent.entry(c).or_insert(id);
                            *sent = (*sent).max(id);
                            if repeat {
                                continue;
                            }
                            if let Some(last) = client.last_live.get(&c) {
                                assert!(
                                    id > *last,
                                    "{ctx}: user {u} got {id} after {last} in conversation {c}"
                                );
                            }
                            client.last_live.insert(c, id);
                            got.push(id);
                        }
                        Some("receipt") => {
                            let r = self.check_receipt(u, &v);
                            want_receipts.retain(|w| {
                                !(w.c == r.c
                                    && w.reader == r.reader
                                    && w.read == r.read
                                    && (w.min..=w.max).contains(&r.min))
                            });
                        }
                        Some("typing") => {
                            let seen = (
                                self.conversation_of(&v["conversation_id"]),
                                self.user_of(&v["user_id"]),
                            );
                            let client = &mut self.clients[u][k];
                            match want_typing.iter().position(|t| *t == seen) {
                                Some(at) => {
                                    want_typing.remove(at);
                                }
                                None if client.typing_seen.contains(&seen) => {}
                                None => panic!(
                                    "{ctx}: user {u} got a typing frame the model does not expect: {v}"
                                ),
                            }
                            client.typing_seen.insert(seen);
                        }
                        Some("group_event") => self.note_event(u, k, &v),
                        _ => {
                            panic!("{ctx}: user {u} (connection {k}) got an unexpected frame: {v}")
                        }
                    }
                }
                assert_eq!(
                    got, want,
                    "{ctx}: live messages to user {u} (connection {k})"
                );
                assert!(
                    want_receipts.is_empty(),
                    "{ctx}: user {u} (connection {k}) lacks receipts {want_receipts:?}"
                );
                assert!(
                    want_typing.is_empty(),
                    "{ctx}: user {u} (connection {k}) lacks typing frames {want_typing:?}"
                );
            }
        }
    }

    /// A receipt that `u` got must be true: its reader acked (delivered)
    /// or read that far, and `u` is concerned (it sent a message there up to
    /// that id, or, for `read`, is a member).
    fn check_receipt(&self, u: usize, v: &Value) -> WantReceipt {
        let ctx = self.ctx();
        let c = self.conversation_of(&v["conversation_id"]);
        let reader = self.user_of(&v["user_id"]);
        let id = message_id(&v["message_id"]);
        let read = match v["status"].as_str() {
            Some("delivered") => false,
            Some("read") => true,
            _ => panic!("{ctx}: a receipt with a bad status: {v}"),
        };
        assert_ne!(reader, u, "{ctx}: user {u} got a receipt about itself: {v}");
        let cursor = if read { &self.read } else { &self.acked };
        assert!(
            cursor[reader].get(&c).is_some_and(|at| *at >= id),
            "{ctx}: user {u} got a receipt its reader never gave: {v}"
        );
        if read {
            assert!(
                self.is_member(u, c),
                "{ctx}: a read receipt reached non-member {u}: {v}"
            );
        } else {
            assert!(
                self.messages
                    .iter()
                    .any(|m| m.conversation == c && m.sender == u && m.id <= id),
                "{ctx}: a delivered receipt reached user {u}, who sent nothing up to it: {v}"
            );
        }
        WantReceipt {
            c,
            reader,
            read,
            min: id,
            max: id,
        }
    }

    /// The store holds what the retention mode says: everything under
    /// forever; under until_delivered at least every message from the
    /// oldest one some recipient has not acked on, and what is gone is a
    /// prefix of the conversation.
    async fn check_store(&self) {
        for (c, conv) in self.conversations.iter().enumerate() {
            let stored: BTreeSet<MessageId> = self
                .store
                .history(conv, None, None, 10_000)
                .await
                .expect("history")
                .into_iter()
                .filter(|m| m.kind == crate::model::MessageKind::Text)
                .map(|m| m.message_id)
                .collect();
            let all: Vec<&ModelMessage> = self
                .messages
                .iter()
                .filter(|m| m.conversation == c)
                .collect();
            let step = self.step;
            if self.retention == Retention::Forever {
                let want: BTreeSet<MessageId> = all.iter().map(|m| m.id).collect();
                assert_eq!(
                    stored, want,
                    "step {step}: messages stored in conversation {c}"
                );
                continue;
            }
            let oldest_pending = all.iter().find(|m| !m.pending.is_empty()).map(|m| m.id);
            for m in &all {
                if oldest_pending.is_some_and(|p| m.id >= p) {
                    assert!(
                        stored.contains(&m.id),
                        "step {step}: message {} of conversation {c} is gone though a recipient has not acked it (or one before it)",
                        m.id
                    );
                }
            }
            let known: BTreeSet<MessageId> = all.iter().map(|m| m.id).collect();
            assert!(
                stored.is_subset(&known),
                "step {step}: conversation {c} stores messages nobody sent: {:?}",
                stored.difference(&known).collect::<Vec<_>>()
            );
            if let Some(gone_last) = all.iter().rev().find(|m| !stored.contains(&m.id)) {
                assert!(
                    all.iter()
                        .filter(|m| m.id < gone_last.id)
                        .all(|m| !stored.contains(&m.id)),
                    "step {step}: what is gone from conversation {c} is not a prefix"
                );
            }
        }
    }
}

/// The next queued frame without waiting. Unconstrained: Tokio's cooperative
/// budget would otherwise report an empty queue after many reads in one poll.
fn try_next(out: &mut Outbound) -> Option<Option<bytes::Bytes>> {
    tokio::task::unconstrained(out.recv()).now_or_never()
}

/// The next `sent` or `error` frame (no message frame may come first but
/// a repeat: one of `may_repeat` or one the connection already got).
fn next_reply(
    client: &mut Client,
    own: &UserId,
    may_repeat: &BTreeSet<MessageId>,
    ctx: &str,
) -> Value {
    loop {
        let v = next_frame(&mut client.out, ctx);
        if v["type"] == "sent" || v["type"] == "error" {
            return v;
        }
        if v["type"] == "message" {
            let id = message_id(&v["message"]["message_id"]);
            // The sender's own new message may come back to it before its
            // `sent` when it opens a direct conversation (the node attaches
            // the new conversation to all the user's connections while the
            // send is under way; docs/testing.md): a repeat of what `sent`
            // then names.
            let own_new_direct = v["message"]["sender_id"] == json!(own.as_str())
                && v["message"]["conversation_id"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("d:"));
            assert!(
                may_repeat.contains(&id) || client.seen.contains(&id) || own_new_direct,
                "{ctx}: a message frame (not a repeat) before the reply: {v}"
            );
            client.seen.insert(id);
        }
    }
}

/// The next frame of type `kind` (others before it are skipped; the
/// engine answers before it returns from `handle`).
fn next_of(out: &mut Outbound, kind: &str, ctx: &str) -> Value {
    loop {
        let v = next_frame(out, ctx);
        if v["type"] == kind {
            return v;
        }
        assert_ne!(v["type"], "error", "{ctx}: an error instead of {kind}: {v}");
    }
}

fn next_frame(out: &mut Outbound, ctx: &str) -> Value {
    let frame = try_next(out)
        .flatten()
        .unwrap_or_else(|| panic!("{ctx}: no reply"));
    serde_json::from_slice(&frame).expect("JSON frame")
}
