//! Integration tests on the real `tributary` binary: one test binary for the crate (STYLE rule 20).
//! Each test starts its own node on a temporary store with `TestNode` and a verifying `Receiver`.

mod abuse_api;
mod abuse_dedup;
mod abuse_fuzz;
#[cfg(feature = "lightning")]
mod abuse_lightning;
#[cfg(feature = "lightning")]
mod abuse_lightning_restart;
mod abuse_subscriptions;
mod cli;
mod cluster;
mod config;
mod conformance;
mod control;
mod crash;
mod delivery;
#[cfg(feature = "evm")]
mod evm_abi;
#[cfg(feature = "evm")]
mod evm_backfill;
#[cfg(feature = "evm")]
mod evm_peer;
#[cfg(feature = "evm")]
mod evm_providers;
#[cfg(feature = "evm")]
mod evm_reorg;
#[cfg(feature = "evm")]
mod evm_ws;
mod file_source;
mod ingest;
#[cfg(feature = "lightning")]
mod lightning;
#[cfg(all(feature = "kafka", feature = "lightning"))]
mod ln_history_kafka;
#[cfg(feature = "nostr")]
mod nostr_archive;
#[cfg(feature = "nostr")]
mod nostr_peer;
mod openapi;
mod operations;
mod operator;
mod operator_cli;
mod ordering;
#[cfg(feature = "postgres-source")]
mod pg_cdc;
#[cfg(feature = "postgres-source")]
mod pg_cdc_crash;
#[cfg(feature = "postgres-source")]
mod pg_cdc_ops;
#[cfg(all(feature = "kafka", feature = "postgres", feature = "postgres-source"))]
mod pg_outbox_example;
mod pg_store;
mod pg_store_outage;
mod shutdown;
#[cfg(feature = "kafka")]
mod sink_kafka;
#[cfg(feature = "nats")]
mod sink_nats;
#[cfg(feature = "postgres")]
mod sink_postgres;
#[cfg(feature = "redis")]
mod sink_redis;
mod source_compliance;

pub const BIN: &str = env!("CARGO_BIN_EXE_tributary");
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A config with one http source `ingest` and one subscription `hook` to `url` with extra subscription lines.
pub fn http_to_webhook(url: &str, extra: &str) -> String {
    format!(
        "[[sources]]\nname = \"ingest\"\ntype = \"http\"\n\n[[subscriptions]]\nname = \"hook\"\n{extra}\n{}",
        tributary_testkit::webhook_sink(url, SECRET)
    )
}

/// Waits up to `within` until `rx` has answered a delivery of every event id of `want` with a 2xx.
pub async fn delivered_all(
    rx: &tributary_testkit::Receiver,
    want: &std::collections::HashSet<String>,
    within: std::time::Duration,
) -> bool {
    rx.wait_for(within, |r| {
        let got: std::collections::HashSet<&str> = r
            .iter()
            .filter(|x| x.status < 300)
            .map(|x| x.event_id.as_str())
            .collect();
        want.iter().all(|id| got.contains(id.as_str()))
    })
    .await
}
