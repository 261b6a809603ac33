//! Every metric name, in one place, with the helpers that emit them (STYLE rule 15).
//!
//! Sources and sinks emit the same standard set: received, sent, errors by stage, dropped by reason.
//! Label values are bounded: source and subscription names come from the config or the API, `stage`,
//! `reason`, `outcome` and `status_class` from fixed lists.

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

/// Events a source handed to ingest (accepted or duplicate).
pub const SOURCE_RECEIVED: &str = "tributary_source_events_received_total";
/// New events a source stored.
pub const SOURCE_SENT: &str = "tributary_source_events_stored_total";
/// Events a source dropped, by reason (`duplicate`, `invalid`).
pub const SOURCE_DROPPED: &str = "tributary_source_events_dropped_total";
/// Source errors, by stage (`parse`, `store`, `read`).
pub const SOURCE_ERRORS: &str = "tributary_source_errors_total";
/// Events a subscription's worker handed to its sink (first attempts).
pub const SINK_RECEIVED: &str = "tributary_sink_events_received_total";
/// Distinct events a sink delivered (a replay of an event delivered before is not counted again); the
/// subscription view's `events_delivered`.
pub const SINK_SENT: &str = "tributary_sink_events_delivered_total";
/// Events a sink dropped into the dead-letter store, by reason (`exhausted`, `rejected`); the view's
/// `events_dead_lettered`.
pub const SINK_DROPPED: &str = "tributary_sink_events_dropped_total";
/// Sink errors, by stage (`deliver`).
pub const SINK_ERRORS: &str = "tributary_sink_errors_total";
/// Delivery attempts by outcome (`delivered`, `retriable`, `exhausted`: the last retriable failure before
/// a dead letter, `rejected`) and status class (`2xx`..`5xx`, `none`); the view's `attempts`.
pub const ATTEMPTS: &str = "tributary_delivery_attempts_total";
/// Seconds from ingest to successful delivery, per subscription.
pub const LATENCY: &str = "tributary_delivery_latency_seconds";
/// Seconds from an event's `occurred_at` (a PostgreSQL commit time, a block time) to its first successful
/// delivery, per subscription: the write-to-visible latency of change capture.
pub const OCCURRED_TO_DELIVERED: &str = "tributary_delivery_occurred_to_delivered_seconds";
/// Seconds from an event's `occurred_at` to when it was stored, per source.
pub const OCCURRED_TO_STORED: &str = "tributary_source_occurred_to_stored_seconds";
/// How far a source is behind its upstream in bytes (a replication slot's unconfirmed WAL), per part.
pub const SOURCE_LAG_BYTES: &str = "tributary_source_lag_bytes";
/// How long the oldest input a source has not yet stored has waited upstream, per part.
pub const SOURCE_LAG_SECONDS: &str = "tributary_source_lag_seconds";
/// Events behind a subscription's cursor.
pub const BACKLOG: &str = "tributary_subscription_backlog_events";
/// Dead letters of a subscription.
pub const DEAD_LETTERS: &str = "tributary_subscription_dead_letters";
/// Seconds one store append took (durable).
pub const STORE_WRITE: &str = "tributary_store_append_seconds";
/// Events per store append.
pub const STORE_BATCH: &str = "tributary_store_append_batch_events";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                ])
                .expect("static buckets are valid")
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(STORE_BATCH.to_owned()),
                    &[1.0, 10.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0],
                )
                .expect("static buckets are valid");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may be installed (tests): ours still renders what we record through it.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// A source's append: how many were new, how many duplicates, how many rejected, how long it took.
pub fn source_append(source: &str, accepted: usize, duplicates: usize, rejected: usize, took: Duration) {
    let s = source.to_owned();
    counter!(SOURCE_RECEIVED, "source" => s.clone()).increment((accepted + duplicates) as u64);
    counter!(SOURCE_SENT, "source" => s.clone()).increment(accepted as u64);
    if duplicates > 0 {
        counter!(SOURCE_DROPPED, "source" => s.clone(), "reason" => "duplicate").increment(duplicates as u64);
    }
    if rejected > 0 {
        counter!(SOURCE_DROPPED, "source" => s.clone(), "reason" => "invalid").increment(rejected as u64);
        counter!(SOURCE_ERRORS, "source" => s, "stage" => "parse").increment(rejected as u64);
    }
    histogram!(STORE_WRITE).record(took.as_secs_f64());
    histogram!(STORE_BATCH).record((accepted + duplicates) as f64);
}

/// New events stored at `stored_at`: each one's age since its `occurred_at` (microseconds since the
/// epoch; events without one are not counted). A clock behind the source's counts as 0.
pub fn source_stored_ages(source: &str, stored_at: i64, occurred: &[i64]) {
    if occurred.is_empty() {
        return;
    }
    let h = histogram!(OCCURRED_TO_STORED, "source" => source.to_owned());
    for at in occurred {
        h.record(stored_at.saturating_sub(*at).max(0) as f64 / 1e6);
    }
}

