//! The memory that ingest requests may hold together (`[node] max_ingest_in_flight_bytes`).
//!
//! A request reserves its body as it arrives and then the estimated memory of each decoded event
//! ([`event_footprint`](crate::json_event::event_footprint)), and gives everything back when it is
//! answered. Nothing waits: a reservation that does not fit fails at once, and the API answers 429 with
//! `Retry-After` (or 413 when the request alone is larger than the whole budget).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The node's ingest memory budget.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

/// Why a reservation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Other requests hold the rest: retry later (429).
    Busy,
    /// This request alone needs more than the whole budget (413).
    TooLarge,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// An empty reservation that can grow.
    pub fn reservation(self: &Arc<Self>) -> Reservation {
        Reservation {
            budget: self.clone(),
            held: 0,
        }
    }
}

/// Bytes held by one request; given back on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    held: usize,
}

impl Reservation {
    /// Reserves `n` more bytes, or says why not (and holds what it held).
    pub fn grow(&mut self, n: usize) -> Result<(), Refusal> {
        let b = &self.budget;
        if self.held.saturating_add(n) > b.limit {
            return Err(Refusal::TooLarge);
        }
        b.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= b.limit)
            })
            .map_err(|_| Refusal::Busy)?;
        self.held += n;
        Ok(())
    }

    /// Bytes held.
    pub fn held(&self) -> usize {
        self.held
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_budget_and_give_it_back() {
        let b = MemoryBudget::new(100);
        let mut one = b.reservation();
        let mut two = b.reservation();
        assert_eq!(one.grow(60), Ok(()));
        assert_eq!(two.grow(50), Err(Refusal::Busy));
        assert_eq!(two.grow(101), Err(Refusal::TooLarge));
        assert_eq!(two.grow(40), Ok(()));
        assert_eq!(b.used(), 100);
        drop(one);
        assert_eq!(b.used(), 40);
        assert_eq!(two.grow(60), Ok(()));
        assert_eq!(two.grow(1), Err(Refusal::TooLarge));
        drop(two);
        assert_eq!(b.used(), 0);
    }
}
