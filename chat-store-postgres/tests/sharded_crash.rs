//! A process killed in the middle of a send to two shards, and the
//! reconciler of the next process repairing what it left.
//!
//! `ShardedStore` by user over two PostgreSQL schemas. This binary (no
//! libtest harness: `main` below) runs each case by starting itself again
//! as a child with `CRASH_CHILD` set. The child sends one direct message
//! through a shard wrapped in a hook that, at the chosen step, prints
//! `PAUSED` and waits; the parent then kills it with SIGKILL, so nothing of
//! the send runs after that step, as in a crash. Then the parent opens the
//! shards afresh, as a restarted server would, runs the reconciler
//! (`spawn_reconciler`, whose first pass is at once) and checks that both
//! users' shards agree:
//!
//! - killed between the two writes: the entry is on the first copy; the
//!   reconciler copies it to the second (the send completes);
//! - killed after the intent, before the first write: nothing was stored;
//!   the reconciler forgets the intent (the send is undone: neither shard
//!   holds it).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use async_trait::async_trait;
use chat_core::store::{
    AckMoved, Appended, Cursors, DeviceCursor, Intent, MessageStore, RepairConfig, ShardBy,
    ShardedStore,
};
use chat_core::{
    ConversationId, DeviceId, Head, Message, MessageId, NewMessage, Result, UserId, now_millis,
};
use chat_store_postgres::testing::{self, SchemaGuard};
use chat_store_postgres::{PostgresConfig, PostgresStore};

/// Set in the child: which step it stops at.
const CHILD_VAR: &str = "CRASH_CHILD";
/// The two schemas, the two users and the entry id, for the child.
const SCHEMAS_VAR: &str = "CRASH_SCHEMAS";
const USERS_VAR: &str = "CRASH_USERS";
const ID_VAR: &str = "CRASH_ID";

/// How long the parent waits for the child to reach its step, and for the
/// reconciler; the child gives up on its own after [`CHILD_LIFETIME`].
const WAIT: Duration = Duration::from_secs(60);
const CHILD_LIFETIME: Duration = Duration::from_secs(120);

/// Where the child stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// At the second copy's write: the first copy holds the entry.
    BetweenWrites,
    /// At the first copy's write: only the intent is recorded.
    BeforeFirstWrite,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::BetweenWrites => "between-writes",
            Step::BeforeFirstWrite => "before-first-write",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "between-writes" => Step::BetweenWrites,
            "before-first-write" => Step::BeforeFirstWrite,
            other => panic!("unknown step {other}"),
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    if let Ok(step) = std::env::var(CHILD_VAR) {
        runtime.block_on(child(Step::parse(&step)));
        return;
    }
    let Some(url) = testing::test_url() else {
        return;
    };
    for step in [Step::BetweenWrites, Step::BeforeFirstWrite] {
        runtime.block_on(case(&url, step));
        println!("test sharded_crash::{} ... ok", step.name());
    }
}

async fn connect(url: &str, schema: &str) -> Arc<PostgresStore> {
    let config = PostgresConfig {
        schema: schema.to_owned(),
        ..PostgresConfig::default()
    };
    Arc::new(
        PostgresStore::connect_with(url, config)
            .await
            .unwrap_or_else(|e| panic!("connect to schema {schema}: {e}")),
    )
}

fn sharded(shards: Vec<Arc<dyn MessageStore>>) -> ShardedStore {
    ShardedStore::new(shards, ShardBy::User).expect("two shards")
}

/// A user of `shard` whose id starts with `label` (labels sort the users,
/// so the first-named user, whose shard holds the first copy, is known).
fn user_on(store: &ShardedStore, shard: usize, label: &str) -> UserId {
    loop {
        let user = UserId::from(format!("{label}-{:016x}", rand::random::<u64>()));
        if store.shard_of_user(&user) == shard {
            return user;
        }
    }
}

