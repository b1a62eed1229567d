//! The three protocol properties from STYLE §6: encoding round-trips, chunking does not
//! matter, and hostile bytes neither panic nor make a decoder hold more than its limits.

use bytes::{Bytes, BytesMut};
use cachalot_protocol::{
    encode::encode, Frame, FrameDecoder, Limits, ProtocolVersion, RequestDecoder,
};
use proptest::collection::vec;
use proptest::prelude::*;

fn line_bytes() -> impl Strategy<Value = Bytes> {
    vec(
        any::<u8>().prop_filter("no CR/LF in a line", |b| *b != b'\r' && *b != b'\n'),
        0..16,
    )
    .prop_map(Bytes::from)
}

fn blob() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

/// Leaves that RESP2 can carry unchanged.
fn resp2_leaf() -> impl Strategy<Value = Frame> {
    prop_oneof![
        line_bytes().prop_map(Frame::Simple),
        line_bytes().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        blob().prop_map(Frame::Bulk),
        Just(Frame::Null),
        Just(Frame::NullArray),
    ]
}

fn resp2_frame() -> impl Strategy<Value = Frame> {
    resp2_leaf().prop_recursive(4, 48, 6, |inner| vec(inner, 0..6).prop_map(Frame::Array))
}

/// Every RESP3 leaf except `NullArray` (RESP3 spells it `_`, which reads back as `Null`)
/// and NaN (which is not equal to itself).
fn resp3_leaf() -> impl Strategy<Value = Frame> {
    prop_oneof![
        line_bytes().prop_map(Frame::Simple),
        line_bytes().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        blob().prop_map(Frame::Bulk),
        Just(Frame::Null),
        any::<f64>()
            .prop_filter("NaN != NaN", |x| !x.is_nan())
            .prop_map(Frame::Double),
        any::<bool>().prop_map(Frame::Boolean),
        "-?[0-9]{1,40}".prop_map(|digits| Frame::BigNumber(Bytes::from(digits))),
        (any::<[u8; 3]>(), blob()).prop_map(|(format, text)| Frame::Verbatim { format, text }),
        blob().prop_map(Frame::BulkError),
    ]
}

fn resp3_frame() -> impl Strategy<Value = Frame> {
    resp3_leaf().prop_recursive(4, 48, 6, |inner| {
        let pairs = vec((inner.clone(), inner.clone()), 0..4);
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Frame::Array),
            vec(inner.clone(), 0..6).prop_map(Frame::Set),
            vec(inner.clone(), 0..6).prop_map(Frame::Push),
            pairs.clone().prop_map(Frame::Map),
            (pairs, inner).prop_map(|(attributes, data)| Frame::Attribute {
                attributes,
                data: Box::new(data)
            }),
        ]
    })
}

fn encode_all(frames: &[Frame], version: ProtocolVersion) -> Vec<u8> {
    let mut out = BytesMut::new();
    frames
        .iter()
        .for_each(|frame| encode(frame, version, &mut out));
    out.to_vec()
}

/// Feeds `chunks` in order and collects every frame; the stream must end on a frame boundary.
fn decode_frames<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<Frame>, String> {
    let mut decoder = FrameDecoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(frame) = decoder.decode(&mut buf).map_err(|e| e.to_string())? {
            frames.push(frame);
        }
    }
    match buf.is_empty() {
        true => Ok(frames),
        false => Err(format!("{} bytes left over", buf.len())),
    }
}

fn decode_requests<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Vec<Bytes>>, String> {
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(args) = decoder.decode(&mut buf).map_err(|e| e.to_string())? {
            requests.push(args);
        }
    }
    match buf.is_empty() {
        true => Ok(requests),
        false => Err(format!("{} bytes left over", buf.len())),
    }
}

/// Cuts `bytes` into consecutive pieces of the given sizes, cycled (a zero size counts as one).
fn pieces<'a>(bytes: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at((*size).clamp(1, rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// One request, and how it goes on the wire.
#[derive(Clone, Debug)]
enum Request {
    Multibulk(Vec<Bytes>),
    /// Plain words separated by spaces, ended by CRLF or a bare LF.
    Inline {
        words: Vec<Bytes>,
        bare_lf: bool,
    },
    /// Arbitrary bytes written as `"\xHH..."` quoted arguments.
    Quoted(Vec<Bytes>),
    /// Something Redis skips: a blank line, `*0`, `*-1`.
    Empty(&'static [u8]),
}

impl Request {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Request::Multibulk(args) => {
                out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
                for arg in args {
                    out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
                    out.extend_from_slice(arg);
                    out.extend_from_slice(b"\r\n");
                }
            }
            Request::Inline { words, bare_lf } => {
                out.extend_from_slice(&words.join(&b' '));
                out.extend_from_slice(if *bare_lf { b"\n" } else { b"\r\n" });
            }
            Request::Quoted(args) => {
                for arg in args {
                    out.extend_from_slice(b" \"");
                    arg.iter()
                        .for_each(|b| out.extend_from_slice(format!("\\x{b:02x}").as_bytes()));
                    out.push(b'"');
                }
                out.extend_from_slice(b"\r\n");
            }
            Request::Empty(bytes) => out.extend_from_slice(bytes),
        }
    }

    fn args(&self) -> Option<Vec<Bytes>> {
        match self {
            Request::Multibulk(args) | Request::Quoted(args) => Some(args.clone()),
            Request::Inline { words, .. } => Some(words.clone()),
            Request::Empty(_) => None,
        }
    }
}

