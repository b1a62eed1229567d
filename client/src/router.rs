//! [`SlotTable`]: which node serves each of the 16384 slots, parsed from a `CLUSTER SLOTS`
//! reply (sans-IO; the client fetches the reply and swaps the table in).

use std::net::{IpAddr, SocketAddr};

use cachalot_protocol::{Frame, SLOT_COUNT};

use crate::error::Error;

/// Marks a slot no shard serves.
const UNASSIGNED: u16 = u16::MAX;

/// One shard's addresses: the primary first, then its replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardAddrs {
    /// The node that takes writes.
    pub primary: SocketAddr,
    /// Nodes that serve reads to `READONLY` connections.
    pub replicas: Vec<SocketAddr>,
}

/// The slot map: for each slot, the index of its shard in [`SlotTable::shards`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotTable {
    shards: Vec<ShardAddrs>,
    slots: Vec<u16>,
}

impl SlotTable {
    /// One node serving every slot: a node without cluster mode.
    pub fn single(addr: SocketAddr) -> SlotTable {
        SlotTable {
            shards: vec![ShardAddrs {
                primary: addr,
                replicas: Vec::new(),
            }],
            slots: vec![0; usize::from(SLOT_COUNT)],
        }
    }

    /// Parses a `CLUSTER SLOTS` reply: an array of `[start, end, primary, replica...]`,
    /// each node as `[ip, port, id, ...]`. An empty ip means the address the reply came
    /// from (Redis's convention), so `reply_from` supplies it. Ranges whose primary is the
    /// same address form one shard.
    ///
    /// # Errors
    /// [`Error::Topology`] for a reply of the wrong shape or with slots out of range.
    pub fn from_cluster_slots(reply: &Frame, reply_from: IpAddr) -> Result<SlotTable, Error> {
        let bad = |why: &str| Error::Topology(format!("CLUSTER SLOTS: {why}"));
        let Frame::Array(ranges) = reply else {
            return Err(bad("not an array"));
        };
        let mut table = SlotTable {
            shards: Vec::new(),
            slots: vec![UNASSIGNED; usize::from(SLOT_COUNT)],
        };
        for range in ranges {
            let Frame::Array(parts) = range else {
                return Err(bad("a range is not an array"));
            };
            let (Some(start), Some(end), Some(primary)) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                return Err(bad("a range has fewer than three elements"));
            };
            let (start, end) = (slot_number(start), slot_number(end));
            let (Some(start), Some(end)) = (start, end) else {
                return Err(bad("a slot number out of range"));
            };
            if start > end {
                return Err(bad("a range ends before it starts"));
            }
            let primary = node_addr(primary, reply_from).ok_or_else(|| bad("bad node entry"))?;
            let replicas = parts
                .get(3..)
                .unwrap_or_default()
                .iter()
                .filter_map(|n| node_addr(n, reply_from))
                .collect();
            let index = table.shard_index(primary, replicas);
            for slot in table.slots.get_mut(start..=end).into_iter().flatten() {
                *slot = index;
            }
        }
        Ok(table)
    }

    /// The index of the shard whose primary is `primary`, adding it if new.
    fn shard_index(&mut self, primary: SocketAddr, replicas: Vec<SocketAddr>) -> u16 {
        if let Some(i) = self.shards.iter().position(|s| s.primary == primary) {
            return u16::try_from(i).unwrap_or(UNASSIGNED);
        }
        self.shards.push(ShardAddrs { primary, replicas });
        u16::try_from(self.shards.len() - 1).unwrap_or(UNASSIGNED)
    }

    /// The shard serving `slot`, if any.
    pub fn shard_of(&self, slot: u16) -> Option<usize> {
        match self.slots.get(usize::from(slot)) {
            Some(&UNASSIGNED) | None => None,
            Some(&i) => Some(usize::from(i)),
        }
    }

    /// The shards, in the order their indexes refer to.
    pub fn shards(&self) -> &[ShardAddrs] {
        &self.shards
    }

    /// Slots no shard serves.
    #[cfg(test)]
    pub fn unassigned(&self) -> usize {
        self.slots.iter().filter(|&&s| s == UNASSIGNED).count()
    }
}

