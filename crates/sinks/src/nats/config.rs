//! `[subscriptions.sink] type = "nats"`.

use crate::SinkError;
use crate::format::{Format, Template};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest `timeout`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// The shortest `duplicate_window`.
pub const MIN_DUPLICATE_WINDOW: Duration = Duration::from_secs(1);
/// The longest `duplicate_window` (the server keeps every message id of the window in memory).
pub const MAX_DUPLICATE_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest `max_age`.
pub const MAX_MAX_AGE: Duration = Duration::from_secs(3650 * 24 * 3600);
/// The most `max_bytes` may allow (1 PiB).
pub const MAX_MAX_BYTES: u64 = 1 << 50;
/// The most `max_messages` may allow.
pub const MAX_MAX_MESSAGES: u64 = 1_000_000_000_000;
/// The most subject filters `subjects` may list.
pub const MAX_SUBJECTS: usize = 100;
/// The longest stream name (JetStream stores a stream in a directory of that name).
pub const MAX_STREAM_NAME: usize = 255;

/// The `nats` sink's config.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// `nats://[user:password@]host[:port]`.
    pub url: String,
    /// The subject of each message, a template (`tributary.{kind}`).
    pub subject: String,
    /// The JetStream stream that stores the messages; created when absent.
    pub stream: String,
    /// The stream's subject filter when it is created; by default derived from `subject`'s literal
    /// prefix (`tributary.{kind}` -> `tributary.>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subjects: Option<Vec<String>>,
    /// The stream's duplicate window: a message whose `Nats-Msg-Id` was stored within it is dropped.
    #[serde(default = "default_duplicate_window", with = "humantime_serde")]
    pub duplicate_window: Duration,
    /// Retention: messages older than this are removed (none when absent).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "humantime_serde")]
    pub max_age: Option<Duration>,
    /// Retention: the oldest messages are removed past this many bytes (none when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Retention: the oldest messages are removed past this many messages (none when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_messages: Option<u64>,
    /// What each message's body carries.
    #[serde(default, skip_serializing_if = "is_standard")]
    pub payload: Format,
    /// Connect and PubAck timeout of one attempt.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn is_standard(f: &Format) -> bool {
    *f == Format::Standard
}

