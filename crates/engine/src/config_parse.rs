//! Parsing config parts so that one run reports every problem: an entry with unknown fields is parsed
//! again without them (so its filter, sink and numbers are still checked), and an unknown or misspelled
//! key gets a "did you mean" from the keys expected there.

use figment::value::Value;

/// Most unknown fields stripped from one entry before giving up on it.
const MAX_STRIPPED: usize = 64;

/// Deserializes `v` (found at `path` in the file), adding every problem to `problems`. Unknown fields are
/// reported and dropped, and the rest parsed again: the entry is returned when that succeeds, so the
/// caller can check it too (the config is refused anyway, since a problem was reported).
pub(crate) fn one<T: serde::de::DeserializeOwned>(v: &Value, path: &str, problems: &mut Vec<String>) -> Option<T> {
    one_with(v, path, problems, &[])
}

/// A `[[sources]]` entry: the fields every source has, then the type's own keys, each parsed on its own
/// so that the type's unknown-field check sees only its keys (a misspelled common field is still told
/// apart: its suggestions include the common fields).
pub(crate) fn source(v: &Value, path: &str, problems: &mut Vec<String>) -> Option<tributary_sources::SourceSpec> {
    use tributary_sources::{COMMON_FIELDS, CommonFields, SourceConfig};
    let Value::Dict(tag, dict) = v else {
        problems.push(format!(
            "{path}: expected a table ([[sources]] with name, type and the type's keys)"
        ));
        return None;
    };
    let (mut common, mut own) = (figment::value::Dict::new(), dict.clone());
    for field in COMMON_FIELDS {
        if let Some(value) = own.remove(field) {
            common.insert(field.to_owned(), value);
        }
    }
    let common: Option<CommonFields> = one(&Value::Dict(*tag, common), path, problems);
    let kind: Option<SourceConfig> = one_with(&Value::Dict(*tag, own), path, problems, &COMMON_FIELDS);
    Some(tributary_sources::SourceSpec::new(common?, kind?))
}

/// [`one`], where an unknown field's suggestions also include `also_expected`.
fn one_with<T: serde::de::DeserializeOwned>(
    v: &Value,
    path: &str,
    problems: &mut Vec<String>,
    also_expected: &[&str],
) -> Option<T> {
    let mut v = v.clone();
    for _ in 0..MAX_STRIPPED {
        let err = match v.deserialize::<T>() {
            Ok(t) => return Some(t),
            Err(e) => e,
        };
        let mut retry = false;
        for e in err {
            problems.push(located(path, &e, also_expected));
            if let figment::error::Kind::UnknownField(field, _) = &e.kind {
                retry |= strip(&mut v, &e.path, field);
            }
        }
        if !retry {
            return None;
        }
    }
    None
}

/// `path.inner: message` for a problem inside the entry, `path: message` for one about the entry itself.
fn located(path: &str, e: &figment::Error, also_expected: &[&str]) -> String {
    let inner = problem_with(e, also_expected);
    let about_a_field = !e.path.is_empty() || matches!(e.kind, figment::error::Kind::UnknownField(..));
    if inner.contains(": ") && about_a_field {
        format!("{path}.{inner}")
    } else {
        format!("{path}: {inner}")
    }
}

/// Removes `field` from the table at `at` (keys and array indices, with or without `field` itself at the
/// end) inside `v`; whether it was there.
fn strip(v: &mut Value, at: &[String], field: &str) -> bool {
    let at = match at.split_last() {
        Some((last, parent)) if last == field => parent,
        _ => at,
    };
    let mut here = v;
    for step in at {
        here = match here {
            Value::Dict(_, dict) => match dict.get_mut(step) {
                Some(next) => next,
                None => return false,
            },
            Value::Array(_, items) => match step.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(next) => next,
                None => return false,
            },
            _ => return false,
        };
    }
    match here {
        Value::Dict(_, dict) => dict.remove(field).is_some(),
        _ => false,
    }
}

/// One figment error as `path: message`, with plain quotes; an unknown field is named in the path
/// (`sink.secert: unknown field; did you mean "secret"? ...`).
pub(crate) fn problem(e: &figment::Error) -> String {
    problem_with(e, &[])
}

/// [`problem`], where an unknown field at the entry's top level may also be one of `also_expected`.
fn problem_with(e: &figment::Error, also_expected: &[&str]) -> String {
    let mut path = e.path.clone();
    let msg = match &e.kind {
        figment::error::Kind::UnknownField(field, expected) => {
            let top = path.is_empty() || path.as_slice() == [field.clone()];
            if path.last() != Some(field) {
                path.push(field.clone());
            }
            let mut all: Vec<&str> = if top { also_expected.to_vec() } else { Vec::new() };
            all.extend(expected.iter().copied());
            unknown_key("field", field, &all)
        }
        kind => kind
            .to_string()
            // figment quotes with backticks, sometimes doubled (``webhook``): plain quotes read better.
            .replace("``", "`")
            .replace("`one of ", "one of ")
            .replace('`', "\""),
    };
    if path.is_empty() {
        msg
    } else {
        format!("{}: {msg}", path.join("."))
    }
}

/// `unknown field; did you mean "filter"? (expected one of "name", "filter", ...)`.
pub(crate) fn unknown_key(what: &str, given: &str, expected: &[&str]) -> String {
    let list = expected.iter().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ");
    let choices = if expected.is_empty() {
        String::from("nothing is expected here")
    } else {
        format!("expected one of {list}")
    };
    match did_you_mean(given, expected.iter().copied()) {
        Some(close) => format!("unknown {what}; did you mean {close:?}? ({choices})"),
        None => format!("unknown {what}, {choices}"),
    }
}

/// The expected key closest to `given`, if it is close enough to be a typo (edit distance at most 2, or
/// at most a third of the key's length for long keys; case and `-`/`_` ignored).
pub(crate) fn did_you_mean<'a>(given: &str, expected: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let g = norm(given);
    expected
        .into_iter()
        .filter(|k| !k.is_empty())
        .map(|k| (distance(&g, &norm(k)), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3) && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_a_suggestion_and_strangers_do_not() {
        let keys = ["name", "filter", "sink", "retry", "max_in_flight"];
        assert_eq!(did_you_mean("filtr", keys), Some("filter"));
        assert_eq!(did_you_mean("max-in-flight", keys), Some("max_in_flight"));
        assert_eq!(did_you_mean("max_inflight", keys), Some("max_in_flight"));
        assert_eq!(did_you_mean("colour", keys), None);
        assert_eq!(did_you_mean("x", keys), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn unknown_keys_name_the_choices() {
        let m = unknown_key("field", "sinc", &["name", "sink"]);
        assert_eq!(
            m,
            r#"unknown field; did you mean "sink"? (expected one of "name", "sink")"#
        );
        let m = unknown_key("field", "colour", &["name", "sink"]);
        assert_eq!(m, r#"unknown field, expected one of "name", "sink""#);
    }
}
