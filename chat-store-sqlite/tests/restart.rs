//! What a SQLite store keeps across a restart: written through one store,
//! read back through a new store on the same file after the first is gone,
//! and after a process that was killed mid-way (no clean close).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::store::{AccountStore, Appended};
use chat_core::store::{AckMoved, ConversationStore, Cursors, DeviceCursor, MessageStore};
use chat_core::{
    Account, Conversation, ConversationId, ConversationKind, Device, Error, GroupSettings, Head,
    HistoryVisibility, Invite, JoinPolicy, Member, Message, MessageId, MessageKind, NewMessage,
    Role, UserId,
};
use chat_store_sqlite::{Durability, SqliteConfig, SqliteStore};

fn account(id: &str) -> Account {
    Account {
        user_id: id.into(),
        username: format!("name-{id}"),
        password_hash: format!("$argon2id$hash-of-{id}"),
        display_name: id.to_uppercase(),
        created_at: 1_000,
    }
}

fn device(id: &str, user: &str, at: i64) -> Device {
    Device {
        device_id: id.into(),
        user_id: user.into(),
        name: format!("{id} of {user}"),
        created_at: at,
        last_seen: None,
    }
}

fn invite(hash: &str, group: &ConversationId, max_uses: Option<u32>) -> Invite {
    Invite {
        code_hash: hash.into(),
        conversation_id: group.clone(),
        created_by: "alice".into(),
        created_at: 2_000,
        max_uses,
        uses: 0,
        expires_at: None,
        revoked: false,
    }
}

/// An entry to append, built up by its kind, key and device.
struct Entry(NewMessage);

impl Entry {
    fn text(conversation: &ConversationId, sender: &str, body: &str) -> Self {
        Self(NewMessage {
            message: Message::text(
                MessageId(0),
                conversation.clone(),
                sender.into(),
                body,
                5_000,
            ),
            client_msg_id: None,
            device: None,
        })
    }

    fn event(
        conversation: &ConversationId,
        sender: &str,
        kind: MessageKind,
        target: Option<MessageId>,
        body: &str,
    ) -> Self {
        let mut e = Self::text(conversation, sender, body);
        e.0.message.kind = kind;
        e.0.message.ref_id = target;
        e
    }

    fn key(mut self, key: &str) -> Self {
        self.0.client_msg_id = Some(key.into());
        self
    }

    fn device(mut self, device: &str) -> Self {
        self.0.device = Some(device.into());
        self
    }

    /// Appends at the head's version with the next id above the head.
    async fn append(mut self, store: &SqliteStore) -> Appended {
        let conversation = self.0.message.conversation_id.clone();
        let head = store.head(&conversation).await.expect("head");
        self.0.message.message_id = MessageId(head.last_id.map_or(1_000, |l| l.0 + 10));
        store.append(self.0, head.version).await.expect("append")
    }
}

/// Everything the store answers about the data [`write_everything`] wrote.
#[derive(Debug, PartialEq)]
struct Snapshot {
    accounts: Vec<Option<Account>>,
    by_username: Option<Account>,
    devices: Vec<Device>,
    phone: Option<Device>,
    blocked: Vec<UserId>,
    group: Option<Conversation>,
    members: Vec<Member>,
    memberships: Vec<(ConversationId, Member)>,
    banned: bool,
    direct: Option<Conversation>,
    direct_members: Vec<Member>,
    range: Vec<Message>,
    history: Vec<Message>,
    purged_range: Vec<Message>,
    heads: Vec<Head>,
    bob_cursors: Cursors,
    alice_cursors: Vec<Cursors>,
    laptop_cursors: Vec<(ConversationId, MessageId)>,
    conversation_cursors: Vec<DeviceCursor>,
}

const GROUP: &str = "g:restart";
const PURGED: &str = "g:purged";

