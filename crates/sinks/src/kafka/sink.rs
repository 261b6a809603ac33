//! The running `kafka` sink.

use super::config::{KafkaConfig, topic_name};
use crate::SinkError;
use crate::format::{Format, Template};
use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tributary_core::{AttemptReport, Delivery, DeliveryStatus, Sink, Timestamp};

/// The most topics remembered as existing; past it the set starts again (a create of an existing topic
/// is answered "already exists", which is fine).
const MAX_KNOWN_TOPICS: usize = 10_000;

/// A `kafka` sink.
pub struct KafkaSink {
    shown: String,
    topic: Template,
    payload: Format,
    partitions: i32,
    replication_factor: i32,
    timeout: Duration,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    /// Topics created by this sink or found to exist.
    known: Mutex<HashSet<String>>,
}

fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("client.id", "tributary")
        .set("security.protocol", config.security_protocol());
    if let Some(sasl) = &config.sasl {
        c.set("sasl.mechanism", sasl.mechanism.as_str())
            .set("sasl.username", &sasl.username)
            .set("sasl.password", &sasl.password);
    }
    if let Some(tls) = &config.tls {
        for (key, path) in [
            ("ssl.ca.location", &tls.ca),
            ("ssl.certificate.location", &tls.cert),
            ("ssl.key.location", &tls.key),
        ] {
            if let Some(path) = path {
                c.set(key, path.display().to_string());
            }
        }
    }
    c
}

impl KafkaSink {
    pub(crate) fn new(config: &KafkaConfig) -> Result<Self, SinkError> {
        let topic = Template::parse(&config.topic).map_err(|e| SinkError::Config {
            field: "topic".into(),
            message: format!("template {:?} {e}", config.topic),
        })?;
        // librdkafka refuses settings its build lacks (TLS and SCRAM need OpenSSL): say which.
        let refused = |e: KafkaError| {
            let field = match (&config.tls, &config.sasl) {
                (Some(_), _) => "tls",
                (None, Some(_)) => "sasl",
                _ => "brokers",
            };
            SinkError::Config {
                field: field.into(),
                message: format!(
                    "librdkafka refused the settings ({e}); this build's librdkafka has no OpenSSL, so tls and SCRAM are not available in it"
                ),
            }
        };
        let mut producer_config = client_config(config);
        producer_config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", config.linger.as_millis().to_string())
            .set("batch.size", config.batch_size.to_string())
            .set("message.timeout.ms", config.timeout.as_millis().to_string());
        let producer: FutureProducer = producer_config.create().map_err(refused)?;
        let admin: AdminClient<DefaultClientContext> = client_config(config).create().map_err(refused)?;
        Ok(Self {
            shown: format!("kafka {} topic {}", config.brokers, config.topic),
            topic,
            payload: config.payload,
            partitions: config.partitions as i32,
            replication_factor: i32::from(config.replication_factor),
            timeout: config.timeout,
            producer,
            admin,
            known: Mutex::new(HashSet::new()),
        })
    }

    fn is_known(&self, topic: &str) -> bool {
        self.known
            .lock()
            .expect("the known-topics lock is never poisoned")
            .contains(topic)
    }

    fn remember(&self, topic: &str, exists: bool) {
        let mut known = self.known.lock().expect("the known-topics lock is never poisoned");
        if !exists {
            known.remove(topic);
            return;
        }
        if known.len() >= MAX_KNOWN_TOPICS {
            known.clear();
        }
        known.insert(topic.to_owned());
    }

