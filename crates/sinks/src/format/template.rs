//! Name templates for topics, streams and subjects: literal text with placeholders.
//!
//! | Placeholder   | Becomes                                                                  |
//! |---------------|--------------------------------------------------------------------------|
//! | `{kind}`      | the event's kind (`ln.channel_update`)                                   |
//! | `{kind.N}`    | the Nth dot-separated segment of the kind, from 0 (`{kind.1}` = `channel_update`) |
//! | `{source}`    | the source's name                                                        |
//! | `{key}`       | the event's key                                                          |
//! | `{data.PATH}` | a string, number or boolean in the event's data; PATH is dot-separated object keys or array indices (`{data.log.address}`, `{data.topics.0}`) |
//!
//! `{{` and `}}` are literal braces. A template is checked when the config is loaded (unknown
//! placeholders, unclosed braces); a placeholder that does not resolve for one event (no key, no such
//! field, an object where a name is needed) is an error naming it, which the sink turns into a dead
//! letter — never a silent default.

use serde_json::Value;
use std::fmt;
use tributary_core::StoredEvent;

/// The longest a template may be, and the longest name it may render.
pub const MAX_TEMPLATE_BYTES: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Kind,
    KindSegment(usize),
    Source,
    Key,
    Data(Vec<String>),
}

/// A parsed template.
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({:?})", self.text)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a template does not parse, or does not resolve for an event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

