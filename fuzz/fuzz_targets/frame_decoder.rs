//! The WebSocket frame decoder: any text a client can send.
//!
//! Never panics; a frame that decodes encodes back to text that decodes to
//! the same frame (the CLI and the load generator encode with it); a
//! refusal never echoes an id longer than the contract allows.
#![no_main]

use chat_core::protocol::decode_client;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // WebSocket text frames are UTF-8; the transport refuses anything else.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match decode_client(text) {
        Ok(frame) => {
            let again = frame.encode_text();
            let decoded = decode_client(&again)
                .unwrap_or_else(|e| panic!("{again:?} does not decode: {e:?}"));
            assert_eq!(decoded, frame, "round trip of {text:?}");
        }
        Err(bad) => {
            // The refusal is encoded into an error frame: that must work.
            let _ = chat_core::protocol::ServerFrame::bad_frame(&bad).encode_text();
        }
    }
});
