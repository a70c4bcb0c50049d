//! Conversion throughput: a realistic Anthropic request to OpenAI request
//! bytes, and a 500-chunk OpenAI stream to Anthropic SSE bytes and back to
//! OpenAI SSE bytes (same format).

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use llmgate::Format;
use llmgate::chat::ChatEvent;
use llmgate::convert::{anthropic, openai};
use llmgate::sse::SseDecoder;
use std::hint::black_box;

mod common;

fn request(c: &mut Criterion) {
    let body = serde_json::to_vec(&common::large_anthropic_request()).unwrap();
    let mut group = c.benchmark_group("request");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function(
        format!("anthropic_to_openai_{}KB", body.len() / 1024),
        |b| {
            b.iter(|| {
                let wire: llmgate::wire::anthropic::MessagesRequest =
                    serde_json::from_slice(black_box(&body)).unwrap();
                let chat = anthropic::request_from_wire(wire).unwrap();
                let out =
                    openai::request_to_wire(chat, &openai::RequestOptions::default()).unwrap();
                black_box(serde_json::to_vec(&out).unwrap())
            })
        },
    );
    // The floor: parse the JSON into an untyped tree and write it back.
    group.bench_function("json_value_parse_and_write", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_slice(black_box(&body)).unwrap();
            black_box(serde_json::to_vec(&v).unwrap())
        })
    });
    group.bench_function("anthropic_passthrough", |b| {
        b.iter(|| {
            let wire: llmgate::wire::anthropic::MessagesRequest =
                serde_json::from_slice(black_box(&body)).unwrap();
            let chat = anthropic::request_from_wire(wire).unwrap();
            let out = anthropic::request_to_wire(chat, &Default::default()).unwrap();
            black_box(serde_json::to_vec(&out).unwrap())
        })
    });
    group.finish();
}

fn stream(c: &mut Criterion) {
    const CHUNKS: usize = 500;
    let body = common::openai_stream(CHUNKS);
    // The body arrives as network reads of a few KB.
    let reads: Vec<&[u8]> = body.as_bytes().chunks(4096).collect();
    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Elements(CHUNKS as u64));
    group.bench_function("openai_to_anthropic_500_chunks", |b| {
        b.iter(|| {
            let mut encoder = anthropic::EventEncoder::new(Some(Format::OpenAi));
            openai_stream_through(&reads, |ev, out| encoder.encode(ev, out))
        })
    });
    // Same format: the client gets the upstream's chunks back, re-encoded.
    group.bench_function("openai_to_openai_500_chunks", |b| {
        b.iter(|| {
            let mut encoder = openai::ChunkEncoder::new(Default::default(), Some(Format::OpenAi));
            openai_stream_through(&reads, |ev, out| encoder.encode(ev, out))
        })
    });
    group.finish();
}

/// An OpenAI stream body, read by read, decoded into events that `encode`
/// writes out.
fn openai_stream_through(
    reads: &[&[u8]],
    mut encode: impl FnMut(ChatEvent, &mut BytesMut),
) -> BytesMut {
    let mut sse = SseDecoder::new();
    let mut decoder = openai::ChunkDecoder::new(Default::default());
    let mut frames = Vec::new();
    let mut events = Vec::new();
    let mut out = BytesMut::with_capacity(64 * 1024);
    for read in reads {
        sse.feed(black_box(read), &mut frames).unwrap();
        for frame in frames.drain(..) {
            decoder.push_data(&frame.data, &mut events);
            for ev in events.drain(..) {
                encode(ev, &mut out);
            }
        }
    }
    black_box(out)
}

criterion_group!(benches, request, stream);
criterion_main!(benches);
