//! Codec throughput: request parsing, frame parsing and reply encoding on the hot paths.
//!
//! Criterion takes one throughput per group, so every bench runs in two twin groups:
//! `<name>/frames` reports frames per second, `<name>/bytes` bytes per second.

use std::hint::black_box;

use bytes::BytesMut;
use cachalot_protocol::encode::{encode, write_bulk};
use cachalot_protocol::{Frame, FrameDecoder, Limits, ProtocolVersion, RequestDecoder};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Commands in one pipelined batch: enough to amortize per-batch setup.
const PIPELINE_COMMANDS: usize = 1000;
/// Value size of the batch's `SET`s: a small cached value.
const VALUE_BYTES: usize = 64;
/// The large-value case: 1 MiB.
const LARGE_BULK_BYTES: usize = 1024 * 1024;

/// `SET key:NNN <64-byte value>` x 1000, as one multibulk stream.
fn pipelined_sets() -> Vec<u8> {
    let value = vec![b'v'; VALUE_BYTES];
    let mut out = Vec::new();
    for i in 0..PIPELINE_COMMANDS {
        let key = format!("key:{i:03}");
        out.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${VALUE_BYTES}\r\n",
                key.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&value);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Decodes every request in a fresh copy of `wire` (the copy, which stands in for the
/// socket read, is measured too). Returns the argument count.
fn decode_requests(wire: &[u8]) -> usize {
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut buf = BytesMut::from(wire);
    let mut n = 0;
    while let Ok(Some(args)) = decoder.decode(&mut buf) {
        n += black_box(args).len();
    }
    n
}

/// Decodes every frame in a fresh copy of `wire`. Returns the frame count.
fn decode_frames(wire: &[u8]) -> usize {
    let mut decoder = FrameDecoder::new(Limits::default());
    let mut buf = BytesMut::from(wire);
    let mut n = 0;
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        black_box(frame);
        n += 1;
    }
    n
}

fn bench_decoders(c: &mut Criterion) {
    let wire = pipelined_sets();
    for (unit, throughput) in [
        ("frames", Throughput::Elements(PIPELINE_COMMANDS as u64)),
        ("bytes", Throughput::Bytes(wire.len() as u64)),
    ] {
        let mut group = c.benchmark_group(format!("decode_1000_sets/{unit}"));
        group.throughput(throughput);
        group.bench_function("request_decoder", |b| {
            b.iter(|| decode_requests(black_box(&wire)))
        });
        group.bench_function("frame_decoder", |b| {
            b.iter(|| decode_frames(black_box(&wire)))
        });
        group.finish();
    }
}

fn bench_encoder(c: &mut Criterion) {
    let value = vec![b'v'; VALUE_BYTES];
    let mut probe = BytesMut::new();
    write_bulk(&mut probe, &value);
    let reply_bytes = probe.len() * PIPELINE_COMMANDS;
    for (unit, throughput) in [
        ("frames", Throughput::Elements(PIPELINE_COMMANDS as u64)),
        ("bytes", Throughput::Bytes(reply_bytes as u64)),
    ] {
        let mut group = c.benchmark_group(format!("encode_1000_bulks/{unit}"));
        group.throughput(throughput);
        let mut out = BytesMut::with_capacity(reply_bytes);
        group.bench_function("write_bulk", |b| {
            b.iter(|| {
                out.clear();
                for _ in 0..PIPELINE_COMMANDS {
                    write_bulk(&mut out, black_box(&value));
                }
                out.len()
            })
        });
        group.finish();
    }
}

fn bench_large_bulk(c: &mut Criterion) {
    let frame = Frame::bulk(vec![b'x'; LARGE_BULK_BYTES]);
    let mut wire = BytesMut::new();
    encode(&frame, ProtocolVersion::Resp2, &mut wire);
    for (unit, throughput) in [
        ("frames", Throughput::Elements(1)),
        ("bytes", Throughput::Bytes(wire.len() as u64)),
    ] {
        let mut group = c.benchmark_group(format!("bulk_1mib/{unit}"));
        group.throughput(throughput);
        group.bench_with_input(
            BenchmarkId::new("decode", LARGE_BULK_BYTES),
            &wire,
            |b, wire| b.iter(|| decode_frames(black_box(wire))),
        );
        let mut out = BytesMut::with_capacity(wire.len());
        group.bench_with_input(
            BenchmarkId::new("encode", LARGE_BULK_BYTES),
            &frame,
            |b, frame| {
                b.iter(|| {
                    out.clear();
                    encode(black_box(frame), ProtocolVersion::Resp2, &mut out);
                    out.len()
                })
            },
        );
        group.finish();
    }
}

criterion_group!(codec, bench_decoders, bench_encoder, bench_large_bulk);
criterion_main!(codec);
