//! `snapshot = true`: the rows that exist when capture starts, read in the snapshot of the slot's creation,
//! so that streaming from the slot's consistent point follows them with no row missed or read twice.
//!
//! 1. A checkpoint `snapshot` is stored first: a crash from here on is seen at the next start.
//! 2. The slot is created on a replication connection with `EXPORT_SNAPSHOT`, and the snapshot imported
//!    into a `REPEATABLE READ` transaction of a plain session (`SET TRANSACTION SNAPSHOT`).
//! 3. Every table of the publication is read through a cursor, in batches, each row an event of
//!    [`Changes`] in snapshot mode; appends carry the checkpoint `snapshot <consistent point>`.
//! 4. The last append carries the consistent point itself: streaming starts there.
//!
//! A start that finds a `snapshot…` checkpoint drops the slot of the unfinished snapshot and takes it
//! again (an exported snapshot does not outlive its connection).

use super::PostgresSourceConfig;
use super::changes::Changes;
use super::connect::Target;
use super::pgoutput::{Column, Lsn, Message, Relation, Tuple, Value};
use super::setup::{self, q};
use serde_json::json;
use tokio_postgres::SimpleQueryMessage;
use tributary_core::store::{AppendBatch, Checkpoint};
use tributary_core::{NewEvent, Reject, SourceContext, StoreError, Timestamp};

/// The checkpoint position of an unfinished snapshot starts with this.
pub const MARK: &str = "snapshot";
/// Rows fetched from the cursor at a time.
const FETCH: usize = 2_000;

/// Where a stored checkpoint position says capture stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Streaming from this LSN.
    At(Lsn),
    /// A snapshot was under way and did not finish.
    Interrupted,
    /// Nothing usable.
    Unknown,
}

/// Reads a checkpoint position.
pub fn resume(position: &str) -> Resume {
    if position.starts_with(MARK) {
        Resume::Interrupted
    } else {
        Lsn::parse(position).map_or(Resume::Unknown, Resume::At)
    }
}

/// Why a snapshot did not finish.
#[derive(Debug)]
pub enum Failed {
    /// Worth another try (the server went away, the old slot is still in use).
    Retry(String),
    /// An operator must act.
    Fatal(String),
    /// The store refused a write.
    Store(StoreError),
}

fn setup_failed(e: setup::SetupError) -> Failed {
    if e.retry {
        Failed::Retry(e.message)
    } else {
        Failed::Fatal(e.message)
    }
}

/// Appends to the store, with the source's batch fields.
struct Writer<'a> {
    cx: &'a SourceContext,
    slot: String,
    max: usize,
    events: Vec<NewEvent>,
    rejects: Vec<Reject>,
    rows: u64,
}

impl Writer<'_> {
    async fn append(&mut self, position: String) -> Result<(), Failed> {
        let batch = AppendBatch {
            source: self.cx.name.clone(),
            observer: self.cx.name.clone(),
            seen_at: Timestamp::now(),
            events: std::mem::take(&mut self.events),
            rejects: std::mem::take(&mut self.rejects),
            checkpoint: Some(Checkpoint {
                partition: self.slot.clone(),
                position,
            }),
            ..AppendBatch::default()
        };
        self.cx.store.append(batch).await.map_err(Failed::Store)?;
        Ok(())
    }
}

/// Takes the snapshot and returns the consistent point to stream from. `interrupted`: an earlier
/// snapshot did not finish, and the slot it created (if any) is dropped first.
pub async fn take(
    cx: &SourceContext,
    config: &PostgresSourceConfig,
    target: &Target,
    client: &tokio_postgres::Client,
    slot_exists: bool,
    interrupted: bool,
) -> Result<Lsn, Failed> {
    if slot_exists {
        if !interrupted {
            return Err(Failed::Fatal(format!(
                "snapshot = true, but replication slot {:?} already exists and tributary has no checkpoint for it: a snapshot consistent with the stream needs a slot tributary creates. Drop the slot (SELECT pg_drop_replication_slot('{}')) to take the snapshot, or set snapshot = false to stream from the slot's position without the existing rows",
                config.slot, config.slot
            )));
        }
        setup::drop_slot(client, &config.slot).await.map_err(setup_failed)?;
    }
    let part = super::monitor::part(config);
    let mut w = Writer {
        cx,
        slot: config.slot.clone(),
        max: config.max_batch_events,
        events: Vec::new(),
        rejects: Vec::new(),
        rows: 0,
    };
    // From here a crash leaves a mark: the next start drops the slot and begins again.
    w.append(MARK.to_owned()).await?;
    let exported = super::client::create_slot_exporting(&target.session(&w.cx.name, config, Lsn(0), false))
        .await
        .map_err(|e| {
            Failed::Retry(format!(
                "creating replication slot {:?} for the snapshot: {e}",
                config.slot
            ))
        })?;
    let lsn = exported.consistent_point;
    tracing::info!(source = %cx.name, slot = %config.slot, consistent_point = %lsn, "postgres source created its slot; taking the snapshot");
    let reader = target
        .connect()
        .await
        .map_err(|e| Failed::Retry(format!("connecting to read the snapshot: {e}")))?;
    reader
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
            exported.snapshot.replace('\'', "''")
        ))
        .await
        .map_err(|e| setup_failed(setup::db("importing the slot's snapshot", e)))?;
    // Imported: the replication connection may go.
    drop(exported);
    let mark = format!("{MARK} {lsn}");
    w.append(mark.clone()).await?;
    let tables = reader
        .query(
            "SELECT c.oid, n.nspname::text, c.relname::text FROM pg_publication_tables p
             JOIN pg_namespace n ON n.nspname = p.schemaname
             JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
             WHERE p.pubname = $1 ORDER BY 2, 3",
            &[&config.publication],
        )
        .await
        .map_err(|e| setup_failed(setup::db("listing the publication's tables", e)))?;
    let mut changes = Changes::new(config.outbox.as_ref(), config.max_event_bytes);
    changes.begin_snapshot(lsn, Timestamp::now());
    let progress = |state: &str, tables_done: usize, rows: u64| {
        cx.report.merge_detail(
            &part,
            json!({"snapshot": {"state": state, "consistent_point": lsn.to_string(), "tables": tables.len(), "tables_done": tables_done, "rows": rows}}),
        );
    };
    for (done, t) in tables.iter().enumerate() {
        progress("running", done, w.rows);
        let (oid, schema, table): (u32, String, String) = (t.get(0), t.get(1), t.get(2));
        read_table(&reader, &mut changes, &mut w, &mark, oid, &schema, &table).await?;
        if cx.is_shutting_down() {
            return Err(Failed::Retry("shutdown during the snapshot".into()));
        }
    }
    changes.commit();
    reader
        .batch_execute("COMMIT")
        .await
        .map_err(|e| setup_failed(setup::db("ending the snapshot's transaction", e)))?;
    w.append(lsn.to_string()).await?;
    progress("done", tables.len(), w.rows);
    tracing::info!(source = %cx.name, slot = %config.slot, rows = w.rows, tables = tables.len(), "postgres source took its snapshot; streaming from its consistent point");
    Ok(lsn)
}