impl Template {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        if text.is_empty() {
            return Err(TemplateError(
                "is empty; give a name, for example \"events\" or \"events.{kind}\"".into(),
            ));
        }
        if text.len() > MAX_TEMPLATE_BYTES {
            return Err(TemplateError(format!(
                "is {} bytes, over the limit of {MAX_TEMPLATE_BYTES}",
                text.len()
            )));
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|(_, n)| *n == '{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().is_some_and(|(_, n)| *n == '}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => {
                    return Err(TemplateError(format!(
                        "has a '}}' at byte {at} that closes nothing (write '}}}}' for a literal brace)"
                    )));
                }
                '{' => {
                    let rest = &text[at + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(TemplateError(format!(
                            "has a '{{' at byte {at} that is never closed (write '{{{{' for a literal brace)"
                        )));
                    };
                    let name = &rest[..end];
                    for _ in 0..name.chars().count() + 1 {
                        chars.next();
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(placeholder(name)?);
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Self {
            text: text.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the template has no placeholder (one fixed name).
    pub fn is_fixed(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// The literal text before the first placeholder (all of it for a fixed template).
    pub fn literal_prefix(&self) -> &str {
        match self.parts.first() {
            Some(Part::Text(t)) => t,
            _ => "",
        }
    }

    /// The name for one event.
    pub fn render(&self, stored: &StoredEvent) -> Result<String, TemplateError> {
        let event = &stored.event;
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Kind => out.push_str(&event.kind),
                Part::KindSegment(n) => match event.kind.split('.').nth(*n) {
                    Some(s) => out.push_str(s),
                    None => {
                        return Err(TemplateError(format!(
                            "{{kind.{n}}} does not resolve: kind {:?} has {} segment(s)",
                            event.kind,
                            event.kind.split('.').count()
                        )));
                    }
                },
                Part::Source => out.push_str(&stored.source),
                Part::Key => match &event.key {
                    Some(k) => out.push_str(k),
                    None => return Err(TemplateError("{key} does not resolve: the event has no key".into())),
                },
                Part::Data(path) => out.push_str(&data_at(&event.data, path)?),
            }
        }
        if out.is_empty() {
            return Err(TemplateError(format!("template {:?} renders an empty name", self.text)));
        }
        if out.len() > MAX_TEMPLATE_BYTES {
            return Err(TemplateError(format!(
                "template {:?} renders a name of {} bytes, over the limit of {MAX_TEMPLATE_BYTES}",
                self.text,
                out.len()
            )));
        }
        Ok(out)
    }
}

fn placeholder(name: &str) -> Result<Part, TemplateError> {
    let unknown = || {
        TemplateError(format!(
            "has an unknown placeholder {{{name}}}: expected {{kind}}, {{kind.N}}, {{source}}, {{key}} or {{data.PATH}}"
        ))
    };
    match name {
        "kind" => return Ok(Part::Kind),
        "source" => return Ok(Part::Source),
        "key" => return Ok(Part::Key),
        _ => {}
    }
    if let Some(n) = name.strip_prefix("kind.") {
        return n.parse().map(Part::KindSegment).map_err(|_| unknown());
    }
    if let Some(path) = name.strip_prefix("data.") {
        let path: Vec<String> = path.split('.').map(str::to_owned).collect();
        if path.iter().any(String::is_empty) {
            return Err(TemplateError(format!("has an empty segment in {{{name}}}")));
        }
        return Ok(Part::Data(path));
    }
    Err(unknown())
}

fn data_at(data: &Value, path: &[String]) -> Result<String, TemplateError> {
    let shown = || format!("{{data.{}}}", path.join("."));
    let mut v = data;
    for segment in path {
        let next = match v {
            Value::Object(m) => m.get(segment),
            Value::Array(a) => segment.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        v = next.ok_or_else(|| TemplateError(format!("{} does not resolve: no field {segment:?}", shown())))?;
    }
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err(TemplateError(format!(
            "{} does not resolve: the value is null",
            shown()
        ))),
        _ => Err(TemplateError(format!(
            "{} does not resolve: the value is an object or array, not a string, number or boolean",
            shown()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::Template;
    use serde_json::json;
    use tributary_core::{EventId, NewEvent, StoredEvent, Timestamp};

    fn event(kind: &str, key: Option<&str>, data: serde_json::Value) -> StoredEvent {
        StoredEvent {
            seq: 7,
            source: "mainnet".into(),
            ingested_at: Timestamp(0),
            event: NewEvent {
                id: EventId::sha256(b"x"),
                kind: kind.into(),
                key: key.map(str::to_owned),
                occurred_at: None,
                position: None,
                payload: Vec::new(),
                data,
                tenant: None,
                retracts: None,
            },
        }
    }

    #[test]
    fn every_placeholder_renders() {
        let e = event(
            "evm.log.Transfer",
            Some("0xabc"),
            json!({"chain_id": 1, "log": {"address": "0xdef", "topics": ["t0", "t1"]}, "ok": true}),
        );
        let t = Template::parse("events:{data.chain_id}/{kind}/{kind.2}/{source}/{key}/{data.log.topics.1}/{data.ok}")
            .unwrap();
        assert_eq!(
            t.render(&e).unwrap(),
            "events:1/evm.log.Transfer/Transfer/mainnet/0xabc/t1/true"
        );
        assert!(!t.is_fixed());
        let fixed = Template::parse("gossip").unwrap();
        assert!(fixed.is_fixed());
        assert_eq!(fixed.render(&e).unwrap(), "gossip");
        assert_eq!(Template::parse("a{{b}}c").unwrap().render(&e).unwrap(), "a{b}c");
        assert_eq!(Template::parse("é{kind.0}ü").unwrap().render(&e).unwrap(), "éevmü");
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        for (text, says) in [
            ("", "is empty"),
            ("a{kind", "never closed"),
            ("a}b", "closes nothing"),
            ("{nope}", "unknown placeholder {nope}"),
            ("{kind.x}", "unknown placeholder {kind.x}"),
            ("{data.}", "empty segment"),
            ("{data.a..b}", "empty segment"),
        ] {
            let e = Template::parse(text).unwrap_err();
            assert!(e.0.contains(says), "{text:?}: {e}");
        }
        assert!(Template::parse(&"a".repeat(1025)).is_err());
    }

    #[test]
    fn unresolved_placeholders_name_themselves() {
        let e = event("a.b", None, json!({"x": {"y": 1}, "n": null}));
        for (text, says) in [
            ("{key}", "{key} does not resolve: the event has no key"),
            ("{kind.5}", "{kind.5} does not resolve: kind \"a.b\" has 2 segment(s)"),
            ("{data.z}", "{data.z} does not resolve: no field \"z\""),
            ("{data.x}", "{data.x} does not resolve: the value is an object"),
            ("{data.n}", "{data.n} does not resolve: the value is null"),
            ("{data.x.y.z}", "no field \"z\""),
        ] {
            let err = Template::parse(text).unwrap().render(&e).unwrap_err();
            assert!(err.0.contains(says), "{text}: {err}");
        }
    }
}
