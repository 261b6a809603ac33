//! The `nats` sink: each event becomes one message of a NATS JetStream stream, once per subscription
//! within the stream's duplicate window, even across crashes and retries.
//!
//! - [`config`]: `[subscriptions.sink] type = "nats"`: `url`, `subject` (a
//!   [`Template`](crate::format::Template)), `stream`, `subjects`, `duplicate_window`, `max_age`,
//!   `max_bytes`, `max_messages`, `payload`, `timeout`.
//! - `sink`: one connection per sink, made on the first use and kept (the client reconnects by itself);
//!   the stream is looked up or created (limits retention, file storage) once before the first publish and
//!   by the healthcheck. Every message carries `Nats-Msg-Id` = the delivery id, so JetStream drops a retry
//!   of a message it stored already and answers with a duplicate PubAck, which counts as delivered.
//!
//! Headers: `Nats-Msg-Id`, `tributary-id` (event id hex), `tributary-delivery-id`, `tributary-kind`,
//! `tributary-source`; the body is the event in the `payload` format.

pub mod config;
mod sink;

pub use config::NatsConfig;
pub use sink::NatsSink;
