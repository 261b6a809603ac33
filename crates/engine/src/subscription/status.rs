//! Live counters of one subscription, shared between its worker and the API.
//!
//! Each counter is defined once and counted in one place (the worker's `finish`, next to the metric of the
//! same meaning), since the node started; an update or a secret rotation keeps them. `docs/operations.md`
//! ("What the counters count") lists them with their `/metrics` series:
//!
//! - `events_delivered`: distinct events whose delivery succeeded. A replay of an event that was already
//!   delivered is an attempt, not another delivered event. `tributary_sink_events_delivered_total`.
//! - `attempts`: every attempt, by outcome (`delivered`, `retriable`, `exhausted`, `rejected`).
//!   `tributary_delivery_attempts_total{outcome}`.
//! - `events_dead_lettered`: events that went to the dead-letter store. `tributary_sink_events_dropped_total`.

use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use tributary_core::store::AttemptOutcome;

/// Updated by the worker, read by the API. Relaxed atomics: figures, not synchronisation.
#[derive(Debug, Default)]
pub struct SubscriptionStatus {
    /// Distinct events delivered (replays of delivered events not counted again).
    pub events_delivered: AtomicU64,
    /// Attempts that succeeded.
    pub attempts_delivered: AtomicU64,
    /// Attempts that failed and were retried.
    pub attempts_retriable: AtomicU64,
    /// Attempts that failed retriably with the schedule used up (the event was dead-lettered).
    pub attempts_exhausted: AtomicU64,
    /// Attempts that failed for good.
    pub attempts_rejected: AtomicU64,
    /// Events dead-lettered.
    pub events_dead_lettered: AtomicU64,
    /// Dead letters in the store now.
    pub dead_letters: AtomicU64,
    /// Deliveries in flight.
    pub in_flight: AtomicU64,
    /// Deliveries waiting for a retry or for their key.
    pub pending: AtomicU64,
    /// The durable cursor.
    pub cursor: AtomicU64,
    /// Paused by an operator or a 410.
    pub paused: AtomicBool,
    /// The circuit breaker is open.
    pub breaker_open: AtomicBool,
    /// Another node holds the lease (see [`StatusSnapshot::standby`]).
    pub standby: AtomicBool,
}

/// Attempts by outcome, as in `tributary_delivery_attempts_total{outcome}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AttemptCounts {
    /// Succeeded.
    pub delivered: u64,
    /// Failed; retried later.
    pub retriable: u64,
    /// Failed retriably, schedule used up: the event was dead-lettered.
    pub exhausted: u64,
    /// Failed for good.
    pub rejected: u64,
}

/// A snapshot for JSON.
#[derive(Clone, Debug, Serialize)]
pub struct StatusSnapshot {
    /// Distinct events delivered since the node started (a replay of a delivered event is not counted again).
    pub events_delivered: u64,
    /// Attempts since the node started, by outcome.
    pub attempts: AttemptCounts,
    /// Events dead-lettered since the node started.
    pub events_dead_lettered: u64,
    /// Dead letters in the store now.
    pub dead_letters: u64,
    /// In flight now.
    pub in_flight: u64,
    /// Waiting for a retry or their key.
    pub pending: u64,
    /// Durable cursor.
    pub cursor: u64,
    /// Paused.
    pub paused: bool,
    /// Circuit breaker open.
    pub breaker_open: bool,
    /// Another node holds this subscription's lease and delivers it (several nodes on one store):
    /// the counters here are this node's, and the holder's `/health` reports its backlog.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub standby: bool,
}

impl SubscriptionStatus {
    /// Counts one attempt by its recorded outcome.
    pub fn count_attempt(&self, outcome: AttemptOutcome) {
        let counter = match outcome {
            AttemptOutcome::Delivered => &self.attempts_delivered,
            AttemptOutcome::Retriable => &self.attempts_retriable,
            AttemptOutcome::Exhausted => &self.attempts_exhausted,
            AttemptOutcome::Rejected => &self.attempts_rejected,
        };
        counter.fetch_add(1, Relaxed);
    }

    /// A consistent-enough snapshot.
    pub fn snapshot(&self) -> StatusSnapshot {
        StatusSnapshot {
            events_delivered: self.events_delivered.load(Relaxed),
            attempts: AttemptCounts {
                delivered: self.attempts_delivered.load(Relaxed),
                retriable: self.attempts_retriable.load(Relaxed),
                exhausted: self.attempts_exhausted.load(Relaxed),
                rejected: self.attempts_rejected.load(Relaxed),
            },
            events_dead_lettered: self.events_dead_lettered.load(Relaxed),
            dead_letters: self.dead_letters.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            pending: self.pending.load(Relaxed),
            cursor: self.cursor.load(Relaxed),
            paused: self.paused.load(Relaxed),
            breaker_open: self.breaker_open.load(Relaxed),
            standby: self.standby.load(Relaxed),
        }
    }
}
