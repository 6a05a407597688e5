//! The engine driven by random operations and checked against a simple model.
//!
//! A few users send to groups and to each other, ack, join, leave, connect,
//! disconnect and sync, all through real [`Session`]s over the store under
//! test. After every step the model says exactly which message frames each
//! connected user must have received, and what the store must still hold:
//! - a sync (also the automatic one at connect) hands a user exactly the
//!   messages it has not acked, oldest first: nothing acked comes again,
//!   everything unacked does, also what it left a group with (while the
//!   store holds it), but nothing of a group sent after it left;
//! - live delivery reaches exactly the connected members (not the sender's
//!   own session, not non-members, nobody after leaving, no earlier messages
//!   after joining), in ascending id order per conversation;
//! - under [`Retention::UntilDelivered`] nothing is gone that some
//!   recipient has not acked, and what is gone is a prefix (the store purges
//!   below a low-water mark); under [`Retention::Forever`] nothing is gone.
//!
//! One's own messages are not pending for oneself in the model; the engine
//! may send one back to its sender's device when that device had not acked
//! everything before it (a cumulative cursor cannot skip others' entries),
//! so syncs are compared on others' messages.
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
use crate::engine::{Engine, Limits, NewGroup, Outbound, Session};
use crate::model::{ConversationId, JoinPolicy, MessageId, Retention, UserId};
use crate::store::{AccountStore, ConversationStore, MessageStore};

/// Users in a run.
pub const USERS: usize = 4;
/// Groups in a run (users 0, 1 and 2 start in each).
pub const GROUPS: usize = 2;

/// One step of a run. Indices are taken modulo the number of users, groups
/// or conversations, so any value is valid.
#[derive(Clone, Debug)]
pub enum Op {
    /// Open a session for a user (if it has none).
    Connect(usize),
    /// Close the user's session (if it has one).
    Disconnect(usize),
    /// The user sends to a group (refused when not a member).
    SendGroup(usize, usize),
    /// The user sends to another user, by `to`.
    SendDirect(usize, usize),
    /// The user acks a conversation up to its nth message.
    Ack(usize, usize, usize),
    /// The user joins a group.
    Join(usize, usize),
    /// The user leaves a group.
    Leave(usize, usize),
    /// The user asks for a sync.
    Sync(usize),
}

