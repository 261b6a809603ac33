//! Column values in JSON, from PostgreSQL's text output (the replication session sets `DateStyle = ISO`,
//! `TimeZone = UTC`, `bytea_output = hex` and `extra_float_digits = 3`, so the text is predictable).
//!
//! | type | JSON |
//! |---|---|
//! | `int2`, `int4`, `int8`, `oid`, `xid` | number |
//! | `float4`, `float8` | number; `NaN` and `±Infinity` as strings |
//! | `numeric`, `money` | string (exact, as PostgreSQL writes it) |
//! | `bool` | `true` / `false` |
//! | `json`, `jsonb` | the JSON itself |
//! | `timestamptz` | RFC 3339 in UTC (`2026-12-02T06:38:10.123456Z`) |
//! | `timestamp` | ISO 8601 without an offset (`2026-12-02T06:38:10.123456`) |
//! | `bytea` | lowercase hex, no `\x` |
//! | arrays of the above | JSON arrays (nested for several dimensions), NULL elements as `null` |
//! | anything else (text, varchar, uuid, date, time, interval, enums, domains, …) | string as written |
//!
//! A value that does not read as its type says (`infinity` timestamps, BC dates, a year past 9999) stays
//! the string PostgreSQL wrote, so nothing is lost.

use serde_json::Value as Json;

/// Type OIDs (`pg_type.oid`) the source types in JSON.
pub mod oid {
    #![allow(missing_docs)]
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const XID: u32 = 28;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const MONEY: u32 = 790;
    pub const VARCHAR: u32 = 1043;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const JSONB: u32 = 3802;
}

/// The element type of an array type, for the built-in array types.
pub fn array_element(type_oid: u32) -> Option<u32> {
    Some(match type_oid {
        1000 => oid::BOOL,
        1001 => oid::BYTEA,
        1002 => 18, // char
        1003 => 19, // name
        1005 => oid::INT2,
        1007 => oid::INT4,
        1009 => oid::TEXT,
        1014 => 1042, // bpchar
        1015 => oid::VARCHAR,
        1016 => oid::INT8,
        1021 => oid::FLOAT4,
        1022 => oid::FLOAT8,
        1028 => oid::OID,
        1115 => oid::TIMESTAMP,
        1182 => 1082, // date
        1183 => 1083, // time
        1185 => oid::TIMESTAMPTZ,
        1187 => 1186, // interval
        1231 => oid::NUMERIC,
        199 => oid::JSON,
        3807 => oid::JSONB,
        2951 => 2950, // uuid
        791 => oid::MONEY,
        _ => return None,
    })
}

/// The most nested array dimensions read (PostgreSQL allows 6).
const MAX_DIMENSIONS: usize = 6;

/// A column's text value as JSON, by its type OID.
pub fn to_json(type_oid: u32, text: &str) -> Json {
    if let Some(element) = array_element(type_oid) {
        return parse_array(element, text).unwrap_or_else(|| Json::String(text.to_owned()));
    }
    scalar(type_oid, text)
}

fn scalar(type_oid: u32, text: &str) -> Json {
    let fallback = || Json::String(text.to_owned());
    match type_oid {
        oid::INT2 | oid::INT4 | oid::INT8 | oid::OID | oid::XID => text
            .parse::<i64>()
            .map(Json::from)
            .or_else(|_| text.parse::<u64>().map(Json::from))
            .unwrap_or_else(|_| fallback()),
        oid::FLOAT4 | oid::FLOAT8 => match text.parse::<f64>() {
            Ok(f) if f.is_finite() => serde_json::from_str::<Json>(text)
                .ok()
                .filter(Json::is_number)
                .or_else(|| serde_json::Number::from_f64(f).map(Json::Number))
                .unwrap_or_else(fallback),
            _ => fallback(),
        },
        oid::BOOL => match text {
            "t" | "true" => Json::Bool(true),
            "f" | "false" => Json::Bool(false),
            _ => fallback(),
        },
        oid::JSON | oid::JSONB => serde_json::from_str(text).unwrap_or_else(|_| fallback()),
        oid::BYTEA => match text.strip_prefix("\\x") {
            Some(hex) if hex.bytes().all(|b| b.is_ascii_hexdigit()) => Json::String(hex.to_ascii_lowercase()),
            _ => fallback(),
        },
        oid::TIMESTAMPTZ => Json::String(timestamptz(text).unwrap_or_else(|| text.to_owned())),
        oid::TIMESTAMP => Json::String(timestamp(text).unwrap_or_else(|| text.to_owned())),
        _ => fallback(),
    }
}

