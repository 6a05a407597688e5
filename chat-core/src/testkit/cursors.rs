//! [`MessageStore`] conformance, part two: the cursors of users and devices:
//! what an append moves for its sender, acks per device, reads with their
//! seq, joins, new and removed devices, and the readers of them.

use super::fixtures::{append, device, event, group_id, text, user};
use crate::model::{ConversationId, DeviceId, MessageKind, UserId};
use crate::store::{AckMoved, Cursors, MessageStore};

async fn cursors(
    store: &dyn MessageStore,
    u: &UserId,
    d: Option<&DeviceId>,
    c: &ConversationId,
) -> Cursors {
    store
        .cursors(u, d, c)
        .await
        .unwrap_or_else(|e| panic!("cursors of {u} in {c} failed: {e}"))
}

/// An append moves its sender's read cursor (with the seq) to the new entry
/// (one reads a conversation one writes in), and its delivered cursors (the
/// user's and the sending device's) only when they already covered the
/// entry before: a device behind on others' entries must not skip them.
pub async fn append_moves_the_senders_cursors(store: &dyn MessageStore) {
    let conv = group_id();
    let (alice, bob) = (user("alice"), user("bob"));
    let phone = device("phone");
    let mut first = text(&conv, &alice, "alice first");
    first.device = Some(phone.clone());
    let m1 = append(store, first).await.message.message_id;
    assert_eq!(
        cursors(store, &alice, Some(&phone), &conv).await,
        Cursors {
            device_delivered: Some(m1),
            delivered: Some(m1),
            read: Some(m1),
            read_seq: 1,
        },
        "the first entry: nothing before it, the sender has (and has read) it"
    );
    let b = append(store, text(&conv, &bob, "from bob"))
        .await
        .message
        .message_id;
    let mut mine = text(&conv, &alice, "alice again");
    mine.device = Some(phone.clone());
    let m2 = append(store, mine).await.message.message_id;
    assert_eq!(
        cursors(store, &alice, Some(&phone), &conv).await,
        Cursors {
            device_delivered: Some(m1),
            delivered: Some(m1),
            read: Some(m2),
            read_seq: 3,
        },
        "the phone never acked bob's entry: its delivered cursors stay; read moves"
    );
    store
        .ack(&alice, &phone, &conv, b)
        .await
        .expect("ack failed");
    let mut third = text(&conv, &alice, "up to date now");
    third.device = Some(phone.clone());
    let m3 = append(store, third).await.message.message_id;
    let c = cursors(store, &alice, Some(&phone), &conv).await;
    assert_eq!(
        (c.device_delivered, c.delivered),
        (Some(b), Some(b)),
        "m2 is still not acked by the phone, so m3 does not move the cursors either"
    );
    store
        .ack(&alice, &phone, &conv, m3)
        .await
        .expect("ack failed");
    let mut fourth = text(&conv, &alice, "caught up");
    fourth.device = Some(phone.clone());
    let m4 = append(store, fourth).await.message.message_id;
    let c = cursors(store, &alice, Some(&phone), &conv).await;
    assert_eq!(
        (c.device_delivered, c.delivered),
        (Some(m4), Some(m4)),
        "caught up: own entries move it"
    );
    assert_eq!(
        cursors(store, &bob, None, &conv).await.read_seq,
        2,
        "bob's cursors stay at his own message"
    );
    assert_eq!(
        store
            .device_cursors(&phone)
            .await
            .expect("device_cursors failed"),
        vec![(conv.clone(), m4)]
    );
}

