//! `[subscriptions.sink] type = "postgres"`.

use crate::SinkError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest `timeout`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// The largest `pool_size`.
pub const MAX_POOL_SIZE: usize = 64;
/// The largest `batch_size`.
pub const MAX_BATCH_SIZE: usize = 1000;
/// The longest `statement`, in bytes.
pub const MAX_STATEMENT_LEN: usize = 64 * 1024;
/// PostgreSQL truncates identifiers to this many bytes (NAMEDATALEN - 1); a longer name is refused.
const MAX_IDENTIFIER_LEN: usize = 63;

/// The `postgres` sink's config.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://user[:password]@host[:port]/database[?options]`.
    pub url: String,
    /// The table the events go to (`inbox` or `schema.inbox`), created if absent.
    pub table: String,
    /// The user's SQL, run for each row actually inserted, in the same transaction; `$1` is the event's
    /// standard body (JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// Connect timeout, and the longest one batch's transaction may take.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// The most connections the sink opens (and batches it writes at once).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// The most deliveries written in one transaction.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_pool_size() -> usize {
    4
}

fn default_batch_size() -> usize {
    256
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redacted_url(&self.url))
            .field("table", &self.table)
            .field("statement", &self.statement)
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool_size)
            .field("batch_size", &self.batch_size)
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

/// `table` as a quoted SQL name (`"schema"."name"`), or why it is not a plain identifier.
pub fn quoted_table(table: &str) -> Result<String, String> {
    let parts: Vec<&str> = table.split('.').collect();
    if parts.len() > 2 {
        return Err(format!(
            "{table:?} has {} dot-separated parts; expected name or schema.name",
            parts.len()
        ));
    }
    let mut quoted = Vec::with_capacity(parts.len());
    for part in parts {
        let mut chars = part.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            return Err(format!(
                "{part:?} is not an identifier: expected a letter or _ then letters, digits, _ or $ (for example inbox or app.inbox)"
            ));
        }
        if part.len() > MAX_IDENTIFIER_LEN {
            return Err(format!(
                "{part:?} is {} bytes long; PostgreSQL names are at most {MAX_IDENTIFIER_LEN}",
                part.len()
            ));
        }
        quoted.push(format!("\"{part}\""));
    }
    Ok(quoted.join("."))
}

