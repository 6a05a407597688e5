//! The web page: files of `static/` compiled into the binary, and the
//! security headers of every response.

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::response::Response;
use axum::routing::get;

/// The page's Content-Security-Policy: its own script and style only (the
/// page has no inline ones), no plugins, no framing by other sites
/// (clickjacking), and WebSockets to this server or another node of the
/// cluster (`chat_url` may name another host, hence `ws:`/`wss:`).
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The policy of every other response (JSON, scripts): nothing may load
/// from it, nobody may frame it.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Adds the security headers to every response: the CSP above (the page's
/// for HTML), `X-Content-Type-Options: nosniff` (a browser never guesses a
/// type, e.g. runs JSON as a script), `Referrer-Policy: no-referrer` (the
/// `?token=` of a URL never leaks through a Referer) and
/// `X-Frame-Options: DENY` for browsers older than frame-ancestors.
pub async fn security_headers(mut response: Response) -> Response {
    let html = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = response.headers_mut();
    let csp = if html { PAGE_CSP } else { API_CSP };
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// `/` and `/index.html`, `/app.js`, `/style.css`.
pub fn routes() -> Router {
    let html = || async {
        page(
            "text/html; charset=utf-8",
            include_str!("../static/index.html"),
        )
    };
    Router::new()
        .route("/", get(html))
        .route("/index.html", get(html))
        .route(
            "/app.js",
            get(|| async {
                page(
                    "text/javascript; charset=utf-8",
                    include_str!("../static/app.js"),
                )
            }),
        )
        .route(
            "/style.css",
            get(|| async {
                page(
                    "text/css; charset=utf-8",
                    include_str!("../static/style.css"),
                )
            }),
        )
}

fn page(content_type: &'static str, body: &'static str) -> impl axum::response::IntoResponse {
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")],
        body,
    )
}
