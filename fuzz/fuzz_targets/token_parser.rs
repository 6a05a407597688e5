//! The bearer token parser: any token string a client can send, and any
//! claims a correctly signed token can carry (as if the secret had leaked
//! to a buggy issuer): never a panic, and a token accepted only with a
//! string `sub`, an `exp` in the future and no `nbf` in the future.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chat_core::auth::Authenticator;
use chat_server::auth::JwtAuthenticator;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"the fuzzing secret, 32 bytes long";

static AUTH: LazyLock<JwtAuthenticator> =
    LazyLock::new(|| JwtAuthenticator::new(SECRET, Duration::from_secs(3600)));
static KEY: LazyLock<EncodingKey> = LazyLock::new(|| EncodingKey::from_secret(SECRET));

fn verify(token: &str) -> Option<String> {
    // `verify` awaits nothing: one poll finishes it.
    let mut future = std::pin::pin!(AUTH.verify(token));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(result) => result.ok().map(|u| u.to_string()),
        std::task::Poll::Pending => panic!("JwtAuthenticator::verify waited on something"),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        // Raw: whatever a client puts after `Bearer`.
        if let Ok(token) = std::str::from_utf8(rest) {
            let _ = verify(token);
        }
        return;
    }
    // Signed: the input is the claims, signed with the real secret.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let message = format!("{header}.{}", URL_SAFE_NO_PAD.encode(rest));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &KEY, Algorithm::HS256)
        .expect("HMAC signs anything");
    let token = format!("{message}.{signature}");
    if let Some(user) = verify(&token) {
        let claims: serde_json::Value =
            serde_json::from_slice(rest).expect("an accepted token has JSON claims");
        assert_eq!(claims["sub"].as_str(), Some(user.as_str()), "{claims}");
        let exp = claims["exp"]
            .as_f64()
            .expect("an accepted token has a numeric exp");
        // 5 s of leeway, as the authenticator allows.
        assert!(exp as i64 + 5 >= now(), "expired token accepted: {claims}");
        if let Some(nbf) = claims.get("nbf").and_then(|n| n.as_f64()) {
            assert!(nbf as i64 - 5 <= now(), "early token accepted: {claims}");
        }
    }
});
