//! Opening one user's WebSocket: from a chosen loopback source address,
//! with the token in the `Authorization` header, up to the `synced` that
//! ends the server's own sync after connect.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use chat_core::protocol::{ServerFrame, decode_server};
use futures::StreamExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// An open chat connection.
pub(crate) type Ws = WebSocketStream<TcpStream>;

/// How long opening one connection (TCP, handshake, first sync) may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// The read buffer of each connection. Frames here are small, and
/// tungstenite's default of 128 KiB would cost 2.4 GiB at 19,000 users; the
/// buffer still grows for a larger frame.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Opens a WebSocket to `server` as the token's user, bound to `source`
/// when given, and waits for the server's first `synced`. The error is a
/// short reason for the report.
pub(crate) async fn open(
    server: SocketAddr,
    source: Option<Ipv4Addr>,
    token: &str,
) -> Result<Ws, String> {
    tokio::time::timeout(OPEN_TIMEOUT, open_inner(server, source, token))
        .await
        .map_err(|_| format!("no synced within {} s", OPEN_TIMEOUT.as_secs()))?
}

async fn open_inner(
    server: SocketAddr,
    source: Option<Ipv4Addr>,
    token: &str,
) -> Result<Ws, String> {
    let stream = match source {
        Some(ip) => {
            let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
            socket
                .bind(SocketAddr::from((ip, 0)))
                .map_err(|e| format!("bind {ip}: {e}"))?;
            socket.connect(server).await
        }
        None => TcpStream::connect(server).await,
    }
    .map_err(|e| format!("connect: {e}"))?;
    // Frames are small and latency is what is measured: no Nagle delay.
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    let mut request = format!("ws://{server}/ws")
        .into_client_request()
        .map_err(|e| format!("request: {e}"))?;
    let auth = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "the token is not a valid header value".to_owned())?;
    request.headers_mut().insert("authorization", auth);
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    // Fresh users have nothing pending, so the first sync is short; any
    // message before `synced` would be a leftover and is not measured.
    while let Some(frame) = ws.next().await {
        let frame = frame.map_err(|e| format!("before synced: {e}"))?;
        let Ok(text) = frame.to_text() else { continue };
        if let Ok(ServerFrame::Synced { reply_to: None }) = decode_server(text) {
            return Ok(ws);
        }
    }
    Err("closed before synced".into())
}
