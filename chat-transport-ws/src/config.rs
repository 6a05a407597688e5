//! [`WsConfig`]: buffer sizes, the largest frame and the heartbeat of each connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::origin::OriginPolicy;

/// How many upgraded WebSockets of a route are still open, close frame and
/// linger included: a server waits for it to reach 0 before it exits, or
/// the last close frames (1012 at a drain, 1001 at shutdown) die with the
/// process. Clones count the same sockets.
#[derive(Clone, Debug, Default)]
pub struct OpenSockets(Arc<AtomicUsize>);

impl OpenSockets {
    /// Sockets open now.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    /// Counts one socket until the guard is dropped.
    pub(crate) fn hold(&self) -> OpenSocket {
        self.0.fetch_add(1, Ordering::AcqRel);
        OpenSocket(self.0.clone())
    }
}

/// One counted socket (see [`OpenSockets`]).
pub(crate) struct OpenSocket(Arc<AtomicUsize>);

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Per-connection settings. The defaults are sized for chat: frames of a few
/// hundred bytes, many idle connections per node, so small buffers.
#[derive(Clone, Debug)]
pub struct WsConfig {
    /// Largest WebSocket message (and frame) a client may send, in bytes.
    /// A bigger one is answered with an `error` frame `too_large` and the
    /// connection is closed with code 1009, because the library cannot skip
    /// the rest of an oversized frame. Default 64 KiB.
    pub max_message_bytes: usize,
    /// Initial capacity of the read buffer; it grows for a larger frame.
    /// Default 1 KiB: most chat frames fit, and idle connections hold little.
    pub read_buffer_bytes: usize,
    /// Bytes collected before a write goes to the socket. 0 (the default)
    /// writes every frame at once: the writer flushes after each anyway, and
    /// an idle connection then holds no write buffer worth counting.
    pub write_buffer_bytes: usize,
    /// Most bytes the write buffer may hold while the socket refuses writes;
    /// beyond it the connection fails. Default 4 × `max_message_bytes`.
    pub max_write_buffer_bytes: usize,
    /// How often the server pings. Default 20 s.
    pub ping_every: Duration,
    /// How long after a ping the peer has to send something (its pong, or
    /// any frame) before it counts as dead and is closed. Default 20 s.
    pub pong_timeout: Duration,
    /// How long to keep reading after the server sent a close frame, so the
    /// peer's close reply (and data in flight) is read and the close frame is
    /// not lost to a TCP reset. Default 2 s.
    pub close_linger: Duration,
    /// Which browser pages may open a WebSocket (checked before the
    /// upgrade; a refused one gets 403 `forbidden`). Default: the server's
    /// own origin only.
    pub origins: OriginPolicy,
    /// Most open WebSockets of one user on this node; past it the upgrade
    /// is refused with 429 `rate_limited`. `None`: no cap. Default 16.
    pub max_sockets_per_user: Option<usize>,
    /// The counter of this route's open sockets (keep a clone to watch it).
    pub open_sockets: OpenSockets,
}

impl Default for WsConfig {
    fn default() -> Self {
        let max_message_bytes = 64 * 1024;
        Self {
            max_message_bytes,
            read_buffer_bytes: 1024,
            write_buffer_bytes: 0,
            max_write_buffer_bytes: 4 * max_message_bytes,
            ping_every: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(20),
            close_linger: Duration::from_secs(2),
            origins: OriginPolicy::SameOrigin,
            max_sockets_per_user: Some(16),
            open_sockets: OpenSockets::default(),
        }
    }
}
