//! Answers a connection that the caps did not admit, without handing it to
//! hyper: a short HTTP response (429 or 503 with `Retry-After`), then the
//! socket is closed. A WebSocket client sees its upgrade refused.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use super::limiter::Refusal;

/// How long the refusal may take to write, and to read what the client
/// still sends afterwards (so that closing does not reset the connection
/// before the client read the answer).
const WRITE_TIME: Duration = Duration::from_secs(1);
const DRAIN_TIME: Duration = Duration::from_millis(500);

/// Writes the refusal and closes. `_permit` bounds how many refusals run at
/// once (each holds a socket for up to 1.5 s).
pub(crate) async fn refuse(mut tcp: TcpStream, why: Refusal, _permit: OwnedSemaphorePermit) {
    let (status, code, message) = match why {
        Refusal::AddressFull => (
            "429 Too Many Requests",
            "rate_limited",
            "too many open connections from your address",
        ),
        Refusal::ServerFull => (
            "503 Service Unavailable",
            "unavailable",
            "the server holds as many connections as it can",
        ),
    };
    let body = chat_transport_ws::error_body(code, message).to_string();
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    if tokio::time::timeout(WRITE_TIME, tcp.write_all(response.as_bytes()))
        .await
        .is_err()
    {
        return;
    }
    let _ = tcp.shutdown().await;
    let mut sink = [0u8; 2048];
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}
