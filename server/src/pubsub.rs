//! Pub/sub: channel and pattern subscriptions and `PUBLISH` delivery, in Redis's reply
//! formats. It also carries redirected invalidations to RESP2 clients subscribed to
//! `__redis__:invalidate` (see [`crate::tracking`]).
//!
//! Each connection keeps its own subscription lists (the session); this table maps the
//! other way, channel → subscribers, for `PUBLISH`. Both maps are behind read-mostly
//! locks taken by `PUBLISH` (read) and by (un)subscribing (write), never by other commands.
//! Messages go through each subscriber's bounded push queue; a full queue disconnects the
//! subscriber, as Redis's pub/sub output-buffer limit does.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use cachalot_protocol::{encode, ProtocolVersion};
use parking_lot::RwLock;

use crate::net::registry::{ClientHandle, ClientId};
use crate::pattern::glob_match;
use crate::tracking::Origin;

/// Subscribers by channel and by pattern.
#[derive(Debug, Default)]
pub struct PubSub {
    /// Channel → subscribers; written by SUBSCRIBE/UNSUBSCRIBE and disconnects.
    channels: RwLock<HashMap<Bytes, Vec<Arc<ClientHandle>>>>,
    /// Pattern → subscribers; written by PSUBSCRIBE/PUNSUBSCRIBE and disconnects.
    patterns: RwLock<HashMap<Bytes, Vec<Arc<ClientHandle>>>>,
}

/// Which of the two maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Exact channel names (`SUBSCRIBE`).
    Channel,
    /// Glob patterns (`PSUBSCRIBE`).
    Pattern,
}

impl PubSub {
    fn map(&self, kind: Kind) -> &RwLock<HashMap<Bytes, Vec<Arc<ClientHandle>>>> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
        }
    }

    /// Adds `handle` to `name`'s subscribers (the session has checked it was not one).
    pub fn subscribe(&self, kind: Kind, name: Bytes, handle: &Arc<ClientHandle>) {
        self.map(kind)
            .write()
            .entry(name)
            .or_default()
            .push(Arc::clone(handle));
    }

    /// Removes client `id` from `name`'s subscribers.
    pub fn unsubscribe(&self, kind: Kind, name: &[u8], id: ClientId) {
        let mut map = self.map(kind).write();
        if let Some(list) = map.get_mut(name) {
            list.retain(|h| h.id != id);
            if list.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Channels with at least one subscriber (`pubsub_channels`).
    pub fn channels(&self) -> usize {
        self.channels.read().len()
    }

    /// Patterns with at least one subscriber (`pubsub_patterns`).
    pub fn patterns(&self) -> usize {
        self.patterns.read().len()
    }

    /// Sends `message` to `channel`'s subscribers and to every matching pattern's;
    /// returns how many receptions there were (Redis's `PUBLISH` reply).
    pub fn publish(
        &self,
        channel: &[u8],
        message: &[u8],
        origin: &mut Origin<'_>,
        overflows: &AtomicU64,
    ) -> usize {
        let mut sent = 0;
        let mut frames = [None, None];
        if let Some(list) = self.channels.read().get(channel) {
            for h in list {
                let frame = frames[usize::from(h.is_resp3())]
                    .get_or_insert_with(|| message_frame(h.is_resp3(), None, channel, message));
                send(h, frame.clone(), origin, overflows);
                sent += 1;
            }
        }
        for (pattern, list) in self.patterns.read().iter() {
            if !glob_match(pattern, channel, false) {
                continue;
            }
            let mut frames = [None, None];
            for h in list {
                let frame = frames[usize::from(h.is_resp3())].get_or_insert_with(|| {
                    message_frame(h.is_resp3(), Some(pattern), channel, message)
                });
                send(h, frame.clone(), origin, overflows);
                sent += 1;
            }
        }
        sent
    }
}

/// Queues `msg` for `target`, or appends it to the running command's replies when the
/// target is the publisher itself (Redis writes it before the `PUBLISH` reply).
fn send(target: &ClientHandle, msg: Bytes, origin: &mut Origin<'_>, overflows: &AtomicU64) {
    if Some(target.id) == origin.writer {
        if let Some(out) = origin.out.as_deref_mut() {
            out.extend_from_slice(&msg);
            return;
        }
    }
    target.try_push(msg, overflows);
}

/// A `message` (or, with a pattern, `pmessage`) frame: a RESP3 push or a RESP2 array.
pub fn message_frame(resp3: bool, pattern: Option<&[u8]>, channel: &[u8], message: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(32 + channel.len() + message.len());
    let len = if pattern.is_some() { 4 } else { 3 };
    let version = if resp3 {
        ProtocolVersion::Resp3
    } else {
        ProtocolVersion::Resp2
    };
    encode::write_push_header(&mut b, len, version);
    match pattern {
        Some(p) => {
            encode::write_bulk(&mut b, b"pmessage");
            encode::write_bulk(&mut b, p);
        }
        None => encode::write_bulk(&mut b, b"message"),
    }
    encode::write_bulk(&mut b, channel);
    encode::write_bulk(&mut b, message);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_frames_match_redis() {
        assert_eq!(
            &message_frame(false, None, b"ch1", b"hello")[..],
            b"*3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$5\r\nhello\r\n"
        );
        assert_eq!(
            &message_frame(true, Some(b"c?1"), b"ch1", b"hello")[..],
            &b">4\r\n$8\r\npmessage\r\n$3\r\nc?1\r\n$3\r\nch1\r\n$5\r\nhello\r\n"[..]
        );
    }
}
