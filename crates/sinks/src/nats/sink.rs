//! The running `nats` sink.

use super::config::{NatsConfig, publishable_subject, redacted_url};
use crate::SinkError;
use crate::format::{Format, Template};
use async_nats::jetstream::context::{CreateStreamErrorKind, PublishErrorKind};
use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;
use tributary_core::{AttemptReport, Delivery, DeliveryStatus, Sink, Timestamp};

/// A `nats` sink.
pub struct NatsSink {
    shown: String,
    url: String,
    subject: Template,
    stream: stream::Config,
    payload: Format,
    timeout: Duration,
    /// The JetStream context over one connection, made on first use.
    js: OnceCell<jetstream::Context>,
    /// Whether the stream was found or created since the last "no stream" answer.
    stream_ready: AtomicBool,
}

impl NatsSink {
    pub(crate) fn new(config: &NatsConfig) -> Result<Self, SinkError> {
        let subject = Template::parse(&config.subject).map_err(|e| SinkError::Config {
            field: "subject".into(),
            message: format!("template {:?} {e}", config.subject),
        })?;
        let bound = |n: Option<u64>| n.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let stream = stream::Config {
            name: config.stream.clone(),
            subjects: config.stream_subjects()?,
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            duplicate_window: config.duplicate_window,
            max_age: config.max_age.unwrap_or_default(),
            max_bytes: bound(config.max_bytes),
            max_messages: bound(config.max_messages),
            ..Default::default()
        };
        Ok(Self {
            shown: format!(
                "nats {} stream {} subject {}",
                redacted_url(&config.url),
                config.stream,
                config.subject
            ),
            url: config.url.clone(),
            subject,
            stream,
            payload: config.payload,
            timeout: config.timeout,
            js: OnceCell::new(),
            stream_ready: AtomicBool::new(false),
        })
    }

    /// The JetStream context, connecting first if needed; `Err` says what is wrong and what to do.
    async fn context(&self) -> Result<&jetstream::Context, String> {
        self.js
            .get_or_try_init(|| async {
                let client = async_nats::ConnectOptions::new()
                    .connection_timeout(self.timeout)
                    .request_timeout(Some(self.timeout))
                    .connect(self.url.as_str())
                    .await
                    .map_err(|e| {
                        format!(
                            "{}: could not connect ({e}); check that nats-server runs at that address and that url \
                             (and its user and password) is right",
                            self.shown
                        )
                    })?;
                Ok(jetstream::ContextBuilder::new().timeout(self.timeout).build(client))
            })
            .await
    }

    /// Finds or creates the stream once; `Err` says what is wrong and what to do.
    async fn ensure_stream(&self, js: &jetstream::Context) -> Result<(), String> {
        if self.stream_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let name = &self.stream.name;
        js.get_or_create_stream(self.stream.clone())
            .await
            .map_err(|e| match e.kind() {
                CreateStreamErrorKind::JetStreamUnavailable => format!(
                    "{}: the server has no JetStream: start nats-server with -js (and a store directory, -sd)",
                    self.shown
                ),
                CreateStreamErrorKind::TimedOut => format!(
                    "{}: no answer to looking up or creating stream {name} within {}; check the server's JetStream \
                 (-js) and raise timeout if it is slow",
                    self.shown,
                    humantime::format_duration(self.timeout)
                ),
                _ => format!(
                    "{}: could not look up or create stream {name} with subjects {:?} ({e}); fix or delete the stream, \
                 or change stream/subjects",
                    self.shown, self.stream.subjects
                ),
            })?;
        self.stream_ready.store(true, Ordering::Release);
        Ok(())
    }

    async fn publish(&self, delivery: &Delivery) -> Result<(), (DeliveryStatus, String)> {
        let retriable = |e: String| (DeliveryStatus::Retriable, e);
        let subject = self
            .subject
            .render(&delivery.event)
            .map_err(|e| (DeliveryStatus::Rejected, format!("subject: {e}")))?;
        publishable_subject(&subject).map_err(|e| (DeliveryStatus::Rejected, format!("subject: {e}")))?;
        let js = self.context().await.map_err(retriable)?;
        self.ensure_stream(js).await.map_err(retriable)?;
        let stored = &delivery.event;
        let message = jetstream::message::PublishMessage::build()
            .message_id(&delivery.message_id)
            .header("tributary-id", stored.event.id.to_hex().as_str())
            .header("tributary-delivery-id", delivery.message_id.as_str())
            .header("tributary-kind", stored.event.kind.as_str())
            .header("tributary-source", stored.source.as_str())
            .payload(self.payload.render(delivery, Timestamp::now()).into());
        let failed = |kind: PublishErrorKind, e: String| {
            if kind == PublishErrorKind::StreamNotFound {
                // Deleted since, or its subjects no longer cover ours: look it up (or create it) again.
                self.stream_ready.store(false, Ordering::Release);
            }
            let status = if kind == PublishErrorKind::MaxPayloadExceeded {
                DeliveryStatus::Rejected
            } else {
                DeliveryStatus::Retriable
            };
            let hint = match kind {
                PublishErrorKind::StreamNotFound => format!(
                    "no stream takes subject {subject:?} (no responders): stream {} was deleted or its subjects {:?} \
                     do not cover it; it is created again on the next attempt, or fix subjects",
                    self.stream.name, self.stream.subjects
                ),
                PublishErrorKind::TimedOut => format!(
                    "no PubAck for subject {subject:?} within {}; check the server and raise timeout if it is slow",
                    humantime::format_duration(self.timeout)
                ),
                PublishErrorKind::MaxPayloadExceeded => {
                    format!(
                        "the message is over the server's max_payload ({e}); raise max_payload or use a smaller payload"
                    )
                }
                _ => format!("publishing to {subject:?} failed ({e})"),
            };
            (status, format!("{}: {hint}", self.shown))
        };
        let ack = js
            .send_publish(subject.clone(), message)
            .await
            .map_err(|e| failed(e.kind(), e.to_string()))?;
        // A duplicate PubAck means JetStream stored this delivery before: delivered as well.
        ack.await.map_err(|e| failed(e.kind(), e.to_string()))?;
        Ok(())
    }
}

#[async_trait]
impl Sink for NatsSink {
    async fn deliver(&self, delivery: &Delivery) -> AttemptReport {
        let start = Instant::now();
        match self.publish(delivery).await {
            Ok(()) => AttemptReport::delivered(None, start.elapsed()),
            Err((status, reason)) => AttemptReport::failed(status, None, start.elapsed(), reason),
        }
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }

    async fn healthcheck(&self) -> Result<(), String> {
        let js = self.context().await?;
        self.ensure_stream(js).await
    }
}
