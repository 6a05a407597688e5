//! Helpers for driving engine sessions in tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use chat_core::auth::Identity;
use chat_core::engine::{Engine, EngineBuilder, NewGroup, Outbound, Session};
use chat_core::{ConversationId, UserId};
use serde_json::Value;

/// The device each test user signed up with, so that tests name users by id.
static DEVICES: LazyLock<Mutex<HashMap<UserId, Identity>>> = LazyLock::new(Default::default);

/// The identity (first device) of a user made by [`signup`].
pub fn identity(user: &UserId) -> Identity {
    DEVICES.lock().unwrap()[user].clone()
}

/// A fresh in-memory engine with fast (insecure) password hashing.
pub async fn engine() -> Engine {
    engine_with(|b| b).await
}

/// Like [`engine`], with the builder adjusted by `f`.
pub async fn engine_with(f: impl FnOnce(EngineBuilder) -> EngineBuilder) -> Engine {
    f(Engine::builder().insecure_fast_password_hashing())
        .build()
        .await
        .expect("engine builds")
}

/// Signs `name` up (its first device is kept for [`Client::connect`]) and returns its id.
pub async fn signup(engine: &Engine, name: &str) -> UserId {
    let ok = engine.signup(name, "password", None).await.expect("signup");
    DEVICES
        .lock()
        .unwrap()
        .insert(ok.user_id.clone(), ok.identity());
    ok.user_id
}

/// A second device of `user` (a login).
pub async fn login(engine: &Engine, name: &str) -> Identity {
    engine
        .login(name, "password", Some("second"))
        .await
        .expect("login")
        .identity()
}

/// A group by `creator` with `members`, default settings.
pub async fn group(
    engine: &Engine,
    creator: &UserId,
    name: &str,
    members: &[UserId],
) -> ConversationId {
    engine
        .create_group(
            creator,
            NewGroup {
                name: name.into(),
                members: members.to_vec(),
                ..NewGroup::default()
            },
        )
        .await
        .expect("create_group")
}

/// One connected client: its session and what the engine sends it.
pub struct Client {
    pub session: Session,
    pub out: Outbound,
}

impl Client {
    /// Connects and swallows the automatic sync's `synced` (expects nothing pending).
    pub async fn connect(engine: &Engine, user: &UserId) -> Self {
        Self::connect_device(engine, &identity(user)).await
    }

    /// Connects one device and swallows the empty sync.
    pub async fn connect_device(engine: &Engine, device: &Identity) -> Self {
        let mut c = Self::connect_raw_device(engine, device).await;
        let f = c.next().await;
        assert_eq!(f["type"], "synced", "expected an empty sync, got {f}");
        c
    }

    /// Connects and reads the automatic sync, whatever it holds, up to `synced`.
    pub async fn connect_drained(engine: &Engine, user: &UserId) -> Self {
        let mut c = Self::connect_raw(engine, user).await;
        c.expect_after("synced").await;
        c
    }

    /// Connects and starts the automatic sync; its frames are left to read.
    pub async fn connect_raw(engine: &Engine, user: &UserId) -> Self {
        Self::connect_raw_device(engine, &identity(user)).await
    }

    /// Connects one device and starts its sync; its frames are left to read.
    pub async fn connect_raw_device(engine: &Engine, device: &Identity) -> Self {
        let (mut session, out) = engine.connect(device).await.expect("connect");
        session.start().await.expect("sync");
        Self { session, out }
    }

    pub async fn send(&mut self, frame: Value) {
        self.session.handle_text(&frame.to_string()).await;
    }

    /// The next frame (fails the test after 5 s rather than hang).
    pub async fn next(&mut self) -> Value {
        let frame = tokio::time::timeout(Duration::from_secs(5), self.out.recv())
            .await
            .expect("a frame within 5 s")
            .expect("session open");
        serde_json::from_slice(&frame).expect("frames are JSON")
    }

    /// The next frame, which must be of `kind`; skips presence frames unless asked for.
    pub async fn expect(&mut self, kind: &str) -> Value {
        loop {
            let f = self.next().await;
            if f["type"] == kind {
                return f;
            }
            if f["type"] == "presence" {
                continue;
            }
            panic!("expected a {kind} frame, got {f}");
        }
    }

    /// Skips frames up to the next one of `kind`, which it returns.
    pub async fn expect_after(&mut self, kind: &str) -> Value {
        loop {
            let f = self.next().await;
            if f["type"] == kind {
                return f;
            }
        }
    }

    pub async fn close(self) {
        self.session.close().await;
    }
}