/// A slot number from an integer frame.
fn slot_number(frame: &Frame) -> Option<usize> {
    match frame {
        Frame::Integer(n) if (0..i64::from(SLOT_COUNT)).contains(n) => usize::try_from(*n).ok(),
        _ => None,
    }
}

/// `[ip, port, ...]` as an address; an empty ip is `default_ip`.
fn node_addr(frame: &Frame, default_ip: IpAddr) -> Option<SocketAddr> {
    let Frame::Array(fields) = frame else {
        return None;
    };
    let ip = match fields.first()? {
        Frame::Bulk(b) | Frame::Simple(b) if b.is_empty() => default_ip,
        Frame::Bulk(b) | Frame::Simple(b) => std::str::from_utf8(b).ok()?.parse().ok()?,
        _ => return None,
    };
    let port = match fields.get(1)? {
        Frame::Integer(p) => u16::try_from(*p).ok()?,
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ip: &str, port: i64) -> Frame {
        Frame::Array(vec![
            Frame::bulk(ip.to_owned()),
            Frame::Integer(port),
            Frame::bulk("id"),
            Frame::Array(vec![]),
        ])
    }

    fn range(start: i64, end: i64, nodes: Vec<Frame>) -> Frame {
        let mut parts = vec![Frame::Integer(start), Frame::Integer(end)];
        parts.extend(nodes);
        Frame::Array(parts)
    }

    fn local() -> IpAddr {
        IpAddr::from([127, 0, 0, 1])
    }

    #[test]
    fn ranges_of_one_primary_form_one_shard_with_its_replicas() {
        let reply = Frame::Array(vec![
            range(
                0,
                99,
                vec![node("127.0.0.1", 7001), node("127.0.0.1", 7004)],
            ),
            range(100, 16383, vec![node("127.0.0.1", 7002)]),
            range(50, 60, vec![node("127.0.0.1", 7001)]),
        ]);
        let table = SlotTable::from_cluster_slots(&reply, local()).expect("valid");
        assert_eq!(table.shards().len(), 2);
        assert_eq!(table.shards()[0].replicas.len(), 1);
        assert_eq!(table.shard_of(0), Some(0));
        assert_eq!(table.shard_of(99), Some(0));
        assert_eq!(table.shard_of(100), Some(1));
        assert_eq!(table.shard_of(16383), Some(1));
        assert_eq!(table.unassigned(), 0);
    }

    #[test]
    fn an_empty_ip_means_the_address_asked() {
        let reply = Frame::Array(vec![range(0, 16383, vec![node("", 7001)])]);
        let table = SlotTable::from_cluster_slots(&reply, local()).expect("valid");
        assert_eq!(
            table.shards()[0].primary,
            "127.0.0.1:7001".parse().expect("addr")
        );
    }

    #[test]
    fn missing_slots_are_unassigned() {
        let reply = Frame::Array(vec![range(0, 10, vec![node("127.0.0.1", 7001)])]);
        let table = SlotTable::from_cluster_slots(&reply, local()).expect("valid");
        assert_eq!(table.shard_of(11), None);
        assert_eq!(table.unassigned(), 16384 - 11);
    }

    #[test]
    fn malformed_replies_are_topology_errors_not_panics() {
        let cases = [
            Frame::Integer(1),
            Frame::Array(vec![Frame::Integer(1)]),
            Frame::Array(vec![range(0, 16384, vec![node("127.0.0.1", 1)])]),
            Frame::Array(vec![range(5, 1, vec![node("127.0.0.1", 1)])]),
            Frame::Array(vec![range(0, 1, vec![node("127.0.0.1", 70000)])]),
            Frame::Array(vec![range(0, 1, vec![node("not-an-ip", 1)])]),
            Frame::Array(vec![range(-1, 1, vec![node("127.0.0.1", 1)])]),
        ];
        for reply in cases {
            let r = SlotTable::from_cluster_slots(&reply, local());
            assert!(matches!(r, Err(Error::Topology(_))), "{reply:?} gave {r:?}");
        }
    }
}
