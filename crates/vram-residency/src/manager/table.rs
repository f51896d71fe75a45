//! The manager's allocation table and capacity account.
//!
//! Entries live in numbered slots. A slot is reused after its shard is
//! deallocated, but its generation goes up first, so a handle that names the
//! old generation finds nothing rather than the new occupant. A slot whose
//! generation cannot go up any more is retired, never reused.
//!
//! Capacity is reserved before the backend is asked for memory and released
//! only once the backend has freed it, so concurrent seals can never
//! together promise more than the capacity.

use crate::backend::AllocationId;
use crate::seal::{SealedShard, ShardHandle};

/// What the manager knows about one resident shard.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) alloc: AllocationId,
    pub(crate) bytes: u64,
    pub(crate) shard_id: String,
    /// The seal as it was made, kept so that the manager can re-verify its
    /// shards on its own. `None` only while the seal is being signed.
    pub(crate) seal: Option<SealedShard>,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u64,
    entry: Option<Entry>,
}

#[derive(Debug)]
pub(crate) struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    used: u64,
    capacity: u64,
}

/// The table holds `u32::MAX` slots at most, the most a handle can name.
#[derive(Debug)]
pub(crate) struct TableFull {
    pub(crate) slots: u64,
}

impl Table {
    pub(crate) fn new(capacity: u64) -> Table {
        Table {
            slots: Vec::new(),
            free: Vec::new(),
            used: 0,
            capacity,
        }
    }

    pub(crate) fn used(&self) -> u64 {
        self.used
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    pub(crate) fn available(&self) -> u64 {
        self.capacity.saturating_sub(self.used)
    }

    /// Number of resident shards.
    pub(crate) fn len(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.entry.is_some())
            .count()
    }

    /// Reserves `bytes`, returning the bytes used afterwards, or the bytes
    /// that were available when they do not fit.
    pub(crate) fn reserve(&mut self, bytes: u64) -> Result<u64, u64> {
        let available = self.available();
        if bytes > available {
            return Err(available);
        }
        // `bytes <= capacity - used`, so the sum stays within capacity.
        self.used = self.used.saturating_add(bytes);
        Ok(self.used)
    }

    /// Returns `bytes` to the pool, returning the bytes used afterwards.
    pub(crate) fn release(&mut self, bytes: u64) -> u64 {
        self.used = self.used.saturating_sub(bytes);
        self.used
    }

    /// Stores `entry` and returns the handle that names it.
    pub(crate) fn insert(&mut self, entry: Entry) -> Result<ShardHandle, TableFull> {
        if let Some(slot_index) = self.free.pop()
            && let Some(slot) = self.slots.get_mut(slot_index as usize)
        {
            slot.entry = Some(entry);
            return Ok(ShardHandle {
                slot: slot_index,
                generation: slot.generation,
            });
        }
        let full = || TableFull {
            slots: u64::try_from(self.slots.len()).unwrap_or(u64::MAX),
        };
        let slot_index = u32::try_from(self.slots.len()).map_err(|_| full())?;
        self.slots.push(Slot {
            generation: 0,
            entry: Some(entry),
        });
        Ok(ShardHandle {
            slot: slot_index,
            generation: 0,
        })
    }

    /// The entry `handle` names, if it is still the slot's occupant.
    pub(crate) fn get(&self, handle: ShardHandle) -> Option<&Entry> {
        let slot = self.slots.get(handle.slot as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        slot.entry.as_ref()
    }

    /// Keeps `seal` with the entry its handle names.
    pub(crate) fn set_seal(&mut self, seal: SealedShard) {
        let Some(slot) = self.slots.get_mut(seal.handle.slot as usize) else {
            return;
        };
        if slot.generation == seal.handle.generation
            && let Some(entry) = &mut slot.entry
        {
            entry.seal = Some(seal);
        }
    }

    /// A copy of the seal of every resident shard, in slot order.
    pub(crate) fn seals(&self) -> Vec<SealedShard> {
        self.slots
            .iter()
            .filter_map(|slot| slot.entry.as_ref()?.seal.clone())
            .collect()
    }

    /// Takes the entry `handle` names out of the table. Its bytes stay
    /// reserved until [`release`](Self::release)d.
    pub(crate) fn remove(&mut self, handle: ShardHandle) -> Option<Entry> {
        let slot = self.slots.get_mut(handle.slot as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        let entry = slot.entry.take()?;
        if let Some(next) = slot.generation.checked_add(1) {
            slot.generation = next;
            self.free.push(handle.slot);
        }
        Some(entry)
    }

    /// Takes every entry out of the table.
    pub(crate) fn drain(&mut self) -> Vec<Entry> {
        let handles: Vec<ShardHandle> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.entry.is_some())
            .filter_map(|(i, slot)| {
                Some(ShardHandle {
                    slot: u32::try_from(i).ok()?,
                    generation: slot.generation,
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|handle| self.remove(handle))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, bytes: u64) -> Entry {
        Entry {
            alloc: AllocationId::new(id),
            bytes,
            shard_id: format!("s{id}"),
            seal: None,
        }
    }

    #[test]
    fn reused_slot_gets_a_new_generation() {
        let mut table = Table::new(100);
        let first = table.insert(entry(1, 10)).unwrap();
        assert!(table.remove(first).is_some());
        let second = table.insert(entry(2, 10)).unwrap();
        assert_eq!(first.slot, second.slot);
        assert_ne!(first.generation, second.generation);
        assert!(
            table.get(first).is_none(),
            "stale handle must not reach the new occupant"
        );
        assert!(table.remove(first).is_none());
        assert_eq!(
            table.get(second).map(|e| e.alloc),
            Some(AllocationId::new(2))
        );
    }

    #[test]
    fn retired_slot_is_not_reused() {
        let mut table = Table::new(100);
        let handle = table.insert(entry(1, 1)).unwrap();
        if let Some(slot) = table.slots.get_mut(0) {
            slot.generation = u64::MAX;
        }
        let handle = ShardHandle {
            generation: u64::MAX,
            ..handle
        };
        assert!(table.remove(handle).is_some());
        let next = table.insert(entry(2, 1)).unwrap();
        assert_eq!(next.slot, 1);
    }

    #[test]
    fn capacity_is_reserved_and_released() {
        let mut table = Table::new(10);
        assert_eq!(table.reserve(6), Ok(6));
        assert_eq!(table.reserve(5), Err(4));
        assert_eq!(table.reserve(4), Ok(10));
        assert_eq!(table.release(6), 4);
        assert_eq!(table.available(), 6);
    }

    #[test]
    fn drain_empties_the_table() {
        let mut table = Table::new(100);
        let a = table.insert(entry(1, 1)).unwrap();
        table.insert(entry(2, 1)).unwrap();
        table.remove(a);
        table.insert(entry(3, 1)).unwrap();
        let drained: Vec<u64> = table.drain().iter().map(|e| e.alloc.get()).collect();
        assert_eq!(drained, vec![3, 2]);
        assert_eq!(table.len(), 0);
    }
}
