//! The running `redis` sink.

use super::config::{RedisConfig, RedisPayload, redacted_url};
use crate::SinkError;
use crate::format::Template;
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde_json::Value;
use std::time::{Duration, Instant};
use tributary_core::{AttemptReport, Delivery, DeliveryStatus, Sink, Timestamp};

/// At most this many fields in one entry (`payload = "fields"`); Lua's `unpack` has a limit near 8,000
/// values.
const MAX_FIELDS: usize = 1000;

/// Writes the entry unless the delivery's marker exists; returns `{written (0|1), entry id}`.
/// KEYS[1] = stream, KEYS[2] = marker; ARGV[1] = marker TTL (s), ARGV[2] = maxlen (0 = none),
/// ARGV[3..] = field, value, ...
const SCRIPT: &str = r"
local prev = redis.call('GET', KEYS[2])
if prev then return {0, prev} end
local id
if tonumber(ARGV[2]) > 0 then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
else
  id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
end
redis.call('SET', KEYS[2], id, 'EX', ARGV[1])
return {1, id}
";

/// A `redis` sink.
pub struct RedisSink {
    shown: String,
    stream: Template,
    maxlen: u64,
    payload: RedisPayload,
    ttl_secs: u64,
    conn: ConnectionManager,
    script: redis::Script,
}

impl RedisSink {
    pub(crate) fn new(config: &RedisConfig) -> Result<Self, SinkError> {
        let bad_url = |e: redis::RedisError| SinkError::Config {
            field: "url".into(),
            message: format!("{:?}: {e}", redacted_url(&config.url)),
        };
        let client = redis::Client::open(config.url.as_str()).map_err(bad_url)?;
        // One multiplexed connection, made on the first delivery and remade when it drops; each
        // attempt is bounded by `timeout` (the worker retries, not the connection manager).
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client, manager).map_err(bad_url)?;
        Ok(Self {
            shown: format!("redis {} stream {}", redacted_url(&config.url), config.stream),
            stream: Template::parse(&config.stream).map_err(|e| SinkError::Config {
                field: "stream".into(),
                message: format!("template {:?} {e}", config.stream),
            })?,
            maxlen: config.maxlen.unwrap_or(0),
            payload: config.payload,
            ttl_secs: config.dedup_ttl.as_secs().max(1),
            conn,
            script: redis::Script::new(SCRIPT),
        })
    }

    /// The entry's field/value pairs, or why the event cannot be written.
    fn fields(&self, delivery: &Delivery) -> Result<Vec<(String, Vec<u8>)>, String> {
        let stored = &delivery.event;
        let event = &stored.event;
        let Some(format) = self.payload.format() else {
            return entry_fields(self.payload, delivery);
        };
        let mut fields = vec![
            ("id".to_owned(), event.id.to_hex().into_bytes()),
            ("kind".to_owned(), event.kind.clone().into_bytes()),
            ("source".to_owned(), stored.source.clone().into_bytes()),
        ];
        if let Some(key) = &event.key {
            fields.push(("key".to_owned(), key.clone().into_bytes()));
        }
        fields.push(("seq".to_owned(), stored.seq.to_string().into_bytes()));
        fields.push(("payload".to_owned(), format.render(delivery, Timestamp::now())));
        Ok(fields)
    }
}

/// The entry's fields for `payload = "fields"` (the event's data) or `"ethhook_fields"` (EthHook's flat
/// JSON): each top-level field, strings as they are and other values as JSON.
fn entry_fields(payload: RedisPayload, delivery: &Delivery) -> Result<Vec<(String, Vec<u8>)>, String> {
    let ethhook;
    let data = if payload == RedisPayload::EthhookFields {
        ethhook = crate::format::ethhook::object(delivery).ok_or_else(|| {
            format!(
                "payload = \"ethhook_fields\" needs EVM log events (evm.*) from the evm source, got kind {:?}",
                delivery.event.event.kind
            )
        })?;
        &ethhook
    } else {
        let Value::Object(data) = &delivery.event.event.data else {
            return Err("payload = \"fields\" needs events whose data is a JSON object".into());
        };
        data
    };
    // `ethhook_fields` always has EthHook's nine or ten fields: only `fields` can meet these.
    if data.len() > MAX_FIELDS {
        return Err(format!(
            "payload = \"fields\": the event's data has {} fields, over the limit of {MAX_FIELDS}",
            data.len()
        ));
    }
    if data.is_empty() {
        return Err("payload = \"fields\": the event's data has no fields (a stream entry needs one)".into());
    }
    Ok(data
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone().into_bytes(),
                other => serde_json::to_vec(other).expect("a JSON value serializes"),
            };
            (k.clone(), value)
        })
        .collect())
}

/// Whether a Redis error is about this event (writing it again cannot help) rather than the server.
fn permanent(e: &redis::RedisError) -> bool {
    matches!(e.code(), Some("WRONGTYPE"))
}

#[async_trait]
impl Sink for RedisSink {
    async fn deliver(&self, delivery: &Delivery) -> AttemptReport {
        let start = Instant::now();
        let rejected = |reason: String| AttemptReport::failed(DeliveryStatus::Rejected, None, start.elapsed(), reason);
        let stream = match self.stream.render(&delivery.event) {
            Ok(s) => s,
            Err(e) => return rejected(format!("stream name: {e}")),
        };
        let fields = match self.fields(delivery) {
            Ok(f) => f,
            Err(e) => return rejected(e),
        };
        // Scoped to the stream: another stream (a changed template) or another node writing elsewhere is
        // another destination.
        let marker = format!("tributary:delivered:{stream}:{}", delivery.message_id);
        let mut invocation = self.script.key(&stream);
        invocation.key(&marker).arg(self.ttl_secs).arg(self.maxlen);
        for (k, v) in &fields {
            invocation.arg(k).arg(v.as_slice());
        }
        let mut conn = self.conn.clone();
        let answer: Result<(u8, String), redis::RedisError> = invocation.invoke_async(&mut conn).await;
        match answer {
            Ok(_) => AttemptReport::delivered(None, start.elapsed()),
            Err(e) if permanent(&e) => rejected(format!("redis refused stream {stream:?}: {e}")),
            Err(e) => AttemptReport::failed(
                DeliveryStatus::Retriable,
                None,
                start.elapsed(),
                format!("{}: {e}", self.shown),
            ),
        }
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }

    async fn healthcheck(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let pong: Result<String, redis::RedisError> = redis::cmd("PING").query_async(&mut conn).await;
        pong.map(drop).map_err(|e| {
            format!(
                "{}: {e}; check that the server runs and that `url` is right",
                self.shown
            )
        })
    }
}