/// Random operations, weighted towards sends and acks.
pub fn op() -> impl Strategy<Value = Op> {
    let u = 0..USERS;
    let g = 0..GROUPS;
    prop_oneof![
        3 => u.clone().prop_map(Op::Connect),
        1 => u.clone().prop_map(Op::Disconnect),
        4 => (u.clone(), g.clone()).prop_map(|(u, g)| Op::SendGroup(u, g)),
        4 => (u.clone(), u.clone()).prop_map(|(u, v)| Op::SendDirect(u, v)),
        4 => (u.clone(), 0..conversation_count(), 0..8usize).prop_map(|(u, c, n)| Op::Ack(u, c, n)),
        1 => (u.clone(), g.clone()).prop_map(|(u, g)| Op::Join(u, g)),
        1 => (u.clone(), g).prop_map(|(u, g)| Op::Leave(u, g)),
        2 => u.prop_map(Op::Sync),
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
    /// Recipients that have not acked it (nor left the group).
    pending: BTreeSet<usize>,
    /// Recipients that left the group (their latest leave) without having
    /// acked it: their sync still sends it while the store holds it (a
    /// former member holds nothing back under until_delivered).
    left_pending: BTreeSet<usize>,
}

/// How long a step waits for a live frame the model expects before calling
/// it missing: far above any healthy delivery, bounded so a lost message
/// fails the test instead of hanging it.
const LIVE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

struct Client {
    session: Session,
    out: Outbound,
    /// Newest live message per conversation, for the order check.
    last_live: HashMap<String, MessageId>,
}

struct Run<S> {
    store: Arc<S>,
    engine: Engine,
    retention: Retention,
    users: Vec<UserId>,
    devices: Vec<Identity>,
    conversations: Vec<ConversationId>,
    members: Vec<BTreeSet<usize>>,
    /// Per group, the users that ever left it (their acks there are taken).
    departed: Vec<BTreeSet<usize>>,
    messages: Vec<ModelMessage>,
    clients: Vec<Option<Client>>,
    step: usize,
}

/// Runs `ops` against an engine over `store` and panics at the first
/// difference from the model. Users and groups are fresh (random names), so
/// a persistent store can be shared between runs.
pub async fn run<S>(store: Arc<S>, retention: Retention, ops: &[Op])
where
    S: MessageStore + ConversationStore + AccountStore,
{
    let engine = Engine::builder()
        .store(store.clone())
        .retention(retention)
        .insecure_fast_password_hashing()
        .limits(Limits {
            user_budget: None,
            addr_budget: None,
            ..Limits::default()
        })
        .build()
        .await
        .expect("engine builds");
    let tag: u64 = rand::random();
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
    }
    for a in 0..USERS {
        for b in a + 1..USERS {
            conversations.push(ConversationId::direct(&users[a], &users[b]));
        }
    }
    let mut run = Run {
        store,
        engine,
        retention,
        users,
        devices,
        conversations,
        members,
        departed: (0..GROUPS).map(|_| BTreeSet::new()).collect(),
        messages: Vec::new(),
        clients: (0..USERS).map(|_| None).collect(),
        step: 0,
    };
    for op in ops {
        run.apply(op).await;
        run.check_store().await;
        run.step += 1;
    }
    for u in 0..USERS {
        run.disconnect(u).await;
    }
    run.engine.shutdown().await;
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

    /// What a sync must send `user`: what it has not acked as a member,
    /// and what it left its groups with unacked that the store still holds.
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

    async fn apply(&mut self, op: &Op) {
        match *op {
            Op::Connect(u) => self.connect(u % USERS).await,
            Op::Disconnect(u) => self.disconnect(u % USERS).await,
            Op::SendGroup(u, g) => {
                let (u, g) = (u % USERS, g % GROUPS);
                let target = json!({"conversation_id": self.conversations[g].as_str()});
                self.send(u, g, target).await;
            }
            Op::SendDirect(u, v) => {
                let u = u % USERS;
                let v = (u + 1 + v % (USERS - 1)) % USERS;
                let c = self.direct_index(u, v);
                let target = json!({"to": self.users[v].as_str()});
                self.send(u, c, target).await;
            }
            Op::Ack(u, c, nth) => self.ack(u % USERS, c % conversation_count(), nth).await,
            Op::Join(u, g) => {
                let (u, g) = (u % USERS, g % GROUPS);
                self.engine
                    .add_member(&self.users[u], &self.conversations[g], &self.users[u])
                    .await
                    .expect("join");
                self.members[g].insert(u);
                self.expect_live(HashMap::new()).await;
            }
            Op::Leave(u, g) => {
                let (u, g) = (u % USERS, g % GROUPS);
                let result = self
                    .engine
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
                self.expect_live(HashMap::new()).await;
            }
            Op::Sync(u) => {
                let u = u % USERS;
                if self.clients[u].is_some() {
                    self.expect_live(HashMap::new()).await;
                    self.frame(u, json!({"type":"sync","id":"model-sync"}))
                        .await;
                    self.check_sync(u, Some("model-sync")).await;
                }
            }
        }
    }

    async fn connect(&mut self, u: usize) {
        if self.clients[u].is_some() {
            return;
        }
        let (mut session, out) = self
            .engine
            .connect(&self.devices[u])
            .await
            .expect("connect");
        // The automatic sync: read while it runs, as a transport would.
        let mut client = Client {
            session: {
                session.start().await.expect("sync at connect");
                session
            },
            out,
            last_live: HashMap::new(),
        };
        let own = self.own(u);
        let got: Vec<MessageId> = drain_sync(&mut client, None, &self.ctx())
            .into_iter()
            .filter(|id| !own.contains(id))
            .collect();
        self.clients[u] = Some(client);
        assert_eq!(
            got,
            self.pending_for(u).await,
            "{}: sync at connect of user {u}",
            self.ctx()
        );
        self.expect_live(HashMap::new()).await;
    }

    async fn disconnect(&mut self, u: usize) {
        if let Some(client) = self.clients[u].take() {
            client.session.close().await;
        }
    }

    async fn frame(&mut self, u: usize, frame: Value) {
        let client = self.clients[u].as_mut().expect("connected");
        client.session.handle_text(&frame.to_string()).await;
    }

    async fn check_sync(&mut self, u: usize, reply_to: Option<&str>) {
        let ctx = self.ctx();
        let own = self.own(u);
        let want = self.pending_for(u).await;
        let client = self.clients[u].as_mut().expect("connected");
        let got: Vec<MessageId> = drain_sync(client, reply_to, &ctx)
            .into_iter()
            .filter(|id| !own.contains(id))
            .collect();
        assert_eq!(got, want, "{ctx}: sync of user {u}");
    }

    /// Sends through a temporary session when the user has none.
    async fn send(&mut self, u: usize, c: usize, target: Value) {
        let temporary = self.clients[u].is_none();
        if temporary {
            self.connect(u).await;
        }
        let allowed = c >= GROUPS || self.members[c].contains(&u);
        let mut frame =
            json!({"type":"send","id":"model-send","body":format!("step {}", self.step)});
        frame
            .as_object_mut()
            .expect("object")
            .extend(target.as_object().expect("object").clone());
        self.frame(u, frame).await;
        let ctx = self.ctx();
        let reply = next_reply(self.clients[u].as_mut().expect("connected"), &ctx);
        if !allowed {
            assert_eq!(
                reply["type"],
                "error",
                "{}: a non-member's send",
                self.ctx()
            );
            assert_eq!(reply["code"], "not_member", "{}", self.ctx());
            self.expect_live(HashMap::new()).await;
        } else {
            assert_eq!(
                reply["type"],
                "sent",
                "{}: send answered {reply}",
                self.ctx()
            );
            let id: MessageId = reply["message_id"]
                .as_str()
                .expect("id")
                .parse()
                .expect("id");
            assert_eq!(
                reply["conversation_id"],
                self.conversations[c].as_str(),
                "{}",
                self.ctx()
            );
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
            if let Some(last) = self.messages.last() {
                assert!(id > last.id, "{}: ids ascend", self.ctx());
            }
            let live: HashMap<usize, Vec<MessageId>> = recipients
                .iter()
                .filter(|r| self.clients[**r].is_some())
                .map(|r| (*r, vec![id]))
                .collect();
            self.messages.push(ModelMessage {
                id,
                sender: u,
                conversation: c,
                pending: recipients,
                left_pending: BTreeSet::new(),
            });
            self.expect_live(live).await;
        }
        if temporary {
            self.disconnect(u).await;
        }
    }

    async fn ack(&mut self, u: usize, c: usize, nth: usize) {
        let ids: Vec<MessageId> = self
            .messages
            .iter()
            .filter(|m| m.conversation == c)
            .map(|m| m.id)
            .collect();
        if ids.is_empty() || self.clients[u].is_none() {
            return;
        }
        let up_to = ids[nth % ids.len()];
        // A former member acks up to the end of its membership.
        let taken = self.is_member(u, c) || (c < GROUPS && self.departed[c].contains(&u));
        let frame = json!({"type":"ack","conversation_id":self.conversations[c].as_str(),"message_id":up_to.to_string()});
        self.frame(u, frame).await;
        if taken {
            for m in self
                .messages
                .iter_mut()
                .filter(|m| m.conversation == c && m.id <= up_to)
            {
                m.pending.remove(&u);
                m.left_pending.remove(&u);
            }
        } else {
            let ctx = self.ctx();
            let reply = next_reply(self.clients[u].as_mut().expect("connected"), &ctx);
            assert_eq!(
                reply["code"],
                "not_member",
                "{}: a non-member's ack",
                self.ctx()
            );
        }
        self.expect_live(HashMap::new()).await;
    }

    /// Every connected user must have received exactly `expected` message
    /// frames since the last step, each in ascending order per conversation.
    async fn expect_live(&mut self, expected: HashMap<usize, Vec<MessageId>>) {
        // Let the engine's own tasks run first (a member added while
        // connected catches up from the store in a task of its own).
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        let ctx = self.ctx();
        for (u, client) in self.clients.iter_mut().enumerate() {
            let Some(client) = client else { continue };
            let want = expected.get(&u).cloned().unwrap_or_default();
            let mut got = Vec::new();
            loop {
                let frame = match try_next(&mut client.out) {
                    Some(Some(frame)) => frame,
                    Some(None) => break,
                    // Nothing queued. A frame the model still waits for
                    // may be behind a store read on a loaded machine (a
                    // member's chain starts from the head it reads):
                    // wait for it, boundedly. Extras show up at a later
                    // step, so an early stop here loses no check.
                    None if got.len() < want.len() => {
                        match tokio::time::timeout(LIVE_WAIT, client.out.recv()).await {
                            Ok(Some(frame)) => frame,
                            _ => break,
                        }
                    }
                    None => break,
                };
                let v: Value = serde_json::from_slice(&frame).expect("JSON frame");
                if v["type"] != "message" {
                    continue;
                }
                let id: MessageId = v["message"]["message_id"]
                    .as_str()
                    .expect("id")
                    .parse()
                    .expect("id");
                let conv = v["message"]["conversation_id"]
                    .as_str()
                    .expect("conv")
                    .to_owned();
                if let Some(last) = client.last_live.get(&conv) {
                    assert!(
                        id > *last,
                        "{ctx}: user {u} got {id} after {last} in {conv}"
                    );
                }
                client.last_live.insert(conv, id);
                got.push(id);
            }
            assert_eq!(got, want, "{ctx}: live messages to user {u}");
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

/// Reads a sync's message frames up to its `synced`; returns their ids.
fn drain_sync(client: &mut Client, reply_to: Option<&str>, ctx: &str) -> Vec<MessageId> {
    let mut ids = Vec::new();
    loop {
        let frame = try_next(&mut client.out)
            .flatten()
            .unwrap_or_else(|| panic!("{ctx}: sync ended without synced"));
        let v: Value = serde_json::from_slice(&frame).expect("JSON frame");
        match v["type"].as_str() {
            Some("message") => {
                let id: MessageId = v["message"]["message_id"]
                    .as_str()
                    .expect("id")
                    .parse()
                    .expect("id");
                if let Some(last) = ids.last() {
                    assert!(id > *last, "{ctx}: sync is oldest first");
                }
                ids.push(id);
            }
            Some("synced") => {
                assert_eq!(v["reply_to"].as_str(), reply_to, "{ctx}: synced reply_to");
                // Live order restarts after a sync: it may repeat unacked messages.
                client.last_live.clear();
                return ids;
            }
            _ => {}
        }
    }
}

/// The next `sent` or `error` frame (other frames are skipped).
fn next_reply(client: &mut Client, ctx: &str) -> Value {
    loop {
        let frame = try_next(&mut client.out)
            .flatten()
            .unwrap_or_else(|| panic!("{ctx}: no reply"));
        let v: Value = serde_json::from_slice(&frame).expect("JSON frame");
        if v["type"] == "sent" || v["type"] == "error" {
            return v;
        }
        assert_ne!(
            v["type"], "message",
            "{ctx}: a message frame before the reply"
        );
    }
}