/// A source's own lag figures for one of its parts, refreshed on scrape.
pub fn source_lag(source: &str, part: &str, bytes: Option<u64>, seconds: Option<f64>) {
    if let Some(b) = bytes {
        gauge!(SOURCE_LAG_BYTES, "source" => source.to_owned(), "part" => part.to_owned()).set(b as f64);
    }
    if let Some(s) = seconds {
        gauge!(SOURCE_LAG_SECONDS, "source" => source.to_owned(), "part" => part.to_owned()).set(s);
    }
}

/// A source's failed append.
pub fn source_error(source: &str, stage: &'static str) {
    counter!(SOURCE_ERRORS, "source" => source.to_owned(), "stage" => stage).increment(1);
}

fn status_class(code: Option<u16>) -> &'static str {
    match code {
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        Some(_) => "other",
        None => "none",
    }
}

/// One delivery attempt ended.
pub fn attempt(subscription: &str, first: bool, outcome: &'static str, code: Option<u16>) {
    let s = subscription.to_owned();
    if first {
        counter!(SINK_RECEIVED, "subscription" => s.clone()).increment(1);
    }
    counter!(ATTEMPTS, "subscription" => s.clone(), "outcome" => outcome, "status_class" => status_class(code))
        .increment(1);
    if outcome != "delivered" {
        counter!(SINK_ERRORS, "subscription" => s, "stage" => "deliver").increment(1);
    }
}

/// An attempt delivered its event: a `distinct` event (not delivered before) counts in
/// [`SINK_SENT`]; `latency` after ingest is recorded for a first round only (None for a replay: a replay is
/// not ingest-to-delivery latency and would count the event twice in the histogram).
/// `since_occurred`: the same for the event's own `occurred_at`, when it has one.
pub fn delivered(subscription: &str, distinct: bool, latency: Option<Duration>, since_occurred: Option<Duration>) {
    if distinct {
        counter!(SINK_SENT, "subscription" => subscription.to_owned()).increment(1);
    }
    if let Some(latency) = latency {
        histogram!(LATENCY, "subscription" => subscription.to_owned()).record(latency.as_secs_f64());
    }
    if let Some(age) = since_occurred {
        histogram!(OCCURRED_TO_DELIVERED, "subscription" => subscription.to_owned()).record(age.as_secs_f64());
    }
}

/// An event went to the dead-letter store.
pub fn dead_lettered(subscription: &str, reason: &'static str) {
    counter!(SINK_DROPPED, "subscription" => subscription.to_owned(), "reason" => reason).increment(1);
}

/// Gauges of a subscription, refreshed on scrape.
pub fn subscription_gauges(subscription: &str, backlog: u64, dead_letters: u64) {
    gauge!(BACKLOG, "subscription" => subscription.to_owned()).set(backlog as f64);
    gauge!(DEAD_LETTERS, "subscription" => subscription.to_owned()).set(dead_letters as f64);
}

/// Makes every standard series of a source present (at 0) from the start, as Prometheus users expect:
/// a counter that appears only with its first event breaks `rate()` and alerts on absence.
pub fn source_registered(source: &str) {
    let s = source.to_owned();
    counter!(SOURCE_RECEIVED, "source" => s.clone()).increment(0);
    counter!(SOURCE_SENT, "source" => s.clone()).increment(0);
    for reason in ["duplicate", "invalid"] {
        counter!(SOURCE_DROPPED, "source" => s.clone(), "reason" => reason).increment(0);
    }
    for stage in ["parse", "store", "read"] {
        counter!(SOURCE_ERRORS, "source" => s.clone(), "stage" => stage).increment(0);
    }
}

/// Makes every standard series of a subscription present (at 0) from the start (see
/// [`source_registered`]). Attempts start with the `none` status class; others appear with their first
/// attempt.
pub fn subscription_registered(subscription: &str) {
    let s = subscription.to_owned();
    counter!(SINK_RECEIVED, "subscription" => s.clone()).increment(0);
    counter!(SINK_SENT, "subscription" => s.clone()).increment(0);
    for reason in ["exhausted", "rejected"] {
        counter!(SINK_DROPPED, "subscription" => s.clone(), "reason" => reason).increment(0);
    }
    counter!(SINK_ERRORS, "subscription" => s.clone(), "stage" => "deliver").increment(0);
    for outcome in ["delivered", "retriable", "exhausted", "rejected"] {
        counter!(ATTEMPTS, "subscription" => s.clone(), "outcome" => outcome, "status_class" => "none").increment(0);
    }
    gauge!(BACKLOG, "subscription" => s.clone()).increment(0.0);
    gauge!(DEAD_LETTERS, "subscription" => s).increment(0.0);
}
