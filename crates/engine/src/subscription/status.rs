//! Live counters of one subscription, shared between its worker and the API.

use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Updated by the worker, read by the API. Relaxed atomics: figures, not synchronisation.
#[derive(Debug, Default)]
pub struct SubscriptionStatus {
    /// Events delivered.
    pub delivered: AtomicU64,
    /// Failed attempts (retriable or rejected).
    pub failed_attempts: AtomicU64,
    /// Events dead-lettered since start.
    pub dead_lettered: AtomicU64,
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
}

/// A snapshot for JSON.
#[derive(Clone, Debug, Serialize)]
pub struct StatusSnapshot {
    /// Events delivered since start.
    pub delivered: u64,
    /// Failed attempts since start.
    pub failed_attempts: u64,
    /// Dead letters since start.
    pub dead_lettered: u64,
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
}

impl SubscriptionStatus {
    /// A consistent-enough snapshot.
    pub fn snapshot(&self) -> StatusSnapshot {
        StatusSnapshot {
            delivered: self.delivered.load(Relaxed),
            failed_attempts: self.failed_attempts.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            dead_letters: self.dead_letters.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            pending: self.pending.load(Relaxed),
            cursor: self.cursor.load(Relaxed),
            paused: self.paused.load(Relaxed),
            breaker_open: self.breaker_open.load(Relaxed),
        }
    }
}
