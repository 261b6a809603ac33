//! The schema's migrations. Each is applied once, in order, in its own transaction, recorded in
//! `schema_version`; the whole run holds an advisory lock, so nodes starting together apply each once.
//! A schema whose version is newer than [`SCHEMA_VERSION`] is refused: an older tributary must not write
//! into tables it does not know.
//!
//! Text columns that are ordered or compared by prefix use the `C` collation, so they sort by bytes as the
//! embedded store does.

use super::Sql;
use deadpool_postgres::Client;

/// The newest schema this build knows.
pub const SCHEMA_VERSION: i32 = 2;

/// Migration `n` is `MIGRATIONS[n - 1]`; `{s}` stands for the quoted schema.
const MIGRATIONS: [&str; 2] = [
    r#"
CREATE TABLE {s}.seq (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    n bigint NOT NULL
);
INSERT INTO {s}.seq (n) VALUES (0);
-- One row per event. The dedup key is the id scoped by its source (ADR 0005); the event's fields are
-- JSON text (the `json` type keeps it exactly as written): query them with event->>'kind' and so on.
CREATE TABLE {s}.events (
    seq bigint PRIMARY KEY,
    scoped_id bytea NOT NULL UNIQUE,
    source text COLLATE "C" NOT NULL,
    ingested_at bigint NOT NULL,
    event json NOT NULL,
    payload bytea NOT NULL
);
CREATE TABLE {s}.observations (
    scoped_id bytea NOT NULL,
    observer text COLLATE "C" NOT NULL,
    event_id bytea NOT NULL,
    first_seen bigint NOT NULL,
    last_seen bigint NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (scoped_id, observer)
);
CREATE TABLE {s}.checkpoints (
    source text COLLATE "C" NOT NULL,
    partition text COLLATE "C" NOT NULL,
    position text NOT NULL,
    PRIMARY KEY (source, partition)
);
CREATE TABLE {s}.rejects (
    source text COLLATE "C" NOT NULL,
    n bigint NOT NULL,
    reject json NOT NULL,
    PRIMARY KEY (source, n)
);
CREATE TABLE {s}.meta (
    key text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE {s}.subscriptions (
    name text COLLATE "C" PRIMARY KEY,
    cursor bigint NOT NULL,
    paused boolean NOT NULL
);
CREATE TABLE {s}.pending (
    subscription text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    pending json NOT NULL,
    PRIMARY KEY (subscription, seq)
);
CREATE TABLE {s}.attempts (
    subscription text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    attempt bigint NOT NULL,
    attempt_record json NOT NULL,
    PRIMARY KEY (subscription, seq, attempt)
);
CREATE TABLE {s}.dead_letters (
    subscription text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    dead_letter json NOT NULL,
    PRIMARY KEY (subscription, seq)
);
-- Tenants, keys, subscriptions, secrets, idempotent answers; value NULL is a tombstone keeping its version.
CREATE TABLE {s}.catalog (
    kind text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    version bigint NOT NULL,
    value text,
    PRIMARY KEY (kind, name)
);
"#,
    r#"
-- Several nodes on one schema (ADR 0007): who runs each pulling source and each subscription's delivery.
-- The epoch grows each time a lease changes hands; expiry is on the database's clock.
CREATE TABLE {s}.leases (
    name text COLLATE "C" PRIMARY KEY,
    holder text COLLATE "C" NOT NULL,
    epoch bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
-- Each node announces itself every quarter of the lease time.
CREATE TABLE {s}.nodes (
    id text COLLATE "C" PRIMARY KEY,
    announcement json NOT NULL,
    seen_at timestamptz NOT NULL
);
"#,
];

/// Brings the schema to [`SCHEMA_VERSION`], or says why it cannot.
pub(super) async fn migrate(client: &Client, sql: &Sql) -> Result<(), String> {
    let s = format!("\"{}\"", sql.schema);
    let lock_key = format!("tributary migrations {}", sql.schema);
    let err = |what: &str, e: tokio_postgres::Error| format!("{what}: {}", describe(&e));
    client
        .execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", &[&lock_key])
        .await
        .map_err(|e| err("taking the migration lock", e))?;
    let result = apply(client, &s).await;
    // Released even when a migration failed; a closed connection releases it too.
    let _ = client
        .execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", &[&lock_key])
        .await;
    result
}

async fn apply(client: &Client, s: &str) -> Result<(), String> {
    let err = |what: String, e: tokio_postgres::Error| format!("{what}: {}", describe(&e));
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {s}; CREATE TABLE IF NOT EXISTS {s}.schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        ))
        .await
        .map_err(|e| err("creating the schema".into(), e))?;
    let current: i32 = client
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {s}.schema_version"),
            &[],
        )
        .await
        .map_err(|e| err("reading the schema version".into(), e))?
        .get(0);
    if current > SCHEMA_VERSION {
        return Err(format!(
            "the database's schema is version {current}, newer than this tributary knows ({SCHEMA_VERSION}); run the newer tributary that migrated it, or a store of its own"
        ));
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i32 + 1;
        let body = migration.replace("{s}", s);
        let script = format!("BEGIN; {body}; INSERT INTO {s}.schema_version (version) VALUES ({version}); COMMIT;");
        if let Err(e) = client.batch_execute(&script).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(err(format!("applying migration {version}"), e));
        }
        tracing::info!(version, "PostgreSQL store: schema migration applied");
    }
    Ok(())
}

/// The server's message for an error, or the client's.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}
