//! Cassandra unreachable: the store answers `Unavailable` instead of
//! hanging, leaves nothing half-written, and serves again by itself once
//! the cluster is back, with a new driver session when the outage lasted.
//! The outage is a TCP proxy in front of the shared node that this test
//! stops and restarts (the node itself keeps running). A real restart of a
//! node is in chat-server's db_restart_cassandra test.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chat_core::store::MessageStore;
use chat_core::{ConversationId, Error, Message, MessageId, NewMessage, UserId, now_millis};
use chat_store_cassandra::CassandraStore;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// A TCP proxy that can be cut (listener closed, every connection reset)
/// and restored on the same port.
struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let mut proxy = Self {
            addr,
            upstream,
            task: None,
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream;
        self.task = Some(tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every
            // connection task, which closes both of its sockets.
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
    }

    /// Cuts every connection and refuses new ones.
    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    async fn restart(&mut self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind proxy");
        self.serve(listener);
    }
}

fn keyed(conversation: &ConversationId, sender: &UserId, id: MessageId, key: &str) -> NewMessage {
    NewMessage {
        message: Message {
            message_id: id,
            conversation_id: conversation.clone(),
            sender_id: sender.clone(),
            body: format!("body of {key}"),
            ts: now_millis(),
        },
        client_msg_id: Some(key.to_owned()),
    }
}

fn unique(label: &str) -> String {
    format!("faults-{label}-{:016x}", rand::random::<u64>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_cluster_answers_unavailable_and_recovers() {
    let points = support::contact_points();
    let keyspace = support::keyspace().await;
    let upstream: SocketAddr = tokio::net::lookup_host(points[0].as_str())
        .await
        .expect("resolve the test server")
        .next()
        .expect("an address for the test server");
    let mut proxy = Proxy::start(upstream).await;

    let timeout = Duration::from_secs(2);
    let mut config = support::config(vec![proxy.addr.to_string()], keyspace);
    config.request_timeout = timeout;
    config.connect_timeout = timeout;
    let store = CassandraStore::connect(config)
        .await
        .expect("connect through the proxy");
    // A second store straight to the node, to look while the proxy is down.
    let direct = support::store().await;

    let ids = chat_core::id::IdGenerator::new(rand::random_range(0..1024)).expect("ids");
    let conv = ConversationId::from(unique("group"));
    let (sender, r) = (UserId::from(unique("s")), UserId::from(unique("r")));
    let first = keyed(&conv, &sender, ids.next_id(), &unique("key"));
    store
        .append(first.clone(), std::slice::from_ref(&r))
        .await
        .expect("append through the proxy");

    proxy.stop().await;
    let second = keyed(&conv, &sender, ids.next_id(), &unique("key"));
    let started = Instant::now();
    // A hang guard, not a speed check: a request must end on its own.
    let during = tokio::time::timeout(
        timeout * 10,
        store.append(second.clone(), std::slice::from_ref(&r)),
    )
    .await
    .expect("a send with the cluster unreachable must answer, not hang");
    eprintln!(
        "send during the outage answered after {:?}",
        started.elapsed()
    );
    assert!(
        matches!(during, Err(Error::Unavailable { .. })),
        "a send with the cluster unreachable must answer Unavailable, got {during:?}"
    );
    assert!(
        matches!(
            store.history(&conv, None, 10).await,
            Err(Error::Unavailable { .. })
        ),
        "a read with the cluster unreachable must answer Unavailable"
    );
    assert_eq!(
        direct
            .history(&conv, None, 10)
            .await
            .expect("direct history"),
        vec![first.message.clone()],
        "the failed send must leave no message behind"
    );
    assert_eq!(
        direct.pending(&r, None, 10).await.expect("direct pending"),
        vec![first.message.clone()],
        "the failed send must leave no pending delivery behind"
    );

    proxy.restart().await;
    // The driver refills its pool on its own backoff, and the store's
    // watchdog tries a new session every second: retry the same send, as a
    // client does, until the store serves again. The deadline only guards
    // against a hang.
    let deadline = Instant::now() + Duration::from_secs(120);
    let appended = loop {
        match store.append(second.clone(), std::slice::from_ref(&r)).await {
            Ok(appended) => break appended,
            Err(Error::Unavailable { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the store must serve again once the proxy is back: {e}"),
        }
    };
    eprintln!("served again {:?} after the restart", started.elapsed());
    assert_eq!(
        appended.message, second.message,
        "the retried send stores the message"
    );
    assert_eq!(
        store
            .history(&conv, None, 10)
            .await
            .expect("history after recovery"),
        vec![second.message.clone(), first.message.clone()],
        "both messages are stored exactly once"
    );
    assert_eq!(
        store
            .pending(&r, None, 10)
            .await
            .expect("pending after recovery"),
        vec![first.message, second.message],
        "both deliveries are pending exactly once"
    );
}

/// After an outage long enough for the driver's own reconnect backoff to
/// have grown to seconds, the store's watchdog (not the driver) brings it
/// back: the store serves again through a new session.
///
/// Why the watchdog wins here: the driver's pool retries a refused node
/// after 0.1, 0.2, 0.4 … s, doubling up to 10 s, each ±15%. Its attempts
/// fall about 3.2 (at most 3.7), 6.4 (at most 7.3) and 12.8 (at least 10.8)
/// seconds into the outage, so after a restore at 8 s its next try is at
/// least 2.8 s away, while the watchdog tries within a second. Without the
/// watchdog this test fails: the store would serve again through its first
/// session and count no reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_long_outage_a_new_session_serves() {
    let points = support::contact_points();
    let keyspace = support::keyspace().await;
    let upstream: SocketAddr = tokio::net::lookup_host(points[0].as_str())
        .await
        .expect("resolve the test server")
        .next()
        .expect("an address for the test server");
    let mut proxy = Proxy::start(upstream).await;
    let mut config = support::config(vec![proxy.addr.to_string()], keyspace);
    config.request_timeout = Duration::from_secs(2);
    config.connect_timeout = Duration::from_secs(2);
    let store = CassandraStore::connect(config)
        .await
        .expect("connect through the proxy");
    store.ping().await.expect("ping through the proxy");
    assert_eq!(store.reconnects(), 0);

    proxy.stop().await;
    let down = Instant::now();
    let during = tokio::time::timeout(Duration::from_secs(20), store.ping())
        .await
        .expect("a ping with the cluster unreachable must answer, not hang");
    assert!(
        matches!(during, Err(Error::Unavailable { .. })),
        "{during:?}"
    );
    tokio::time::sleep(Duration::from_secs(8).saturating_sub(down.elapsed())).await;
    proxy.restart().await;
    let back = Instant::now();
    let deadline = back + Duration::from_secs(60);
    while let Err(e) = store.ping().await {
        assert!(
            Instant::now() < deadline,
            "the store must serve again once the proxy is back: {e}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "served again {:?} after the proxy was back ({} new session)",
        back.elapsed(),
        store.reconnects()
    );
    assert!(
        store.reconnects() >= 1,
        "the watchdog's new session, not the driver's backoff, brought the store back"
    );
}
