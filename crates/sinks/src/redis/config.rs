//! `[subscriptions.sink] type = "redis"`.

use crate::SinkError;
use crate::format::{Format, Template};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The most entries `maxlen` may keep.
pub const MAX_MAXLEN: u64 = 1_000_000_000_000;
/// The longest `dedup_ttl`.
pub const MAX_DEDUP_TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// The shortest `dedup_ttl`: it must outlast the longest retry schedule's wait between attempts.
pub const MIN_DEDUP_TTL: Duration = Duration::from_secs(60);
/// The longest `timeout`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// What an entry carries: `payload = "standard" | "platform_event" | "data" | "raw" | "ethhook" | "fields"
/// | "ethhook_fields"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisPayload {
    /// The standard body in the `payload` field.
    #[default]
    Standard,
    /// ln-history's `PlatformEvent` in the `payload` field.
    PlatformEvent,
    /// The event's data as JSON in the `payload` field.
    Data,
    /// The payload bytes in the `payload` field.
    Raw,
    /// EthHook's flat JSON in the `payload` field.
    Ethhook,
    /// The top-level fields of the event's data as the entry's fields.
    Fields,
    /// The fields of EthHook's flat JSON as the entry's fields (`events:{chain_id}` entries as EthHook
    /// wrote them); events that are not EVM logs are rejected.
    EthhookFields,
}

impl RedisPayload {
    /// The shared format of the `payload` field, or `None` for `fields` and `ethhook_fields`.
    pub fn format(self) -> Option<Format> {
        match self {
            RedisPayload::Standard => Some(Format::Standard),
            RedisPayload::PlatformEvent => Some(Format::PlatformEvent),
            RedisPayload::Data => Some(Format::Data),
            RedisPayload::Raw => Some(Format::Raw),
            RedisPayload::Ethhook => Some(Format::Ethhook),
            RedisPayload::Fields | RedisPayload::EthhookFields => None,
        }
    }

    fn is_standard(&self) -> bool {
        *self == RedisPayload::Standard
    }
}

/// The `redis` sink's config.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host[:port][/db]`.
    pub url: String,
    /// The stream's name, a template (`events:{data.chain_id}`).
    pub stream: String,
    /// Approximate trimming (`XADD … MAXLEN ~ n`): at most about this many entries are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxlen: Option<u64>,
    /// What each entry carries.
    #[serde(default, skip_serializing_if = "RedisPayload::is_standard")]
    pub payload: RedisPayload,
    /// How long a delivery's marker is kept (writes of the same delivery within it are dropped).
    #[serde(default = "default_dedup_ttl", with = "humantime_serde")]
    pub dedup_ttl: Duration,
    /// Connect and answer timeout of one attempt.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_dedup_ttl() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redacted_url(&self.url))
            .field("stream", &self.stream)
            .field("maxlen", &self.maxlen)
            .field("payload", &self.payload)
            .field("dedup_ttl", &self.dedup_ttl)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `url` without its password, for logs and views.
pub fn redacted_url(url: &str) -> String {
    crate::url::redacted_url(url, crate::url::LoneUserinfo::User)
}

fn config_err(field: &str, message: String) -> SinkError {
    SinkError::Config {
        field: field.into(),
        message,
    }
}