/// `YYYY-MM-DD HH:MM:SS[.f]` → `YYYY-MM-DDTHH:MM:SS[.f]`, or `None` when the text is not that shape.
fn timestamp(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let shape = b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b' '
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape {
        return None;
    }
    let rest = &text[19..];
    let frac_len = match rest.strip_prefix('.') {
        Some(f) => 1 + f.bytes().take_while(u8::is_ascii_digit).count(),
        None => 0,
    };
    if frac_len == 1 {
        return None;
    }
    (rest.len() == frac_len).then(|| format!("{}T{}{}", &text[..10], &text[11..19], &rest[..frac_len]))
}

/// A `timestamptz` as RFC 3339 in UTC, or `None` (infinity, BC, a year past 9999, an unusual offset).
fn timestamptz(text: &str) -> Option<String> {
    // The offset starts at the last '+' or '-' after the time.
    let cut = text.get(19..)?.rfind(['+', '-'])? + 19;
    let (local, offset) = text.split_at(cut);
    let local = timestamp(local)?;
    let offset = match offset.len() {
        3 => format!("{offset}:00"),
        6 => offset.to_owned(),
        _ => return None, // +HH:MM:SS (historical local mean time) has no RFC 3339 form
    };
    let t = tributary_core::Timestamp::parse_rfc3339(&format!("{local}{offset}")).ok()?;
    Some(t.to_rfc3339())
}

/// Parses a PostgreSQL array literal (`{1,2,NULL}`, `{{"a b","c"},{d,e}}`, `[0:1]={1,2}`).
fn parse_array(element: u32, text: &str) -> Option<Json> {
    let mut s = text.as_bytes();
    if s.first() == Some(&b'[') {
        // Explicit bounds: `[1:3][1:2]=` before the braces.
        let eq = s.iter().position(|b| *b == b'=')?;
        s = &s[eq + 1..];
    }
    let mut pos = 0;
    let v = parse_level(element, s, &mut pos, 0)?;
    (pos == s.len()).then_some(v)
}

fn parse_level(element: u32, s: &[u8], pos: &mut usize, depth: usize) -> Option<Json> {
    if depth >= MAX_DIMENSIONS || s.get(*pos) != Some(&b'{') {
        return None;
    }
    *pos += 1;
    let mut items = Vec::new();
    if s.get(*pos) == Some(&b'}') {
        *pos += 1;
        return Some(Json::Array(items));
    }
    loop {
        match s.get(*pos)? {
            b'{' => items.push(parse_level(element, s, pos, depth + 1)?),
            b'"' => {
                *pos += 1;
                let mut out = Vec::new();
                loop {
                    match *s.get(*pos)? {
                        b'\\' => {
                            out.push(*s.get(*pos + 1)?);
                            *pos += 2;
                        }
                        b'"' => {
                            *pos += 1;
                            break;
                        }
                        b => {
                            out.push(b);
                            *pos += 1;
                        }
                    }
                }
                items.push(scalar(element, std::str::from_utf8(&out).ok()?));
            }
            _ => {
                let start = *pos;
                while !matches!(s.get(*pos)?, b',' | b'}') {
                    *pos += 1;
                }
                let raw = std::str::from_utf8(&s[start..*pos]).ok()?.trim();
                if raw.eq_ignore_ascii_case("NULL") {
                    items.push(Json::Null);
                } else {
                    items.push(scalar(element, raw));
                }
            }
        }
        match s.get(*pos)? {
            b',' => *pos += 1,
            b'}' => {
                *pos += 1;
                return Some(Json::Array(items));
            }
            _ => return None,
        }
    }
}