fn request() -> impl Strategy<Value = Request> {
    let word = "[a-zA-Z0-9:{}._-]{1,12}".prop_map(Bytes::from);
    prop_oneof![
        4 => vec(blob(), 1..6).prop_map(Request::Multibulk),
        2 => (vec(word, 1..5), any::<bool>()).prop_map(|(words, bare_lf)| Request::Inline { words, bare_lf }),
        1 => vec(vec(any::<u8>(), 0..8).prop_map(Bytes::from), 1..4).prop_map(Request::Quoted),
        1 => prop_oneof![Just(&b"\r\n"[..]), Just(&b"\n"[..]), Just(&b"  \r\n"[..]), Just(&b"*0\r\n"[..]), Just(&b"*-1\r\n"[..])]
            .prop_map(Request::Empty),
    ]
}

/// The most bytes one frame can take under `limits` (a bound, not an exact maximum): any
/// line is at most `max_inline_len` bytes before its CRLF, and an attribute has the most
/// children, `2n + 1`.
fn frame_bound(limits: &Limits) -> usize {
    let line = limits.max_inline_len + 2;
    let leaf = line + limits.max_bulk_len + 2;
    (0..limits.max_depth).fold(leaf, |inner, _| {
        line + (2 * limits.max_array_len + 1) * inner.max(leaf)
    })
}

fn request_bound(limits: &Limits) -> usize {
    let line = limits.max_inline_len + 2;
    (line + limits.max_array_len * (line + limits.max_bulk_len + 2)).max(line)
}

/// Type bytes for frame soup.
const FRAME_TYPES: &[u8] = b"*$%|~>:+=!,#(_-";

/// Byte soup that looks like RESP often enough to reach deep into the decoders: mostly
/// header lines with small, near-limit or huge counts, payload-ish runs and stray bytes.
fn resp_soup(type_bytes: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    let type_byte = prop::sample::select(type_bytes.to_vec());
    let count = prop_oneof![
        (0u64..20).prop_map(|n| n.to_string()),
        (0u64..200).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("-1".to_owned()),
        "[0-9a-z.-]{0,4}",
    ];
    let header = (
        type_byte,
        count,
        prop_oneof![4 => Just("\r\n"), 1 => Just("\n"), 1 => Just("")],
    )
        .prop_map(|(t, n, end)| [&[t][..], n.as_bytes(), end.as_bytes()].concat());
    let token = prop_oneof![
        6 => header,
        2 => vec(prop::sample::select(b"abc \"'\\x\r\n".to_vec()), 0..20),
        1 => vec(any::<u8>(), 0..8),
    ];
    vec(token, 0..40).prop_map(|tokens| tokens.concat())
}

/// Multibulk-shaped requests whose counts, lengths and payload sizes often disagree with
/// each other or break the limits, mixed with inline lines and junk.
fn request_soup() -> impl Strategy<Value = Vec<u8>> {
    let count = || {
        prop_oneof![
            2 => (0u64..20).prop_map(|n| n.to_string()),
            2 => (0u64..200).prop_map(|n| n.to_string()),
            1 => any::<u64>().prop_map(|n| n.to_string()),
            1 => "-?[0-9a-z]{0,3}",
        ]
    };
    let bulk = (
        count(),
        vec(any::<u8>(), 0..40),
        prop_oneof![Just(""), Just("\r\n")],
    )
        .prop_map(|(len, payload, end)| {
            [b"$", len.as_bytes(), b"\r\n", &payload, end.as_bytes()].concat()
        });
    let multibulk = (count(), vec(bulk, 0..6))
        .prop_map(|(n, bulks)| [b"*", n.as_bytes(), b"\r\n", &bulks.concat()].concat());
    let inline = vec(prop::sample::select(b"ab \"'\\x\r".to_vec()), 0..40)
        .prop_map(|line| [line, b"\n".to_vec()].concat());
    let token = prop_oneof![4 => multibulk, 1 => inline, 1 => vec(any::<u8>(), 0..8)];
    vec(token, 0..6).prop_map(|tokens| tokens.concat())
}

/// Bytes that can neither end a line, nor terminate a bulk, nor start an element or request
/// that could complete: a decoder waiting within its limits must fail once it has read them.
/// One that accepted an over-limit length would still be waiting.
fn filler(limits: &Limits) -> Vec<u8> {
    vec![b'a'; limits.max_bulk_len.max(limits.max_inline_len) + 3]
}

