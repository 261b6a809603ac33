//! The subscription filter language. See `docs/filters.md` for the user's guide.
//!
//! A filter is a conjunction: an event matches when its kind matches one of `kinds`, its source is one of
//! `sources`, its key is one of `keys` (each list: empty means any) and every predicate in `where` holds on
//! its `data`.
//!
//! Kind patterns are dot-separated: `*` alone matches every kind; a `*` segment matches exactly one segment,
//! except in last place where it matches one or more (`ln.*` matches `ln.channel_update` and `ln.problem.node`).
//! Predicate paths are dotted paths into `data` (`amount`, `payment.fee`, `items.0.id` for array indices).

use crate::StoredEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cmp::Ordering;

/// A filter as written in the config file or sent to the API.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// Kind patterns (`*`, `ln.*`, `evm.log`). Empty: every kind.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Source names. Empty: every source.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Event keys. Empty: every key (and events without one).
    #[serde(default)]
    pub keys: Vec<String>,
    /// Predicates on `data`, all of which must hold.
    #[serde(default, rename = "where")]
    pub predicates: Vec<PredicateConfig>,
    /// The tenant whose subscription or API call this filter serves, set by the engine (never read from a
    /// config or a request): an event that carries another tenant ([`crate::NewEvent::tenant`]) does not
    /// match. `None` (the admin): every event's tenant matches.
    #[serde(skip)]
    pub tenant: Option<String>,
}

/// One predicate on a dotted path of the event's `data`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredicateConfig {
    /// Dotted path into `data`, e.g. `payment.amount`.
    pub path: String,
    /// One of `eq`, `ne`, `in`, `exists`, `gt`, `gte`, `lt`, `lte`.
    pub op: String,
    /// The operand: any JSON for `eq`/`ne`, an array for `in`, a number or string for comparisons,
    /// a boolean (default true) for `exists`.
    #[serde(default)]
    pub value: Option<Value>,
}

/// An invalid part of a filter: `at` is a path relative to the filter (`where[1].op`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct FilterError {
    /// Where in the filter.
    pub at: String,
    /// What is wrong and what is expected.
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Op {
    Eq(Value),
    Ne(Value),
    In(Vec<Value>),
    Exists(bool),
    Cmp(Ordering, bool, Value), // wanted ordering, or-equal, operand
}

#[derive(Clone, Debug, PartialEq)]
struct Predicate {
    path: Vec<String>,
    op: Op,
}

/// A compiled filter, ready to match events.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Filter {
    kinds: Vec<Vec<String>>,
    match_all_kinds: bool,
    sources: Vec<String>,
    keys: Vec<String>,
    predicates: Vec<Predicate>,
    tenant: Option<String>,
}

const OPS: &str = "eq, ne, in, exists, gt, gte, lt, lte";

