//! What flows from a primary to its replicas: the effect of each write on one key (its
//! new value with an absolute expiry, or its deletion), and the frames that carry them.
//!
//! Effects are states, not commands: replaying them in stream order leaves a replica with
//! the primary's state, whatever happened in between, and applying one twice changes
//! nothing.

use bytes::{Bytes, BytesMut};
use prost::Message as _;

use crate::cluster::migrate::{decode_value, encode_item, Item};
use crate::key::Key;
use crate::node::Node;
use crate::value::Value;

/// Largest single effect a replica accepts: twice Redis's largest `proto-max-bulk-len`
/// default (a value of 512 MiB and its key). A longer length is a broken stream. Nothing is
/// allocated from the length: an effect's bytes are held as they arrive, spread over
/// frames.
pub const MAX_EFFECT_BYTES: usize = 1024 * 1024 * 1024;

/// One key's state after a write.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Effect {
    /// The key.
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    /// The new value; absent when the key is gone.
    #[prost(message, optional, tag = "2")]
    pub value: Option<Item>,
    /// Absolute expiry in unix milliseconds; 0 for none.
    #[prost(uint64, tag = "3")]
    pub expire_at: u64,
}

/// Appends the length-delimited effect for `key` in the state `live` to `out`.
pub fn encode(key: &[u8], live: Option<(&Value, Option<u64>)>, out: &mut Vec<u8>) {
    let effect = Effect {
        key: Bytes::copy_from_slice(key),
        value: live.map(|(v, _)| encode_item(&[], v, 0)),
        expire_at: live.and_then(|(_, at)| at).unwrap_or(0),
    };
    // Writing into a Vec cannot fail for lack of room.
    let _ = effect.encode_length_delimited(out);
}

/// What a replica does with a stream: complete effects are applied, a partial one waits
/// for the rest of its bytes.
#[derive(Debug, Default)]
pub struct Applier {
    carry: BytesMut,
}

impl Applier {
    /// Bytes held of an effect not complete yet.
    pub fn pending(&self) -> usize {
        self.carry.len()
    }

    /// Applies every complete effect in `data` (after what was carried), returning the
    /// stream bytes they took, so the caller's offset stays on an effect boundary.
    ///
    /// # Errors
    /// A malformed or oversized effect: the stream cannot be trusted past it.
    pub fn apply(&mut self, node: &Node, data: &[u8]) -> Result<Bytes, String> {
        self.carry.extend_from_slice(data);
        let mut used = 0usize;
        loop {
            let mut view = &self.carry[used..];
            let before = view.len();
            let Ok(len) = prost::decode_length_delimiter(&mut view) else {
                if before >= 10 {
                    return Err("malformed effect length".into());
                }
                break;
            };
            if len > MAX_EFFECT_BYTES {
                return Err(format!("effect of {len} bytes is over the limit"));
            }
            let header = before - view.len();
            if view.len() < len {
                break;
            }
            let effect =
                Effect::decode(&view[..len]).map_err(|e| format!("malformed effect: {e}"))?;
            apply_one(node, &effect)?;
            used += header + len;
        }
        Ok(self.carry.split_to(used).freeze())
    }
}

/// Applies one effect to the keyspace, bypassing `maxmemory` (a replica holds what its
/// primary holds; it never evicts on its own).
///
/// # Errors
/// A value the wire form cannot describe, or a keyspace that cannot take another entry.
pub fn apply_one(node: &Node, effect: &Effect) -> Result<(), String> {
    match &effect.value {
        Some(item) => {
            let value = decode_value(item).map_err(str::to_owned)?;
            let at = (effect.expire_at > 0).then_some(effect.expire_at);
            node.store
                .modify(Key::from_slice(&effect.key), |e| {
                    e.insert(value);
                    e.set_expire_at(at);
                })
                .map_err(|e| e.to_string())?;
        }
        None => {
            node.store.remove(&effect.key[..]);
        }
    }
    if node.tracking.has_work() {
        node.tracking.invalidate(
            std::iter::once(&effect.key[..]),
            &mut crate::tracking::Origin::node(),
        );
    }
    Ok(())
}

/// One frame of a replication link, primary to replica.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinkFrame {
    /// What it carries.
    #[prost(enumeration = "FrameKind", tag = "1")]
    pub kind: i32,
    /// The stream offset of `data`'s first byte ([`FrameKind::Stream`]), or the offset the
    /// stream resumes from after the snapshot ([`FrameKind::SnapshotEnd`]).
    #[prost(uint64, tag = "2")]
    pub offset: u64,
    /// Length-delimited effects (a snapshot batch), or stream bytes.
    #[prost(bytes = "bytes", tag = "3")]
    pub data: Bytes,
}

/// The kinds of [`LinkFrame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum FrameKind {
    /// Keep-alive.
    Ping = 0,
    /// Snapshot entries, whole effects.
    Snapshot = 1,
    /// The snapshot is complete.
    SnapshotEnd = 2,
    /// Stream bytes.
    Stream = 3,
}

/// A replica's acknowledgement: the stream offset it has applied.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Ack {
    /// Applied offset.
    #[prost(uint64, tag = "1")]
    pub offset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn node() -> std::sync::Arc<Node> {
        Node::new(
            Config::default(),
            tokio_util::sync::CancellationToken::new(),
        )
        .expect("node")
    }

    #[test]
    fn effects_split_anywhere_apply_once_complete() {
        let mut stream = Vec::new();
        let value = Value::from_bytes(b"hello");
        encode(b"a", Some((&value, Some(4_000_000_000_000))), &mut stream);
        encode(b"b", Some((&Value::int(7), None)), &mut stream);
        encode(b"a", None, &mut stream);
        for cut in 0..=stream.len() {
            let n = node();
            n.store
                .insert(Key::from_slice(b"a"), Value::int(1))
                .expect("insert");
            let mut applier = Applier::default();
            let first = applier.apply(&n, &stream[..cut]).expect("first part");
            let second = applier.apply(&n, &stream[cut..]).expect("second part");
            assert_eq!(applier.pending(), 0);
            assert_eq!([&first[..], &second[..]].concat(), stream, "cut at {cut}");
            assert!(!n.store.contains(&b"a"[..]), "deleted last");
            let b = n.store.get(&b"b"[..]).expect("b");
            assert!(matches!(b.view(), crate::value::View::Int(7)));
        }
    }

    #[test]
    fn a_length_over_the_limit_is_refused_before_any_allocation() {
        let n = node();
        let mut bytes = Vec::new();
        prost::encode_length_delimiter(MAX_EFFECT_BYTES + 1, &mut bytes).expect("varint");
        let mut applier = Applier::default();
        assert!(applier.apply(&n, &bytes).is_err());
        let mut applier = Applier::default();
        assert!(
            applier.apply(&n, &[0xff; 11]).is_err(),
            "a varint past ten bytes"
        );
    }
}