impl PostgresConfig {
    /// The parsed connection settings, or why `url` is not usable by this build.
    pub fn connection(&self) -> Result<tokio_postgres::Config, SinkError> {
        let shown = redacted_url(&self.url);
        if !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")) {
            return Err(config_err(
                "url",
                format!("{shown:?} is not a PostgreSQL URL; expected postgres://user[:password]@host[:port]/database"),
            ));
        }
        if let Some((_, query)) = self.url.split_once('?')
            && query.split('&').any(|kv| kv.starts_with("password="))
        {
            return Err(config_err(
                "url",
                "a password in the query string would be shown in views and logs; write it as postgres://user:password@host/database".into(),
            ));
        }
        let config: tokio_postgres::Config = self.url.parse().map_err(|e| {
            config_err(
                "url",
                format!(
                    "{shown:?} is not a PostgreSQL URL ({e}); expected postgres://user[:password]@host[:port]/database"
                ),
            )
        })?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(config_err(
                "url",
                "sslmode=require: this build has no TLS for PostgreSQL; use a server on a trusted network or a tunnel, with sslmode=disable (or prefer, which falls back to plain TCP)".into(),
            ));
        }
        if config.get_user().is_none() {
            return Err(config_err(
                "url",
                format!("{shown:?} names no user; write postgres://user@host/database"),
            ));
        }
        if config.get_hosts().is_empty() {
            return Err(config_err(
                "url",
                format!("{shown:?} names no host; write postgres://user@host[:port]/database"),
            ));
        }
        Ok(config)
    }

    /// Checks every field against its documented bounds.
    pub fn problems(&self) -> Vec<SinkError> {
        let mut p = crate::Problems::default();
        p.check(|| {
            self.connection()?;
            Ok(())
        });
        p.check(|| {
            quoted_table(&self.table).map_err(|e| config_err("table", e))?;
            Ok(())
        });
        p.check(|| {
            if let Some(statement) = &self.statement {
                if statement.trim().is_empty() {
                    return Err(config_err(
                        "statement",
                        "is empty; leave it out, or write the SQL to run for each inserted row (for example SELECT apply_event($1::jsonb))".into(),
                    ));
                }
                if statement.len() > MAX_STATEMENT_LEN {
                    return Err(config_err(
                        "statement",
                        format!("is {} bytes long; the limit is {MAX_STATEMENT_LEN}", statement.len()),
                    ));
                }
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
        p.check(|| {
            if !(1..=MAX_POOL_SIZE).contains(&self.pool_size) {
                return Err(config_err(
                    "pool_size",
                    format!("expected 1 to {MAX_POOL_SIZE}, got {}", self.pool_size),
                ));
            }
            Ok(())
        });
        p.check(|| {
            if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
                return Err(config_err(
                    "batch_size",
                    format!("expected 1 to {MAX_BATCH_SIZE}, got {}", self.batch_size),
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
    pub fn build(&self) -> Result<super::PostgresSink, SinkError> {
        self.validate()?;
        super::PostgresSink::new(self)
    }
}

impl crate::SinkType for PostgresConfig {
    fn type_name(&self) -> &'static str {
        "postgres"
    }

    fn problems(&self) -> Vec<SinkError> {
        PostgresConfig::problems(self)
    }

    fn build_sink(&self, _: crate::SinkContext) -> Result<std::sync::Arc<dyn tributary_core::Sink>, SinkError> {
        Ok(std::sync::Arc::new(self.build()?))
    }
}

#[cfg(test)]
mod tests {
    use super::{PostgresConfig, quoted_table, redacted_url};

    fn config(toml_text: &str) -> Result<PostgresConfig, String> {
        let c: PostgresConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    const BASE: &str = "url = \"postgres://postgres@127.0.0.1:5432/app\"\ntable = \"inbox\"";

    #[test]
    fn defaults_and_bounds() {
        let c = config(BASE).unwrap();
        assert_eq!((c.pool_size, c.batch_size, c.timeout.as_secs()), (4, 256, 10));
        for (extra, says) in [
            ("pool_size = 0", "pool_size: expected 1 to 64, got 0"),
            ("pool_size = 65", "pool_size: expected 1 to 64"),
            ("batch_size = 1001", "batch_size: expected 1 to 1000"),
            ("timeout = \"0s\"", "timeout: expected 1ms to 5m"),
            ("timeout = \"1h\"", "timeout: expected 1ms to 5m"),
            ("statement = \" \"", "statement: is empty"),
            ("colour = 1", "unknown field"),
        ] {
            let e = config(&format!("{BASE}\n{extra}")).unwrap_err();
            assert!(e.contains(says), "{extra}: {e}");
        }
    }

    #[test]
    fn urls_that_this_build_cannot_use_are_refused_with_what_to_do() {
        for (url, says) in [
            (
                "http://127.0.0.1/app",
                "url: \"http://127.0.0.1/app\" is not a PostgreSQL URL",
            ),
            (
                "postgres://u@127.0.0.1/app?sslmode=require",
                "url: sslmode=require: this build has no TLS",
            ),
            (
                "postgres://u@127.0.0.1/app?password=x",
                "url: a password in the query string",
            ),
            (
                "postgres://u:secret@127.0.0.1:notaport/app",
                "url: \"postgres://u:***@127.0.0.1:notaport/app\"",
            ),
            (
                "postgres://127.0.0.1/app",
                "url: \"postgres://127.0.0.1/app\" names no user",
            ),
        ] {
            let e = config(&format!("url = {url:?}\ntable = \"t\"")).unwrap_err();
            assert!(e.starts_with(says), "{url}: {e}");
            assert!(!e.contains("secret"), "{e}");
        }
        config("url = \"postgresql://u:p@localhost/app?sslmode=disable\"\ntable = \"t\"").unwrap();
    }

    #[test]
    fn tables_are_identifiers_quoted_as_written() {
        assert_eq!(quoted_table("inbox").unwrap(), "\"inbox\"");
        assert_eq!(quoted_table("app.Inbox_2").unwrap(), "\"app\".\"Inbox_2\"");
        for bad in [
            "",
            "a.b.c",
            "1x",
            "in box",
            "x\"; drop table y; --",
            "a.",
            &"x".repeat(64),
        ] {
            let e = config(&format!("url = \"postgres://u@h/d\"\ntable = {bad:?}")).unwrap_err();
            assert!(e.starts_with("table: "), "{bad}: {e}");
        }
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redacted_url("postgres://u:secret@127.0.0.1:5432/app"),
            "postgres://u:***@127.0.0.1:5432/app"
        );
        assert_eq!(redacted_url("postgres://u@127.0.0.1/app"), "postgres://u@127.0.0.1/app");
        let c: PostgresConfig = toml::from_str("url = \"postgres://u:secret@h/d\"\ntable = \"t\"").unwrap();
        assert!(!format!("{c:?}").contains("secret"));
    }
}
