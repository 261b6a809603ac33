//! Strict parsing of what providers answer: quantities, logs and block headers, and the JSON-RPC envelope.
//!
//! Everything here is outside input: a wrong type, a missing field, a hash of the wrong length or a
//! quantity beyond 64 bits is an error naming the field, never a panic (fuzzed by `fuzz_targets/evm_rpc`).

use serde_json::Value;

/// A log as `eth_getLogs` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log {
    /// The emitting contract.
    pub address: [u8; 20],
    /// Up to 4 topics.
    pub topics: Vec<[u8; 32]>,
    /// The unindexed data.
    pub data: Vec<u8>,
    /// The block's hash.
    pub block_hash: [u8; 32],
    /// The block's number.
    pub block_number: u64,
    /// The block's timestamp, when the provider includes it (`blockTimestamp`).
    pub block_timestamp: Option<u64>,
    /// The transaction's hash.
    pub transaction_hash: [u8; 32],
    /// The transaction's index in its block.
    pub transaction_index: u64,
    /// The log's index in its block.
    pub log_index: u64,
    /// Whether the provider says the log was removed by a reorganisation.
    pub removed: bool,
}

/// The fields of a block header the source uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: [u8; 32],
    /// Parent block hash.
    pub parent_hash: [u8; 32],
    /// Unix seconds.
    pub timestamp: u64,
}

/// Most topics a log has.
const MAX_TOPICS: usize = 4;

/// A hex quantity (`0x1a`) as u64.
pub fn quantity(v: &Value, field: &str) -> Result<u64, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("{field}: expected a hex quantity string, got {}", kind(v)))?;
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| format!("{field}: expected 0x-prefixed hex, got {}", excerpt(s)))?;
    if digits.is_empty() || digits.len() > 16 {
        return Err(format!("{field}: expected 1 to 16 hex digits, got {}", excerpt(s)));
    }
    u64::from_str_radix(digits, 16).map_err(|_| format!("{field}: not hex: {}", excerpt(s)))
}

/// Hex data of exactly `N` bytes.
pub fn fixed<const N: usize>(v: &Value, field: &str) -> Result<[u8; N], String> {
    let bytes = data(v, field)?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("{field}: expected {N} bytes, got {}", b.len()))
}

/// Hex data of any length (`0x` is empty).
pub fn data(v: &Value, field: &str) -> Result<Vec<u8>, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("{field}: expected a hex string, got {}", kind(v)))?;
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| format!("{field}: expected 0x-prefixed hex, got {}", excerpt(s)))?;
    hex::decode(digits).map_err(|e| format!("{field}: not hex ({e}): {}", excerpt(s)))
}

fn field<'a>(obj: &'a serde_json::Map<String, Value>, name: &str, what: &str) -> Result<&'a Value, String> {
    obj.get(name).ok_or_else(|| format!("{what}: missing field {name}"))
}

/// One log object.
pub fn parse_log(v: &Value) -> Result<Log, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("log: expected an object, got {}", kind(v)))?;
    let f = |name: &str| field(obj, name, "log");
    let topics_v = f("topics")?
        .as_array()
        .ok_or_else(|| "log.topics: expected an array".to_owned())?;
    if topics_v.len() > MAX_TOPICS {
        return Err(format!("log.topics: expected at most 4 topics, got {}", topics_v.len()));
    }
    let topics = topics_v
        .iter()
        .enumerate()
        .map(|(i, t)| fixed::<32>(t, &format!("log.topics[{i}]")))
        .collect::<Result<_, _>>()?;
    let removed = match obj.get("removed") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(format!("log.removed: expected a boolean, got {}", kind(other))),
    };
    let block_timestamp = match obj.get("blockTimestamp") {
        None | Some(Value::Null) => None,
        Some(t) => Some(quantity(t, "log.blockTimestamp")?),
    };
    Ok(Log {
        address: fixed(f("address")?, "log.address")?,
        topics,
        data: data(f("data")?, "log.data")?,
        block_hash: fixed(f("blockHash")?, "log.blockHash")?,
        block_number: quantity(f("blockNumber")?, "log.blockNumber")?,
        block_timestamp,
        transaction_hash: fixed(f("transactionHash")?, "log.transactionHash")?,
        transaction_index: quantity(f("transactionIndex")?, "log.transactionIndex")?,
        log_index: quantity(f("logIndex")?, "log.logIndex")?,
        removed,
    })
}

/// The answer of `eth_getLogs`: an array of logs.
pub fn parse_logs(v: &Value) -> Result<Vec<Log>, String> {
    let items = v
        .as_array()
        .ok_or_else(|| format!("eth_getLogs: expected an array of logs, got {}", kind(v)))?;
    items
        .iter()
        .enumerate()
        .map(|(i, l)| parse_log(l).map_err(|e| format!("eth_getLogs[{i}]: {e}")))
        .collect()
}

/// The answer of `eth_getBlockByNumber`/`eth_getBlockByHash`: `None` for `null` (no such block).
pub fn parse_header(v: &Value) -> Result<Option<Header>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let obj = v
        .as_object()
        .ok_or_else(|| format!("block: expected an object or null, got {}", kind(v)))?;
    let f = |name: &str| field(obj, name, "block");
    Ok(Some(Header {
        number: quantity(f("number")?, "block.number")?,
        hash: fixed(f("hash")?, "block.hash")?,
        parent_hash: fixed(f("parentHash")?, "block.parentHash")?,
        timestamp: quantity(f("timestamp")?, "block.timestamp")?,
    }))
}

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcErrorObject {
    /// The error code.
    pub code: i64,
    /// The message (at most 512 bytes kept).
    pub message: String,
}

/// One JSON-RPC response: its id and its result or error.
pub fn parse_envelope(v: &Value) -> Result<(Option<u64>, Result<Value, RpcErrorObject>), String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("response: expected a JSON-RPC object, got {}", kind(v)))?;
    let id = match obj.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .ok_or_else(|| format!("response.id: expected a small integer, got {n}"))?,
        ),
        Some(other) => return Err(format!("response.id: expected a number, got {}", kind(other))),
    };
    if let Some(e) = obj.get("error").filter(|e| !e.is_null()) {
        let eo = e
            .as_object()
            .ok_or_else(|| format!("response.error: expected an object, got {}", kind(e)))?;
        let code = eo.get("code").and_then(Value::as_i64).unwrap_or(0);
        let mut message = eo.get("message").and_then(Value::as_str).unwrap_or("").to_owned();
        if let Some(data) = eo.get("data").and_then(Value::as_str) {
            message = format!("{message} ({data})");
        }
        return Ok((
            id,
            Err(RpcErrorObject {
                code,
                message: excerpt(&message),
            }),
        ));
    }
    match obj.get("result") {
        Some(r) => Ok((id, Ok(r.clone()))),
        None => Err("response: neither result nor error".into()),
    }
}

/// A JSON type's name, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The start of a text, at most 512 bytes on a char boundary.
pub fn excerpt(s: &str) -> String {
    if s.len() <= 512 {
        return s.to_owned();
    }
    let mut end = 512;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Decodes a provider's answer body as the source does (envelope, then logs or a header): the fuzz entry.
pub fn fuzz_decode(body: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let items: Vec<&Value> = match &v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    for item in items {
        if let Ok((_, Ok(result))) = parse_envelope(item) {
            let _ = parse_logs(&result);
            let _ = parse_header(&result);
            let _ = quantity(&result, "result");
        }
    }
}
