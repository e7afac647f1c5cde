//! Counters: issued by this node from memory above `Mark::Counter` marks (the embedded back
//! end), or handed out by the back end itself when it shares them between nodes.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Instant;

use idgen_core::IssueError;
use idgen_core::counter::{Counter, CounterName};
use idgen_core::wire::CounterStatus;
use parking_lot::{Mutex, RwLock};

use super::Issuer;
use super::policy::{CEILING_DEADLINE, Reservation};
use crate::backend::Mark;
use crate::error::{ApiError, Refusal};

/// Who may create counter names: an API key with a cap on new names, or anyone.
pub trait NewCounters: Sync {
    /// Takes one new name, or refuses (403).
    fn allow(&self) -> Result<(), ApiError>;
    /// Gives back a name whose creation failed.
    fn undo(&self);
}

/// No cap (no API keys, or a key without `max_new_counters`).
pub struct AnyNewCounter;

impl NewCounters for AnyNewCounter {
    fn allow(&self) -> Result<(), ApiError> {
        Ok(())
    }
    fn undo(&self) {}
}

/// A node-issued counter and the size of its next reservation.
struct CounterSlot {
    counter: Counter,
    reservation: Mutex<Reservation>,
}

impl CounterSlot {
    fn starting_after(last_issued: u64) -> Self {
        Self {
            counter: Counter::starting_after(last_issued),
            reservation: Mutex::new(Reservation::default()),
        }
    }
}

/// Every node-issued counter. Read-mostly: a name is inserted once, then only looked up.
pub(super) struct LocalCounters {
    slots: RwLock<HashMap<CounterName, Arc<CounterSlot>>>,
    max: usize,
}

impl LocalCounters {
    /// The counters durable at start; each ceiling is what was reserved, so the first use
    /// reserves a fresh block.
    pub(super) fn new(durable: Vec<(CounterName, u64)>, max: usize) -> Self {
        let slots = durable
            .into_iter()
            .map(|(name, reserved_through)| {
                (name, Arc::new(CounterSlot::starting_after(reserved_through)))
            })
            .collect();
        Self { slots: RwLock::new(slots), max }
    }

    /// Every counter and the last value issued, for the final settle.
    pub(super) fn issued(&self) -> Vec<(CounterName, u64)> {
        let slots = self.slots.read();
        slots.iter().map(|(name, slot)| (name.clone(), slot.counter.last_issued())).collect()
    }

    /// Up to `limit` counters by name: the last value issued and the durable ceiling.
    pub(super) fn status(&self, limit: usize) -> Vec<CounterStatus> {
        let slots = self.slots.read();
        let mut names: Vec<&CounterName> = slots.keys().collect();
        names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        names
            .into_iter()
            .take(limit)
            .map(|name| {
                let counter = &slots[name].counter;
                CounterStatus {
                    name: name.as_str().to_owned(),
                    last_issued: counter.last_issued(),
                    ceiling: Some(counter.ceiling()),
                    buffered: None,
                }
            })
            .collect()
    }

    /// The slot of `name`, and whether this call created it (after `new_names` allowed it).
    fn get_or_create(
        &self,
        name: &CounterName,
        new_names: &dyn NewCounters,
    ) -> Result<(Arc<CounterSlot>, bool), ApiError> {
        if let Some(slot) = self.slots.read().get(name) {
            return Ok((Arc::clone(slot), false));
        }
        let mut slots = self.slots.write();
        if let Some(slot) = slots.get(name) {
            return Ok((Arc::clone(slot), false));
        }
        if slots.len() >= self.max {
            return Err(ApiError::TooManyCounters { max: self.max });
        }
        new_names.allow()?;
        // A name the store has never seen: nothing was issued, start after 0. Its ceiling is 0,
        // so the first `take` reserves a block durably before issuing.
        let slot = Arc::new(CounterSlot::starting_after(0));
        slots.insert(name.clone(), Arc::clone(&slot));
        Ok((slot, true))
    }

