//! Unit tests of the evm source's pure parts (the integration tests run real nodes).

use super::abi::Decoder;
use super::checkpoint::{Entry, State};
use super::config::{EvmSourceConfig, RpcUrl};
use super::event::{log_event, log_id};
use super::wire::{self, parse_header, parse_log};
use serde_json::json;

fn config(extra: &str) -> EvmSourceConfig {
    toml::from_str(&format!(
        "chain_id = 8453\nrpc = [\"https://u:pw@provider-b.example/KEY\"]\n{extra}"
    ))
    .unwrap()
}

#[test]
fn the_issue_example_parses_and_validates() {
    let c = config(
        r#"from_block = 0
confirmations = 0
addresses = ["0x833589fcd6edb6e08f4c7c32d4f71b54bda02913"]
topics = [["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"]]
abi = ["event Transfer(address indexed from, address indexed to, uint256 value)"]
max_block_range = 2000
reorg_depth = 128
allow_private_networks = true"#,
    );
    assert_eq!(c.validate(), Vec::<(String, String)>::new());
    assert_eq!(c.from_block, super::config::FromBlock::Number(0));
}

#[test]
fn bad_keys_name_their_path() {
    let c = config(
        r#"addresses = ["0x12"]
topics = [[], ["0xzz"]]
abi = ["event Broken(uint256"]
max_block_range = 0
reorg_depth = 100000
confirmations = 20000"#,
    );
    let paths: Vec<String> = c.validate().into_iter().map(|(p, _)| p).collect();
    for p in [
        "addresses[0]",
        "topics[1][0]",
        "abi[0]",
        "max_block_range",
        "reorg_depth",
        "confirmations",
    ] {
        assert!(paths.iter().any(|x| x == p), "{p} missing from {paths:?}");
    }
    let loopback: EvmSourceConfig =
        toml::from_str("chain_id = 1\nrpc = [\"http://127.0.0.1:8545\", \"ftp://x\"]").unwrap();
    let errors = loopback.validate();
    assert!(
        errors
            .iter()
            .any(|(p, m)| p == "rpc[0]" && m.contains("allow_private_networks")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|(p, m)| p == "rpc[1]" && m.contains("http://")),
        "{errors:?}"
    );
    assert!(toml::from_str::<EvmSourceConfig>("chain_id = 1\nrpc = []\nfrom_block = \"earliest\"").is_err());
}

#[test]
fn provider_urls_are_masked_in_every_view() {
    let c = config("");
    let debug = format!("{c:?}");
    let json = serde_json::to_string(&c).unwrap();
    for view in [&debug, &json] {
        assert!(!view.contains("KEY") && !view.contains("pw"), "{view}");
        assert!(view.contains("https://u:***@provider-b.example/***"), "{view}");
    }
    assert_eq!(RpcUrl::new("http://127.0.0.1:8545").masked(), "http://127.0.0.1:8545");
    assert_eq!(
        RpcUrl::new("wss://provider-a.example/KEY").masked(),
        "wss://provider-a.example/***"
    );
    assert_eq!(
        RpcUrl::new("https://h.example/?apikey=S").masked(),
        "https://h.example/***"
    );
    assert_eq!(RpcUrl::new("https://tok@h.example").masked(), "https://***@h.example");
}

fn sample_log() -> serde_json::Value {
    json!({"address":"0x5FbDB2315678afecb367f032d93F642f64180aa3","topics":["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef","0x000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266","0x0000000000000000000000000000000000000000000000000000000000000001"],"data":"0x0000000000000000000000000000000000000000000000000de0b6b3a7640002","blockHash":"0x6047eb6e3b10b0af867ae2fe4b91c9894e6c0cdebb24ab64cc7ed5b2b716c3e8","blockNumber":"0x2","blockTimestamp":"0x6b0fbcd7","transactionHash":"0xe6138583eeba9b84c31655ebc0ccc5ae1b3f0a6da3cebecbbe42a86e1d1b08cb","transactionIndex":"0x0","logIndex":"0x1","removed":false})
}

