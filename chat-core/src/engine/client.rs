//! [`ClientInfo`]: what the transport knows about a connection that the
//! engine's limits need: the client's address (its write budget is shared
//! by everyone at that address) and the largest frame the connection can
//! carry (a `history` answer is cut to fit it).

use std::net::IpAddr;

/// What [`super::Engine::connect_with`] is told about a connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientInfo {
    /// The client's address; `None` when the transport has none (in-process
    /// clients, tests): then only the user's budget applies.
    pub addr: Option<IpAddr>,
    /// The largest server frame the connection can write, in bytes; `None`
    /// for no limit.
    pub max_frame_bytes: Option<usize>,
}

impl ClientInfo {
    /// A connection from `addr` whose frames may be up to `max_frame_bytes`.
    pub fn new(addr: Option<IpAddr>, max_frame_bytes: Option<usize>) -> Self {
        Self {
            addr,
            max_frame_bytes,
        }
    }
}