async fn case(url: &str, step: Step) {
    let schemas = [testing::fresh_schema(), testing::fresh_schema()];
    let _guards: Vec<SchemaGuard> = schemas.iter().map(|s| SchemaGuard::new(url, s)).collect();
    let shards = [
        connect(url, &schemas[0]).await,
        connect(url, &schemas[1]).await,
    ];
    let dyn_shards: Vec<Arc<dyn MessageStore>> = shards
        .iter()
        .map(|s| s.clone() as Arc<dyn MessageStore>)
        .collect();
    let probe = sharded(dyn_shards.clone());
    // "a-…" names the conversation first: shard 0 holds the first copy.
    let (a, b) = (user_on(&probe, 0, "a"), user_on(&probe, 1, "b"));
    let conversation = ConversationId::direct(&a, &b);
    let id = MessageId::first_at(u64::try_from(now_millis()).expect("a clock after 1970"));

    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .env(CHILD_VAR, step.name())
        .env(SCHEMAS_VAR, schemas.join(","))
        .env(USERS_VAR, format!("{a},{b}"))
        .env(ID_VAR, id.get().to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the child");
    let stdout = child.stdout.take().expect("the child's stdout");
    let (seen, paused) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if line == "PAUSED" {
                let _ = seen.send(());
            }
        }
    });
    let reached = paused.recv_timeout(WAIT);
    // SIGKILL: no destructor, no flush, no pending write of the child runs.
    child.kill().expect("kill the child");
    let status = child.wait().expect("reap the child");
    assert!(
        reached.is_ok(),
        "{step:?}: the child did not reach its step within {WAIT:?} (it exited {status})"
    );

    // What the killed process left.
    let first = shards[0]
        .range(&conversation, None, None, 10)
        .await
        .unwrap();
    let second = shards[1]
        .range(&conversation, None, None, 10)
        .await
        .unwrap();
    let intents = shards[0]
        .intents(None, MessageId(u64::MAX), 10)
        .await
        .unwrap();
    let want_first: Vec<MessageId> = match step {
        Step::BetweenWrites => vec![id],
        Step::BeforeFirstWrite => vec![],
    };
    assert_eq!(ids(&first), want_first, "{step:?}: the first copy");
    assert!(second.is_empty(), "{step:?}: the second copy is untouched");
    assert_eq!(intents.len(), 1, "{step:?}: the send's intent is recorded");

    // A restarted process: new connections, its reconciler at startup.
    // abandon_after zero: the killed send cannot be running any more.
    let restarted = Arc::new(
        sharded(vec![
            connect(url, &schemas[0]).await,
            connect(url, &schemas[1]).await,
        ])
        .with_repair(RepairConfig {
            grace: Duration::ZERO,
            abandon_after: Duration::ZERO,
            page: 16,
        }),
    );
    let reconciler = restarted.spawn_reconciler(Duration::from_millis(100));
    let deadline = tokio::time::Instant::now() + WAIT;
    while !shards[0]
        .intents(None, MessageId(u64::MAX), 10)
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{step:?}: the reconciler did not clear the intent within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reconciler.abort();

    let first = shards[0]
        .range(&conversation, None, None, 10)
        .await
        .unwrap();
    let second = shards[1]
        .range(&conversation, None, None, 10)
        .await
        .unwrap();
    assert_eq!(first, second, "{step:?}: both users' shards agree");
    assert_eq!(ids(&first), want_first, "{step:?}: completed, or undone");
    assert_eq!(
        shards[0].head(&conversation).await.unwrap(),
        shards[1].head(&conversation).await.unwrap(),
        "{step:?}: both heads agree"
    );
    // Either user's history, through the restarted store, shows the same.
    assert_eq!(
        ids(&restarted
            .history(&conversation, None, None, 10)
            .await
            .unwrap()),
        want_first
    );
    // And the conversation goes on from there on both copies.
    let next = entry(&conversation, &b, MessageId(id.get() + 1));
    let head = restarted.head(&conversation).await.unwrap();
    restarted
        .append(next, head.version)
        .await
        .expect("the next send");
    assert_eq!(
        shards[0]
            .range(&conversation, None, None, 10)
            .await
            .unwrap(),
        shards[1]
            .range(&conversation, None, None, 10)
            .await
            .unwrap(),
        "{step:?}: the next send reaches both copies"
    );
}

fn ids(messages: &[Message]) -> Vec<MessageId> {
    messages.iter().map(|m| m.message_id).collect()
}

fn entry(conversation: &ConversationId, sender: &UserId, id: MessageId) -> NewMessage {
    NewMessage {
        message: Message::text(
            id,
            conversation.clone(),
            sender.clone(),
            "half a send?",
            now_millis(),
        ),
        client_msg_id: Some(format!("k-{id}")),
        device: None,
    }
}