    /// Forgets `name` again if it never got a durable mark (its creation failed): a name whose
    /// first reservation failed takes no slot.
    fn forget_if_unreserved(&self, name: &CounterName) -> bool {
        let mut slots = self.slots.write();
        let unreserved = slots.get(name).is_some_and(|slot| slot.counter.ceiling() == 0);
        if unreserved {
            slots.remove(name);
        }
        unreserved
    }
}

impl Issuer {
    /// `count` consecutive values of the counter `name`, creating it on first use.
    ///
    /// One range, except where the back end buffers segments of a shared counter: a batch may
    /// then span two segments (still increasing, not contiguous).
    pub async fn counter_values(
        &self,
        name: &CounterName,
        count: u64,
    ) -> Result<Vec<RangeInclusive<u64>>, ApiError> {
        self.counter_values_for(name, count, AnyNewCounter).await
    }

    /// [`Issuer::counter_values`], where creating a name must be allowed by `new_names` (an API
    /// key's cap on new names).
    pub async fn counter_values_for(
        &self,
        name: &CounterName,
        count: u64,
        new_names: impl NewCounters,
    ) -> Result<Vec<RangeInclusive<u64>>, ApiError> {
        if let Some(shared) = self.backend.shared_counters() {
            return Ok(shared.take(name, count).await?);
        }
        // Fast path, most requests: the counter exists and has room. No `Arc` clone and no
        // clock read (the deadline only matters once a reservation is needed).
        if let Some(slot) = self.counters.slots.read().get(name)
            && let Ok(range) = slot.counter.take(count)
        {
            return Ok(vec![range]);
        }
        let (slot, created) = self.counters.get_or_create(name, &new_names)?;
        if !created {
            return self.take_from(&slot, name, count).await;
        }
        // Boxed: a name's first request is rare, and what it keeps for the undo stays out of
        // every other request's future.
        let result = Box::pin(self.take_from(&slot, name, count)).await;
        if result.is_err() && self.counters.forget_if_unreserved(name) {
            new_names.undo();
        }
        result
    }

    async fn take_from(
        &self,
        slot: &CounterSlot,
        name: &CounterName,
        count: u64,
    ) -> Result<Vec<RangeInclusive<u64>>, ApiError> {
        let deadline = Instant::now() + CEILING_DEADLINE;
        let mark = Mark::Counter(name.clone());
        while Instant::now() <= deadline {
            match slot.counter.take(count) {
                Ok(range) => return Ok(vec![range]),
                Err(IssueError::CeilingReached { needed, .. }) => {
                    let target = slot.reservation.lock().target(needed, count, Instant::now());
                    let ceiling = self.backend.raise_mark(&mark, needed, target).await?;
                    slot.counter.set_ceiling(ceiling);
                }
                Err(error) => return Err(self.issue_error("counter", error)),
            }
        }
        Err(Refusal::CeilingUnavailable.into())
    }

    /// Node-issued counters used in this run: once less than half a block is left.
    pub(super) async fn refresh_counter_marks(&self) {
        let slots: Vec<(CounterName, Arc<CounterSlot>)> = self
            .counters
            .slots
            .read()
            .iter()
            .map(|(name, slot)| (name.clone(), Arc::clone(slot)))
            .collect();
        for (name, slot) in slots {
            let ceiling = slot.counter.ceiling();
            let left = ceiling.saturating_sub(slot.counter.last_issued());
            let target = {
                let mut reservation = slot.reservation.lock();
                if reservation.at.is_none() || left > reservation.block / 2 {
                    continue;
                }
                reservation.target(ceiling.saturating_add(1), 1, Instant::now())
            };
            let mark = Mark::Counter(name);
            if let Ok(raised) = self.backend.raise_mark(&mark, target, target).await {
                slot.counter.set_ceiling(raised);
            }
        }
    }
}
