//! The PostgreSQL backend: the same [`Store`](tributary_core::Store) contract on a shared system of record
//! (issue 13), for users who outgrow one machine or want their events in the database they already back
//! up and replicate.
//!
//! - `schema`: the versioned migrations, applied at open under an advisory lock; a schema newer than this
//!   build knows is refused.
//! - `log`: the [`Log`](tributary_core::Log): events, dedup, observations, checkpoints, rejects, state
//!   entries.
//! - `delivery`: the [`DeliveryState`](tributary_core::DeliveryState).
//! - `catalog`: the [`Catalog`](tributary_core::catalog::Catalog) with compare-and-set.
//! - `cluster`: the [`Leases`](tributary_core::cluster::Leases) by which several nodes on one schema
//!   split the work, and the fence every leased write passes (ADR 0007).
//! - `notify`: how a node learns of the events other nodes appended (LISTEN/NOTIFY, and a poll).
//! - `rows`: how events and the delivery records are written in rows.
//!
//! Invariants, on top of those of [`tributary_core::store`]:
//! - Every write is one transaction: it is durable (PostgreSQL's commit) before it is answered, or
//!   nothing of it is. A failed write leaves nothing behind, so this store is never poisoned; the
//!   caller's retry (a source re-reading from its checkpoint) is deduplicated by the primary keys.
//! - Sequence numbers come from one counter row (`seq`), locked by each append until it commits (ADR
//!   0006): appends are serialised, numbers are gap-free and committed in order, so a reader never sees
//!   seq N+1 before N.
//! - Text that PostgreSQL cannot hold (a NUL character) is refused in names; event fields are kept in a
//!   `json` column, where it is escaped.

mod catalog;
mod cluster;
mod delivery;
mod log;
mod notify;
mod rows;
mod schema;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::sync::Arc;
use std::time::Duration;
use tributary_core::{Seq, StoreError};

pub use schema::SCHEMA_VERSION;

/// How to reach the database: `[node] store = { type = "postgres", url = "...", schema = "tributary" }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresConfig {
    /// `postgres://user[:password]@host[:port]/database`.
    pub url: String,
    /// The schema holding tributary's tables (created if absent).
    pub schema: String,
    /// Connections kept open.
    pub pool_size: usize,
    /// How long a connection, a wait for a pooled one, or a statement may take.
    pub timeout: Duration,
}

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: Pool,
    sql: Arc<Sql>,
    seq: Arc<notify::SeqWatch>,
    /// The URL without its password, for messages.
    shown: String,
    /// The task listening for other nodes' appends.
    listener: tokio::task::AbortHandle,
}

/// The statements, with the schema's name in them.
pub(crate) struct Sql {
    schema: String,
}

impl Sql {
    /// A table's qualified name.
    pub(crate) fn t(&self, table: &str) -> String {
        format!("\"{}\".{table}", self.schema)
    }
}

/// The URL with its password replaced by `***`.
pub fn redacted_url(url: &str) -> String {
    tributary_core::url::redacted_url(url, tributary_core::url::LoneUserinfo::User)
}

/// Every problem of a config, each naming its field (`url: …`), or the parsed connection settings.
pub fn check_config(config: &PostgresConfig) -> Result<tokio_postgres::Config, Vec<String>> {
    let mut problems = Vec::new();
    let s = &config.schema;
    let valid = !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        problems.push(format!(
            "schema: {s:?} is not a plain schema name; use 1 to 63 lowercase letters, digits and underscores, starting with a letter"
        ));
    }
    if !(1..=64).contains(&config.pool_size) {
        problems.push(format!("pool_size: {} is out of range; use 1 to 64", config.pool_size));
    }
    match check_url(&config.url) {
        Ok(parsed) if problems.is_empty() => Ok(parsed),
        Ok(_) => Err(problems),
        Err(problem) => {
            problems.insert(0, problem);
            Err(problems)
        }
    }
}

fn check_url(url: &str) -> Result<tokio_postgres::Config, String> {
    let shown = redacted_url(url);
    let expected = "expected postgres://user[:password]@host[:port]/database";
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(format!("url: {shown:?} is not a PostgreSQL URL; {expected}"));
    }
    let parsed: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("url: {shown:?} is not a PostgreSQL URL ({e}); {expected}"))?;
    if parsed.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        return Err("url: sslmode=require: this build has no TLS for PostgreSQL; use a server on a trusted network or a tunnel, with sslmode=disable".into());
    }
    if parsed.get_user().is_none() {
        return Err(format!(
            "url: {shown:?} names no user; write postgres://user@host/database"
        ));
    }
    if parsed.get_hosts().is_empty() {
        return Err(format!(
            "url: {shown:?} names no host; write postgres://user@host[:port]/database"
        ));
    }
    Ok(parsed)
}

/// A backend error with what the store was doing.
pub(crate) fn backend(op: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| StoreError::Backend {
        op,
        source: Box::new(e),
    }
}

