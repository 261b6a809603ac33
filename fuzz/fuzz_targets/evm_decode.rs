//! The `evm` source on any provider answer: JSON-RPC envelopes, logs and headers are parsed or refused
//! with a reason, never a panic; a parsed log becomes an event whose id follows the documented rule and
//! whose retraction retracts it; the ABI decoder (ERC-20 Transfer and Approval, a dynamic event) decodes
//! a log or says why not, with integers beyond 2^53 as decimal strings; checkpoints parse or are refused,
//! and a parsed checkpoint renders back to itself.
//!
//! Input: the first byte picks the part (0: a provider answer, 1: a checkpoint text, 2: an ABI entry
//! text); the rest is the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tributary_sources::evm::abi::{Decoder, parse_entry};
use tributary_sources::evm::checkpoint::State;
use tributary_sources::evm::event::{KIND_REMOVED, log_event, log_id, retraction};
use tributary_sources::evm::wire::{fuzz_decode, parse_envelope, parse_logs};

const ABI: [&str; 3] = [
    "event Transfer(address indexed from, address indexed to, uint256 value)",
    "event Approval(address indexed owner, address indexed spender, uint256 value)",
    "event Note(string text, bytes32[] tags, int128 delta)",
];

fn check_ints(v: &Value) {
    match v {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                assert!(u <= 1 << 53, "an integer beyond 2^53 as a JSON number: {n}");
            }
            if let Some(i) = n.as_i64() {
                assert!(i.unsigned_abs() <= 1 << 53, "an integer beyond 2^53 as a JSON number: {n}");
            }
        }
        Value::Array(a) => a.iter().for_each(check_ints),
        Value::Object(m) => m.values().for_each(check_ints),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&part, input)) = data.split_first() else { return };
    match part % 3 {
        0 => {
            fuzz_decode(input);
            let Ok(v) = serde_json::from_slice::<Value>(input) else { return };
            let Ok((_, Ok(result))) = parse_envelope(&v) else { return };
            let Ok(logs) = parse_logs(&result) else { return };
            let decoder = Decoder::new(&ABI.map(String::from)).expect("the ABI entries parse");
            for l in logs {
                let decoded = match decoder.decode(&l.topics, &l.data) {
                    Ok(d) => d,
                    Err(reason) => {
                        assert!(reason.contains("does not decode"), "{reason}");
                        None
                    }
                };
                if let Some(d) = &decoded {
                    check_ints(&Value::Object(d.args.clone()));
                }
                let event = log_event(8453, &l, 1_700_000_000, decoded);
                assert_eq!(event.id, log_id(8453, &l.block_hash, l.log_index));
                assert_eq!(event.position.as_deref(), Some(format!("{}:{}", l.block_number, l.log_index).as_str()));
                let r = retraction(&event);
                assert_eq!(r.kind, KIND_REMOVED);
                assert_eq!(r.retracts, Some(event.id));
                assert_ne!(r.id, event.id);
                assert_eq!(r.data, event.data);
            }
        }
        1 => {
            let Ok(text) = std::str::from_utf8(input) else { return };
            if let Ok(state) = State::parse(text) {
                assert_eq!(State::parse(&state.render()).as_ref(), Ok(&state));
            }
        }
        _ => {
            let Ok(text) = std::str::from_utf8(input) else { return };
            if parse_entry(text).is_ok() {
                Decoder::new(&[text.to_owned()]).expect("an entry that parses makes a decoder");
            }
        }
    }
});