async fn snapshot(store: &SqliteStore) -> Snapshot {
    let group = ConversationId::from(GROUP);
    let purged = ConversationId::from(PURGED);
    let direct = ConversationId::direct(&"alice".into(), &"bob".into());
    let mut accounts = Vec::new();
    for id in ["alice", "bob"] {
        accounts.push(store.account(&id.into()).await.expect("account"));
    }
    Snapshot {
        accounts,
        by_username: store
            .account_by_username("name-bob")
            .await
            .expect("by name"),
        devices: store.devices(&"alice".into()).await.expect("devices"),
        phone: store.device(&"phone".into()).await.expect("device"),
        blocked: store.blocked_by(&"alice".into()).await.expect("blocked_by"),
        group: store.conversation(&group).await.expect("conversation"),
        members: store.members(&group).await.expect("members"),
        memberships: store.memberships(&"bob".into()).await.expect("memberships"),
        banned: store
            .is_banned(&group, &"carol".into())
            .await
            .expect("is_banned"),
        direct: store.conversation(&direct).await.expect("conversation"),
        direct_members: store.members(&direct).await.expect("members"),
        range: store.range(&group, None, None, 100).await.expect("range"),
        history: store
            .history(&group, None, None, 100)
            .await
            .expect("history"),
        purged_range: store.range(&purged, None, None, 100).await.expect("range"),
        heads: store
            .heads(&[group.clone(), purged.clone(), direct.clone()])
            .await
            .expect("heads"),
        bob_cursors: store
            .cursors(&"bob".into(), Some(&"bob-phone".into()), &group)
            .await
            .expect("cursors"),
        alice_cursors: store
            .user_cursors(&"alice".into(), &[group.clone(), purged.clone()])
            .await
            .expect("user_cursors"),
        laptop_cursors: store
            .device_cursors(&"laptop".into())
            .await
            .expect("device_cursors"),
        conversation_cursors: store
            .conversation_cursors(&group)
            .await
            .expect("conversation_cursors"),
    }
}

