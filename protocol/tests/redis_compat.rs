//! Scenario tests: Redis's request parsing behaviour and error texts, and linear-time
//! incremental decoding of large frames.

use bytes::{Bytes, BytesMut};
use cachalot_protocol::{Frame, FrameDecoder, Limits, ProtocolError, RequestDecoder};

fn requests(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    while let Some(args) = decoder.decode(&mut buf)? {
        out.push(args);
    }
    Ok(out)
}

fn args(words: &[&'static str]) -> Vec<Bytes> {
    words
        .iter()
        .map(|w| Bytes::from_static(w.as_bytes()))
        .collect()
}

#[test]
fn inline_quoting_follows_sdssplitargs() {
    let got = requests(b"set \"a b\" 'c\\'d' \"\\x41\"\r\n");
    assert_eq!(got, Ok(vec![args(&["set", "a b", "c'd", "A"])]));
}

#[test]
fn blank_lines_and_empty_multibulks_are_skipped() {
    let got = requests(b"\r\n*0\r\n\n  \t \r\n*-1\r\nPING\r\n*0\r\n*1\r\n$4\r\nECHO\r\n");
    assert_eq!(got, Ok(vec![args(&["PING"]), args(&["ECHO"])]));
}

#[test]
fn pipelined_requests_come_out_one_at_a_time() {
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut buf = BytesMut::from(&b"*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$3\r\nGET"[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(Some(args(&["PING"]))));
    assert_eq!(decoder.decode(&mut buf), Ok(Some(args(&["PING"]))));
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert_eq!(
        &buf[..],
        b"*2\r\n$3\r\nGET",
        "an incomplete request stays in the buffer"
    );
    buf.extend_from_slice(b"\r\n$1\r\nk\r\n");
    assert_eq!(decoder.decode(&mut buf), Ok(Some(args(&["GET", "k"]))));
    assert!(buf.is_empty());
}

#[test]
fn default_limits_are_redis_defaults() {
    let limits = Limits::default();
    assert_eq!(limits.max_bulk_len, 512 * 1024 * 1024);
    assert_eq!(limits.max_array_len, 1_048_576);
    assert_eq!(limits.max_depth, 128);
    assert_eq!(limits.max_inline_len, 64 * 1024);
}

#[test]
fn oversized_bulk_headers_fail_before_any_payload() {
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut buf = BytesMut::from(&b"*1\r\n$999999999999\r\n"[..]);
    let err = decoder.decode(&mut buf).map_err(|e| e.to_string());
    assert_eq!(err, Err("Protocol error: invalid bulk length".to_owned()));

    let mut decoder = FrameDecoder::new(Limits::default());
    let mut buf = BytesMut::from(&b"*2\r\n$1\r\na\r\n$999999999999\r\n"[..]);
    assert!(matches!(
        decoder.decode(&mut buf),
        Err(ProtocolError::BulkTooLarge {
            len: 999_999_999_999,
            ..
        })
    ));
}

#[test]
fn oversized_multibulk_counts_fail_before_any_element() {
    let mut buf = BytesMut::from(&b"*1048577\r\n"[..]);
    let got = RequestDecoder::new(Limits::default()).decode(&mut buf);
    assert_eq!(
        got,
        Err(ProtocolError::ArrayTooLong {
            len: 1_048_577,
            max: 1_048_576
        })
    );
    let mut buf = BytesMut::from(&b"%1048577\r\n"[..]);
    let got = FrameDecoder::new(Limits::default()).decode(&mut buf);
    assert_eq!(
        got,
        Err(ProtocolError::ArrayTooLong {
            len: 1_048_577,
            max: 1_048_576
        })
    );
}

#[test]
fn an_inline_line_fails_as_soon_as_it_outgrows_the_limit() {
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut buf = BytesMut::from(&[b'a'; 64 * 1024][..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"\r");
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(None),
        "a trailing CR may still end the line"
    );
    buf.extend_from_slice(b"a");
    let err = decoder.decode(&mut buf).map_err(|e| e.to_string());
    assert_eq!(
        err,
        Err("Protocol error: too big inline request".to_owned())
    );
}

#[test]
fn count_lines_without_crlf_fail_past_the_inline_limit() {
    let mut mbulk = b"*".to_vec();
    mbulk.resize(64 * 1024 + 1, b'1');
    let err = requests(&mbulk).map_err(|e| e.to_string());
    assert_eq!(
        err,
        Err("Protocol error: too big mbulk count string".to_owned())
    );

    let mut bulk = b"*1\r\n$".to_vec();
    bulk.resize(4 + 64 * 1024 + 1, b'1');
    let err = requests(&bulk).map_err(|e| e.to_string());
    assert_eq!(
        err,
        Err("Protocol error: too big bulk count string".to_owned())
    );
}

#[test]
fn nesting_beyond_the_depth_limit_is_rejected() {
    let deep = "*1\r\n".repeat(129) + ":1\r\n";
    let mut buf = BytesMut::from(deep.as_bytes());
    let got = FrameDecoder::new(Limits::default()).decode(&mut buf);
    assert_eq!(got, Err(ProtocolError::NestingTooDeep { max: 128 }));

    let ok = "*1\r\n".repeat(128) + ":1\r\n";
    let mut buf = BytesMut::from(ok.as_bytes());
    assert!(matches!(
        FrameDecoder::new(Limits::default()).decode(&mut buf),
        Ok(Some(Frame::Array(_)))
    ));
}

/// A 1 MiB bulk fed one byte at a time: a decoder that rescanned its buffer on every call
/// would do ~5·10^11 byte comparisons here and never finish in a test run.
#[test]
fn a_one_mebibyte_bulk_fed_byte_by_byte_completes() {
    let payload: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut wire = format!("*2\r\n$3\r\nSET\r\n${}\r\n", payload.len()).into_bytes();
    wire.extend_from_slice(&payload);
    wire.extend_from_slice(b"\r\n");

    let mut requests = RequestDecoder::new(Limits::default());
    let mut frames = FrameDecoder::new(Limits::default());
    let (mut req_buf, mut frame_buf) = (BytesMut::new(), BytesMut::new());
    let (mut request, mut frame) = (None, None);
    for &byte in &wire {
        req_buf.extend_from_slice(&[byte]);
        frame_buf.extend_from_slice(&[byte]);
        assert!(request.is_none() && frame.is_none(), "completed early");
        request = requests.decode(&mut req_buf).ok().flatten();
        frame = frames.decode(&mut frame_buf).ok().flatten();
    }
    let value = Bytes::from(payload);
    assert_eq!(
        request,
        Some(vec![Bytes::from_static(b"SET"), value.clone()])
    );
    assert_eq!(
        frame,
        Some(Frame::Array(vec![Frame::bulk("SET"), Frame::Bulk(value)]))
    );
}

/// The same for a long inline line and an aggregate of many small elements.
#[test]
fn long_lines_and_wide_aggregates_fed_byte_by_byte_complete() {
    let line = format!("SET k {}\r\n", "v".repeat(60 * 1024));
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut got = None;
    for &byte in line.as_bytes() {
        buf.extend_from_slice(&[byte]);
        got = decoder.decode(&mut buf).ok().flatten();
    }
    assert_eq!(got.map(|args| args.len()), Some(3));

    let wide = format!("*100000\r\n{}", ":7\r\n".repeat(100_000));
    let mut decoder = FrameDecoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut got = None;
    for &byte in wide.as_bytes() {
        buf.extend_from_slice(&[byte]);
        got = decoder.decode(&mut buf).ok().flatten();
    }
    assert!(matches!(got, Some(Frame::Array(items)) if items.len() == 100_000));
}
