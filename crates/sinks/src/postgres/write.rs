//! One batch, one transaction: the rows inserted with `ON CONFLICT (id) DO NOTHING`, the user's statement run
//! for each row actually inserted, each in its own savepoint so that one failing row does not block the others.

use crate::format::Format;
use bytes::{BufMut, BytesMut};
use std::collections::HashSet;
use tokio_postgres::Statement;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tributary_core::{Delivery, Timestamp};

/// Why one row was refused for good (Rejected): the SQLSTATE and the server's message.
pub(super) struct Failure(pub(super) String);

/// SQLSTATE classes that are about the row or the user's SQL, not the server: retrying cannot help.
/// 21 cardinality, 22 data, 23 integrity, 2F SQL routine, 38 external routine, 39 external routine
/// invocation, 42 syntax or access, 44 check option, P0 PL/pgSQL (RAISE).
const ROW_CLASSES: [&str; 9] = ["21", "22", "23", "2F", "38", "39", "42", "44", "P0"];

fn sqlstate_class(e: &tokio_postgres::Error) -> Option<&str> {
    e.code().map(|c| &c.code()[..2])
}

/// Whether the user's statement failing with `e` rejects the row (else the batch is retried).
fn statement_rejects(e: &tokio_postgres::Error) -> bool {
    sqlstate_class(e).is_some_and(|c| ROW_CLASSES.contains(&c))
}

/// Whether the insert failing with `e` is about a row's data (22 data, 23 integrity: isolate the row), not the
/// table or the server (retry the batch).
fn insert_rejects(e: &tokio_postgres::Error) -> bool {
    matches!(sqlstate_class(e), Some("22" | "23"))
}

/// The server's SQLSTATE, message and detail, or the client's error.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("SQLSTATE {}: {}", db.code().code(), db.message());
            if let Some(detail) = db.detail() {
                s.push_str(" (");
                s.push_str(detail);
                s.push(')');
            }
            s
        }
        None => chain(e),
    }
}

/// An error and its causes, `: `-separated (the pool and the client keep the reason, such as `Connection
/// refused`, in the source).
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        next = cause.source();
    }
    s
}

/// `$1` of the user's statement: the standard body, as text, json or jsonb, whichever the statement asks.
#[derive(Debug)]
struct Body<'a>(&'a [u8]);

impl ToSql for Body<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        if *ty == Type::JSONB {
            out.put_u8(1); // jsonb's binary format: a version byte, then the text
        }
        out.extend_from_slice(self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::JSON | Type::JSONB | Type::TEXT | Type::VARCHAR | Type::UNKNOWN
        )
    }

    to_sql_checked!();
}

/// The rows of one batch as parallel arrays, the parameters of the insert.
struct Columns<'a> {
    id: Vec<String>,
    seq: Vec<i64>,
    kind: Vec<&'a str>,
    source: Vec<&'a str>,
    key: Vec<Option<&'a str>>,
    occurred_at: Vec<Option<i64>>,
    ingested_at: Vec<i64>,
    data: Vec<String>,
    payload: Vec<&'a [u8]>,
    retracts: Vec<Option<String>>,
}

impl<'a> Columns<'a> {
    fn of(deliveries: &'a [Delivery]) -> Self {
        let mut c = Columns {
            id: Vec::new(),
            seq: Vec::new(),
            kind: Vec::new(),
            source: Vec::new(),
            key: Vec::new(),
            occurred_at: Vec::new(),
            ingested_at: Vec::new(),
            data: Vec::new(),
            payload: Vec::new(),
            retracts: Vec::new(),
        };
        for d in deliveries {
            let stored = &*d.event;
            let e = &stored.event;
            c.id.push(e.id.to_hex());
            c.seq.push(i64::try_from(stored.seq).unwrap_or(i64::MAX));
            c.kind.push(&e.kind);
            c.source.push(&stored.source);
            c.key.push(e.key.as_deref());
            c.occurred_at.push(e.occurred_at.map(|t| t.0));
            c.ingested_at.push(stored.ingested_at.0);
            c.data
                .push(serde_json::to_string(&e.data).expect("a JSON value serializes"));
            c.payload.push(&e.payload);
            c.retracts.push(e.retracts.map(|r| r.to_hex()));
        }
        c
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 10] {
        [
            &self.id,
            &self.seq,
            &self.kind,
            &self.source,
            &self.key,
            &self.occurred_at,
            &self.ingested_at,
            &self.data,
            &self.payload,
            &self.retracts,
        ]
    }
}

/// Writes batches into one table.
pub(super) struct Writer {
    /// `"schema"."name"`.
    pub(super) quoted: String,
    /// As written in config.
    pub(super) table: String,
    insert: String,
    delete: String,
    statement: Option<String>,
}

impl Writer {
    pub(super) fn new(quoted: String, table: String, statement: Option<String>) -> Self {
        // Times travel as microseconds since the epoch and are turned into timestamptz exactly.
        let insert = format!(
            "INSERT INTO {quoted} (id, seq, kind, source, key, occurred_at, ingested_at, data, payload, retracts) \
             SELECT id, seq, kind, source, key, \
             'epoch'::timestamptz + occurred_at * interval '1 microsecond', \
             'epoch'::timestamptz + ingested_at * interval '1 microsecond', \
             data::jsonb, payload, retracts \
             FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[], \
             $8::text[], $9::bytea[], $10::text[]) \
             AS r(id, seq, kind, source, key, occurred_at, ingested_at, data, payload, retracts) \
             ON CONFLICT (id) DO NOTHING RETURNING id"
        );
        let delete = format!("DELETE FROM {quoted} WHERE id = $1");
        Self {
            quoted,
            table,
            insert,
            delete,
            statement,
        }
    }