/// Writes one of everything: accounts, devices, a block, a group with
/// roles, settings, a ban, a direct conversation, invites, entries with
/// every kind of event applied, a purge, and cursors of every kind.
async fn write_everything(store: &SqliteStore) {
    let group = ConversationId::from(GROUP);
    for id in ["alice", "bob"] {
        store.create_account(account(id)).await.expect("account");
    }
    store
        .set_display_name(&"bob".into(), "Bobby")
        .await
        .expect("display name");
    store
        .create_device(device("phone", "alice", 10))
        .await
        .expect("device");
    store
        .create_device(device("laptop", "alice", 20))
        .await
        .expect("device");
    store
        .touch_device(&"phone".into(), 3_000)
        .await
        .expect("touch");
    store
        .block(&"alice".into(), &"bob".into())
        .await
        .expect("block");

    let conversation = Conversation {
        id: group.clone(),
        kind: ConversationKind::Group,
        name: Some("before".into()),
        created_by: "alice".into(),
        created_at: 1_500,
        join: JoinPolicy::Invite,
        history: HistoryVisibility::SinceJoin,
    };
    store
        .create_group(
            conversation,
            &[
                Member::founding("alice".into(), Role::Owner, 1_500),
                Member::founding("bob".into(), Role::Member, 1_500),
            ],
        )
        .await
        .expect("group");
    store
        .set_role(&group, &"bob".into(), Role::Admin)
        .await
        .expect("role");
    store
        .update_group(
            &group,
            &GroupSettings {
                name: Some("after".into()),
                join: Some(JoinPolicy::Open),
                history: Some(HistoryVisibility::All),
            },
        )
        .await
        .expect("settings");
    store
        .ensure_direct(Conversation::direct(&"alice".into(), &"bob".into(), 1_600))
        .await
        .expect("direct");

    let m1 = Entry::text(&group, "alice", "hello")
        .key("k1")
        .device("phone")
        .append(store)
        .await
        .message
        .message_id;
    let m2 = Entry::text(&group, "bob", "hi")
        .device("bob-phone")
        .append(store)
        .await
        .message
        .message_id;
    Entry::event(&group, "alice", MessageKind::Edit, Some(m1), "hello!")
        .append(store)
        .await;
    Entry::event(&group, "bob", MessageKind::Reaction, Some(m1), "👍")
        .append(store)
        .await;
    let carol = Member {
        user_id: "carol".into(),
        role: Role::Member,
        joined: m2,
        joined_at: 4_000,
    };
    assert!(store.add_member(&group, carol).await.expect("add"));
    Entry::event(&group, "alice", MessageKind::GroupEvent, None, "{}")
        .append(store)
        .await;
    store
        .start_member(
            &"carol".into(),
            &group,
            store.head(&group).await.expect("head"),
        )
        .await
        .expect("start_member");
    let m3 = Entry::text(&group, "carol", "bye")
        .append(store)
        .await
        .message
        .message_id;
    Entry::event(&group, "carol", MessageKind::Delete, Some(m3), "")
        .append(store)
        .await;
    store
        .remove_member(&group, &"carol".into(), true)
        .await
        .expect("remove");

    store
        .ack(&"bob".into(), &"bob-phone".into(), &group, m3)
        .await
        .expect("ack");
    store
        .mark_read(&"bob".into(), &group, m2)
        .await
        .expect("read");

    store
        .create_invite(invite("hash-twice", &group, Some(2)))
        .await
        .expect("invite");
    assert_eq!(
        store
            .redeem_invite("hash-twice", 2_500)
            .await
            .expect("redeem"),
        group
    );
    store
        .create_invite(invite("hash-revoked", &group, None))
        .await
        .expect("invite");
    assert!(
        store
            .revoke_invite(&group, "hash-revoked")
            .await
            .expect("revoke")
    );

    let purged = ConversationId::from(PURGED);
    let mut last = None;
    for body in ["p1", "p2", "p3"] {
        last = Some(
            Entry::text(&purged, "alice", body)
                .append(store)
                .await
                .message
                .message_id,
        );
    }
    let p3 = last.expect("three appends");
    assert_eq!(
        store
            .purge(&purged, MessageId(p3.0 - 10))
            .await
            .expect("purge"),
        2
    );
    store
        .start_device(&"alice".into(), &"laptop".into())
        .await
        .expect("start_device");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_written_is_read_back_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("chat.db");
    let store = SqliteStore::open(&path).await.expect("open");
    write_everything(&store).await;
    let before = snapshot(&store).await;
    drop(store);

    let store = SqliteStore::open(&path).await.expect("reopen");
    let after = snapshot(&store).await;
    assert_eq!(
        after, before,
        "the reopened file answers as the first store did"
    );

    // What the snapshot holds, so that equal snapshots are not equally empty.
    assert_eq!(
        after.accounts[1].as_ref().map(|a| a.display_name.as_str()),
        Some("Bobby")
    );
    assert_eq!(after.devices.len(), 2);
    assert_eq!(after.phone.as_ref().and_then(|d| d.last_seen), Some(3_000));
    assert_eq!(after.blocked, vec![UserId::from("bob")]);
    let group = after.group.as_ref().expect("the group");
    assert_eq!(
        (group.name.as_deref(), group.join, group.history),
        (Some("after"), JoinPolicy::Open, HistoryVisibility::All)
    );
    let roles: Vec<(String, Role)> = after
        .members
        .iter()
        .map(|m| (m.user_id.to_string(), m.role))
        .collect();
    assert_eq!(
        roles,
        vec![("alice".into(), Role::Owner), ("bob".into(), Role::Admin)]
    );
    assert!(after.banned, "carol's ban survives");
    assert_eq!(after.direct_members.len(), 2);
    let first = &after.range[0];
    assert_eq!((first.body.as_str(), first.edited), ("hello!", true));
    assert_eq!(
        serde_json::to_value(&first.reactions).expect("json"),
        serde_json::json!({"👍": ["bob"]})
    );
    assert_eq!(after.range.len(), 7, "three texts, four events");
    let deleted = &after.range[5];
    assert!(deleted.deleted && deleted.body.is_empty());
    assert_eq!(after.history.len(), 6, "history leaves out the group event");
    assert_eq!(after.purged_range.len(), 1, "the purge survives");
    assert_eq!(
        (after.heads[0].seq, after.heads[0].version),
        (3, 1),
        "three text entries, one group event"
    );
    assert_eq!(after.heads[1].seq, 3, "a purge leaves the head");
    assert_eq!(
        after.heads[2],
        Head::default(),
        "the direct conversation has no entry"
    );
    assert_eq!(after.bob_cursors.read_seq, 2);
    assert_eq!(
        after.bob_cursors.device_delivered,
        after.bob_cursors.delivered
    );
    assert_eq!(after.laptop_cursors.len(), 2, "the laptop started in both");
    assert!(after.conversation_cursors.len() >= 4);

    // The invites kept their counts and flags.
    assert_eq!(
        store
            .redeem_invite("hash-twice", 2_600)
            .await
            .expect("second use"),
        ConversationId::from(GROUP)
    );
    assert!(matches!(
        store.redeem_invite("hash-twice", 2_700).await,
        Err(Error::Gone { .. })
    ));
    assert!(matches!(
        store.redeem_invite("hash-revoked", 2_700).await,
        Err(Error::Gone { .. })
    ));
    // Dedup keys and the chain go on from where they were.
    let group = ConversationId::from(GROUP);
    let again = Entry::text(&group, "alice", "hello")
        .key("k1")
        .append(&store)
        .await;
    assert!(again.duplicate, "the dedup key survives");
    assert_eq!(again.message.message_id, after.range[0].message_id);
    let next = Entry::text(&group, "bob", "still here")
        .append(&store)
        .await;
    assert_eq!(next.prev, after.heads[0].last_id, "the chain continues");
    let moved: AckMoved = store
        .ack(
            &"bob".into(),
            &"bob-phone".into(),
            &group,
            next.message.message_id,
        )
        .await
        .expect("ack");
    assert_eq!(moved.device_before, after.bob_cursors.device_delivered);
}

