//! The running `postgres` sink: the coalescer in front, the batch writer behind it.

use super::config::{PostgresConfig, quoted_table, redacted_url};
use super::schema::{self, SchemaError};
use super::write::{Failure, Writer};
use crate::SinkError;
use crate::batch::Coalescer;
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tributary_core::{AttemptReport, Delivery, DeliveryStatus, Sink};

/// A `postgres` sink.
pub struct PostgresSink {
    table: Arc<Table>,
    coalescer: Coalescer,
}

/// The table side: the pool, the layout check, the transactions.
pub(super) struct Table {
    pub(super) shown: String,
    pub(super) pool: Pool,
    pub(super) timeout: Duration,
    batch_size: usize,
    pub(super) writer: Writer,
    /// The table was created or checked on one of the pool's connections.
    ready: AtomicBool,
    ensure_lock: tokio::sync::Mutex<()>,
}

impl PostgresSink {
    pub(crate) fn new(config: &PostgresConfig) -> Result<Self, SinkError> {
        let mut connection = config.connection()?;
        connection.connect_timeout(config.timeout);
        if connection.get_application_name().is_none() {
            connection.application_name("tributary");
        }
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
            .map_err(|e| SinkError::config("pool_size", format!("could not build the connection pool: {e}")))?;
        let quoted = quoted_table(&config.table).map_err(|e| SinkError::config("table", e))?;
        let table = Arc::new(Table {
            shown: format!("postgres {} table {}", redacted_url(&config.url), config.table),
            pool,
            timeout: config.timeout,
            batch_size: config.batch_size,
            writer: Writer::new(quoted, config.table.clone(), config.statement.clone()),
            ready: AtomicBool::new(false),
            ensure_lock: tokio::sync::Mutex::new(()),
        });
        let coalescer = Coalescer::new(table.clone(), config.pool_size, config.batch_size);
        Ok(Self { table, coalescer })
    }
}

impl Table {
    /// Creates or checks the table once per run (again after the server said it is missing); `force` (the
    /// healthcheck) checks again, and prepares the statement too.
    async fn ensure(&self, force: bool) -> Result<(), String> {
        if !force && self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let _guard = self.ensure_lock.lock().await;
        if !force && self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let run = async {
            let client = self
                .pool
                .get()
                .await
                .map_err(|e| format!("{}: {}", self.shown, super::write::chain(&e)))?;
            schema::ensure(&**client, &self.writer.quoted, &self.writer.table)
                .await
                .map_err(|e| match e {
                    SchemaError::Db(e) => format!("{}: {}", self.shown, super::write::describe(&e)),
                    SchemaError::Layout(why) => why,
                })?;
            // The statement is checked by the healthcheck only: on the write path its errors reject the
            // rows it runs for (SQLSTATE in the reason) instead of holding every delivery back.
            if force {
                self.writer
                    .check_statement(&client)
                    .await
                    .map_err(|why| format!("{}: {why}", self.shown))?;
            }
            Ok(())
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok(())) => {
                self.ready.store(true, Ordering::Release);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!(
                "{}: no answer within timeout = {}",
                self.shown,
                humantime::format_duration(self.timeout)
            )),
        }
    }

    async fn write(&self, deliveries: &[Delivery]) -> Vec<AttemptReport> {
        let start = Instant::now();
        let retriable = |why: String| {
            vec![AttemptReport::failed(DeliveryStatus::Retriable, None, start.elapsed(), why); deliveries.len()]
        };
        if let Err(e) = self.ensure(false).await {
            return retriable(e);
        }
        let mut client = match self.pool.get().await {
            Ok(c) => c,
            Err(e) => return retriable(format!("{}: {}", self.shown, super::write::chain(&e))),
        };
        let outcome = tokio::time::timeout(self.timeout, self.writer.write(&mut client, deliveries)).await;
        let outcomes = match outcome {
            Ok(Ok(outcomes)) => outcomes,
            Ok(Err(e)) => {
                if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) {
                    // Dropped while we run: create it again on the next attempt.
                    self.ready.store(false, Ordering::Release);
                }
                return retriable(format!("{}: {}", self.shown, super::write::describe(&e)));
            }
            Err(_) => {
                // The transaction may still be open on this connection: close it rather than reuse it.
                drop(deadpool_postgres::Object::take(client));
                return retriable(format!(
                    "{}: the batch took longer than timeout = {}; it will be retried (rows already written are not written twice)",
                    self.shown,
                    humantime::format_duration(self.timeout)
                ));
            }
        };
        outcomes
            .into_iter()
            .map(|o| match o {
                Ok(()) => AttemptReport::delivered(None, start.elapsed()),
                Err(Failure(why)) => AttemptReport::failed(DeliveryStatus::Rejected, None, start.elapsed(), why),
            })
            .collect()
    }
}

#[async_trait]
impl Sink for Table {
    async fn deliver(&self, delivery: &Delivery) -> AttemptReport {
        let mut reports = self.write(std::slice::from_ref(delivery)).await;
        reports.pop().expect("one report per delivery")
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }

    async fn deliver_batch(&self, deliveries: &[Delivery]) -> Vec<AttemptReport> {
        let mut reports = Vec::with_capacity(deliveries.len());
        for chunk in deliveries.chunks(self.batch_size) {
            reports.extend(self.write(chunk).await);
        }
        reports
    }

    async fn healthcheck(&self) -> Result<(), String> {
        self.ensure(true).await
    }
}

#[async_trait]
impl Sink for PostgresSink {
    async fn deliver(&self, delivery: &Delivery) -> AttemptReport {
        self.coalescer.deliver(delivery).await
    }

    fn describe(&self) -> String {
        self.table.shown.clone()
    }

    async fn deliver_batch(&self, deliveries: &[Delivery]) -> Vec<AttemptReport> {
        self.table.deliver_batch(deliveries).await
    }

    async fn healthcheck(&self) -> Result<(), String> {
        self.table.healthcheck().await
    }
}
