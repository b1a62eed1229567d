//! The Redis protocol, as Cachalot's server and client agree on it byte for byte.
//!
//! This crate holds RESP2/RESP3 values ([`Frame`]), an incremental zero-copy decoder for
//! replies and values ([`FrameDecoder`]) and one for server-side requests
//! ([`RequestDecoder`]), an allocation-free encoder ([`encode`]), a tokio-util codec
//! ([`RespCodec`], behind the default `codec` feature) and Redis Cluster key-slot hashing
//! ([`key_slot`]).
//!
//! # Modules
//!
//! | module | what it holds |
//! |---|---|
//! | [`frame`] | [`Frame`], [`ProtocolVersion`] |
//! | [`decode`] | [`FrameDecoder`], [`RequestDecoder`], [`Limits`] and the decoding contract |
//! | [`encode`] | [`encode()`](encode::encode) and the `write_*` functions for hot paths |
//! | [`slot`] | [`key_slot`], [`hash_tag`], [`SlotId`], [`SLOT_COUNT`] |
//! | [`error`] | [`ProtocolError`], whose texts are Redis's own |
//! | `codec` | [`RespCodec`], [`CodecError`] (feature `codec`) |
//!
//! # Example
//!
//! ```
//! use bytes::BytesMut;
//! use cachalot_protocol::{encode, key_slot, Limits, ProtocolVersion, RequestDecoder};
//!
//! // Server side: read a pipelined request, answer it.
//! let mut decoder = RequestDecoder::new(Limits::default());
//! let mut input = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n"[..]);
//! let args = decoder.decode(&mut input)?.expect("a complete request");
//! assert_eq!(args, vec!["GET", "foo"]);
//! assert_eq!(key_slot(&args[1]).get(), 12182);
//!
//! let mut output = BytesMut::new();
//! encode::write_null(&mut output, ProtocolVersion::Resp2);
//! assert_eq!(&output[..], b"$-1\r\n");
//! # Ok::<(), cachalot_protocol::ProtocolError>(())
//! ```
//!
//! # Model
//!
//! Everything here is sans-IO and single-owner: a decoder belongs to one connection and is
//! driven with whatever bytes that connection has read; nothing blocks, spawns or locks. The
//! decoders never trust a declared length: each is checked against [`Limits`] before anything
//! is allocated for it (see [`decode`] for the exact contract).
//!
//! # What this crate does not do
//!
//! - No I/O besides the optional codec, no connection handling, no command semantics: the
//!   server decides what `SET` means and which errors a command answers with.
//! - No slot-to-shard assignment: the ring lives in the server and reaches clients through
//!   `CLUSTER SLOTS`/`CLUSTER SHARDS`.
//! - No RESP3 streamed strings or aggregates (`$?`, `*?`): Redis never sends them.
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

#[cfg(feature = "codec")]
mod codec;
pub mod decode;
pub mod encode;
pub mod error;
pub mod frame;
pub mod slot;

#[cfg(feature = "codec")]
pub use codec::{CodecError, RespCodec};
pub use decode::{FrameDecoder, Limits, RequestDecoder};
pub use error::ProtocolError;
pub use frame::{Frame, ProtocolVersion};
pub use slot::{hash_tag, key_slot, SlotId, SLOT_COUNT};
