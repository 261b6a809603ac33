//! The [`Sink`] trait and the explicit status of one delivery attempt.

use crate::StoredEvent;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// What a sink says about one attempt (STYLE rule 11). The worker records it as an
/// [`AttemptOutcome`](crate::store::AttemptOutcome), which also says when a retriable failure was the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Accepted by the receiver.
    Delivered,
    /// Failed in a way worth retrying.
    Retriable,
    /// Failed for good: the event is dead-lettered.
    Rejected,
    /// The destination is gone for good (an HTTP 410, a deleted stream): the subscription pauses until an
    /// operator resumes it, and the event waits for it.
    Pause,
}

/// One delivery attempt handed to a sink.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The subscription's name.
    pub subscription: Arc<str>,
    /// The stable idempotency id for (subscription, event): the same on every attempt (`webhook-id`).
    pub message_id: String,
    /// The event.
    pub event: Arc<StoredEvent>,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// What a sink reports about one attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptReport {
    /// Delivered, retriable, rejected, or pause the subscription.
    pub status: DeliveryStatus,
    /// The destination's own numeric status, if it answered with one (an HTTP status, a Kafka error code).
    pub code: Option<u16>,
    /// How long the attempt took.
    pub latency: Duration,
    /// What went wrong, in one line (the reason shown in attempts and dead letters).
    pub error: Option<String>,
    /// What the destination said beyond its code, on failure (at most 1 KiB): the start of a response
    /// body, a server's error text.
    pub response_excerpt: Option<String>,
    /// The receiver asked to wait this long before retrying.
    pub retry_after: Option<Duration>,
}

impl AttemptReport {
    /// A successful attempt.
    pub fn delivered(code: Option<u16>, latency: Duration) -> Self {
        Self {
            status: DeliveryStatus::Delivered,
            code,
            latency,
            error: None,
            response_excerpt: None,
            retry_after: None,
        }
    }

    /// A failed attempt of the given class.
    pub fn failed(status: DeliveryStatus, code: Option<u16>, latency: Duration, error: String) -> Self {
        Self {
            status,
            code,
            latency,
            error: Some(error),
            response_excerpt: None,
            retry_after: None,
        }
    }
}

/// Where a subscription's events go.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// Attempts one delivery. Never panics on receiver errors: every failure is a report.
    async fn deliver(&self, delivery: &Delivery) -> AttemptReport;
    /// A short description for logs and status (`webhook https://example.com/hook`).
    fn describe(&self) -> String;
    /// Writes several deliveries at once, one report per delivery in the same order. Sinks that write in
    /// batches (a transaction, a pipeline) override it; the default delivers one by one.
    async fn deliver_batch(&self, deliveries: &[Delivery]) -> Vec<AttemptReport> {
        let mut reports = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            reports.push(self.deliver(delivery).await);
        }
        reports
    }
    /// Whether the destination can be reached and accepts writes: run when the subscription starts and
    /// behind the detailed `/health`. `Err` says what is wrong and what to do, in one line. The default
    /// (a sink with nothing to check up front) is healthy.
    async fn healthcheck(&self) -> Result<(), String> {
        Ok(())
    }
}
