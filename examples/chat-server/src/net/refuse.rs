//! Answers a connection that the caps did not admit, without handing it to
//! hyper: a short HTTP response (429 or 503 with `Retry-After`), then the
//! socket is closed. A WebSocket client sees its upgrade refused.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use super::limiter::Refusal;

/// How long the client has to send its request head before the refusal
/// goes out anyway (an HTTP client that gets an answer before it asked
/// calls it an unexpected message, not a 429), how long the refusal may
/// take to write, and how long what the client still sends is read
/// afterwards (so that closing does not reset the connection before the
/// client read the answer).
const HEAD_TIME: Duration = Duration::from_secs(1);
const WRITE_TIME: Duration = Duration::from_secs(1);
const DRAIN_TIME: Duration = Duration::from_millis(500);
/// Most bytes of the request head read before answering.
const HEAD_BYTES: usize = 8192;

/// Writes the refusal and closes. With a `permit` (they bound how many
/// refusals linger at once), what the client still sends is read for a
/// moment first, so that the close does not reset the connection before the
/// client read the answer; without one the socket is closed at once.
pub(crate) async fn refuse(mut tcp: TcpStream, why: Refusal, permit: Option<OwnedSemaphorePermit>) {
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
    let mut sink = [0u8; 2048];
    if permit.is_some() {
        let mut seen = Vec::new();
        let _ = tokio::time::timeout(HEAD_TIME, async {
            while seen.len() < HEAD_BYTES && !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match tcp.read(&mut sink).await {
                    Ok(n) if n > 0 => seen.extend_from_slice(&sink[..n]),
                    _ => return,
                }
            }
        })
        .await;
    }
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
    let Some(_permit) = permit else {
        return;
    };
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}