fn default_duplicate_window() -> Duration {
    Duration::from_secs(600)
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("url", &redacted_url(&self.url))
            .field("subject", &self.subject)
            .field("stream", &self.stream)
            .field("subjects", &self.subjects)
            .field("duplicate_window", &self.duplicate_window)
            .field("max_age", &self.max_age)
            .field("max_bytes", &self.max_bytes)
            .field("max_messages", &self.max_messages)
            .field("payload", &self.payload)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `url` without its password, for logs and views.
pub fn redacted_url(url: &str) -> String {
    crate::url::redacted_url(url, crate::url::LoneUserinfo::Token)
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

/// Whether `s` is a subject a message can be published to: dot-separated non-empty tokens, no
/// whitespace, no wildcard token.
pub(crate) fn publishable_subject(s: &str) -> Result<(), String> {
    if s.chars().any(char::is_whitespace) {
        return Err(format!("subject {s:?} has whitespace"));
    }
    for token in s.split('.') {
        if token.is_empty() {
            return Err(format!(
                "subject {s:?} has an empty token (leading, trailing or double '.')"
            ));
        }
        if token == "*" || token == ">" {
            return Err(format!(
                "subject {s:?} has the wildcard {token:?}, which a message cannot be published to"
            ));
        }
    }
    Ok(())
}

/// Whether `s` is a subject filter: like a subject, where `*` may be any token and `>` the last.
fn subject_filter(s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().any(char::is_whitespace) {
        return Err(format!("{s:?} is not a subject filter (empty or has whitespace)"));
    }
    let tokens: Vec<&str> = s.split('.').collect();
    for (i, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return Err(format!("{s:?} has an empty token"));
        }
        if *token == ">" && i + 1 != tokens.len() {
            return Err(format!("{s:?} has '>' before its last token"));
        }
    }
    Ok(())
}

impl NatsConfig {
    /// The stream's subject filter: `subjects` as written, or derived from `subject`.
    pub fn stream_subjects(&self) -> Result<Vec<String>, SinkError> {
        if let Some(subjects) = &self.subjects {
            return Ok(subjects.clone());
        }
        let template = Template::parse(&self.subject)
            .map_err(|e| config_err("subject", format!("template {:?} {e}", self.subject)))?;
        if template.is_fixed() {
            return Ok(vec![template.literal_prefix().to_owned()]);
        }
        // The tokens before the token the first placeholder is in, then `>`.
        let prefix = template.literal_prefix();
        match prefix.rfind('.') {
            Some(dot) if dot > 0 => Ok(vec![format!("{}.>", &prefix[..dot])]),
            _ => Err(config_err(
                "subjects",
                format!(
                    "cannot derive the stream's subjects from subject {:?}: it starts with a placeholder, so no literal \
                     prefix such as \"tributary.\" names the messages; set subjects = [\"<prefix>.>\"] (the subjects the \
                     template renders) or start the subject with literal tokens",
                    self.subject
                ),
            )),
        }
    }

    /// Checks every field against its documented bounds.
    pub fn problems(&self) -> Vec<SinkError> {
        let mut p = crate::Problems::default();
        p.check(|| {
            let Some(rest) = self.url.strip_prefix("nats://") else {
                return Err(config_err(
                    "url",
                    format!(
                        "{:?} is not a NATS URL; expected nats://[user:password@]host[:port] (tls:// and ws:// are not \
                         supported by this build)",
                        redacted_url(&self.url)
                    ),
                ));
            };
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            if host.is_empty() || host.contains('/') || host.contains(',') {
                return Err(config_err(
                    "url",
                    format!(
                        "{:?}: expected one server as nats://[user:password@]host[:port], with no path",
                        redacted_url(&self.url)
                    ),
                ));
            }
            Ok(())
        });
        p.check(|| {
            let template = Template::parse(&self.subject)
                .map_err(|e| config_err("subject", format!("template {:?} {e}", self.subject)))?;
            if template.is_fixed() {
                publishable_subject(template.literal_prefix()).map_err(|e| config_err("subject", e))?;
            }
            Ok(())
        });
        p.check(|| {
            if self.stream.is_empty()
                || self.stream.len() > MAX_STREAM_NAME
                || self
                    .stream
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || ".*>/\\".contains(c))
            {
                return Err(config_err(
                    "stream",
                    format!(
                        "{:?} is not a stream name: use 1 to {MAX_STREAM_NAME} characters without whitespace, '.', '*', \
                         '>', '/' or '\\' (for example \"TRIBUTARY\")",
                        self.stream
                    ),
                ));
            }
            Ok(())
        });
        p.check(|| {
            if let Some(subjects) = &self.subjects {
                if subjects.is_empty() || subjects.len() > MAX_SUBJECTS {
                    return Err(config_err(
                        "subjects",
                        format!("expected 1 to {MAX_SUBJECTS} subject filters, got {}", subjects.len()),
                    ));
                }
                for (i, s) in subjects.iter().enumerate() {
                    subject_filter(s).map_err(|e| config_err(&format!("subjects[{i}]"), e))?;
                }
            }
            Ok(())
        });
        p.check(|| {
            self.stream_subjects()?;
            Ok(())
        });
        p.check(|| {
            if !(MIN_DUPLICATE_WINDOW..=MAX_DUPLICATE_WINDOW).contains(&self.duplicate_window) {
                return Err(config_err(
                    "duplicate_window",
                    format!("expected 1s to 7d, got {}", shown(self.duplicate_window)),
                ));
            }
            Ok(())
        });
        p.check(|| {
            if let Some(age) = self.max_age {
                if !(Duration::from_secs(1)..=MAX_MAX_AGE).contains(&age) {
                    return Err(config_err(
                        "max_age",
                        format!("expected 1s to 3650d, got {}", shown(age)),
                    ));
                }
                if age < self.duplicate_window {
                    return Err(config_err(
                        "duplicate_window",
                        format!(
                            "{} is longer than max_age ({}); JetStream refuses such a stream: shorten duplicate_window or \
                             lengthen max_age",
                            shown(self.duplicate_window),
                            shown(age)
                        ),
                    ));
                }
            }
            Ok(())
        });
        p.check(|| {
            if let Some(n) = self.max_bytes
                && !(1024..=MAX_MAX_BYTES).contains(&n)
            {
                return Err(config_err(
                    "max_bytes",
                    format!("expected 1024 to {MAX_MAX_BYTES}, got {n}"),
                ));
            }
            Ok(())
        });
        p.check(|| {
            if let Some(n) = self.max_messages
                && !(1..=MAX_MAX_MESSAGES).contains(&n)
            {
                return Err(config_err(
                    "max_messages",
                    format!("expected 1 to {MAX_MAX_MESSAGES}, got {n}"),
                ));
            }
            Ok(())
        });
        p.check(|| {
            if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
                return Err(config_err(
                    "timeout",
                    format!("expected 1ms to 5m, got {}", shown(self.timeout)),
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
    pub fn build(&self) -> Result<super::NatsSink, SinkError> {
        self.validate()?;
        super::NatsSink::new(self)
    }
}

impl crate::SinkType for NatsConfig {
    fn type_name(&self) -> &'static str {
        "nats"
    }

    fn problems(&self) -> Vec<SinkError> {
        NatsConfig::problems(self)
    }

    fn build_sink(&self, _: crate::SinkContext) -> Result<std::sync::Arc<dyn tributary_core::Sink>, SinkError> {
        Ok(std::sync::Arc::new(self.build()?))
    }
}

#[cfg(test)]
mod tests {
    use super::{NatsConfig, redacted_url};

    fn config(toml_text: &str) -> Result<NatsConfig, String> {
        let c: NatsConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    const BASE: &str = "url = \"nats://127.0.0.1:4222\"\nstream = \"TRIBUTARY\"\n";

    #[test]
    fn defaults_and_bounds() {
        let c = config(&format!("{BASE}subject = \"tributary.{{kind}}\"")).unwrap();
        assert_eq!(c.duplicate_window.as_secs(), 600);
        assert_eq!(c.timeout.as_secs(), 5);
        for (extra, says) in [
            ("duplicate_window = \"0s\"", "duplicate_window: expected 1s to 7d"),
            ("duplicate_window = \"8d\"", "duplicate_window: expected 1s to 7d"),
            ("max_age = \"1m\"", "duplicate_window: 10m is longer than max_age (1m)"),
            ("max_bytes = 10", "max_bytes: expected 1024 to"),
            ("max_messages = 0", "max_messages: expected 1 to"),
            ("timeout = \"1h\"", "timeout: expected 1ms to 5m"),
            ("subjects = []", "subjects: expected 1 to 100"),
            (
                "subjects = [\"a.>.b\"]",
                "subjects[0]: \"a.>.b\" has '>' before its last token",
            ),
            ("payload = \"xml\"", "unknown variant"),
            ("colour = 1", "unknown field"),
        ] {
            let e = config(&format!("{BASE}subject = \"t.{{kind}}\"\n{extra}")).unwrap_err();
            assert!(e.contains(says), "{extra}: {e}");
        }
        for (subject, says) in [
            ("t.{nope}", "subject: template \"t.{nope}\" has an unknown placeholder"),
            ("t..x", "subject: subject \"t..x\" has an empty token"),
            ("t.>", "has the wildcard \">\""),
        ] {
            let e = config(&format!("{BASE}subject = {subject:?}")).unwrap_err();
            assert!(e.contains(says), "{subject}: {e}");
        }
        let e = config("url = \"http://127.0.0.1\"\nstream = \"S\"\nsubject = \"s\"").unwrap_err();
        assert!(e.starts_with("url: "), "{e}");
        let e = config("url = \"nats://127.0.0.1\"\nstream = \"A.B\"\nsubject = \"s\"").unwrap_err();
        assert!(e.starts_with("stream: \"A.B\" is not a stream name"), "{e}");
    }

    #[test]
    fn stream_subjects_are_derived_from_the_literal_prefix() {
        let derived = |subject: &str| {
            let c: NatsConfig = toml::from_str(&format!("{BASE}subject = {subject:?}")).unwrap();
            c.stream_subjects().map_err(|e| e.to_string())
        };
        assert_eq!(derived("tributary.{kind}").unwrap(), ["tributary.>"]);
        assert_eq!(derived("a.b.x{kind}").unwrap(), ["a.b.>"]);
        assert_eq!(derived("a.b.c").unwrap(), ["a.b.c"]);
        let e = derived("{kind}.x").unwrap_err();
        assert!(
            e.starts_with("subjects: cannot derive the stream's subjects from subject \"{kind}.x\""),
            "{e}"
        );
        assert!(derived("events-{kind}").is_err());
        let c = config(&format!(
            "{BASE}subject = \"{{kind}}\"\nsubjects = [\"ln.>\", \"orders.*\"]"
        ))
        .unwrap();
        assert_eq!(c.stream_subjects().unwrap(), ["ln.>", "orders.*"]);
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redacted_url("nats://u:secret@127.0.0.1:4222"),
            "nats://u:***@127.0.0.1:4222"
        );
        assert_eq!(redacted_url("nats://token@127.0.0.1"), "nats://***@127.0.0.1");
        let c: NatsConfig =
            toml::from_str("url = \"nats://u:secret@127.0.0.1\"\nstream = \"S\"\nsubject = \"s\"").unwrap();
        assert!(!format!("{c:?}").contains("secret"));
    }
}
