//! The web page: files of `static/` compiled into the binary.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::routing::get;

/// `/` and `/index.html`, the page's scripts (`/app.js` and the files it
/// is split into) and `/style.css`.
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
            "/cache.js",
            get(|| script(include_str!("../static/cache.js"))),
        )
        .route(
            "/groups.js",
            get(|| script(include_str!("../static/groups.js"))),
        )
        .route(
            "/account.js",
            get(|| script(include_str!("../static/account.js"))),
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

async fn script(body: &'static str) -> impl axum::response::IntoResponse {
    page("text/javascript; charset=utf-8", body)
}

fn page(content_type: &'static str, body: &'static str) -> impl axum::response::IntoResponse {
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")],
        body,
    )
}
