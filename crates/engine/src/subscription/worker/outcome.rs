//! What happens after an attempt: retries become pending entries, exhausted or rejected deliveries
//! become dead letters, a `410 Gone` pauses, and per-key queues move on. Also operator requeues and pauses.

use super::{Done, Worker};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tributary_core::store::{AttemptOutcome, AttemptRecord, DeadLetter, Pending};
use tributary_core::{DeliveryStatus, Seq, StoreError, Timestamp};

impl Worker {
    /// Makes these events pending and due now (keeping per-key order among pending entries).
    pub(super) async fn requeue(&mut self, seqs: Vec<Seq>) -> Result<(), StoreError> {
        let now = Timestamp::now();
        for seq in seqs {
            self.update.dead_remove.push(seq);
            if self.dead.remove(&seq) {
                self.status.dead_letters.fetch_sub(1, Relaxed);
            }
            if let Some(p) = self.pending.get(&seq).cloned() {
                if !self.pending_in_flight.contains(&seq) {
                    self.pending_insert(Pending { due_at: now, ..p });
                    self.record_pending(seq);
                }
                continue;
            }
            if self.window.contains(&seq) || seq >= self.read_pos {
                continue; // on its way already, or not read yet: it will be delivered anyway
            }
            let Some(event) = self.store.get_seq(seq).await? else {
                continue;
            };
            let key = event.event.key.clone().filter(|_| self.per_key);
            // Number this round's attempts after every attempt already recorded (committed or not).
            let recorded = self.store.attempts(&self.name, seq).await?;
            let unwritten = self.update.attempts.iter().filter(|a| a.seq == seq);
            let earlier: Vec<&AttemptRecord> = recorded.iter().chain(unwritten).collect();
            let prior = earlier.iter().map(|a| a.attempt).max().unwrap_or(0);
            if earlier.iter().any(|a| a.outcome == AttemptOutcome::Delivered) {
                self.redelivery.insert(seq);
            }
            self.pending_insert(Pending {
                seq,
                key,
                attempts: 0,
                due_at: now,
                prior_attempts: prior,
            });
            self.record_pending(seq);
        }
        self.refresh_status();
        Ok(())
    }

    pub(super) fn set_paused(&mut self, paused: bool) {
        if self.paused == paused {
            return;
        }
        self.paused = paused;
        self.status.paused.store(paused, std::sync::atomic::Ordering::Relaxed);
        self.update.paused = Some(paused);
        if !paused {
            // Everything waiting is due now.
            let now = Timestamp::now();
            let eligible: Vec<(i64, Seq)> = self.due.iter().copied().collect();
            for (due, seq) in eligible {
                if due > now.0 {
                    self.due.remove(&(due, seq));
                    if let Some(p) = self.pending.get_mut(&seq) {
                        p.due_at = now;
                    }
                    self.due.insert((now.0, seq));
                }
            }
        }
        tracing::info!(subscription = %self.name, paused, "subscription {}", if paused { "paused" } else { "resumed" });
        self.refresh_status();
    }