/// `ack` moves one device's cursor and the user's delivered cursor, never
/// backwards, and answers both before and after; another device of the
/// same user keeps its own cursor.
pub async fn ack_moves_device_and_user_cursors_forward(store: &dyn MessageStore) {
    let conv = group_id();
    let (sender, reader) = (user("sender"), user("reader"));
    let (phone, laptop) = (device("phone"), device("laptop"));
    let m1 = append(store, text(&conv, &sender, "1"))
        .await
        .message
        .message_id;
    let m2 = append(store, text(&conv, &sender, "2"))
        .await
        .message
        .message_id;
    let m3 = append(store, text(&conv, &sender, "3"))
        .await
        .message
        .message_id;

    let moved = store
        .ack(&reader, &phone, &conv, m2)
        .await
        .expect("ack failed");
    assert_eq!(
        moved,
        AckMoved {
            device_before: None,
            user_before: None,
            user_after: Some(m2)
        }
    );
    let moved = store
        .ack(&reader, &laptop, &conv, m1)
        .await
        .expect("ack failed");
    assert_eq!(
        moved,
        AckMoved {
            device_before: None,
            user_before: Some(m2),
            user_after: Some(m2)
        },
        "a device behind the user does not move the user's cursor back"
    );
    let moved = store
        .ack(&reader, &phone, &conv, m1)
        .await
        .expect("ack failed");
    assert_eq!(moved.device_before, Some(m2));
    assert_eq!(
        cursors(store, &reader, Some(&phone), &conv)
            .await
            .device_delivered,
        Some(m2),
        "a device cursor never moves backwards"
    );
    assert_eq!(
        cursors(store, &reader, Some(&laptop), &conv)
            .await
            .device_delivered,
        Some(m1),
        "each device keeps its own cursor"
    );
    store
        .ack(&reader, &laptop, &conv, m3)
        .await
        .expect("ack failed");
    let c = cursors(store, &reader, Some(&laptop), &conv).await;
    assert_eq!((c.device_delivered, c.delivered), (Some(m3), Some(m3)));
    assert_eq!(c.read, None, "acks do not read");
    let other = group_id();
    let o1 = append(store, text(&other, &sender, "elsewhere"))
        .await
        .message
        .message_id;
    store
        .ack(&reader, &laptop, &other, o1)
        .await
        .expect("ack failed");
    let mut listed = store.device_cursors(&laptop).await.expect("device_cursors");
    listed.sort();
    let mut want = vec![(conv.clone(), m3), (other.clone(), o1)];
    want.sort();
    assert_eq!(
        listed, want,
        "device_cursors lists every conversation of the device"
    );
}

/// `mark_read` moves the read cursor forward with the seq of the newest text
/// entry at or below it (events do not count), and answers the cursor before.
pub async fn read_cursor_and_seq(store: &dyn MessageStore) {
    let conv = group_id();
    let (sender, reader) = (user("sender"), user("reader"));
    let m1 = append(store, text(&conv, &sender, "1"))
        .await
        .message
        .message_id;
    let m2 = append(store, text(&conv, &sender, "2"))
        .await
        .message
        .message_id;
    let r = append(
        store,
        event(&conv, &sender, MessageKind::Reaction, Some(m1), "👍"),
    )
    .await
    .message
    .message_id;
    let m3 = append(store, text(&conv, &sender, "3"))
        .await
        .message
        .message_id;
    assert_eq!(
        store
            .mark_read(&reader, &conv, m2)
            .await
            .expect("mark_read"),
        (None, true)
    );
    let c = cursors(store, &reader, None, &conv).await;
    assert_eq!((c.read, c.read_seq), (Some(m2), 2));
    let head = store.head(&conv).await.expect("head");
    assert_eq!(head.seq - c.read_seq, 1, "one text entry unread");
    assert_eq!(
        store.mark_read(&reader, &conv, r).await.expect("mark_read"),
        (Some(m2), true)
    );
    assert_eq!(
        cursors(store, &reader, None, &conv).await.read_seq,
        2,
        "reading up to an event counts the text entries below it"
    );
    assert_eq!(
        store
            .mark_read(&reader, &conv, m1)
            .await
            .expect("mark_read"),
        (Some(r), false),
        "a read cursor never moves backwards"
    );
    store
        .mark_read(&reader, &conv, m3)
        .await
        .expect("mark_read");
    assert_eq!(cursors(store, &reader, None, &conv).await.read_seq, 3);
}

