//! [`TimedIo`]: an accepted socket that closes itself when a client is too
//! slow, and [`ConnState`]: what the HTTP service tells it about the
//! request in progress.
//!
//! The deadlines, all on the socket (so they also hold while hyper, not our
//! code, is the one waiting):
//! - idle: no request in progress and no byte of the next one for
//!   `idle` (after accept, or after a response);
//! - header: the first byte of a request head came `header` ago and the
//!   head is still not complete (slow headers, a half-sent upgrade);
//! - write: a write has been blocked for `write` (the client reads
//!   nothing), on HTTP and upgraded WebSocket connections alike.
//!
//! While a request is being handled, reads have no deadline here: the body
//! has its own (see `api::extract`), and a WebSocket after its upgrade has
//! the transport's ping/pong heartbeat.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::limiter::ConnPermit;

/// The three socket deadlines.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub(crate) header: Duration,
    pub(crate) idle: Duration,
    pub(crate) write: Duration,
}

/// What the service and the socket of one connection share.
pub(crate) struct ConnState {
    /// A request's head was parsed and its response is not complete yet.
    busy: AtomicBool,
    /// Request heads parsed so far.
    requests: AtomicU64,
    /// The connection became a WebSocket (101 answered).
    upgraded: AtomicBool,
    /// When the connection last became idle, in ms since `born`.
    idle_since_ms: AtomicU64,
    born: Instant,
}

impl ConnState {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            busy: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            upgraded: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(0),
            born: Instant::now(),
        })
    }

    /// A request head arrived and is handed to the router.
    pub(crate) fn request_started(&self) {
        self.requests.fetch_add(1, Ordering::AcqRel);
        self.busy.store(true, Ordering::Release);
    }

    /// The response is ready; `upgraded` when it was a 101.
    pub(crate) fn request_finished(&self, upgraded: bool) {
        if upgraded {
            self.upgraded.store(true, Ordering::Release);
        }
        let ms = self.born.elapsed().as_millis() as u64;
        self.idle_since_ms.store(ms, Ordering::Release);
        self.busy.store(false, Ordering::Release);
    }

    fn idle_since(&self) -> Instant {
        self.born + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire))
    }
}

/// A TCP stream with the deadlines of [`Timeouts`], holding its place in
/// the connection caps until it is dropped (which, for a WebSocket, is when
/// the WebSocket closes: hyper hands this same stream to the upgrade).
pub(crate) struct TimedIo {
    inner: TcpStream,
    state: Arc<ConnState>,
    timeouts: Timeouts,
    /// When the first byte of the current request head came, if one did
    /// while the connection was idle, and how many heads had been parsed
    /// then (a different count now means that head is complete).
    head_started: Option<(Instant, u64)>,
    read_timer: Pin<Box<Sleep>>,
    write_timer: Option<Pin<Box<Sleep>>>,
    _permit: ConnPermit,
}

impl TimedIo {
    pub(crate) fn new(
        inner: TcpStream,
        state: Arc<ConnState>,
        timeouts: Timeouts,
        permit: ConnPermit,
    ) -> Self {
        let first = Instant::now() + timeouts.idle;
        Self {
            inner,
            state,
            timeouts,
            head_started: None,
            read_timer: Box::pin(tokio::time::sleep_until(first)),
            write_timer: None,
            _permit: permit,
        }
    }

    /// The deadline of the read now pending, if it has one.
    fn read_deadline(&mut self) -> Option<Instant> {
        if self.state.upgraded.load(Ordering::Acquire) {
            return None;
        }
        let requests = self.state.requests.load(Ordering::Acquire);
        if self.head_started.is_some_and(|(_, seen)| seen != requests) {
            // That head is complete: the next one's clock starts afresh.
            self.head_started = None;
        }
        if self.state.busy.load(Ordering::Acquire) {
            return None;
        }
        Some(match self.head_started {
            Some((first_byte, _)) => first_byte + self.timeouts.header,
            None => self.state.idle_since() + self.timeouts.idle,
        })
    }

    /// Polls the write timer of a write that is pending; it starts with
    /// the first pending poll and stops at the next progress.
    fn write_stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let timeout = self.timeouts.write;
        let timer = self
            .write_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(timed_out("the client read nothing for the write timeout"))
    }
}

fn timed_out(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what)
}

impl AsyncRead for TimedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let got = buf.filled().len() > before;
                let requests = this.state.requests.load(Ordering::Acquire);
                // No head in progress, or the one we timed is complete.
                let fresh = this.head_started.is_none_or(|(_, seen)| seen != requests);
                if got
                    && fresh
                    && !this.state.busy.load(Ordering::Acquire)
                    && !this.state.upgraded.load(Ordering::Acquire)
                {
                    this.head_started = Some((Instant::now(), requests));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some(deadline) = this.read_deadline() else {
                    return Poll::Pending;
                };
                if this.read_timer.deadline() != deadline {
                    this.read_timer.as_mut().reset(deadline);
                }
                match this.read_timer.as_mut().poll(cx) {
                    Poll::Ready(()) if this.head_started.is_some() => Poll::Ready(Err(timed_out(
                        "the client did not finish its request head in time",
                    ))),
                    Poll::Ready(()) => Poll::Ready(Err(timed_out("idle connection"))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for TimedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.write_stalled(cx).map(Err),
            done => {
                self.write_timer = None;
                done
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.write_stalled(cx).map(Err),
            done => {
                self.write_timer = None;
                done
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.write_stalled(cx).map(Err),
            done => {
                self.write_timer = None;
                done
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