fn small_limits() -> Limits {
    Limits {
        max_bulk_len: 16,
        max_array_len: 4,
        max_depth: 3,
        max_inline_len: 32,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn resp3_frames_round_trip(frames in vec(resp3_frame(), 1..4)) {
        let wire = encode_all(&frames, ProtocolVersion::Resp3);
        prop_assert_eq!(decode_frames([&wire[..]]), Ok(frames));
    }

    #[test]
    fn resp2_frames_round_trip(frames in vec(resp2_frame(), 1..4)) {
        let wire = encode_all(&frames, ProtocolVersion::Resp2);
        prop_assert_eq!(decode_frames([&wire[..]]), Ok(frames));
    }

    #[test]
    fn any_double_round_trips(x in any::<f64>()) {
        let wire = encode_all(&[Frame::Double(x)], ProtocolVersion::Resp3);
        let frames = decode_frames([&wire[..]]);
        let back = match frames.as_deref() { Ok([Frame::Double(y)]) => Some(*y), _ => None };
        prop_assert!(back.is_some_and(|y| y == x || (x.is_nan() && y.is_nan())), "{:?} -> {:?}", x, frames);
    }

    #[test]
    fn frames_split_anywhere_decode_the_same(
        frames in vec(resp3_frame(), 1..4),
        sizes in vec(1usize..12, 1..8),
    ) {
        let wire = encode_all(&frames, ProtocolVersion::Resp3);
        for split in 0..=wire.len() {
            let (head, tail) = wire.split_at(split);
            prop_assert_eq!(decode_frames([head, tail]), Ok(frames.clone()), "split at {}", split);
        }
        prop_assert_eq!(decode_frames(pieces(&wire, &sizes)), Ok(frames));
    }

    #[test]
    fn requests_split_anywhere_decode_the_same(
        requests in vec(request(), 1..6),
        sizes in vec(1usize..12, 1..8),
    ) {
        let mut wire = Vec::new();
        requests.iter().for_each(|r| r.write(&mut wire));
        let want: Vec<Vec<Bytes>> = requests.iter().filter_map(Request::args).collect();
        for split in 0..=wire.len() {
            let (head, tail) = wire.split_at(split);
            prop_assert_eq!(decode_requests([head, tail]), Ok(want.clone()), "split at {}", split);
        }
        prop_assert_eq!(decode_requests(pieces(&wire, &sizes)), Ok(want));
    }

    #[test]
    fn hostile_bytes_stay_within_the_frame_decoder_limits(
        input in prop_oneof![resp_soup(FRAME_TYPES), vec(any::<u8>(), 0..512)],
        sizes in vec(1usize..64, 1..8),
    ) {
        let limits = small_limits();
        let mut decoder = FrameDecoder::new(limits);
        let mut buf = BytesMut::new();
        'feed: for chunk in pieces(&input, &sizes) {
            buf.extend_from_slice(chunk);
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        prop_assert!(buf.len() <= frame_bound(&limits), "holding {} bytes", buf.len());
                        let (mut probe, mut probe_buf) = (decoder.clone(), buf.clone());
                        probe_buf.extend_from_slice(&filler(&limits));
                        prop_assert!(probe.decode(&mut probe_buf).is_err(), "waits beyond the limits");
                        break;
                    }
                    Err(_) => break 'feed,
                }
            }
        }
    }

    #[test]
    fn hostile_bytes_stay_within_the_request_decoder_limits(
        input in prop_oneof![request_soup(), vec(any::<u8>(), 0..512)],
        sizes in vec(1usize..64, 1..8),
    ) {
        let limits = small_limits();
        let mut decoder = RequestDecoder::new(limits);
        let mut buf = BytesMut::new();
        'feed: for chunk in pieces(&input, &sizes) {
            buf.extend_from_slice(chunk);
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(args)) => {
                        let longest = limits.max_inline_len.max(limits.max_bulk_len);
                        prop_assert!(args.iter().all(|a| a.len() <= longest));
                    }
                    Ok(None) => {
                        prop_assert!(buf.len() <= request_bound(&limits), "holding {} bytes", buf.len());
                        let (mut probe, mut probe_buf) = (decoder.clone(), buf.clone());
                        probe_buf.extend_from_slice(&filler(&limits));
                        prop_assert!(probe.decode(&mut probe_buf).is_err(), "waits beyond the limits");
                        break;
                    }
                    Err(_) => break 'feed,
                }
            }
        }
    }

    #[test]
    fn hostile_bytes_decode_the_same_in_any_chunking(
        input in resp_soup(FRAME_TYPES),
        sizes in vec(1usize..16, 1..8),
    ) {
        let whole = decode_prefix(&[&input[..]]);
        prop_assert_eq!(decode_prefix(&pieces(&input, &sizes)), whole);
    }
}

/// Frames (as debug text, so NaNs compare) up to the first error, then the error.
fn decode_prefix(chunks: &[&[u8]]) -> (Vec<String>, Option<String>) {
    let mut decoder = FrameDecoder::new(small_limits());
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(format!("{frame:?}")),
                Ok(None) => break,
                Err(err) => return (frames, Some(err.to_string())),
            }
        }
    }
    (frames, None)
}