impl RedisConfig {
    /// Checks every field against its documented bounds.
    pub fn problems(&self) -> Vec<SinkError> {
        let mut p = crate::Problems::default();
        p.check(|| {
            let info = redis::IntoConnectionInfo::into_connection_info(self.url.as_str()).map_err(|e| {
                config_err(
                    "url",
                    format!(
                        "{:?} is not a Redis URL ({e}); expected redis://[user:password@]host[:port][/db]",
                        redacted_url(&self.url)
                    ),
                )
            })?;
            if !matches!(info.addr(), redis::ConnectionAddr::Tcp(..)) {
                return Err(config_err(
                    "url",
                    "only redis:// (plain TCP) is supported by this build; rediss:// and unix sockets are not".into(),
                ));
            }
            Ok(())
        });
        p.check(|| {
            Template::parse(&self.stream)
                .map_err(|e| config_err("stream", format!("template {:?} {e}", self.stream)))?;
            Ok(())
        });
        p.check(|| {
            if let Some(n) = self.maxlen
                && !(1..=MAX_MAXLEN).contains(&n)
            {
                return Err(config_err("maxlen", format!("expected 1 to {MAX_MAXLEN}, got {n}")));
            }
            Ok(())
        });
        p.check(|| {
            if !(MIN_DEDUP_TTL..=MAX_DEDUP_TTL).contains(&self.dedup_ttl) {
                return Err(config_err(
                    "dedup_ttl",
                    format!("expected 1m to 90d, got {}", humantime::format_duration(self.dedup_ttl)),
                ));
            }
            Ok(())
        });
        p.check(|| {
            if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
                return Err(config_err(
                    "timeout",
                    format!("expected 1ms to 5m, got {}", humantime::format_duration(self.timeout)),
                ));
            }
            Ok(())
        });
        p.into_vec()
    }

    /// The first of [`problems`](Self::problems), if any.
    pub fn validate(&self) -> Result<(), SinkError> {
        crate::first_problem(self.problems())
    }

    /// The running sink.
    pub fn build(&self) -> Result<super::RedisSink, SinkError> {
        self.validate()?;
        super::RedisSink::new(self)
    }
}

impl crate::SinkType for RedisConfig {
    fn type_name(&self) -> &'static str {
        "redis"
    }

    fn problems(&self) -> Vec<SinkError> {
        RedisConfig::problems(self)
    }

    fn build_sink(&self, _: crate::SinkContext) -> Result<std::sync::Arc<dyn tributary_core::Sink>, SinkError> {
        Ok(std::sync::Arc::new(self.build()?))
    }
}

#[cfg(test)]
mod tests {
    use super::{RedisConfig, redacted_url};

    fn config(toml_text: &str) -> Result<RedisConfig, String> {
        let c: RedisConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn defaults_and_bounds() {
        let c = config("url = \"redis://127.0.0.1:6379\"\nstream = \"events:{data.chain_id}\"").unwrap();
        assert_eq!(c.dedup_ttl.as_secs(), 7 * 24 * 3600);
        for (extra, says) in [
            ("maxlen = 0", "maxlen: expected 1 to"),
            ("dedup_ttl = \"1s\"", "dedup_ttl: expected 1m to 90d"),
            ("timeout = \"1h\"", "timeout: expected 1ms to 5m"),
            ("payload = \"xml\"", "unknown variant"),
            ("colour = 1", "unknown field"),
        ] {
            let e = config(&format!("url = \"redis://127.0.0.1\"\nstream = \"s\"\n{extra}")).unwrap_err();
            assert!(e.contains(says), "{extra}: {e}");
        }
        let e = config("url = \"redis://127.0.0.1\"\nstream = \"s:{nope}\"").unwrap_err();
        assert!(
            e.contains("stream: template \"s:{nope}\" has an unknown placeholder"),
            "{e}"
        );
        let e = config("url = \"http://127.0.0.1\"\nstream = \"s\"").unwrap_err();
        assert!(e.starts_with("url: "), "{e}");
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redacted_url("redis://u:secret@127.0.0.1:6379/2"),
            "redis://u:***@127.0.0.1:6379/2"
        );
        assert_eq!(redacted_url("redis://:secret@127.0.0.1"), "redis://:***@127.0.0.1");
        assert_eq!(redacted_url("redis://127.0.0.1"), "redis://127.0.0.1");
        let c: RedisConfig = toml::from_str("url = \"redis://u:secret@127.0.0.1\"\nstream = \"s\"").unwrap();
        assert!(!format!("{c:?}").contains("secret"));
    }
}
