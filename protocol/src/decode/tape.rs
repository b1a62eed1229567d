//! The tape: what [`FrameDecoder`](super::FrameDecoder) records while it scans a frame, and
//! how the finished tape becomes a [`Frame`].
//!
//! Scanning happens while the frame's bytes are still arriving, so it can only note where
//! each string lies. Once the frame is complete its bytes are frozen and [`build`] turns the
//! tape into a frame whose strings slice those bytes. Building is iterative, so deeply nested
//! frames cost heap, not stack.

use bytes::Bytes;

use super::{Span, MAX_PREALLOCATED_ELEMENTS};
use crate::frame::Frame;

/// One scanned element, in the order the elements appear on the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Token {
    Simple(Span),
    Error(Span),
    Integer(i64),
    Bulk(Span),
    Null,
    NullArray,
    Double(f64),
    Boolean(bool),
    BigNumber(Span),
    Verbatim {
        format: [u8; 3],
        text: Span,
    },
    BulkError(Span),
    /// An aggregate header; the `children` tokens after it (recursively) are its elements.
    Aggregate {
        kind: Kind,
        children: usize,
    },
}

/// The aggregate types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Array,
    Map,
    Set,
    Push,
    /// Key/value pairs followed by the annotated frame.
    Attribute,
}

impl Kind {
    /// The aggregate's frame, from its elements in wire order.
    fn finish(self, mut items: Vec<Frame>) -> Frame {
        match self {
            Kind::Array => Frame::Array(items),
            Kind::Set => Frame::Set(items),
            Kind::Push => Frame::Push(items),
            Kind::Map => Frame::Map(pairs(items)),
            Kind::Attribute => {
                let data = items.pop().unwrap_or(Frame::Null);
                Frame::Attribute {
                    attributes: pairs(items),
                    data: Box::new(data),
                }
            }
        }
    }
}

fn pairs(items: Vec<Frame>) -> Vec<(Frame, Frame)> {
    let mut pairs = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(key), Some(value)) = (items.next(), items.next()) {
        pairs.push((key, value));
    }
    pairs
}

/// An aggregate whose elements are still being collected.
struct Open {
    kind: Kind,
    remaining: usize,
    items: Vec<Frame>,
}

/// Builds the frame recorded in `tape`, slicing its strings out of `bytes`.
///
/// The scanner only hands over complete, well-formed tapes. The function is total anyway: a
/// truncated tape closes its open aggregates early and an empty one yields [`Frame::Null`].
pub(super) fn build(tape: &[Token], bytes: &Bytes) -> Frame {
    let mut open: Vec<Open> = Vec::new();
    for token in tape {
        let mut frame = match *token {
            Token::Simple(span) => Frame::Simple(span.slice_of(bytes)),
            Token::Error(span) => Frame::Error(span.slice_of(bytes)),
            Token::Integer(n) => Frame::Integer(n),
            Token::Bulk(span) => Frame::Bulk(span.slice_of(bytes)),
            Token::Null => Frame::Null,
            Token::NullArray => Frame::NullArray,
            Token::Double(value) => Frame::Double(value),
            Token::Boolean(value) => Frame::Boolean(value),
            Token::BigNumber(span) => Frame::BigNumber(span.slice_of(bytes)),
            Token::Verbatim { format, text } => Frame::Verbatim {
                format,
                text: text.slice_of(bytes),
            },
            Token::BulkError(span) => Frame::BulkError(span.slice_of(bytes)),
            Token::Aggregate { kind, children: 0 } => kind.finish(Vec::new()),
            Token::Aggregate { kind, children } => {
                let items = Vec::with_capacity(children.min(MAX_PREALLOCATED_ELEMENTS));
                open.push(Open {
                    kind,
                    remaining: children,
                    items,
                });
                continue;
            }
        };
        // Hand the finished frame to its parent, closing every parent it completes.
        loop {
            let Some(parent) = open.last_mut() else {
                return frame;
            };
            parent.items.push(frame);
            parent.remaining = parent.remaining.saturating_sub(1);
            if parent.remaining > 0 {
                break;
            }
            match open.pop() {
                Some(done) => frame = done.kind.finish(done.items),
                None => return Frame::Null,
            }
        }
    }
    let mut frame = None;
    while let Some(mut done) = open.pop() {
        done.items.extend(frame.take());
        frame = Some(done.kind.finish(done.items));
    }
    frame.unwrap_or(Frame::Null)
}
