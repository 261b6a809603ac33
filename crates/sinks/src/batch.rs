//! A coalescer for sinks that write in batches: it collects the worker's concurrent `deliver` calls and hands
//! them to the sink's [`Sink::deliver_batch`] (one transaction, one pipeline), answering each caller with its
//! own report.
//!
//! No timer: a writer takes the first waiting delivery as soon as it is free, yields once so that deliveries
//! started at the same moment can join, then takes whatever else is waiting, up to `max_batch`. A lone
//! delivery therefore goes out at once; under load the deliveries that arrive while a batch is being
//! written make the next batch. `writers` batches are written at once (one per pooled connection).
//!
//! The queue holds at most `writers * max_batch` deliveries; a caller beyond that waits for room
//! (backpressure; the worker's `max_in_flight` bounds the callers anyway). The writer tasks end when the
//! coalescer is dropped.

use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::sync::{Mutex, mpsc, oneshot};
use tributary_core::{AttemptReport, Delivery, DeliveryStatus, Sink};

type Item = (Delivery, oneshot::Sender<AttemptReport>);

/// Collects concurrent deliveries into batches for one sink.
pub struct Coalescer {
    target: Arc<dyn Sink>,
    writers: usize,
    max_batch: usize,
    /// Made (and the writer tasks spawned) on the first delivery, inside the runtime.
    queue: OnceLock<mpsc::Sender<Item>>,
}

impl Coalescer {
    /// A coalescer writing through `target.deliver_batch`, at most `max_batch` deliveries per batch and
    /// `writers` batches at once (both at least 1).
    pub fn new(target: Arc<dyn Sink>, writers: usize, max_batch: usize) -> Self {
        Self {
            target,
            writers: writers.max(1),
            max_batch: max_batch.max(1),
            queue: OnceLock::new(),
        }
    }

    fn queue(&self) -> &mpsc::Sender<Item> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(self.writers * self.max_batch);
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..self.writers {
                tokio::spawn(write_loop(self.target.clone(), rx.clone(), self.max_batch));
            }
            tx
        })
    }

    /// Delivers `delivery` as part of a batch and returns its own report.
    pub async fn deliver(&self, delivery: &Delivery) -> AttemptReport {
        let start = Instant::now();
        let (tx, rx) = oneshot::channel();
        let lost = || {
            AttemptReport::failed(
                DeliveryStatus::Retriable,
                None,
                start.elapsed(),
                "the sink's batch writer stopped before answering (see the log); the delivery will be retried".into(),
            )
        };
        if self.queue().send((delivery.clone(), tx)).await.is_err() {
            return lost();
        }
        rx.await.unwrap_or_else(|_| lost())
    }
}

