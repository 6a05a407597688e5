//! Helpers for driving engine sessions in tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use chat_core::UserId;
use chat_core::engine::{Engine, EngineBuilder, Outbound, Session};
use serde_json::Value;

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

/// Signs `name` up and returns its id.
pub async fn signup(engine: &Engine, name: &str) -> UserId {
    engine
        .signup(name, "password")
        .await
        .expect("signup")
        .user_id
}

/// One connected client: its session and what the engine sends it.
pub struct Client {
    pub session: Session,
    pub out: Outbound,
}

impl Client {
    /// Connects and swallows the automatic sync's `synced` (expects nothing pending).
    pub async fn connect(engine: &Engine, user: &UserId) -> Self {
        let mut c = Self::connect_raw(engine, user).await;
        let f = c.next().await;
        assert_eq!(f["type"], "synced", "expected an empty sync, got {f}");
        c
    }

    /// Connects and starts the automatic sync; its frames are left to read.
    pub async fn connect_raw(engine: &Engine, user: &UserId) -> Self {
        let (mut session, out) = engine.connect(user).await.expect("connect");
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

    pub async fn close(self) {
        self.session.close().await;
    }
}