/// Refuses a name PostgreSQL's text cannot hold.
pub(crate) fn text<'a>(what: &'static str, s: &'a str) -> Result<&'a str, StoreError> {
    if s.contains('\0') {
        return Err(StoreError::Backend {
            op: what,
            source: format!("{what} {s:?} holds a NUL character, which PostgreSQL text cannot store; rename it").into(),
        });
    }
    Ok(s)
}

impl PostgresStore {
    /// Connects, applies the migrations this build knows (refusing a newer schema) and reads the last
    /// sequence number.
    pub async fn open(config: &PostgresConfig) -> Result<Self, StoreError> {
        let invalid = |detail: String| StoreError::Backend {
            op: "open",
            source: detail.into(),
        };
        let mut connection = check_config(config).map_err(|e| invalid(e.join("; ")))?;
        connection.connect_timeout(config.timeout);
        if connection.get_application_name().is_none() {
            connection.application_name("tributary");
        }
        // A statement, or a transaction left idle (a connection gone half-open while holding the counter
        // row), ends after `timeout`, so it cannot hold every append up.
        let ms = config.timeout.as_millis();
        connection.options(format!(
            "-c statement_timeout={ms} -c idle_in_transaction_session_timeout={ms}"
        ));
        let mut listening = connection.clone();
        listening.application_name("tributary listener");
        let manager = Manager::from_config(
            connection,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.timeout))
            .create_timeout(Some(config.timeout))
            .recycle_timeout(Some(config.timeout))
            .build()
            .map_err(|e| invalid(format!("pool_size: could not build the connection pool: {e}")))?;
        let shown = redacted_url(&config.url);
        let sql = Arc::new(Sql {
            schema: config.schema.clone(),
        });
        let client = pool.get().await.map_err(|e| StoreError::Backend {
            op: "open",
            source: format!("no connection to the PostgreSQL store {shown}: {e}").into(),
        })?;
        // Text goes in as UTF-8; a database in another encoding would refuse or mangle it.
        let encoding: String = client
            .query_one("SHOW server_encoding", &[])
            .await
            .map_err(backend("open"))?
            .get(0);
        if encoding != "UTF8" {
            return Err(invalid(format!(
                "the database of the PostgreSQL store {shown} is encoded {encoding}; tributary needs UTF8: create one with `CREATE DATABASE … ENCODING 'UTF8' TEMPLATE template0`"
            )));
        }
        schema::migrate(&client, &sql).await.map_err(|e| StoreError::Backend {
            op: "open",
            source: format!("PostgreSQL store {shown} schema {}: {e}", config.schema).into(),
        })?;
        let last: i64 = client
            .query_one(&format!("SELECT n FROM {}", sql.t("seq")), &[])
            .await
            .map_err(backend("open"))?
            .get(0);
        let seq = Arc::new(notify::SeqWatch::new(last as Seq));
        let listener = tokio::spawn(notify::listen(
            listening,
            config.schema.clone(),
            sql.t("seq"),
            seq.clone(),
        ))
        .abort_handle();
        Ok(Self {
            pool,
            sql,
            seq,
            shown,
            listener,
        })
    }

    /// A pooled connection.
    pub(crate) async fn client(&self, op: &'static str) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Backend {
            op,
            source: format!("no connection to the PostgreSQL store {}: {e}", self.shown).into(),
        })
    }

    /// Records a committed last sequence number and wakes the watchers.
    pub(crate) fn committed(&self, last: Seq) {
        self.seq.committed(last);
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // The listener's connection closes with its task.
        self.listener.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, schema: &str) -> PostgresConfig {
        PostgresConfig {
            url: url.into(),
            schema: schema.into(),
            pool_size: 4,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn config_errors_name_their_field() {
        let cases = [
            (
                "mysql://u@h/db",
                "tributary",
                "url: \"mysql://u@h/db\" is not a PostgreSQL URL",
            ),
            ("postgres://h/db", "tributary", "names no user"),
            ("postgres://u@h/db?sslmode=require", "tributary", "sslmode=require"),
            ("postgres://u@h/db", "Bad-Name", "schema: \"Bad-Name\""),
            ("postgres://u@h/db", "", "schema: \"\""),
        ];
        for (url, schema, want) in cases {
            let err = check_config(&config(url, schema)).unwrap_err().join("; ");
            assert!(err.contains(want), "{url} {schema}: {err}");
        }
        assert!(check_config(&config("postgres://u:secret@127.0.0.1:5432/db", "t_1")).is_ok());
        let mut c = config("mysql://h", "Bad");
        c.pool_size = 0;
        let all = check_config(&c).unwrap_err();
        assert_eq!(all.len(), 3, "every problem at once: {all:?}");
        assert!(all[0].starts_with("url:") && all[1].starts_with("schema:") && all[2].starts_with("pool_size:"));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redacted_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redacted_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn nul_in_names_is_refused() {
        assert!(text("source", "a\0b").is_err());
        assert_eq!(text("source", "ab").unwrap(), "ab");
    }
}