async fn write_loop(target: Arc<dyn Sink>, rx: Arc<Mutex<mpsc::Receiver<Item>>>, max_batch: usize) {
    loop {
        let mut batch = Vec::new();
        {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            batch.push(first);
            // Deliveries spawned together are usually one poll away: let them join this batch.
            tokio::task::yield_now().await;
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
        }
        let (deliveries, replies): (Vec<Delivery>, Vec<_>) = batch.into_iter().unzip();
        let mut reports = target.deliver_batch(&deliveries).await;
        if reports.len() != deliveries.len() {
            tracing::error!(
                expected = deliveries.len(),
                got = reports.len(),
                sink = %target.describe(),
                "the sink answered a batch with the wrong number of reports; the batch will be retried"
            );
            let report = AttemptReport::failed(
                DeliveryStatus::Retriable,
                None,
                std::time::Duration::ZERO,
                "the sink answered a batch with the wrong number of reports (a bug); retrying".into(),
            );
            reports = vec![report; deliveries.len()];
        }
        for (reply, report) in replies.into_iter().zip(reports) {
            // A caller that went away (its attempt was cancelled) needs no answer.
            let _ = reply.send(report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Coalescer;
    use async_trait::async_trait;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tributary_core::{AttemptReport, Delivery, DeliveryStatus, EventId, NewEvent, Sink, StoredEvent, Timestamp};

    /// Records the size of every batch; rejects deliveries whose seq is odd; holds each batch until released.
    struct Recorder {
        sizes: Mutex<Vec<usize>>,
        gate: tokio::sync::Semaphore,
    }

    #[async_trait]
    impl Sink for Recorder {
        async fn deliver(&self, _: &Delivery) -> AttemptReport {
            unreachable!("the coalescer calls deliver_batch")
        }
        fn describe(&self) -> String {
            "recorder".into()
        }
        async fn deliver_batch(&self, deliveries: &[Delivery]) -> Vec<AttemptReport> {
            self.sizes.lock().unwrap().push(deliveries.len());
            self.gate.acquire().await.unwrap().forget();
            deliveries
                .iter()
                .map(|d| match d.event.seq % 2 {
                    0 => AttemptReport::delivered(None, Duration::ZERO),
                    _ => AttemptReport::failed(
                        DeliveryStatus::Rejected,
                        None,
                        Duration::ZERO,
                        format!("odd {}", d.event.seq),
                    ),
                })
                .collect()
        }
    }

    fn delivery(seq: u64) -> Delivery {
        Delivery {
            subscription: "s".into(),
            message_id: format!("m{seq}"),
            event: Arc::new(StoredEvent {
                seq,
                source: "src".into(),
                ingested_at: Timestamp(0),
                event: NewEvent {
                    id: EventId::sha256(&seq.to_be_bytes()),
                    kind: "k".into(),
                    key: None,
                    occurred_at: None,
                    position: None,
                    payload: Vec::new(),
                    data: serde_json::Value::Null,
                    tenant: None,
                    retracts: None,
                },
            }),
            attempt: 1,
        }
    }

    fn recorder(open: usize) -> Arc<Recorder> {
        Arc::new(Recorder {
            sizes: Mutex::new(Vec::new()),
            gate: tokio::sync::Semaphore::new(open),
        })
    }

    #[tokio::test]
    async fn a_lone_delivery_is_written_at_once_and_answered_with_its_own_report() {
        let sink = recorder(100);
        let c = Coalescer::new(sink.clone(), 1, 10);
        assert_eq!(c.deliver(&delivery(2)).await.status, DeliveryStatus::Delivered);
        let r = c.deliver(&delivery(3)).await;
        assert_eq!(
            (r.status, r.error.as_deref()),
            (DeliveryStatus::Rejected, Some("odd 3"))
        );
        assert_eq!(*sink.sizes.lock().unwrap(), vec![1, 1]);
    }

    #[tokio::test]
    async fn concurrent_deliveries_share_bounded_batches_and_each_gets_its_report() {
        let sink = recorder(0);
        let c = Arc::new(Coalescer::new(sink.clone(), 1, 4));
        // The first delivery's batch is held; the nine that arrive meanwhile queue up.
        let mut tasks = Vec::new();
        for seq in 0..10u64 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move { (seq, c.deliver(&delivery(seq)).await) }));
        }
        while sink.sizes.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        sink.gate.add_permits(100);
        for t in tasks {
            let (seq, report) = t.await.unwrap();
            let want = if seq % 2 == 0 {
                DeliveryStatus::Delivered
            } else {
                DeliveryStatus::Rejected
            };
            assert_eq!(report.status, want, "seq {seq}: {report:?}");
        }
        let sizes = sink.sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 10, "{sizes:?}");
        assert!(sizes.iter().all(|&n| n <= 4), "batches are bounded: {sizes:?}");
        assert!(sizes.len() < 10, "queued deliveries were written together: {sizes:?}");
    }

    #[tokio::test]
    async fn a_sink_that_answers_too_few_reports_makes_the_batch_retriable() {
        struct Short;
        #[async_trait]
        impl Sink for Short {
            async fn deliver(&self, _: &Delivery) -> AttemptReport {
                unreachable!()
            }
            fn describe(&self) -> String {
                "short".into()
            }
            async fn deliver_batch(&self, _: &[Delivery]) -> Vec<AttemptReport> {
                Vec::new()
            }
        }
        let c = Coalescer::new(Arc::new(Short), 2, 8);
        let r = c.deliver(&delivery(2)).await;
        assert_eq!(r.status, DeliveryStatus::Retriable);
        assert!(r.error.unwrap().contains("wrong number of reports"));
    }
}
