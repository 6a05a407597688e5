//! Every HTTP JSON body, through the real router of an in-memory server:
//! sign-up, login, the profile patch, group creation and member adds. The
//! first byte picks the call, the rest is its body.
//!
//! Never a panic, never a 5xx, and every refusal in the contract's shape
//! `{"error":{"code","message"}}`.
#![no_main]

use std::sync::LazyLock;

use axum::body::Body;
use axum::http::{Method, Request};
use chat_server::Config;
use chat_server::config::Protection;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower_service::Service;

struct Fixture {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    token: String,
    group: String,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let config = Config {
        insecure_fast_hashing: true,
        jwt_secret: Some("the fuzzing secret, 32 bytes long".into()),
        protection: Protection::unlimited(),
        ..Config::default()
    };
    let (router, engine) = rt
        .block_on(chat_server::build_app(&config, "ws://fuzz/ws".into()))
        .expect("the app builds");
    let (token, group) = rt.block_on(async {
        let me = engine.signup("fuzzer", "fuzzing password").await.unwrap();
        let group = engine.create_group(&me.user_id, "fuzz", &[]).await.unwrap();
        (me.token, group.to_string())
    });
    Fixture {
        rt,
        router,
        token,
        group,
    }
});

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let f = &*FIXTURE;
    let members = format!("/api/groups/{}/members", f.group);
    let (method, path, authenticated) = match pick % 5 {
        0 => (Method::POST, "/api/signup", false),
        1 => (Method::POST, "/api/login", false),
        2 => (Method::PATCH, "/api/me", true),
        3 => (Method::POST, "/api/groups", true),
        _ => (Method::POST, members.as_str(), true),
    };
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if authenticated {
        req = req.header("authorization", format!("Bearer {}", f.token));
    }
    let req = req.body(Body::from(body.to_vec())).expect("a request");
    let mut router = f.router.clone();
    let (status, bytes) = f.rt.block_on(async move {
        let res = router.call(req).await.expect("the router never fails");
        let status = res.status();
        let bytes = res.into_body().collect().await.expect("a body").to_bytes();
        (status, bytes)
    });
    assert!(
        !status.is_server_error(),
        "{status} for {path} {:?}: {:?}",
        String::from_utf8_lossy(body),
        String::from_utf8_lossy(&bytes)
    );
    if status.is_client_error() {
        let error: serde_json::Value = serde_json::from_slice(&bytes).expect("a refusal is JSON");
        assert!(error["error"]["code"].is_string(), "{error}");
        assert!(error["error"]["message"].is_string(), "{error}");
    }
});