/// `start_member` moves a (re)joining user's delivered and read cursors to
/// the head it joined at, never backwards; `user_cursors` answers in order.
pub async fn start_member_and_user_cursors(store: &dyn MessageStore) {
    let conv = group_id();
    let (sender, joiner) = (user("sender"), user("joiner"));
    append(store, text(&conv, &sender, "before")).await;
    let m2 = append(store, text(&conv, &sender, "before too"))
        .await
        .message
        .message_id;
    let head = store.head(&conv).await.expect("head");
    store
        .start_member(&joiner, &conv, head)
        .await
        .expect("start_member failed");
    let c = cursors(store, &joiner, None, &conv).await;
    assert_eq!((c.delivered, c.read, c.read_seq), (Some(m2), Some(m2), 2));
    let m3 = append(store, text(&conv, &sender, "after"))
        .await
        .message
        .message_id;
    store
        .mark_read(&joiner, &conv, m3)
        .await
        .expect("mark_read");
    store
        .start_member(&joiner, &conv, head)
        .await
        .expect("start_member failed");
    assert_eq!(
        cursors(store, &joiner, None, &conv).await.read,
        Some(m3),
        "start_member never moves a cursor backwards"
    );
    let unknown = group_id();
    let listed = store
        .user_cursors(&joiner, &[unknown.clone(), conv.clone()])
        .await
        .expect("user_cursors failed");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], Cursors::default(), "no cursor: all empty");
    assert_eq!((listed[1].read, listed[1].read_seq), (Some(m3), 3));
}

/// A new device starts at the user's delivered cursors; a removed device's
/// cursors are forgotten; `conversation_cursors` lists the devices and the
/// users' delivered cursors of one conversation.
pub async fn devices_start_and_forget(store: &dyn MessageStore) {
    let (c1, c2) = (group_id(), group_id());
    let (sender, u) = (user("sender"), user("user"));
    let (phone, laptop) = (device("phone"), device("laptop"));
    let a = append(store, text(&c1, &sender, "a"))
        .await
        .message
        .message_id;
    let b = append(store, text(&c2, &sender, "b"))
        .await
        .message
        .message_id;
    store.ack(&u, &phone, &c1, a).await.expect("ack");
    store.ack(&u, &phone, &c2, b).await.expect("ack");
    store
        .start_device(&u, &laptop)
        .await
        .expect("start_device failed");
    let mut listed = store.device_cursors(&laptop).await.expect("device_cursors");
    listed.sort();
    let mut want = vec![(c1.clone(), a), (c2.clone(), b)];
    want.sort();
    assert_eq!(listed, want, "a new device starts where the user is");

    let in_c1 = store
        .conversation_cursors(&c1)
        .await
        .expect("conversation_cursors");
    let mut seen: Vec<(UserId, String)> = in_c1
        .iter()
        .map(|d| (d.user_id.clone(), d.device_id.to_string()))
        .collect();
    seen.sort();
    let mut expected = vec![
        (u.clone(), phone.to_string()),
        (u.clone(), laptop.to_string()),
        (u.clone(), String::new()),
        (sender.clone(), String::new()),
    ];
    expected.sort();
    assert_eq!(
        seen, expected,
        "every device cursor and every user's delivered cursor of the conversation"
    );
    assert!(in_c1.iter().all(|d| d.delivered == a));

    store
        .forget_device(&phone)
        .await
        .expect("forget_device failed");
    assert!(
        store
            .device_cursors(&phone)
            .await
            .expect("device_cursors")
            .is_empty(),
        "a forgotten device has no cursors"
    );
    assert!(
        !store
            .conversation_cursors(&c1)
            .await
            .expect("conversation_cursors")
            .iter()
            .any(|d| d.device_id == phone),
        "a forgotten device holds nothing back"
    );
}
