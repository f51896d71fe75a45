//! The shard planner: how a model's tensors are grouped into shards.
//!
//! Tensors are taken in data order and packed greedily: a shard takes the
//! next tensor as long as the shard stays within `max_shard_bytes`, and a new
//! shard starts when it would not. So shards are contiguous byte ranges that
//! together cover the data section exactly once, in order, and never split a
//! tensor.
//!
//! Two edge cases follow from never splitting a tensor:
//!
//! - a single tensor larger than the limit becomes a shard of its own, over
//!   the limit (splitting it would make a shard that is not a whole tensor);
//! - a zero-byte tensor never starts a shard; it joins the shard it sits in,
//!   since a shard must hold at least one byte of device memory. A model whose
//!   tensors are all empty has nothing to seal and is refused.

use std::ops::Range;

use crate::error::ModelError;

/// One shard of a [`ShardPlan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedShard {
    /// Position in the plan, from 0.
    pub index: u32,
    /// Indices of its tensors, in data order.
    pub tensors: Range<usize>,
    /// First byte, relative to the start of the data section.
    pub start: u64,
    /// One past the last byte, relative to the start of the data section.
    pub end: u64,
}

impl PlannedShard {
    /// Size in bytes; at least 1.
    pub fn bytes(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
}

/// A model's tensors grouped into shards. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardPlan {
    shards: Vec<PlannedShard>,
    max_shard_bytes: u64,
}

impl ShardPlan {
    /// The shards, in data order.
    pub fn shards(&self) -> &[PlannedShard] {
        &self.shards
    }

    /// Number of shards; at least 1.
    pub fn shard_count(&self) -> u32 {
        // `plan_shards` refuses plans whose count does not fit.
        u32::try_from(self.shards.len()).unwrap_or(u32::MAX)
    }

    /// Bytes over all shards: the size of the data section.
    pub fn total_bytes(&self) -> u64 {
        self.shards.last().map_or(0, |s| s.end)
    }

    /// The limit the plan was made for.
    pub fn max_shard_bytes(&self) -> u64 {
        self.max_shard_bytes
    }
}

/// Groups tensors of the given sizes, in data order, into shards of at most
/// `max_shard_bytes` bytes (except a single oversized tensor; see the
/// [module docs](self)).
///
/// Fails when the limit is zero, when there are no tensor bytes at all, when
/// the sizes add up to more than `u64::MAX`, or when more than `u32::MAX`
/// shards would be needed.
pub fn plan_shards(tensor_sizes: &[u64], max_shard_bytes: u64) -> Result<ShardPlan, ModelError> {
    if max_shard_bytes == 0 {
        return Err(ModelError::ZeroShardLimit);
    }
    let mut shards = Vec::new();
    let mut current = Pending {
        first: 0,
        start: 0,
        end: 0,
    };

    for (i, &size) in tensor_sizes.iter().enumerate() {
        let held = current.end.saturating_sub(current.start);
        let fits = held
            .checked_add(size)
            .is_some_and(|total| total <= max_shard_bytes);
        if size > 0 && held > 0 && !fits {
            shards.push(current.close(i, shards.len())?);
            current = Pending {
                first: i,
                start: current.end,
                end: current.end,
            };
        }
        current.end = current
            .end
            .checked_add(size)
            .ok_or(ModelError::SizeOverflow)?;
    }
    if current.end > current.start {
        shards.push(current.close(tensor_sizes.len(), shards.len())?);
    }
    if shards.is_empty() {
        return Err(ModelError::NoTensorData);
    }
    Ok(ShardPlan {
        shards,
        max_shard_bytes,
    })
}

/// The shard being filled.
#[derive(Clone, Copy)]
struct Pending {
    first: usize,
    start: u64,
    end: u64,
}