    /// Applies the outcome of one attempt: records it (a retriable failure with the schedule used up as
    /// `exhausted`), counts it in the status and the metrics (one place, so they agree), then settles,
    /// holds or dead-letters the event.
    pub(super) fn finish(&mut self, d: Done) {
        let now = Instant::now();
        self.status.in_flight.fetch_sub(1, Relaxed);
        let r = &d.report;
        let retry_delay = match r.status {
            DeliveryStatus::Retriable => self.retry.next_delay(d.attempt, r.retry_after),
            _ => None,
        };
        let outcome = match r.status {
            DeliveryStatus::Retriable if retry_delay.is_none() => AttemptOutcome::Exhausted,
            status => AttemptOutcome::from(status),
        };
        let pause = r.status == DeliveryStatus::Pause;
        self.update.attempts.push(AttemptRecord {
            seq: d.seq,
            attempt: d.prior + d.attempt,
            at: d.started,
            outcome,
            status: r.code,
            latency_us: r.latency.as_micros() as u64,
            error: r.error.clone(),
        });
        self.status.count_attempt(outcome);
        crate::metrics::attempt(&self.name, d.attempt == 1, outcome.as_str(), r.code);
        if self.breaker.record(r.status == DeliveryStatus::Retriable, now) {
            tracing::warn!(subscription = %self.name, sink = %self.sink.describe(), "circuit breaker opened after repeated failures; probing again later");
        }
        if outcome != AttemptOutcome::Delivered {
            let _warned = self.failing.failed(&self.name, &self.sink.describe(), r, now);
        }
        let key = d.event.event.key.clone().filter(|_| self.per_key);
        if d.from_pending {
            self.pending_in_flight.remove(&d.seq);
        }
        match outcome {
            AttemptOutcome::Delivered => {
                // A replay of an event delivered before is another attempt, not another delivered event.
                let distinct = !self.redelivery.remove(&d.seq);
                if distinct {
                    self.status.events_delivered.fetch_add(1, Relaxed);
                }
                // Ingest-to-delivery latency counts an event's first round only: a replay is not latency.
                let latency = Timestamp::now().micros_since(d.event.ingested_at);
                let latency = (d.prior == 0).then(|| Duration::from_micros(latency));
                let since_occurred = (d.prior == 0)
                    .then_some(d.event.event.occurred_at)
                    .flatten()
                    .map(|at| Duration::from_micros(Timestamp::now().micros_since(at)));
                crate::metrics::delivered(&self.name, distinct, latency, since_occurred);
                self.settle(&d, key.as_deref());
            }
            AttemptOutcome::Retriable => {
                let delay = retry_delay.unwrap_or_default();
                let due_at = Timestamp::now().plus(delay);
                tracing::debug!(subscription = %self.name, seq = d.seq, attempt = d.attempt, ?delay, error = ?r.error, "delivery failed; retry scheduled");
                self.hold(&d, key, due_at);
            }
            AttemptOutcome::Exhausted => self.dead_letter(&d, key.as_deref(), "exhausted", "retries exhausted"),
            AttemptOutcome::Rejected if pause => {
                tracing::warn!(subscription = %self.name, sink = %self.sink.describe(), reason = ?r.error, "the destination is gone; subscription paused until resumed");
                self.hold(&d, key, Timestamp::now());
                self.set_paused(true);
            }
            AttemptOutcome::Rejected => self.dead_letter(&d, key.as_deref(), "rejected", "rejected by the receiver"),
        }
        self.refresh_status();
    }

    /// The event waits as a durable pending entry until `due_at`; with per-key ordering, the events queued
    /// behind it in memory now wait behind a durable entry too, so they are parked as pending.
    pub(super) fn hold(&mut self, d: &Done, key: Option<String>, due_at: Timestamp) {
        self.pending_insert(Pending {
            seq: d.seq,
            key: key.clone(),
            attempts: d.attempt,
            due_at,
            prior_attempts: d.prior,
        });
        self.record_pending(d.seq);
        if !d.from_pending {
            self.window.remove(&d.seq);
        }
        let Some(k) = key else { return };
        self.busy_keys.remove(&k);
        for e in self.key_queue.remove(&k).unwrap_or_default() {
            self.window.remove(&e.seq);
            self.pending_insert(Pending {
                seq: e.seq,
                key: Some(k.clone()),
                attempts: 0,
                due_at: Timestamp(0),
                prior_attempts: 0,
            });
            self.record_pending(e.seq);
        }
    }

    pub(super) fn dead_letter(&mut self, d: &Done, key: Option<&str>, reason: &'static str, why: &str) {
        self.redelivery.remove(&d.seq);
        self.status.events_dead_lettered.fetch_add(1, Relaxed);
        crate::metrics::dead_lettered(&self.name, reason);
        self.status.dead_letters.fetch_add(1, Relaxed);
        self.dead.insert(d.seq);
        let error = d.report.error.clone().unwrap_or_else(|| why.to_owned());
        tracing::warn!(subscription = %self.name, seq = d.seq, id = %d.event.event.id, attempts = d.attempt, %error, "delivery dead-lettered");
        self.update.dead_letters.push(DeadLetter {
            seq: d.seq,
            event_id: d.event.event.id,
            attempts: d.prior + d.attempt,
            last_status: d.report.code,
            error: format!("{why}: {error}"),
            response_excerpt: d.report.response_excerpt.clone(),
            dead_at: Timestamp::now(),
        });
        self.settle(d, key);
    }

