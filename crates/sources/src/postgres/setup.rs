//! Checking the server and managing the publication and the slot, on the plain session.

use super::PostgresSourceConfig;
use super::config::split_table;
use super::pgoutput::Lsn;

/// What the server said about the slot.
#[derive(Debug)]
pub enum SlotState {
    /// The slot exists; its confirmed flush position.
    Exists(Option<Lsn>),
    /// It was created now, consistent from this LSN.
    Created(Lsn),
    /// It does not exist and was not to be created here (a snapshot creates it).
    Missing,
}

/// Why setting up failed: `retry` is true when a reconnection may help (the server is down), false when
/// an operator must act (wrong `wal_level`, missing privileges, a missing slot without `recreate_slot`).
#[derive(Debug)]
pub struct SetupError {
    /// What to tell the operator.
    pub message: String,
    /// Worth retrying.
    pub retry: bool,
}

fn fatal(message: String) -> SetupError {
    SetupError { message, retry: false }
}

pub fn db(what: &str, e: tokio_postgres::Error) -> SetupError {
    // A server answer (SQLSTATE) is a configuration problem unless it is about the connection or shutdown.
    let retry = match e.code() {
        None => true,
        Some(code) => {
            let c = code.code();
            c.starts_with("08") || c.starts_with("57") || c == "55006" || c == "53300"
        }
    };
    let detail = e
        .as_db_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_else(|| e.to_string());
    SetupError {
        message: format!("{what}: {detail}"),
        retry,
    }
}

/// Quotes an identifier (already checked to be plain).
pub fn q(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Checks `wal_level`, creates the publication if absent, and creates the slot if absent (or, when it
/// disappeared after capturing from it, only with `recreate_slot`). `known`: tributary captured from this
/// slot before (a checkpoint exists).
/// `create`: create a missing slot here (false: answer [`SlotState::Missing`]).
pub async fn prepare(
    client: &tokio_postgres::Client,
    config: &PostgresSourceConfig,
    known: bool,
    create: bool,
) -> Result<SlotState, SetupError> {
    let level: String = client
        .query_one("SHOW wal_level", &[])
        .await
        .map_err(|e| db("reading wal_level", e))?
        .get(0);
    if level != "logical" {
        return Err(fatal(format!(
            "the server runs with wal_level = {level}; logical replication needs wal_level = logical: run ALTER SYSTEM SET wal_level = logical and restart PostgreSQL"
        )));
    }
    let publication = client
        .query_opt(
            "SELECT 1 FROM pg_publication WHERE pubname = $1",
            &[&config.publication],
        )
        .await
        .map_err(|e| db("looking up the publication", e))?;
    if publication.is_none() {
        if config.tables.is_empty() {
            return Err(fatal(format!(
                "publication {:?} does not exist and `tables` is empty: list the tables to capture, or create the publication (CREATE PUBLICATION {} FOR TABLE …)",
                config.publication, config.publication
            )));
        }
        let tables: Vec<String> = config
            .tables
            .iter()
            .map(|t| {
                let (s, n) = split_table(t).expect("validated");
                format!("{}.{}", q(&s), q(&n))
            })
            .collect();
        let sql = format!(
            "CREATE PUBLICATION {} FOR TABLE {}",
            q(&config.publication),
            tables.join(", ")
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| db(&format!("creating publication {:?}", config.publication), e))?;
        tracing::info!(publication = %config.publication, tables = ?config.tables, "postgres source created its publication");
    }
    let slot = client
        .query_opt(
            "SELECT plugin, slot_type, database, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&config.slot],
        )
        .await
        .map_err(|e| db("looking up the replication slot", e))?;
    if let Some(row) = slot {
        let plugin: Option<String> = row.get(0);
        let kind: String = row.get(1);
        let database: Option<String> = row.get(2);
        let flush: Option<String> = row.get(3);
        let ours = config_database(config);
        if kind != "logical" || plugin.as_deref() != Some("pgoutput") || database.as_deref() != ours.as_deref() {
            return Err(fatal(format!(
                "replication slot {:?} is a {kind} slot with plugin {plugin:?} on database {database:?}; tributary needs a logical pgoutput slot on {ours:?}: choose another slot name or drop it",
                config.slot
            )));
        }
        return Ok(SlotState::Exists(flush.as_deref().and_then(Lsn::parse)));
    }
    if known && !config.recreate_slot {
        return Err(fatal(format!(
            "replication slot {:?} is gone (dropped, or the server was restored); changes made since the last capture may be lost. Set recreate_slot = true to create it again and resume from now, or restore the slot",
            config.slot
        )));
    }
    if !create {
        return Ok(SlotState::Missing);
    }
    let row = client
        .query_one(
            "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')",
            &[&config.slot],
        )
        .await
        .map_err(|e| db(&format!("creating replication slot {:?}", config.slot), e))?;
    let lsn: String = row.get(0);
    let lsn = Lsn::parse(&lsn).ok_or_else(|| fatal(format!("the server answered LSN {lsn:?}")))?;
    tracing::info!(slot = %config.slot, %lsn, "postgres source created its replication slot");
    Ok(SlotState::Created(lsn))
}

/// Drops the slot (one tributary created for a snapshot that did not finish).
pub async fn drop_slot(client: &tokio_postgres::Client, slot: &str) -> Result<(), SetupError> {
    client
        .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .map_err(|e| {
            db(
                &format!("dropping replication slot {slot:?} of the unfinished snapshot"),
                e,
            )
        })?;
    tracing::info!(%slot, "postgres source dropped the slot of its unfinished snapshot");
    Ok(())
}

fn config_database(config: &PostgresSourceConfig) -> Option<String> {
    super::connect::parse_url(&config.url)
        .ok()
        .and_then(|c| c.get_dbname().map(str::to_owned))
}

/// The primary key columns of a relation, by OID (empty when it has none).
pub async fn primary_key(client: &tokio_postgres::Client, oid: u32) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)",
            &[&oid],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// `server_version_num` (150004 for 15.4).
pub async fn server_version(client: &tokio_postgres::Client) -> Result<i32, SetupError> {
    let v: String = client
        .query_one("SHOW server_version_num", &[])
        .await
        .map_err(|e| db("reading server_version_num", e))?
        .get(0);
    v.parse()
        .map_err(|_| fatal(format!("the server answered server_version_num {v:?}")))
}
