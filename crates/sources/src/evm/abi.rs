//! Decoding logs with the configured human-readable ABI entries (alloy's `alloy-json-abi` parser and
//! `alloy-dyn-abi` decoder, both at run time: no compile-time `sol!`).
//!
//! A log whose topic 0 is no entry's selector is delivered undecoded. A log whose topic 0 matches but that
//! no entry with that selector decodes (wrong topic count, short or malformed data) is rejected with the
//! reason. Values become JSON: addresses and bytes as lowercase 0x hex, integers as numbers when their
//! magnitude is at most 2^53 and as decimal strings beyond, tuples and arrays as arrays.

use alloy_dyn_abi::{DynSolValue, EventExt};
use alloy_json_abi::Event;
use alloy_primitives::B256;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Parses one entry, `event Name(type [indexed] [name], ...)`.
pub fn parse_entry(entry: &str) -> Result<Event, String> {
    let event = Event::parse(entry.trim()).map_err(|e| {
        format!("expected a human-readable event such as \"event Transfer(address indexed from, address indexed to, uint256 value)\", got {entry:?}: {e}")
    })?;
    if event.anonymous {
        return Err(format!(
            "{entry:?} is anonymous: its logs carry no selector to match; remove it"
        ));
    }
    Ok(event)
}

/// The configured events by selector (topic 0).
#[derive(Clone, Default)]
pub struct Decoder {
    by_selector: HashMap<[u8; 32], Vec<Event>>,
}

/// A decoded log: the event's name and its arguments by name.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The event name.
    pub event: String,
    /// Arguments by name (`arg{i}` for unnamed ones), in declaration order.
    pub args: Map<String, Value>,
}

impl Decoder {
    /// A decoder of the entries (already validated).
    pub fn new(entries: &[String]) -> Result<Self, String> {
        let mut by_selector: HashMap<[u8; 32], Vec<Event>> = HashMap::new();
        for e in entries {
            let event = parse_entry(e)?;
            by_selector.entry(event.selector().0).or_default().push(event);
        }
        Ok(Self { by_selector })
    }

    /// `Ok(None)`: no entry has this log's selector. `Err`: one has, and none decodes it.
    pub fn decode(&self, topics: &[[u8; 32]], data: &[u8]) -> Result<Option<Decoded>, String> {
        let Some(first) = topics.first() else {
            return Ok(None);
        };
        let Some(candidates) = self.by_selector.get(first) else {
            return Ok(None);
        };
        let mut reasons = Vec::new();
        for event in candidates {
            match decode_one(event, topics, data) {
                Ok(d) => return Ok(Some(d)),
                Err(e) => reasons.push(format!("{}: {e}", event.signature())),
            }
        }
        Err(format!(
            "topic 0 matches but the log does not decode: {}",
            reasons.join("; ")
        ))
    }
}

fn decode_one(event: &Event, topics: &[[u8; 32]], data: &[u8]) -> Result<Decoded, String> {
    let indexed = event.inputs.iter().filter(|p| p.indexed).count();
    if topics.len() != indexed + 1 {
        return Err(format!(
            "expected {} topics ({indexed} indexed parameters), got {}",
            indexed + 1,
            topics.len()
        ));
    }
    let decoded = event
        .decode_log_parts(topics.iter().map(|t| B256::from(*t)), data)
        .map_err(|e| e.to_string())?;
    let (mut idx, mut body) = (decoded.indexed.into_iter(), decoded.body.into_iter());
    let mut args = Map::new();
    for (i, p) in event.inputs.iter().enumerate() {
        let v = if p.indexed { idx.next() } else { body.next() };
        let v = v.ok_or_else(|| format!("parameter {i} missing after decoding"))?;
        let name = if p.name.is_empty() {
            format!("arg{i}")
        } else {
            p.name.clone()
        };
        args.insert(name, to_json(&v));
    }
    Ok(Decoded {
        event: event.name.clone(),
        args,
    })
}

/// Largest integer magnitude shown as a JSON number (2^53).
const EXACT: u64 = 1 << 53;

fn hex0x(b: &[u8]) -> Value {
    Value::String(format!("0x{}", hex::encode(b)))
}

/// A decoded value as JSON (see the module notes).
pub fn to_json(v: &DynSolValue) -> Value {
    match v {
        DynSolValue::Bool(b) => Value::Bool(*b),
        DynSolValue::Int(i, _) => {
            let (neg, abs) = (i.is_negative(), i.unsigned_abs());
            if abs <= alloy_primitives::U256::from(EXACT) {
                let n = abs.to::<u64>() as i64;
                Value::from(if neg { -n } else { n })
            } else {
                Value::String(i.to_string())
            }
        }
        DynSolValue::Uint(u, _) => {
            if *u <= alloy_primitives::U256::from(EXACT) {
                Value::from(u.to::<u64>())
            } else {
                Value::String(u.to_string())
            }
        }
        DynSolValue::FixedBytes(word, size) => hex0x(&word[..*size]),
        DynSolValue::Address(a) => hex0x(a.as_slice()),
        DynSolValue::Function(f) => hex0x(f.as_slice()),
        DynSolValue::Bytes(b) => hex0x(b),
        DynSolValue::String(s) => Value::String(s.clone()),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) | DynSolValue::Tuple(items) => {
            Value::Array(items.iter().map(to_json).collect())
        }
    }
}
