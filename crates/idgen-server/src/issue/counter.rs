//! Counters: issued by this node from memory above `Mark::Counter` marks (the embedded back
//! end), or handed out by the back end itself when it shares them between nodes.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use idgen_core::IssueError;
use idgen_core::counter::{Counter, CounterName};
use idgen_core::wire::CounterStatus;
use parking_lot::{Mutex, RwLock};

use super::Issuer;
use super::policy::{CEILING_DEADLINE, Reservation};
use crate::backend::{Mark, NewCounterName};
use crate::error::{ApiError, Refusal};

/// How much longer than a request's own deadline a retirement waits for the requests using
/// the counter.
const RETIRE_GRACE: Duration = Duration::from_secs(1);

/// Who may create counter names: an API key with a cap on new names, or anyone.
pub trait NewCounters: Sync {
    /// Takes one new name, or refuses (403).
    fn allow(&self) -> Result<(), ApiError>;
    /// Gives back a name whose creation failed.
    fn undo(&self);
}

/// [`NewCounters`] as the back end asks it (shared counters are created there).
struct AsNewCounterName<'a, T>(&'a T);

impl<T: NewCounters> NewCounterName for AsNewCounterName<'_, T> {
    fn allow(&self) -> Result<(), String> {
        self.0.allow().map_err(|error| match error {
            ApiError::Forbidden { what } => what,
            other => other.message(),
        })
    }
    fn undo(&self) {
        self.0.undo();
    }
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
    /// What it started after (its ceiling until its first reservation).
    start: u64,
}

impl CounterSlot {
    fn starting_after(last_issued: u64) -> Self {
        Self {
            counter: Counter::starting_after(last_issued),
            reservation: Mutex::new(Reservation::default()),
            start: last_issued,
        }
    }
}

/// Every node-issued counter. Read-mostly: a name is inserted once, then only looked up
/// (until an operator retires it).
pub(super) struct LocalCounters {
    slots: RwLock<HashMap<CounterName, Arc<CounterSlot>>>,
    max: usize,
    /// Names taken out of `slots` by [`Issuer::retire_counter`]: the mark a new use starts
    /// above, or `None` while the retirement is under way (requests then get 503).
    retired: Mutex<HashMap<CounterName, Option<u64>>>,
}

impl LocalCounters {
    /// The counters durable at start; each ceiling is what was reserved, so the first use
    /// reserves a fresh block.
    pub(super) fn new(
        durable: Vec<(CounterName, u64)>,
        retired: Vec<(CounterName, u64)>,
        max: usize,
    ) -> Self {
        let retired = retired.into_iter().map(|(name, mark)| (name, Some(mark))).collect();
        let slots = durable
            .into_iter()
            .map(|(name, reserved_through)| {
                (name, Arc::new(CounterSlot::starting_after(reserved_through)))
            })
            .collect();
        Self { slots: RwLock::new(slots), max, retired: Mutex::new(retired) }
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
                CounterStatus::new(
                    name.as_str(),
                    counter.last_issued(),
                    Some(counter.ceiling()),
                    None,
                )
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
        let mut retired = self.retired.lock();
        let above = match retired.get(name) {
            Some(None) => return Err(Refusal::CounterRetiring.into()),
            Some(Some(mark)) => *mark,
            None => 0,
        };
        if slots.len() >= self.max {
            return Err(ApiError::TooManyCounters { max: self.max });
        }
        new_names.allow()?;
        // A name the store has never seen (or retired at `above`): nothing was issued above
        // `above`. The slot's ceiling is `above`, so the first `take` reserves a block
        // durably before issuing.
        let slot = Arc::new(CounterSlot::starting_after(above));
        slots.insert(name.clone(), Arc::clone(&slot));
        retired.remove(name);
        Ok((slot, true))
    }

    /// Forgets `name` again if it never got a durable mark (its creation failed): a name whose
    /// first reservation failed takes no slot. A retired name is retired again, at its mark.
    fn forget_if_unreserved(&self, name: &CounterName) -> bool {
        let mut slots = self.slots.write();
        let Some(slot) = slots.get(name) else { return false };
        if slot.counter.ceiling() != slot.start {
            return false;
        }
        if slot.start > 0 {
            self.retired.lock().insert(name.clone(), Some(slot.start));
        }
        slots.remove(name);
        true
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
            return Ok(shared.take(name, count, &AsNewCounterName(&new_names)).await?);
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

    /// Retires counter `name` (the admin route): it leaves this node's `IDGEN_MAX_COUNTERS`
    /// slots, and a later use continues above everything it issued. `Ok(None)`: no such
    /// counter here. Node-issued counters wait for the requests using the counter to finish
    /// (new ones get 503 meanwhile), then keep the mark durably as retired; shared ones are
    /// the back end's (see [`crate::backend::Backend::retire_counter`]).
    pub async fn retire_counter(&self, name: &CounterName) -> Result<Option<u64>, ApiError> {
        if self.backend.shared_counters().is_some() {
            return Ok(self.backend.retire_counter(name).await?);
        }
        let slot = {
            let mut slots = self.counters.slots.write();
            let Some(slot) = slots.remove(name) else { return Ok(None) };
            self.counters.retired.lock().insert(name.clone(), None);
            slot
        };
        // A request that found the slot holds a clone until its reservation is done; after
        // that, nothing can raise the mark any more, so the durable one covers every value.
        let deadline = Instant::now() + CEILING_DEADLINE + RETIRE_GRACE;
        while Arc::strong_count(&slot) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let retired = if Arc::strong_count(&slot) > 1 {
            Err(Refusal::CounterRetiring.into())
        } else {
            self.backend.retire_counter(name).await.map_err(ApiError::from)
        };
        match retired {
            Ok(mark) => {
                let mark = mark.unwrap_or(slot.counter.ceiling()).max(slot.counter.ceiling());
                self.counters.retired.lock().insert(name.clone(), Some(mark));
                Ok(Some(mark))
            }
            Err(error) => {
                // Not retired: the counter goes on as it was.
                self.counters.retired.lock().remove(name);
                self.counters.slots.write().insert(name.clone(), slot);
                Err(error)
            }
        }
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
