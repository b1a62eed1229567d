//! Shards as the ring sees them: an id and a weight, and the validated set of them that
//! is the ring's whole input.

use std::fmt;

use super::ring::RingError;

/// The most shards a cluster may have. Redis Cluster documents about 1000 nodes as its
/// upper bound; 1024 keeps a slot's owner index within a `u16` with room to spare.
pub const MAX_SHARDS: usize = 1024;

/// The largest weight a shard may have. A shard places `weight × vnodes_per_weight`
/// virtual nodes, so this bounds one shard's share of the ring's memory and build time;
/// 64 already lets one shard carry 64 times the slots of a weight-1 shard.
pub const MAX_WEIGHT: u32 = 64;

/// A shard's id. It is the only thing about a shard the ring hashes, so it must be the
/// same on every node (it is assigned by the cluster configuration, never derived from an
/// address that can change).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(u64);

impl ShardId {
    /// The shard numbered `id`.
    pub const fn new(id: u64) -> ShardId {
        ShardId(id)
    }

    /// The raw id, as the ring encodes it.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One member of the ring: a shard and its weight (relative capacity, at least 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard {
    /// The shard's id.
    pub id: ShardId,
    /// Its weight: the shard gets slots in proportion to it.
    pub weight: u32,
}

impl Shard {
    /// A shard of weight 1.
    pub const fn new(id: ShardId) -> Shard {
        Shard { id, weight: 1 }
    }

    /// A shard of the given weight.
    pub const fn weighted(id: ShardId, weight: u32) -> Shard {
        Shard { id, weight }
    }
}

/// A validated set of shards, kept in id order so that the order the members were given
/// in never changes the slot map.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ShardSet {
    /// Sorted by id, ids unique, weights in `1..=MAX_WEIGHT`, at most `MAX_SHARDS`.
    shards: Vec<Shard>,
}

impl ShardSet {
    /// Validates `shards` and sorts them by id. An empty set is valid (a cluster with no
    /// shards yet); it just has no slot map.
    ///
    /// # Errors
    /// [`RingError::ZeroWeight`] and [`RingError::WeightTooLarge`] for a weight outside
    /// `1..=MAX_WEIGHT`, [`RingError::DuplicateShard`] for an id given twice, and
    /// [`RingError::TooManyShards`] past [`MAX_SHARDS`].
    pub fn new(shards: impl IntoIterator<Item = Shard>) -> Result<ShardSet, RingError> {
        let mut sorted = Vec::new();
        for shard in shards {
            if sorted.len() == MAX_SHARDS {
                return Err(RingError::TooManyShards { max: MAX_SHARDS });
            }
            check_weight(shard)?;
            sorted.push(shard);
        }
        sorted.sort_unstable_by_key(|s| s.id);
        if let Some(pair) = sorted.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(RingError::DuplicateShard(pair[0].id));
        }
        Ok(ShardSet { shards: sorted })
    }

    /// A set of weight-1 shards.
    ///
    /// # Errors
    /// As [`ShardSet::new`].
    pub fn uniform(ids: impl IntoIterator<Item = ShardId>) -> Result<ShardSet, RingError> {
        ShardSet::new(ids.into_iter().map(Shard::new))
    }

    /// The set with `shard` added (a join).
    ///
    /// # Errors
    /// As [`ShardSet::new`]; in particular [`RingError::DuplicateShard`] if its id is
    /// already a member.
    pub fn with(&self, shard: Shard) -> Result<ShardSet, RingError> {
        ShardSet::new(self.shards.iter().copied().chain([shard]))
    }

    /// The set without the shard `id` (a leave); the same set if it is not a member.
    pub fn without(&self, id: ShardId) -> ShardSet {
        ShardSet {
            shards: self.shards.iter().copied().filter(|s| s.id != id).collect(),
        }
    }

    /// The number of shards.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Whether there are no shards.
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// The shards in id order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Shard> + '_ {
        self.shards.iter().copied()
    }

    /// The member with id `id`.
    pub fn get(&self, id: ShardId) -> Option<Shard> {
        self.shards
            .binary_search_by_key(&id, |s| s.id)
            .ok()
            .and_then(|i| self.shards.get(i).copied())
    }

    /// The sum of the weights.
    pub fn total_weight(&self) -> u64 {
        self.shards.iter().map(|s| u64::from(s.weight)).sum()
    }
}

fn check_weight(shard: Shard) -> Result<(), RingError> {
    match shard.weight {
        0 => Err(RingError::ZeroWeight(shard.id)),
        w if w > MAX_WEIGHT => Err(RingError::WeightTooLarge {
            shard: shard.id,
            weight: w,
            max: MAX_WEIGHT,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(raw: &[u64]) -> Vec<ShardId> {
        raw.iter().copied().map(ShardId::new).collect()
    }

    #[test]
    fn members_are_kept_in_id_order_whatever_the_input_order() {
        let a = ShardSet::uniform(ids(&[3, 1, 2])).expect("valid");
        let b = ShardSet::uniform(ids(&[2, 3, 1])).expect("valid");
        assert_eq!(a, b);
        let order: Vec<u64> = a.iter().map(|s| s.id.get()).collect();
        assert_eq!(order, [1, 2, 3]);
    }

    #[test]
    fn a_duplicate_id_is_rejected() {
        let err = ShardSet::uniform(ids(&[5, 7, 5])).expect_err("duplicate");
        assert_eq!(err, RingError::DuplicateShard(ShardId::new(5)));
        let set = ShardSet::uniform(ids(&[5])).expect("valid");
        assert_eq!(
            set.with(Shard::weighted(ShardId::new(5), 2)),
            Err(RingError::DuplicateShard(ShardId::new(5)))
        );
    }

    #[test]
    fn weights_outside_one_to_max_are_rejected() {
        let id = ShardId::new(9);
        assert_eq!(
            ShardSet::new([Shard::weighted(id, 0)]),
            Err(RingError::ZeroWeight(id))
        );
        assert_eq!(
            ShardSet::new([Shard::weighted(id, MAX_WEIGHT + 1)]),
            Err(RingError::WeightTooLarge {
                shard: id,
                weight: MAX_WEIGHT + 1,
                max: MAX_WEIGHT
            })
        );
        assert!(ShardSet::new([Shard::weighted(id, MAX_WEIGHT)]).is_ok());
    }

    #[test]
    fn more_than_max_shards_are_rejected() {
        let too_many = (0..=MAX_SHARDS as u64).map(ShardId::new);
        assert_eq!(
            ShardSet::uniform(too_many),
            Err(RingError::TooManyShards { max: MAX_SHARDS })
        );
        let just_enough = (0..MAX_SHARDS as u64).map(ShardId::new);
        assert_eq!(
            ShardSet::uniform(just_enough).map(|s| s.len()),
            Ok(MAX_SHARDS)
        );
    }

    #[test]
    fn join_and_leave_give_new_sets() {
        let set = ShardSet::uniform(ids(&[1, 2])).expect("valid");
        let joined = set
            .with(Shard::weighted(ShardId::new(3), 4))
            .expect("valid");
        assert_eq!(joined.len(), 3);
        assert_eq!(joined.total_weight(), 6);
        assert_eq!(
            joined.get(ShardId::new(3)),
            Some(Shard::weighted(ShardId::new(3), 4))
        );
        assert_eq!(joined.without(ShardId::new(3)), set);
        assert_eq!(set.without(ShardId::new(42)), set);
    }
}
