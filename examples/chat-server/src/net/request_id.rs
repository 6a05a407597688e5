//! Request ids: each HTTP request carries one on its log span (`req`) and
//! answers it in `x-request-id`, so a client's report or a proxy's log
//! line finds the server's lines. A proxy's own id is kept when it looks
//! like one (short, plain characters); anything else gets a fresh id, so
//! a client cannot write arbitrary text into the logs.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, HeaderValue};

/// The header that carries the id both ways.
pub(crate) const HEADER: &str = "x-request-id";

/// Longest id taken from a request.
const MAX_LEN: usize = 64;

/// The id of a request with these headers.
pub(crate) fn of(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(HEADER)
        .filter(|v| acceptable(v.as_bytes()))
        .cloned()
        .unwrap_or_else(fresh)
}

fn acceptable(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A new id: this process's random prefix (ids of two nodes or two runs do
/// not collide) and a counter.
fn fresh() -> HeaderValue {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(rand::random);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    HeaderValue::try_from(format!("{prefix:08x}-{n}")).expect("hex digits and a dash")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_id_is_kept_and_anything_else_replaced() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(HEADER, HeaderValue::from_str(v).unwrap());
            of(&h)
        };
        assert_eq!(with("abc-123_x.y:z"), "abc-123_x.y:z");
        for bad in ["", "a b", "line\tbreak", &"x".repeat(MAX_LEN + 1), "é"] {
            let Ok(v) = HeaderValue::from_str(bad) else {
                continue;
            };
            let mut h = HeaderMap::new();
            h.insert(HEADER, v);
            assert_ne!(of(&h).as_bytes(), bad.as_bytes(), "{bad:?}");
        }
        let (a, b) = (of(&HeaderMap::new()), of(&HeaderMap::new()));
        assert_ne!(a, b, "fresh ids differ");
    }
}