const CHILD: &str = "CHAT_SQLITE_CRASH_CHILD_DIR";
/// Answered appends the parent waits for before it kills the child.
const BEFORE_KILL: usize = 200;

/// In the child: 8 tasks append with `Durability::Full` without pause,
/// printing each id once its append answered, until the parent kills the
/// process (or 60 s pass).
async fn crash_child(dir: &Path) -> ! {
    let config = SqliteConfig::builder(dir.join("chat.db"))
        .durability(Durability::Full)
        .build()
        .expect("config");
    let store = Arc::new(SqliteStore::connect(config).await.expect("open"));
    let until = Instant::now() + Duration::from_secs(60);
    for t in 0..8 {
        let store = store.clone();
        tokio::spawn(async move {
            let conversation = ConversationId::from(format!("g:crash-{t}"));
            for i in 0.. {
                let a = Entry::text(&conversation, "w", &format!("{i}"))
                    .append(&store)
                    .await;
                println!("stored {conversation} {}", a.message.message_id);
            }
        });
    }
    tokio::time::sleep_until(until.into()).await;
    std::process::exit(0);
}

/// A process killed (SIGKILL) while its writer is in the middle of batches
/// loses none of the appends it had answered: no destructor ran, the log
/// was not checkpointed, and the next open finds every answered entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_loses_no_answered_write() {
    if let Ok(dir) = std::env::var(CHILD) {
        crash_child(Path::new(&dir)).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "a_killed_process_loses_no_answered_write",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child");
    // The child's lines, read on a thread of their own until the pipe closes.
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { break };
            // The harness prints "test … " before the child's first line.
            if let Some((_, rest)) = line.split_once("stored ") {
                let _ = lines_tx.send(rest.to_owned());
            }
        }
    });
    let mut answered = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.len() < BEFORE_KILL {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => answered.push(line),
            Err(e) => panic!(
                "the child answered {} appends in 60 s, not {BEFORE_KILL}: {e}",
                answered.len()
            ),
        }
    }
    child.kill().expect("kill the child");
    child.wait().expect("reap the child");
    // What it printed before it died (the pipe closes with it).
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(10)) {
        answered.push(line);
    }

    let store = SqliteStore::open(dir.path().join("chat.db"))
        .await
        .expect("reopen after the kill");
    for line in &answered {
        let (conversation, id) = line.split_once(' ').expect("conversation and id");
        let id = MessageId(id.parse().expect("an id"));
        let found = store
            .entry(&ConversationId::from(conversation), id)
            .await
            .expect("entry");
        assert!(
            found.is_some(),
            "answered entry {id} of {conversation} is gone"
        );
    }
}
