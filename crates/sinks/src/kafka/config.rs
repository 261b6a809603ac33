//! `[subscriptions.sink] type = "kafka"`.

use crate::SinkError;
use crate::format::{Format, Template};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The most partitions a created topic may have.
pub const MAX_PARTITIONS: u32 = 10_000;
/// The largest replication factor of a created topic.
pub const MAX_REPLICATION_FACTOR: u16 = 16;
/// The longest `linger`.
pub const MAX_LINGER: Duration = Duration::from_secs(5);
/// The smallest and largest `batch_size` (bytes).
pub const BATCH_SIZE_BOUNDS: (u32, u32) = (1024, 16 * 1024 * 1024);
/// The shortest and longest `timeout`.
pub const TIMEOUT_BOUNDS: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(300));
/// The most brokers `brokers` may list.
pub const MAX_BROKERS: usize = 100;

/// `sasl.mechanism`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaslMechanism {
    /// `PLAIN`: user name and password in the clear (use it with `tls`).
    #[serde(rename = "PLAIN")]
    Plain,
    /// `SCRAM-SHA-256`.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// `SCRAM-SHA-512`.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// The name librdkafka and brokers use.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// `[subscriptions.sink.sasl]`: authenticate with a user name and password.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaslConfig {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: SaslMechanism,
    /// The user name.
    pub username: String,
    /// The password (shown as `***` in logs and the API).
    pub password: String,
}

impl std::fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// `[subscriptions.sink.tls]`: TLS to the brokers, with PEM files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The CA certificates that sign the brokers' certificates (PEM); the system's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// This client's certificate (PEM), for brokers that require client certificates; needs `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// This client's private key (PEM, unencrypted); needs `cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

/// The `kafka` sink's config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// The bootstrap brokers, `host:port[,host:port…]`.
    pub brokers: String,
    /// The topic of each record, a template (`gossip`, `events.{kind.0}`).
    pub topic: String,
    /// What each record's value carries.
    #[serde(default, skip_serializing_if = "is_standard")]
    pub payload: Format,
    /// The partitions of a topic the sink creates.
    #[serde(default = "one")]
    pub partitions: u32,
    /// The replication factor of a topic the sink creates.
    #[serde(default = "one_u16")]
    pub replication_factor: u16,
    /// How long librdkafka waits to fill a batch (`linger.ms`).
    #[serde(default = "default_linger", with = "humantime_serde")]
    pub linger: Duration,
    /// The largest batch of records sent to one partition at once, in bytes (`batch.size`).
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// How long one record may take to be acknowledged, retries by librdkafka included
    /// (`message.timeout.ms`); also bounds topic creation and the healthcheck.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// SASL authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl: Option<SaslConfig>,
    /// TLS to the brokers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