#[test]
fn a_log_becomes_the_documented_event() {
    let log = parse_log(&sample_log()).unwrap();
    let decoder =
        Decoder::new(&["event Transfer(address indexed from, address indexed to, uint256 value)".into()]).unwrap();
    let decoded = decoder.decode(&log.topics, &log.data).unwrap();
    let ev = log_event(8453, &log, log.block_timestamp.unwrap(), decoded);
    let mut id_input = 8453u64.to_be_bytes().to_vec();
    id_input.extend_from_slice(&log.block_hash);
    id_input.extend_from_slice(&1u64.to_be_bytes());
    assert_eq!(ev.id, tributary_core::EventId::sha256(&id_input));
    assert_eq!(ev.id, log_id(8453, &log.block_hash, 1));
    assert_eq!(ev.kind, "evm.log");
    assert_eq!(ev.key.as_deref(), Some("0x5fbdb2315678afecb367f032d93f642f64180aa3"));
    assert_eq!(ev.position.as_deref(), Some("2:1"));
    assert_eq!(ev.occurred_at.unwrap().unix_secs(), 0x6b0fbcd7);
    assert_eq!(ev.data["address"], "0x5fbdb2315678afecb367f032d93f642f64180aa3");
    assert_eq!(ev.data["block_number"], 2);
    assert_eq!(ev.data["event"], "Transfer");
    assert_eq!(ev.data["args"]["from"], "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266");
    assert_eq!(ev.data["args"]["to"], "0x0000000000000000000000000000000000000001");
    // 10^18 + 2 is beyond 2^53: a decimal string.
    assert_eq!(ev.data["args"]["value"], "1000000000000000002");
}

#[test]
fn a_matching_signature_that_does_not_decode_is_an_error_and_others_pass() {
    let decoder =
        Decoder::new(&["event Transfer(address indexed from, address indexed to, uint256 value)".into()]).unwrap();
    let log = parse_log(&sample_log()).unwrap();
    let short = decoder.decode(&log.topics, &log.data[..16]);
    assert!(
        short.as_ref().is_err_and(|e| e.contains("does not decode")),
        "{short:?}"
    );
    let four = [log.topics.clone(), vec![[0u8; 32]]].concat();
    assert!(decoder.decode(&four, &log.data).is_err());
    assert_eq!(decoder.decode(&[[7u8; 32]], &log.data), Ok(None));
    assert_eq!(decoder.decode(&[], &log.data), Ok(None));
    // Small integers stay numbers.
    let small = decoder.decode(&log.topics, &[0u8; 32]).unwrap().unwrap();
    assert_eq!(small.args["value"], 0);
}

#[test]
fn bad_answers_name_the_field() {
    let mut l = sample_log();
    l["blockHash"] = json!("0x12");
    assert!(parse_log(&l).unwrap_err().contains("log.blockHash: expected 32 bytes"));
    l = sample_log();
    l["logIndex"] = json!(3);
    assert!(
        parse_log(&l)
            .unwrap_err()
            .contains("log.logIndex: expected a hex quantity")
    );
    l = sample_log();
    l["topics"] = json!(["0x00", "0x00", "0x00", "0x00", "0x00"]);
    assert!(parse_log(&l).unwrap_err().contains("at most 4"));
    assert_eq!(parse_header(&json!(null)), Ok(None));
    assert!(wire::quantity(&json!("0x10000000000000000"), "q").is_err());
    assert!(wire::parse_envelope(&json!({"jsonrpc":"2.0","id":1})).is_err());
    let (_, r) = wire::parse_envelope(
        &json!({"id":1,"error":{"code":-32005,"message":"query returned more than 10000 results"}}),
    )
    .unwrap();
    assert_eq!(r.unwrap_err().code, -32005);
    wire::fuzz_decode(b"[{\"id\":1,\"result\":[{}]}, 7, {\"result\":\"0x\"}]");
}

#[test]
fn the_checkpoint_keeps_the_window_and_round_trips() {
    let mut s = State::default();
    for n in 10..20 {
        s.push(
            Entry {
                number: n,
                hash: [n as u8; 32],
                logs_upper: n % 3,
            },
            4,
        );
    }
    assert_eq!(s.next, 20);
    assert_eq!(
        s.recent.iter().map(|e| e.number).collect::<Vec<_>>(),
        vec![16, 17, 18, 19]
    );
    assert_eq!(s.tip_hash(), Some([19; 32]));
    assert_eq!(State::parse(&s.render()).unwrap(), s);
    assert!(State::parse("{\"next\":1,\"recent\":[[1,\"0x00\",0]]}").is_err());
}
