//! The [`Source`] trait: a task that produces events and appends them with its checkpoint.

use crate::Log;
use async_trait::async_trait;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What a running source gets from the engine.
#[derive(Clone)]
pub struct SourceContext {
    /// The source's configured name.
    pub name: String,
    /// The log: where to append (atomically with the checkpoint), the source's checkpoints and state
    /// entries. A source never gets the delivery state or the catalog.
    pub store: Arc<dyn Log>,
    /// Cancelled when the source must stop.
    pub shutdown: CancellationToken,
    /// What the source tells operators about its parts (providers, relays, inputs): problems for
    /// `/health`, details for `/v1/sources`.
    pub report: SourceReport,
}

/// Longest problem text kept per part, and most parts kept per source (a source cannot grow it without
/// bound).
const MAX_REPORT_TEXT: usize = 2048;
const MAX_REPORT_PARTS: usize = 256;

/// A running source's own report about its parts, shared with the engine: a part with a problem makes
/// the source `degraded` in `/health` (the node keeps running), and each part's details (a provider's
/// head and lag) appear under the source in `/v1/sources`. Parts are named by the source (a masked
/// provider URL, a relay URL); a part's entry is replaced by the next report of the same part.
#[derive(Clone, Debug, Default)]
pub struct SourceReport {
    inner: Arc<std::sync::Mutex<ReportInner>>,
}

#[derive(Debug, Default)]
struct ReportInner {
    problems: std::collections::BTreeMap<String, String>,
    stalls: std::collections::BTreeMap<String, String>,
    details: std::collections::BTreeMap<String, serde_json::Value>,
    lags: std::collections::BTreeMap<String, Lag>,
}

/// How far one part of a source is behind its upstream (for the `tributary_source_lag_*` gauges).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Lag {
    /// Bytes not yet stored (a replication slot's unconfirmed WAL).
    pub bytes: Option<u64>,
    /// Seconds the oldest input not yet stored has waited.
    pub seconds: Option<f64>,
}

impl SourceReport {
    /// Sets (`Some`) or clears (`None`) the problem of `part`.
    pub fn problem(&self, part: &str, problem: Option<String>) {
        let mut inner = self.inner.lock().expect("report lock");
        match problem {
            Some(mut text) => {
                if inner.problems.len() >= MAX_REPORT_PARTS && !inner.problems.contains_key(part) {
                    return;
                }
                truncate(&mut text);
                inner.problems.insert(part.to_owned(), text);
            }
            None => {
                inner.problems.remove(part);
            }
        }
    }

    /// Sets (`Some`) or clears (`None`) a stall of `part`: the part makes no progress while it should (a
    /// replication slot that does not move while the server writes). A stall makes the source `stalled`
    /// in `/health`, as the engine's own `stall_after_ms` does.
    pub fn stall(&self, part: &str, stall: Option<String>) {
        let mut inner = self.inner.lock().expect("report lock");
        match stall {
            Some(mut text) => {
                if inner.stalls.len() >= MAX_REPORT_PARTS && !inner.stalls.contains_key(part) {
                    return;
                }
                truncate(&mut text);
                inner.stalls.insert(part.to_owned(), text);
            }
            None => {
                inner.stalls.remove(part);
            }
        }
    }

    /// The current stalls, by part.
    pub fn stalls(&self) -> std::collections::BTreeMap<String, String> {
        self.inner.lock().expect("report lock").stalls.clone()
    }

    /// Replaces the lag of `part`.
    pub fn lag(&self, part: &str, lag: Lag) {
        let mut inner = self.inner.lock().expect("report lock");
        if inner.lags.len() >= MAX_REPORT_PARTS && !inner.lags.contains_key(part) {
            return;
        }
        inner.lags.insert(part.to_owned(), lag);
    }

    /// The current lags, by part.
    pub fn lags(&self) -> std::collections::BTreeMap<String, Lag> {
        self.inner.lock().expect("report lock").lags.clone()
    }

    /// Replaces the details of `part` (shown as is in `/v1/sources`).
    pub fn detail(&self, part: &str, details: serde_json::Value) {
        let mut inner = self.inner.lock().expect("report lock");
        if inner.details.len() >= MAX_REPORT_PARTS && !inner.details.contains_key(part) {
            return;
        }
        inner.details.insert(part.to_owned(), details);
    }

    /// Sets the given fields of `part`'s details (an object), keeping its other fields: for a part that
    /// several tasks of a source describe.
    pub fn merge_detail(&self, part: &str, fields: serde_json::Value) {
        let mut inner = self.inner.lock().expect("report lock");
        if inner.details.len() >= MAX_REPORT_PARTS && !inner.details.contains_key(part) {
            return;
        }
        let entry = inner
            .details
            .entry(part.to_owned())
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        match (entry, fields) {
            (serde_json::Value::Object(have), serde_json::Value::Object(new)) => have.extend(new),
            (entry, fields) => *entry = fields,
        }
    }

    /// The current problems, by part.
    pub fn problems(&self) -> std::collections::BTreeMap<String, String> {
        self.inner.lock().expect("report lock").problems.clone()
    }

    /// The current details, by part.
    pub fn details(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
        self.inner.lock().expect("report lock").details.clone()
    }
}

fn truncate(text: &mut String) {
    if text.len() > MAX_REPORT_TEXT {
        let mut end = MAX_REPORT_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
}

impl SourceContext {
    /// Whether shutdown was requested.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }
}

/// Why a source stopped.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The store refused the write.
    #[error("source {source_name}: {error}")]
    Store {
        /// The source.
        source_name: String,
        /// The store's error.
        #[source]
        error: crate::StoreError,
    },
    /// An I/O problem the source cannot recover from.
    #[error("source {source_name}: {message}")]
    Io {
        /// The source.
        source_name: String,
        /// What happened and what to do.
        message: String,
    },
}

/// A running source.
#[async_trait]
pub trait Source: Send + 'static {
    /// Runs until shutdown is requested or an unrecoverable error occurs.
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_keeps_one_entry_per_part_and_bounds_its_size() {
        let r = SourceReport::default();
        r.problem("a", Some("down".into()));
        r.problem("a", Some("still down".into()));
        r.problem("b", Some("x".repeat(10_000)));
        assert_eq!(r.problems()["a"], "still down");
        assert!(r.problems()["b"].len() <= MAX_REPORT_TEXT + '…'.len_utf8());
        r.problem("a", None);
        assert_eq!(r.problems().len(), 1);
        for i in 0..1000 {
            r.problem(&i.to_string(), Some("p".into()));
            r.detail(&i.to_string(), serde_json::json!(i));
        }
        assert_eq!(r.problems().len(), MAX_REPORT_PARTS);
        assert_eq!(r.details().len(), MAX_REPORT_PARTS);
    }
}