    /// Prepares the user's statement: `Err` says why it cannot run (a syntax error, an unknown function, a
    /// parameter other than `$1`).
    pub(super) async fn check_statement(&self, client: &deadpool_postgres::Client) -> Result<(), String> {
        match self.prepare_statement(client).await {
            Ok(_) => Ok(()),
            Err(Ok(failure)) => Err(failure.0),
            Err(Err(e)) => Err(describe(&e)),
        }
    }

    /// The prepared statement, `Ok(None)` without one; `Err(Ok(_))` when the statement itself is wrong,
    /// `Err(Err(_))` when the server failed.
    async fn prepare_statement(
        &self,
        client: &deadpool_postgres::Client,
    ) -> Result<Option<Statement>, Result<Failure, tokio_postgres::Error>> {
        let Some(sql) = &self.statement else {
            return Ok(None);
        };
        let prepared = match client.prepare_cached(sql).await {
            Ok(p) => p,
            Err(e) if statement_rejects(&e) => return Err(Ok(Failure(format!("statement: {}", describe(&e))))),
            Err(e) => return Err(Err(e)),
        };
        if prepared.params().len() > 1 {
            return Err(Ok(Failure(format!(
                "statement uses {} parameters; only $1 (the event's standard body) is defined",
                prepared.params().len()
            ))));
        }
        Ok(Some(prepared))
    }

    /// Writes the batch in one transaction: `Ok` has one outcome per delivery (a row already present counts
    /// as written); `Err` means nothing was committed that a retry would not find.
    pub(super) async fn write(
        &self,
        client: &mut deadpool_postgres::Client,
        deliveries: &[Delivery],
    ) -> Result<Vec<Result<(), Failure>>, tokio_postgres::Error> {
        let insert = client.prepare_cached(&self.insert).await?;
        // Prepared outside the transaction: a failed prepare would abort it.
        let statement = match self.prepare_statement(client).await {
            Ok(s) => s.map(Ok),
            Err(Ok(failure)) => Some(Err(failure.0)),
            Err(Err(e)) => return Err(e),
        };
        let delete = match statement {
            Some(_) => Some(client.prepare_cached(&self.delete).await?),
            None => None,
        };
        let columns = Columns::of(deliveries);
        let mut outcomes: Vec<Result<(), Failure>> = deliveries.iter().map(|_| Ok(())).collect();
        let mut tx = client.transaction().await?;
        // The whole batch in one statement; on a row's data error, row by row to find it.
        let batch = {
            let sp = tx.savepoint("tributary_batch").await?;
            match sp.query(&insert, &columns.params()).await {
                Ok(rows) => {
                    sp.commit().await?;
                    Some(rows.iter().map(|r| r.get::<_, String>(0)).collect::<HashSet<String>>())
                }
                Err(e) if insert_rejects(&e) && deliveries.len() > 1 => {
                    sp.rollback().await?;
                    None
                }
                Err(e) if insert_rejects(&e) => {
                    sp.rollback().await?;
                    outcomes[0] = Err(Failure(format!("insert into {}: {}", self.table, describe(&e))));
                    Some(HashSet::new())
                }
                Err(e) => return Err(e),
            }
        };
        let mut inserted = match batch {
            Some(ids) => ids,
            None => {
                let mut ids = HashSet::new();
                for (i, d) in deliveries.iter().enumerate() {
                    let one = Columns::of(std::slice::from_ref(d));
                    let sp = tx.savepoint("tributary_row").await?;
                    match sp.query(&insert, &one.params()).await {
                        Ok(rows) => {
                            sp.commit().await?;
                            ids.extend(rows.iter().map(|r| r.get::<_, String>(0)));
                        }
                        Err(e) if insert_rejects(&e) => {
                            sp.rollback().await?;
                            outcomes[i] = Err(Failure(format!("insert into {}: {}", self.table, describe(&e))));
                        }
                        Err(e) => return Err(e),
                    }
                }
                ids
            }
        };
        if let (Some(statement), Some(delete)) = (&statement, &delete) {
            let now = Timestamp::now();
            for (i, d) in deliveries.iter().enumerate() {
                let id = &columns.id[i];
                // Not inserted: present already, and its statement ran when it was inserted (`remove`: an
                // event twice in one batch runs it once).
                if !inserted.remove(id) || outcomes[i].is_err() {
                    continue;
                }
                let failed = match statement {
                    Err(why) => Some(why.clone()),
                    Ok(prepared) => {
                        let rendered = Format::Standard.render(d, now);
                        let body = Body(&rendered);
                        let sp = tx.savepoint("tributary_statement").await?;
                        let params: Vec<&(dyn ToSql + Sync)> = match prepared.params().len() {
                            0 => Vec::new(),
                            _ => vec![&body as &(dyn ToSql + Sync)],
                        };
                        match sp.execute(prepared, &params).await {
                            Ok(_) => {
                                sp.commit().await?;
                                None
                            }
                            Err(e) if statement_rejects(&e) => {
                                sp.rollback().await?;
                                Some(format!("statement: {}", describe(&e)))
                            }
                            Err(e) => return Err(e),
                        }
                    }
                };
                if let Some(why) = failed {
                    // The row and its statement go together: without the statement, no row.
                    tx.execute(delete, &[id]).await?;
                    outcomes[i] = Err(Failure(why));
                }
            }
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}
