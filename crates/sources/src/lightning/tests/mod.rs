//! Tests on real mainnet gossip, on generated edge cases, and against lnhistoryclient (PyPI).

mod files;
mod generated;
mod graph_time;
mod graph_view;
mod limits;
mod pipeline;
mod python;
mod real_data;

use std::path::PathBuf;

/// `fixtures/lightning/{name}`.
fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/lightning")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A hex-lines fixture: each message with the `#` comment line just above it.
fn hex_lines(name: &str) -> Vec<(String, Vec<u8>)> {
    let text = String::from_utf8(fixture(name)).unwrap();
    let mut comment = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(c) = line.strip_prefix('#') {
            comment = c.trim().to_owned();
        } else {
            out.push((std::mem::take(&mut comment), hex::decode(line).unwrap()));
        }
    }
    out
}

/// The bundled real mainnet messages: 139 from a Core Lightning gossip_store, then 2 announcements.
fn sample() -> Vec<Vec<u8>> {
    let mut all: Vec<_> = hex_lines("cln_gossip_store_sample.hex")
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(all.len(), 139);
    all.extend(hex_lines("channel_announcements_2.hex").into_iter().map(|(_, m)| m));
    all
}
