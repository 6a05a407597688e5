//! The bytes of one bus message on a Redis channel: the origin node id,
//! length-prefixed, then the frame as is. Redis pub/sub carries bytes and
//! no headers, so the origin travels inside the payload.

use bytes::Bytes;
use chat_core::model::NodeId;

/// Prepends `origin` (two bytes of big-endian length, then its UTF-8) to `payload`.
///
/// Node ids longer than 65,535 bytes are refused by [`crate::RedisBus::connect`],
/// so the length always fits.
pub(crate) fn encode(origin: &NodeId, payload: &[u8]) -> Vec<u8> {
    let id = origin.as_str().as_bytes();
    let len = u16::try_from(id.len()).expect("node id length checked at connect");
    let mut out = Vec::with_capacity(2 + id.len() + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(id);
    out.extend_from_slice(payload);
    out
}

/// Splits a message into origin and frame; `None` when it is not one of ours.
pub(crate) fn decode(bytes: &[u8]) -> Option<(NodeId, Bytes)> {
    let (len, rest) = bytes.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < len {
        return None;
    }
    let (id, payload) = rest.split_at(len);
    let id = std::str::from_utf8(id).ok()?;
    Some((NodeId::from(id), Bytes::copy_from_slice(payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_short_or_foreign_bytes() {
        let node = NodeId::from("node-7");
        let framed = encode(&node, b"{\"type\":\"x\"}");
        assert_eq!(
            decode(&framed),
            Some((node, Bytes::from_static(b"{\"type\":\"x\"}")))
        );
        let empty = encode(&NodeId::from(""), b"");
        assert_eq!(decode(&empty), Some((NodeId::from(""), Bytes::new())));
        assert_eq!(decode(b""), None);
        assert_eq!(decode(b"\x00"), None);
        assert_eq!(decode(b"\x00\x05abc"), None);
        assert_eq!(decode(b"\x00\x02\xff\xfe"), None);
    }
}