    /// The event is finished (delivered or dead): free its slot and let the next one of its key go.
    pub(super) fn settle(&mut self, d: &Done, key: Option<&str>) {
        if d.from_pending {
            self.pending_remove(d.seq);
        } else {
            self.window.remove(&d.seq);
        }
        let Some(k) = key else { return };
        self.busy_keys.remove(k);
        if let Some(next) = self.pending_by_key.get(k).and_then(|s| s.first().copied()) {
            // The next pending entry of the key becomes eligible.
            if let Some(p) = self.pending.get(&next) {
                self.due.insert((p.due_at.0, next));
            }
        } else if let Some(q) = self.key_queue.get_mut(k) {
            if let Some(e) = q.pop_front() {
                self.busy_keys.insert(k.to_owned());
                self.ready.push_back(e);
            }
            if q.is_empty() {
                self.key_queue.remove(k);
            }
        }
    }

    pub(super) fn pending_insert(&mut self, p: Pending) {
        let seq = p.seq;
        if let Some(old) = self.pending.get(&seq) {
            self.due.remove(&(old.due_at.0, seq));
        }
        let eligible = match (&p.key, self.per_key) {
            (Some(k), true) => {
                let set = self.pending_by_key.entry(k.clone()).or_default();
                set.insert(seq);
                set.first() == Some(&seq) && !self.pending_in_flight.contains(&seq)
            }
            _ => true,
        };
        if eligible {
            self.due.insert((p.due_at.0, seq));
        }
        self.pending.insert(seq, p);
    }

    pub(super) fn record_pending(&mut self, seq: Seq) {
        let p = self.pending.get(&seq).cloned();
        self.pending_changes.insert(seq, p);
    }

    pub(super) fn pending_remove(&mut self, seq: Seq) {
        if let Some(p) = self.pending.remove(&seq) {
            self.due.remove(&(p.due_at.0, seq));
            if let Some(k) = &p.key
                && let Some(set) = self.pending_by_key.get_mut(k)
            {
                set.remove(&seq);
                if set.is_empty() {
                    self.pending_by_key.remove(k);
                }
            }
        }
        self.pending_changes.insert(seq, None);
    }
}

/// The worker's rate-limited WARN while an endpoint keeps failing (STYLE rule 14: WARN = recovered, nothing
/// lost yet): the first failed attempt logs at once, later ones at most once a minute with how many failed
/// since, so an operator sees a failing endpoint before anything is dead-lettered.
#[derive(Debug, Default)]
pub(super) struct FailingLog {
    last: Option<Instant>,
    since: u64,
}

/// How often the "deliveries failing" warning repeats while failures go on.
const FAILING_EVERY: Duration = Duration::from_secs(60);

impl FailingLog {
    /// Counts a failed attempt; logs (and returns true) when the last warning is old enough.
    fn failed(&mut self, subscription: &str, sink: &str, r: &tributary_core::AttemptReport, now: Instant) -> bool {
        self.since += 1;
        if self.last.is_some_and(|t| now.duration_since(t) < FAILING_EVERY) {
            return false;
        }
        let error = r.error.as_deref().unwrap_or("no error message");
        let status = r.code.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
        tracing::warn!(subscription, sink, failed_attempts = self.since, %status, %error, "deliveries failing; retries continue on the schedule, see `tributary subscriptions deliveries`");
        self.last = Some(now);
        self.since = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failing_warning_is_rate_limited_but_repeats() {
        let r = tributary_core::AttemptReport::failed(
            DeliveryStatus::Retriable,
            Some(503),
            Duration::ZERO,
            "HTTP 503".into(),
        );
        let (mut log, t0) = (FailingLog::default(), Instant::now());
        assert!(log.failed("s", "webhook", &r, t0), "the first failure warns at once");
        assert!(!log.failed("s", "webhook", &r, t0 + Duration::from_secs(1)));
        assert!(!log.failed("s", "webhook", &r, t0 + Duration::from_secs(59)));
        assert_eq!(log.since, 2);
        assert!(
            log.failed("s", "webhook", &r, t0 + FAILING_EVERY),
            "and again a minute later"
        );
        assert_eq!(log.since, 0);
    }
}
