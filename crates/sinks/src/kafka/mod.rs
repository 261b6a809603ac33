//! The `kafka` sink: each event becomes one record of a Kafka topic, produced by an idempotent producer
//! with `acks = all`; a delivery counts only when the broker acknowledged the record.
//!
//! - [`config`]: `[subscriptions.sink] type = "kafka"`: `brokers`, `topic` (a
//!   [`Template`](crate::format::Template)), `payload`, `partitions`, `replication_factor`, `linger`,
//!   `batch_size`, `timeout`, `sasl`, `tls`.
//! - `sink`: one librdkafka producer per sink, shared by every concurrent `deliver` (librdkafka batches
//!   what is in flight, up to `linger` and `batch_size`); a topic is created (admin API) the first time a
//!   delivery names it, and remembered.
//!
//! Record: key = the event's key (none when it has none), value = the event in the `payload` format,
//! headers `tributary-id` (event id hex), `tributary-delivery-id`, `tributary-kind`, `tributary-source`.

pub mod config;
mod sink;

pub use config::{KafkaConfig, SaslConfig, SaslMechanism, TlsConfig};
pub use sink::KafkaSink;