impl Pending {
    fn close(self, next_tensor: usize, index: usize) -> Result<PlannedShard, ModelError> {
        let index = u32::try_from(index).map_err(|_| ModelError::TooManyShards {
            limit: u64::from(u32::MAX),
        })?;
        Ok(PlannedShard {
            index,
            tensors: self.first..next_tensor,
            start: self.start,
            end: self.end,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ranges(plan: &ShardPlan) -> Vec<(Range<usize>, u64, u64)> {
        plan.shards()
            .iter()
            .map(|s| (s.tensors.clone(), s.start, s.end))
            .collect()
    }

    #[test]
    fn packs_greedily_in_order() {
        let plan = plan_shards(&[4, 4, 4, 9, 1], 8).unwrap();
        assert_eq!(
            ranges(&plan),
            vec![(0..2, 0, 8), (2..3, 8, 12), (3..4, 12, 21), (4..5, 21, 22)]
        );
        assert_eq!(plan.shard_count(), 4);
        assert_eq!(plan.total_bytes(), 22);
    }

    #[test]
    fn oversized_tensor_is_its_own_shard() {
        let plan = plan_shards(&[2, 100, 2], 10).unwrap();
        assert_eq!(
            ranges(&plan),
            vec![(0..1, 0, 2), (1..2, 2, 102), (2..3, 102, 104)]
        );
    }

    #[test]
    fn empty_tensors_join_the_surrounding_shard() {
        let plan = plan_shards(&[0, 5, 0, 5, 0], 5).unwrap();
        assert_eq!(ranges(&plan), vec![(0..3, 0, 5), (3..5, 5, 10)]);
    }

    #[test]
    fn nothing_to_seal_is_refused() {
        assert!(matches!(plan_shards(&[], 8), Err(ModelError::NoTensorData)));
        assert!(matches!(
            plan_shards(&[0, 0], 8),
            Err(ModelError::NoTensorData)
        ));
    }

    #[test]
    fn zero_limit_and_overflow_are_refused() {
        assert!(matches!(
            plan_shards(&[1], 0),
            Err(ModelError::ZeroShardLimit)
        ));
        let err = plan_shards(&[u64::MAX, 1], u64::MAX).unwrap_err();
        assert!(matches!(err, ModelError::SizeOverflow), "{err}");
    }

    proptest! {
        #[test]
        fn shards_cover_every_byte_once_in_order_within_the_limit(
            sizes in prop::collection::vec(prop_oneof![3 => 0u64..64, 1 => 0u64..1024], 0..60),
            max in 1u64..300,
        ) {
            let total: u64 = sizes.iter().sum();
            let plan = match plan_shards(&sizes, max) {
                Ok(plan) => plan,
                Err(ModelError::NoTensorData) => {
                    prop_assert_eq!(total, 0);
                    return Ok(());
                }
                Err(other) => return Err(TestCaseError::fail(other.to_string())),
            };
            let mut next_byte = 0;
            let mut next_tensor = 0;
            for (i, shard) in plan.shards().iter().enumerate() {
                prop_assert_eq!(shard.index as usize, i);
                prop_assert_eq!(shard.start, next_byte);
                prop_assert_eq!(shard.tensors.start, next_tensor);
                prop_assert!(shard.bytes() > 0);
                let own: u64 = sizes[shard.tensors.clone()].iter().sum();
                prop_assert_eq!(own, shard.bytes());
                let non_empty = sizes[shard.tensors.clone()].iter().filter(|&&s| s > 0).count();
                prop_assert!(shard.bytes() <= max || non_empty == 1);
                next_byte = shard.end;
                next_tensor = shard.tensors.end;
            }
            prop_assert_eq!(next_byte, total);
            prop_assert_eq!(next_tensor, sizes.len());
        }

        #[test]
        fn no_two_neighbouring_shards_could_have_been_merged(
            sizes in prop::collection::vec(1u64..100, 1..40),
            max in 1u64..250,
        ) {
            let plan = plan_shards(&sizes, max).unwrap();
            for pair in plan.shards().windows(2) {
                let first_of_next = sizes[pair[1].tensors.start];
                prop_assert!(pair[0].bytes() + first_of_next > max);
            }
        }
    }
}