/// The child: one send, stopped at `step` by the hook.
async fn child(step: Step) {
    // Bounded even if the parent never kills it.
    std::thread::spawn(|| {
        std::thread::sleep(CHILD_LIFETIME);
        std::process::exit(3);
    });
    let url = testing::test_url().expect("the parent had a URL");
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let schemas = var(SCHEMAS_VAR);
    let (s0, s1) = schemas.split_once(',').expect("two schemas");
    let users = var(USERS_VAR);
    let (a, _) = users.split_once(',').expect("two users");
    let id = MessageId(var(ID_VAR).parse().expect("an id"));
    let (first, second): (Arc<dyn MessageStore>, Arc<dyn MessageStore>) =
        (connect(&url, s0).await, connect(&url, s1).await);
    let shards = match step {
        Step::BeforeFirstWrite => vec![Arc::new(Hook(first)) as Arc<dyn MessageStore>, second],
        Step::BetweenWrites => vec![first, Arc::new(Hook(second)) as Arc<dyn MessageStore>],
    };
    let store = sharded(shards);
    let (a, b) = (
        UserId::from(a),
        UserId::from(users.split_once(',').unwrap().1),
    );
    let conversation = ConversationId::direct(&a, &b);
    let _ = store.append(entry(&conversation, &a, id), 0).await;
    panic!("the send finished: the hook did not stop it");
}

/// A shard whose appends print `PAUSED` and never return: where the
/// parent kills the process.
struct Hook(Arc<dyn MessageStore>);

impl Hook {
    async fn pause(&self) -> ! {
        println!("PAUSED");
        // The parent reads stdout line by line.
        use std::io::Write;
        let _ = std::io::stdout().flush();
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
}

#[async_trait]
impl MessageStore for Hook {
    async fn append(&self, _: NewMessage, _: u64) -> Result<Appended> {
        self.pause().await
    }
    async fn append_after(&self, _: NewMessage, _: Option<MessageId>) -> Result<Appended> {
        self.pause().await
    }
    async fn put_intent(&self, i: &Intent) -> Result<()> {
        self.0.put_intent(i).await
    }
    async fn intents(&self, a: Option<MessageId>, b: MessageId, l: usize) -> Result<Vec<Intent>> {
        self.0.intents(a, b, l).await
    }
    async fn clear_intent(&self, i: &Intent) -> Result<()> {
        self.0.clear_intent(i).await
    }
    async fn head(&self, c: &ConversationId) -> Result<Head> {
        self.0.head(c).await
    }
    async fn heads(&self, c: &[ConversationId]) -> Result<Vec<Head>> {
        self.0.heads(c).await
    }
    async fn entry(&self, c: &ConversationId, id: MessageId) -> Result<Option<Message>> {
        self.0.entry(c, id).await
    }
    async fn history(
        &self,
        c: &ConversationId,
        b: Option<MessageId>,
        f: Option<MessageId>,
        l: usize,
    ) -> Result<Vec<Message>> {
        self.0.history(c, b, f, l).await
    }
    async fn range(
        &self,
        c: &ConversationId,
        a: Option<MessageId>,
        u: Option<MessageId>,
        l: usize,
    ) -> Result<Vec<Message>> {
        self.0.range(c, a, u, l).await
    }
    async fn remove(&self, c: &ConversationId, id: MessageId) -> Result<()> {
        self.0.remove(c, id).await
    }
    async fn purge(&self, c: &ConversationId, up_to: MessageId) -> Result<u64> {
        self.0.purge(c, up_to).await
    }
    async fn cursors(
        &self,
        u: &UserId,
        d: Option<&DeviceId>,
        c: &ConversationId,
    ) -> Result<Cursors> {
        self.0.cursors(u, d, c).await
    }
    async fn user_cursors(&self, u: &UserId, c: &[ConversationId]) -> Result<Vec<Cursors>> {
        self.0.user_cursors(u, c).await
    }
    async fn device_cursors(&self, d: &DeviceId) -> Result<Vec<(ConversationId, MessageId)>> {
        self.0.device_cursors(d).await
    }
    async fn conversation_cursors(&self, c: &ConversationId) -> Result<Vec<DeviceCursor>> {
        self.0.conversation_cursors(c).await
    }
    async fn ack(
        &self,
        u: &UserId,
        d: &DeviceId,
        c: &ConversationId,
        up_to: MessageId,
    ) -> Result<AckMoved> {
        self.0.ack(u, d, c, up_to).await
    }
    async fn mark_read(
        &self,
        u: &UserId,
        c: &ConversationId,
        up_to: MessageId,
    ) -> Result<(Option<MessageId>, bool)> {
        self.0.mark_read(u, c, up_to).await
    }
    async fn start_member(&self, u: &UserId, c: &ConversationId, h: Head) -> Result<()> {
        self.0.start_member(u, c, h).await
    }
    async fn start_device(&self, u: &UserId, d: &DeviceId) -> Result<()> {
        self.0.start_device(u, d).await
    }
    async fn forget_device(&self, d: &DeviceId) -> Result<()> {
        self.0.forget_device(d).await
    }
    async fn ping(&self) -> Result<()> {
        self.0.ping().await
    }
}
