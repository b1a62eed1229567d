//! RequestDecoder on arbitrary bytes: never panics, never waits past its limits, and decodes
//! the same whether the input arrives whole or in chunks.
//!
//! Input layout: the first byte is the chunk size (0 is read as 1), the rest is the stream.

#![no_main]

use bytes::{Bytes, BytesMut};
use cachalot_protocol::{Limits, RequestDecoder};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits { max_bulk_len: 1024, max_array_len: 64, max_depth: 8, max_inline_len: 256 };

fn run(chunks: &[&[u8]]) -> (Vec<Vec<Bytes>>, Option<String>) {
    let mut decoder = RequestDecoder::new(LIMITS);
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(args)) => {
                    assert!(!args.is_empty(), "empty requests are skipped");
                    requests.push(args);
                }
                Ok(None) => break,
                Err(err) => return (requests, Some(err.to_string())),
            }
        }
    }
    // Bytes that can complete no request must make a decoder waiting within its limits fail.
    let mut probe = decoder.clone();
    buf.extend_from_slice(&[b'a'; 1024 + 3]);
    assert!(probe.decode(&mut buf).is_err(), "decoder waits past its limits");
    (requests, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let whole = run(&[input]);
    let chunks: Vec<&[u8]> = input.chunks(usize::from(chunk).max(1)).collect();
    assert_eq!(whole, run(&chunks), "chunking changed the result");
});