    /// Creates `topic` unless this sink knows it exists; "already exists" is fine. `Err` says what the
    /// broker answered and what to do.
    async fn ensure_topic(&self, topic: &str) -> Result<(), String> {
        if self.is_known(topic) {
            return Ok(());
        }
        let new = NewTopic::new(topic, self.partitions, TopicReplication::Fixed(self.replication_factor));
        let options = AdminOptions::new()
            .request_timeout(Some(Timeout::After(self.timeout)))
            .operation_timeout(Some(Timeout::After(self.timeout)));
        let answers = self.admin.create_topics([&new], &options).await.map_err(|e| {
            format!(
                "{}: could not create topic {topic:?} ({e}); check that the brokers run and accept this client",
                self.shown
            )
        })?;
        for answer in answers {
            match answer {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(format!(
                        "{}: the broker refused to create topic {topic:?} with {} partition(s) and replication \
                         factor {}: {code}; create the topic yourself or change partitions/replication_factor",
                        self.shown, self.partitions, self.replication_factor
                    ));
                }
            }
        }
        self.remember(topic, true);
        Ok(())
    }

    async fn produce(&self, delivery: &Delivery) -> Result<(), (DeliveryStatus, String)> {
        let rejected = |e: String| (DeliveryStatus::Rejected, e);
        let stored = &delivery.event;
        let topic = self.topic.render(stored).map_err(|e| rejected(format!("topic: {e}")))?;
        topic_name(&topic).map_err(|e| rejected(format!("topic: {e}")))?;
        self.ensure_topic(&topic)
            .await
            .map_err(|e| (DeliveryStatus::Retriable, e))?;
        let id = stored.event.id.to_hex();
        let headers = OwnedHeaders::new_with_capacity(4)
            .insert(Header {
                key: "tributary-id",
                value: Some(id.as_str()),
            })
            .insert(Header {
                key: "tributary-delivery-id",
                value: Some(delivery.message_id.as_str()),
            })
            .insert(Header {
                key: "tributary-kind",
                value: Some(stored.event.kind.as_str()),
            })
            .insert(Header {
                key: "tributary-source",
                value: Some(stored.source.as_str()),
            });
        let body = self.payload.render(delivery, Timestamp::now());
        let mut record = FutureRecord::<str, [u8]>::to(&topic).payload(&body).headers(headers);
        if let Some(key) = &stored.event.key {
            record = record.key(key.as_str());
        }
        // The future resolves when the broker acknowledged the record (acks = all) or librdkafka gave up
        // after `timeout`; `Timeout::After(timeout)` bounds the wait for room in its queue.
        match self.producer.send(record, Timeout::After(self.timeout)).await {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(self.classify(&topic, e)),
        }
    }

    fn classify(&self, topic: &str, e: KafkaError) -> (DeliveryStatus, String) {
        let code = e.rdkafka_error_code();
        if matches!(
            code,
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
        ) {
            // Deleted since: create it again on the next attempt.
            self.remember(topic, false);
        }
        let permanent = matches!(
            code,
            Some(
                RDKafkaErrorCode::MessageSizeTooLarge
                    | RDKafkaErrorCode::InvalidMessageSize
                    | RDKafkaErrorCode::InvalidMessage
                    | RDKafkaErrorCode::InvalidRecord
            )
        );
        let hint = match code {
            Some(RDKafkaErrorCode::MessageTimedOut) => format!(
                "no acknowledgement within {}; check that the brokers run and accept this client, or raise timeout",
                humantime::format_duration(self.timeout)
            ),
            _ if permanent => "the broker refused this record; writing it again cannot help".into(),
            _ => "the broker refused the record or could not be reached".into(),
        };
        let status = if permanent {
            DeliveryStatus::Rejected
        } else {
            DeliveryStatus::Retriable
        };
        (status, format!("{}: topic {topic:?}: {e}: {hint}", self.shown))
    }
}

#[async_trait]
impl Sink for KafkaSink {
    async fn deliver(&self, delivery: &Delivery) -> AttemptReport {
        let start = Instant::now();
        match self.produce(delivery).await {
            Ok(()) => AttemptReport::delivered(None, start.elapsed()),
            Err((status, reason)) => AttemptReport::failed(status, None, start.elapsed(), reason),
        }
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }

    async fn healthcheck(&self) -> Result<(), String> {
        let producer = self.producer.clone();
        let timeout = self.timeout;
        let answer = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, Timeout::After(timeout))
                .map(|m| m.brokers().len())
        })
        .await
        .map_err(|e| format!("{}: the metadata request failed ({e})", self.shown))?;
        match answer {
            Ok(n) if n > 0 => Ok(()),
            Ok(_) => Err(format!(
                "{}: the cluster answered with no brokers; check brokers",
                self.shown
            )),
            Err(e) => Err(format!(
                "{}: the brokers did not answer a metadata request within {} ({e}); check that they run at \
                 brokers and accept this client (sasl, tls)",
                self.shown,
                humantime::format_duration(timeout)
            )),
        }?;
        if self.topic.is_fixed() {
            self.ensure_topic(self.topic.literal_prefix()).await?;
        }
        Ok(())
    }
}
