//! The table's layout: created if absent, checked if present.

use tokio_postgres::GenericClient;

/// The columns the sink writes, their types as `format_type` shows them, and whether they are `NOT NULL`.
pub(super) const COLUMNS: [(&str, &str, bool); 10] = [
    ("id", "text", true),
    ("seq", "bigint", true),
    ("kind", "text", true),
    ("source", "text", true),
    ("key", "text", false),
    ("occurred_at", "timestamp with time zone", false),
    ("ingested_at", "timestamp with time zone", true),
    ("data", "jsonb", true),
    ("payload", "bytea", true),
    ("retracts", "text", false),
];

fn create_sql(table: &str) -> String {
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|(name, ty, not_null)| {
            let ty = if *ty == "timestamp with time zone" {
                "timestamptz"
            } else {
                ty
            };
            match (*name, not_null) {
                ("id", _) => format!("{name} {ty} PRIMARY KEY"),
                (_, true) => format!("{name} {ty} NOT NULL"),
                (_, false) => format!("{name} {ty}"),
            }
        })
        .collect();
    format!("CREATE TABLE IF NOT EXISTS {table} ({})", columns.join(", "))
}

const COLUMNS_SQL: &str = "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef \
     FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";

const UNIQUE_ID_SQL: &str = "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a \
     ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
     WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indnatts = 1 AND i.indpred IS NULL AND a.attname = 'id')";

/// What is wrong with the table, or with reaching it.
pub(super) enum SchemaError {
    /// The server or the connection failed (retry).
    Db(tokio_postgres::Error),
    /// The table exists with another layout: what is wrong and what to do.
    Layout(String),
}

impl From<tokio_postgres::Error> for SchemaError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(e)
    }
}

/// Creates `table` (quoted) if absent, then checks that it has the sink's columns, that `id` is unique, and
/// that no other column needs a value the sink does not write.
pub(super) async fn ensure(client: &impl GenericClient, table: &str, shown: &str) -> Result<(), SchemaError> {
    let mut found = client.query(COLUMNS_SQL, &[&table]).await?;
    if found.is_empty() {
        match client.batch_execute(&create_sql(table)).await {
            Ok(()) => {}
            // Another node (or subscription) created it at the same moment.
            Err(e)
                if e.code().is_some_and(|c| {
                    *c == tokio_postgres::error::SqlState::UNIQUE_VIOLATION
                        || *c == tokio_postgres::error::SqlState::DUPLICATE_TABLE
                }) => {}
            Err(e) => return Err(e.into()),
        }
        found = client.query(COLUMNS_SQL, &[&table]).await?;
    }
    let found: Vec<(String, String, bool, bool)> =
        found.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
    let fix = format!(
        "point table at a new name (the sink creates it), or change {shown} to the layout in docs/sinks/postgres.md"
    );
    for (name, ty, not_null) in COLUMNS {
        match found.iter().find(|(n, ..)| n == name) {
            None => {
                return Err(SchemaError::Layout(format!(
                    "table {shown} has no column {name} ({ty}): {fix}"
                )));
            }
            Some((_, got, ..)) if got != ty => {
                return Err(SchemaError::Layout(format!(
                    "table {shown}: column {name} is {got}, expected {ty}: {fix}"
                )));
            }
            Some((_, _, true, _)) if !not_null => {
                return Err(SchemaError::Layout(format!(
                    "table {shown}: column {name} is NOT NULL but events may have none: {fix}"
                )));
            }
            Some(_) => {}
        }
    }
    for (name, ty, not_null, has_default) in &found {
        if !COLUMNS.iter().any(|(n, ..)| n == name) && *not_null && !has_default {
            return Err(SchemaError::Layout(format!(
                "table {shown}: column {name} ({ty}) is NOT NULL without a default, and the sink does not write it: give it a default, drop NOT NULL, or {fix}"
            )));
        }
    }
    let unique: bool = client.query_one(UNIQUE_ID_SQL, &[&table]).await?.get(0);
    if !unique {
        return Err(SchemaError::Layout(format!(
            "table {shown}: column id is not its primary key (no unique index on id alone), so events cannot be written once: {fix}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_created_table_has_the_documented_columns() {
        assert_eq!(
            super::create_sql("\"app\".\"inbox\""),
            "CREATE TABLE IF NOT EXISTS \"app\".\"inbox\" (id text PRIMARY KEY, seq bigint NOT NULL, kind text NOT NULL, \
             source text NOT NULL, key text, occurred_at timestamptz, ingested_at timestamptz NOT NULL, data jsonb NOT NULL, \
             payload bytea NOT NULL, retracts text)"
        );
    }
}
