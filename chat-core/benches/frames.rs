//! The cost of the frames on the hot path: decoding a client's `send` (every
//! message enters this way) and encoding a `message` (once per message, then
//! shared by every recipient), plus decoding that `message` as clients do.
//! Criterion reports time per frame and bytes of JSON per second.
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn in this binary"
)]

use std::hint::black_box;

use chat_core::protocol::{ServerFrame, decode_client, decode_server};
use chat_core::{Message, MessageId};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A body of about 100 bytes, with a quote and a newline to escape.
const BODY: &str = "Running late, the train is stuck at \"Central\" again.\nSave me a seat, I'll be there in 15 minutes!";

fn send_text() -> String {
    format!(
        r#"{{"type":"send","id":"r-1042","conversation_id":"g:7f3a9c2e","body":{},"client_msg_id":"c-5d1e8b40"}}"#,
        serde_json::to_string(BODY).expect("a string serializes")
    )
}

fn message_frame() -> ServerFrame {
    ServerFrame::Message {
        message: Message::text(
            MessageId(7_290_482_913_402_118_144),
            "g:7f3a9c2e".into(),
            "u:4b2d91".into(),
            BODY,
            1_738_000_000_123,
        ),
    }
}

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("frames");

    let send = send_text();
    group.throughput(Throughput::Bytes(send.len() as u64));
    group.bench_function("decode_client send", |b| {
        b.iter(|| decode_client(black_box(&send)))
    });

    let message = message_frame();
    let encoded = message.encode_text();
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    group.bench_function("encode message", |b| {
        b.iter(|| black_box(&message).encode())
    });
    group.bench_function("decode_server message", |b| {
        b.iter(|| decode_server(black_box(&encoded)))
    });

    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