impl FilterConfig {
    /// Checks every part and returns all problems at once.
    pub fn compile(&self) -> Result<Filter, Vec<FilterError>> {
        let mut errors = Vec::new();
        let mut err = |at: String, message: String| errors.push(FilterError { at, message });
        let mut kinds = Vec::new();
        let mut match_all_kinds = self.kinds.is_empty();
        for (i, k) in self.kinds.iter().enumerate() {
            if k == "*" {
                match_all_kinds = true;
                continue;
            }
            let segs: Vec<String> = k.split('.').map(str::to_owned).collect();
            if segs
                .iter()
                .any(|s| s.is_empty() || (s.contains('*') && s != "*") || !valid_segment(s))
            {
                err(
                    format!("kinds[{i}]"),
                    format!(
                        "invalid kind pattern {k:?}: expected dot-separated segments of letters, digits, '_' or '-', or '*' (e.g. \"ln.*\")"
                    ),
                );
                continue;
            }
            kinds.push(segs);
        }
        let mut predicates = Vec::new();
        for (i, p) in self.predicates.iter().enumerate() {
            if p.path.is_empty() || p.path.split('.').any(str::is_empty) {
                err(
                    format!("where[{i}].path"),
                    format!(
                        "expected a dotted path into data such as \"payment.amount\", got {:?}",
                        p.path
                    ),
                );
                continue;
            }
            let path = p.path.split('.').map(str::to_owned).collect();
            let value = p.value.clone();
            let need = |v: Option<Value>| v.ok_or_else(|| format!("operator {:?} needs a value", p.op));
            let op = match p.op.as_str() {
                "eq" => need(value).map(Op::Eq),
                "ne" => need(value).map(Op::Ne),
                "in" => match value {
                    Some(Value::Array(items)) => Ok(Op::In(items)),
                    _ => Err("operator \"in\" needs an array value, e.g. value = [\"a\", \"b\"]".to_owned()),
                },
                "exists" => match value {
                    None => Ok(Op::Exists(true)),
                    Some(Value::Bool(b)) => Ok(Op::Exists(b)),
                    Some(_) => Err("operator \"exists\" takes true, false or no value".to_owned()),
                },
                "gt" | "gte" | "lt" | "lte" => match value {
                    Some(v @ (Value::Number(_) | Value::String(_))) => {
                        let ord = if p.op.starts_with('g') {
                            Ordering::Greater
                        } else {
                            Ordering::Less
                        };
                        Ok(Op::Cmp(ord, p.op.ends_with('e'), v))
                    }
                    _ => Err(format!("operator {:?} needs a number or string value", p.op)),
                },
                other => {
                    err(
                        format!("where[{i}].op"),
                        format!("unknown operator {other:?}, expected one of {OPS}"),
                    );
                    continue;
                }
            };
            match op {
                Ok(op) => predicates.push(Predicate { path, op }),
                Err(m) => err(format!("where[{i}].value"), m),
            }
        }
        for (i, s) in self.sources.iter().enumerate() {
            if s.is_empty() {
                err(
                    format!("sources[{i}]"),
                    "expected a source name, got an empty string".to_owned(),
                );
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Filter {
            kinds,
            match_all_kinds,
            sources: self.sources.clone(),
            keys: self.keys.clone(),
            predicates,
            tenant: self.tenant.clone(),
        })
    }
}

/// Whether `tenant` (`None`: the admin) may see the event by its own tenant: an event that carries a
/// tenant is seen only by that tenant and the admin; one without follows its source's `tenants`.
pub fn tenant_sees(tenant: Option<&str>, e: &StoredEvent) -> bool {
    match (tenant, e.event.tenant.as_deref()) {
        (Some(caller), Some(owner)) => caller == owner,
        _ => true,
    }
}

fn valid_segment(s: &str) -> bool {
    s == "*" || s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `kind` matches one dot-separated pattern.
fn kind_matches(pattern: &[String], kind: &str) -> bool {
    let segs: Vec<&str> = kind.split('.').collect();
    for (i, p) in pattern.iter().enumerate() {
        let last = i + 1 == pattern.len();
        match segs.get(i) {
            None => return false,
            Some(_) if p == "*" && last => return true,
            Some(s) if p == "*" || p == s => {}
            Some(_) => return false,
        }
    }
    segs.len() == pattern.len()
}

fn lookup<'a>(data: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(data, |v, seg| match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => compare(a, b) == Some(Ordering::Equal),
        _ => a == b,
    }
}

impl Filter {
    /// A filter that matches every event.
    pub fn all() -> Self {
        Self {
            match_all_kinds: true,
            ..Self::default()
        }
    }