fn is_standard(f: &Format) -> bool {
    *f == Format::Standard
}
fn one() -> u32 {
    1
}
fn one_u16() -> u16 {
    1
}
fn default_linger() -> Duration {
    Duration::from_millis(5)
}
fn default_batch_size() -> u32 {
    1_000_000
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn config_err(field: &str, message: String) -> SinkError {
    SinkError::Config {
        field: field.into(),
        message,
    }
}

fn shown(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

/// Whether a rendered name is a Kafka topic name: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub(crate) fn topic_name(name: &str) -> Result<(), String> {
    if name.len() > 249 {
        return Err(format!(
            "topic name of {} bytes is over Kafka's limit of 249",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("{name:?} is not a topic name"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
    {
        return Err(format!(
            "topic {name:?} has {c:?}; Kafka topic names use only letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

impl KafkaConfig {
    /// `security.protocol` for the settings given.
    pub fn security_protocol(&self) -> &'static str {
        match (&self.sasl, &self.tls) {
            (None, None) => "plaintext",
            (None, Some(_)) => "ssl",
            (Some(_), None) => "sasl_plaintext",
            (Some(_), Some(_)) => "sasl_ssl",
        }
    }

    /// Checks every field against its documented bounds, and that the TLS files exist.
    pub fn problems(&self) -> Vec<SinkError> {
        let mut p = crate::Problems::default();
        p.check(|| {
            let brokers: Vec<&str> = self.brokers.split(',').map(str::trim).collect();
            if brokers.len() > MAX_BROKERS {
                return Err(config_err(
                    "brokers",
                    format!("at most {MAX_BROKERS} brokers, got {}", brokers.len()),
                ));
            }
            for b in &brokers {
                let ok = b.rsplit_once(':').is_some_and(|(host, port)| {
                    !host.is_empty() && !host.contains("://") && port.parse::<u16>().is_ok_and(|p| p > 0)
                });
                if !ok {
                    return Err(config_err(
                        "brokers",
                        format!(
                            "{b:?} is not host:port; expected \"host:port[,host:port…]\" (no scheme), for example \"127.0.0.1:9092\""
                        ),
                    ));
                }
            }
            Ok(())
        });
        p.check(|| {
            let template = Template::parse(&self.topic)
                .map_err(|e| config_err("topic", format!("template {:?} {e}", self.topic)))?;
            if template.is_fixed() {
                topic_name(template.literal_prefix()).map_err(|e| config_err("topic", e))?;
            }
            Ok(())
        });
        p.check(|| {
            if !(1..=MAX_PARTITIONS).contains(&self.partitions) {
                return Err(config_err(
                    "partitions",
                    format!("expected 1 to {MAX_PARTITIONS}, got {}", self.partitions),
                ));
            }
            Ok(())
        });
        p.check(|| {
            if !(1..=MAX_REPLICATION_FACTOR).contains(&self.replication_factor) {
                return Err(config_err(
                    "replication_factor",
                    format!(
                        "expected 1 to {MAX_REPLICATION_FACTOR}, got {}",
                        self.replication_factor
                    ),
                ));
            }
            Ok(())
        });
        p.check(|| {
            if self.linger > MAX_LINGER {
                return Err(config_err(
                    "linger",
                    format!("expected 0ms to 5s, got {}", shown(self.linger)),
                ));
            }
            Ok(())
        });
        p.check(|| {
            let (lo, hi) = BATCH_SIZE_BOUNDS;
            if !(lo..=hi).contains(&self.batch_size) {
                return Err(config_err(
                    "batch_size",
                    format!("expected {lo} to {hi} bytes, got {}", self.batch_size),
                ));
            }
            Ok(())
        });
        p.check(|| {
            let (lo, hi) = TIMEOUT_BOUNDS;
            if !(lo..=hi).contains(&self.timeout) {
                return Err(config_err(
                    "timeout",
                    format!("expected 1s to 5m, got {}", shown(self.timeout)),
                ));
            }
            Ok(())
        });
        p.check(|| {
            if let Some(sasl) = &self.sasl {
                if sasl.username.is_empty() {
                    return Err(config_err(
                        "sasl.username",
                        "is empty; give the user name the broker knows".into(),
                    ));
                }
                if sasl.password.is_empty() {
                    return Err(config_err("sasl.password", "is empty; give the user's password".into()));
                }
            }
            Ok(())
        });
        p.check(|| {
            if let Some(tls) = &self.tls {
                for (field, path) in [("tls.ca", &tls.ca), ("tls.cert", &tls.cert), ("tls.key", &tls.key)] {
                    if let Some(path) = path
                        && let Err(e) = std::fs::File::open(path)
                    {
                        return Err(config_err(
                            field,
                            format!(
                                "cannot read {} ({e}); give the path of a PEM file the node can read",
                                path.display()
                            ),
                        ));
                    }
                }
                if tls.cert.is_some() != tls.key.is_some() {
                    return Err(config_err(
                        if tls.cert.is_some() { "tls.key" } else { "tls.cert" },
                        "a client certificate needs both tls.cert and tls.key".into(),
                    ));
                }
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
    pub fn build(&self) -> Result<super::KafkaSink, SinkError> {
        self.validate()?;
        super::KafkaSink::new(self)
    }
}

impl crate::SinkType for KafkaConfig {
    fn type_name(&self) -> &'static str {
        "kafka"
    }

    fn problems(&self) -> Vec<SinkError> {
        KafkaConfig::problems(self)
    }

    fn build_sink(&self, _: crate::SinkContext) -> Result<std::sync::Arc<dyn tributary_core::Sink>, SinkError> {
        Ok(std::sync::Arc::new(self.build()?))
    }
}

#[cfg(test)]
mod tests {
    use super::{KafkaConfig, topic_name};

    fn config(toml_text: &str) -> Result<KafkaConfig, String> {
        let c: KafkaConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    const BASE: &str = "brokers = \"127.0.0.1:9092\"\ntopic = \"gossip\"\n";

    #[test]
    fn defaults_and_bounds() {
        let c = config(BASE).unwrap();
        assert_eq!((c.partitions, c.replication_factor, c.batch_size), (1, 1, 1_000_000));
        assert_eq!((c.linger.as_millis(), c.timeout.as_secs()), (5, 30));
        assert_eq!(c.security_protocol(), "plaintext");
        for (extra, says) in [
            ("partitions = 0", "partitions: expected 1 to 10000"),
            ("replication_factor = 17", "replication_factor: expected 1 to 16"),
            ("linger = \"6s\"", "linger: expected 0ms to 5s"),
            ("batch_size = 10", "batch_size: expected 1024 to"),
            ("timeout = \"10ms\"", "timeout: expected 1s to 5m"),
            ("payload = \"fields\"", "unknown variant"),
            ("colour = 1", "unknown field"),
            (
                "[sasl]\nmechanism = \"GSSAPI\"\nusername = \"u\"\npassword = \"p\"",
                "unknown variant `GSSAPI`",
            ),
            (
                "[sasl]\nmechanism = \"PLAIN\"\nusername = \"\"\npassword = \"p\"",
                "sasl.username: is empty",
            ),
            (
                "[tls]\nca = \"/nonexistent/ca.pem\"",
                "tls.ca: cannot read /nonexistent/ca.pem",
            ),
        ] {
            let e = config(&format!("{BASE}{extra}")).unwrap_err();
            assert!(e.contains(says), "{extra}: {e}");
        }
        for (brokers, topic, says) in [
            ("kafka://h:9092", "t", "brokers: \"kafka://h:9092\" is not host:port"),
            ("h", "t", "brokers: \"h\" is not host:port"),
            ("h:1", "a/b", "topic: topic \"a/b\" has '/'"),
            (
                "h:1",
                "t.{nope}",
                "topic: template \"t.{nope}\" has an unknown placeholder",
            ),
        ] {
            let e = config(&format!("brokers = {brokers:?}\ntopic = {topic:?}")).unwrap_err();
            assert!(e.contains(says), "{brokers} {topic}: {e}");
        }
    }

    #[test]
    fn sasl_and_tls_choose_the_protocol_and_the_password_never_shows() {
        let ca = std::env::temp_dir().join(format!("tributary-kafka-ca-{}.pem", std::process::id()));
        std::fs::write(&ca, "not checked here").unwrap();
        let c = config(&format!(
            "{BASE}[sasl]\nmechanism = \"SCRAM-SHA-512\"\nusername = \"u\"\npassword = \"hunter2\"\n[tls]\nca = {:?}",
            ca.display().to_string()
        ))
        .unwrap();
        assert_eq!(c.security_protocol(), "sasl_ssl");
        assert!(!format!("{c:?}").contains("hunter2"));
        let e = config(&format!("{BASE}[tls]\ncert = {:?}", ca.display().to_string())).unwrap_err();
        assert!(e.contains("tls.key: a client certificate needs both"), "{e}");
        std::fs::remove_file(ca).unwrap();
    }

    #[test]
    fn topic_names() {
        assert!(topic_name("problem.node").is_ok());
        assert!(topic_name("a_b-c.9").is_ok());
        assert!(topic_name("..").is_err());
        assert!(topic_name(&"x".repeat(250)).is_err());
        assert!(topic_name("a b").is_err());
    }
}