/// Reads one table through a cursor, appending in batches.
async fn read_table(
    reader: &tokio_postgres::Client,
    changes: &mut Changes,
    w: &mut Writer<'_>,
    mark: &str,
    oid: u32,
    schema: &str,
    table: &str,
) -> Result<(), Failed> {
    let name = format!("{schema}.{table}");
    let cols = reader
        .query(
            "SELECT attname::text, atttypid FROM pg_attribute
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            &[&oid],
        )
        .await
        .map_err(|e| setup_failed(setup::db(&format!("reading the columns of {name}"), e)))?;
    let cols: Vec<(String, u32)> = cols.iter().map(|r| (r.get(0), r.get(1))).collect();
    let key = setup::primary_key(reader, oid)
        .await
        .map_err(|e| setup_failed(setup::db(&format!("reading the primary key of {name}"), e)))?;
    let relation = Relation {
        oid,
        namespace: schema,
        name: table,
        replica_identity: b'd',
        columns: cols
            .iter()
            .map(|(n, t)| Column {
                key: key.contains(n),
                name: n,
                type_oid: *t,
                type_modifier: -1,
            })
            .collect(),
    };
    let (mut events, mut rejects) = (std::mem::take(&mut w.events), std::mem::take(&mut w.rejects));
    let apply = |changes: &mut Changes, m: &Message<'_>, events: &mut Vec<NewEvent>, rejects: &mut Vec<Reject>| {
        changes
            .apply(m, events, rejects)
            .map_err(|e| Failed::Fatal(format!("snapshot of {name}: {e}")))
    };
    apply(
        changes,
        &Message::Relation { xid: None, relation },
        &mut events,
        &mut rejects,
    )?;
    let list: Vec<String> = cols.iter().map(|(n, _)| q(n)).collect();
    let select = if list.is_empty() {
        "NULL".to_owned()
    } else {
        list.join(", ")
    };
    reader
        .batch_execute(&format!(
            "DECLARE tributary_snapshot NO SCROLL CURSOR FOR SELECT {select} FROM {}.{}",
            q(schema),
            q(table)
        ))
        .await
        .map_err(|e| setup_failed(setup::db(&format!("reading {name}"), e)))?;
    loop {
        let messages = reader
            .simple_query(&format!("FETCH {FETCH} FROM tributary_snapshot"))
            .await
            .map_err(|e| setup_failed(setup::db(&format!("reading {name}"), e)))?;
        let mut fetched = 0;
        for m in &messages {
            let SimpleQueryMessage::Row(row) = m else { continue };
            fetched += 1;
            let values: Vec<Value<'_>> = (0..cols.len())
                .map(|i| match row.get(i) {
                    Some(text) => Value::Text(text.as_bytes()),
                    None => Value::Null,
                })
                .collect();
            let insert = Message::Insert {
                xid: None,
                relation: oid,
                new: Tuple(values),
            };
            apply(changes, &insert, &mut events, &mut rejects)?;
        }
        w.rows += fetched;
        if events.len() + rejects.len() >= w.max || fetched == 0 {
            w.events = std::mem::take(&mut events);
            w.rejects = std::mem::take(&mut rejects);
            if !w.events.is_empty() || !w.rejects.is_empty() {
                w.append(mark.to_owned()).await?;
            }
        }
        if fetched == 0 {
            break;
        }
    }
    reader
        .batch_execute("CLOSE tributary_snapshot")
        .await
        .map_err(|e| setup_failed(setup::db(&format!("reading {name}"), e)))?;
    Ok(())
}