    /// Whether the event matches.
    pub fn matches(&self, e: &StoredEvent) -> bool {
        if !tenant_sees(self.tenant.as_deref(), e) {
            return false;
        }
        if !self.match_all_kinds && !self.kinds.iter().any(|p| kind_matches(p, &e.event.kind)) {
            return false;
        }
        if !self.sources.is_empty() && !self.sources.contains(&e.source) {
            return false;
        }
        if !self.keys.is_empty() {
            match &e.event.key {
                Some(k) if self.keys.iter().any(|x| x == k) => {}
                _ => return false,
            }
        }
        self.predicates.iter().all(|p| {
            let v = lookup(&e.event.data, &p.path);
            match (&p.op, v) {
                (Op::Exists(want), v) => v.is_some() == *want,
                (Op::Eq(x), Some(v)) => values_equal(v, x),
                (Op::Ne(x), Some(v)) => !values_equal(v, x),
                (Op::Ne(_), None) => true,
                (Op::In(xs), Some(v)) => xs.iter().any(|x| values_equal(v, x)),
                (Op::Cmp(ord, or_eq, x), Some(v)) => match compare(v, x) {
                    Some(o) => o == *ord || (*or_eq && o == Ordering::Equal),
                    None => false,
                },
                (_, None) => false,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventId, NewEvent, Timestamp};
    use serde_json::json;

    fn ev(kind: &str, key: Option<&str>, data: Value) -> StoredEvent {
        StoredEvent {
            seq: 1,
            source: "ingest".into(),
            ingested_at: Timestamp(0),
            event: NewEvent {
                id: EventId([0; 32]),
                kind: kind.into(),
                key: key.map(Into::into),
                occurred_at: None,
                position: None,
                payload: vec![],
                data,
                tenant: None,
                retracts: None,
            },
        }
    }

    fn filter(toml_like: Value) -> Filter {
        serde_json::from_value::<FilterConfig>(toml_like)
            .unwrap()
            .compile()
            .unwrap()
    }

    #[test]
    fn kind_patterns() {
        let f = filter(json!({"kinds": ["ln.*"]}));
        assert!(f.matches(&ev("ln.channel_update", None, json!({}))));
        assert!(f.matches(&ev("ln.problem.node", None, json!({}))));
        assert!(!f.matches(&ev("ln", None, json!({}))));
        assert!(!f.matches(&ev("evm.log", None, json!({}))));
        let f = filter(json!({"kinds": ["ln.*.node"]}));
        assert!(f.matches(&ev("ln.problem.node", None, json!({}))));
        assert!(!f.matches(&ev("ln.problem.channel", None, json!({}))));
        assert!(filter(json!({"kinds": ["*"]})).matches(&ev("x", None, json!({}))));
    }

    #[test]
    fn predicates_on_dotted_paths() {
        let e = ev(
            "a.b",
            Some("k1"),
            json!({"amount": 10, "p": {"s": "x"}, "l": [{"id": 3}]}),
        );
        assert!(filter(json!({"where": [{"path": "amount", "op": "gt", "value": 5}]})).matches(&e));
        assert!(!filter(json!({"where": [{"path": "amount", "op": "lt", "value": 10}]})).matches(&e));
        assert!(filter(json!({"where": [{"path": "amount", "op": "lte", "value": 10.0}]})).matches(&e));
        assert!(filter(json!({"where": [{"path": "p.s", "op": "in", "value": ["x", "y"]}]})).matches(&e));
        assert!(filter(json!({"where": [{"path": "l.0.id", "op": "eq", "value": 3}]})).matches(&e));
        assert!(filter(json!({"where": [{"path": "nope", "op": "exists", "value": false}]})).matches(&e));
        assert!(filter(json!({"where": [{"path": "p.s", "op": "ne", "value": "z"}]})).matches(&e));
        assert!(filter(json!({"keys": ["k1"]})).matches(&e));
        assert!(!filter(json!({"keys": ["k2"]})).matches(&e));
        assert!(!filter(json!({"sources": ["other"]})).matches(&e));
    }

    #[test]
    fn an_event_of_a_tenant_matches_only_that_tenant_and_the_admin() {
        let mut owned = ev("outbox.a", None, json!({}));
        owned.event.tenant = Some("acme".into());
        let shared = ev("outbox.a", None, json!({}));
        let for_tenant = |t: Option<&str>| {
            FilterConfig {
                tenant: t.map(Into::into),
                ..FilterConfig::default()
            }
            .compile()
            .unwrap()
        };
        assert!(for_tenant(None).matches(&owned), "the admin sees every tenant's events");
        assert!(for_tenant(Some("acme")).matches(&owned));
        assert!(!for_tenant(Some("globex")).matches(&owned));
        assert!(
            for_tenant(Some("globex")).matches(&shared),
            "an event without a tenant follows its source"
        );
        // A filter from a config or a request never carries a tenant.
        let cfg: FilterConfig = serde_json::from_value(json!({"kinds": ["*"]})).unwrap();
        assert_eq!(cfg.tenant, None);
        assert!(serde_json::from_value::<FilterConfig>(json!({"tenant": "acme"})).is_err());
    }

    #[test]
    fn every_error_is_reported_with_its_path() {
        let cfg: FilterConfig = serde_json::from_value(json!({
            "kinds": ["ln..x"],
            "where": [{"path": "a", "op": "gtx", "value": 1}, {"path": "b", "op": "in", "value": 3}]
        }))
        .unwrap();
        let errs = cfg.compile().unwrap_err();
        let at: Vec<_> = errs.iter().map(|e| e.at.as_str()).collect();
        assert_eq!(at, ["kinds[0]", "where[0].op", "where[1].value"]);
        assert!(errs[1].message.contains("expected one of eq, ne, in"));
    }
}
