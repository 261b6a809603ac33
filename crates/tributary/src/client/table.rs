//! Aligned text tables and the small helpers that turn API JSON into table cells.

use serde_json::Value;

/// A table: a header and rows of cells, printed with columns padded to the widest cell.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are empty; line breaks become spaces).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.into_iter().map(|c| c.replace(['\n', '\r', '\t'], " ")).collect());
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, columns separated by two spaces, no trailing blanks.
    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                line.push_str(cell);
                if i + 1 < columns {
                    line.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table, or `empty` when it has no rows.
    pub fn print_or(&self, empty: &str) {
        if self.is_empty() {
            println!("{empty}");
        } else {
            print!("{}", self.render());
        }
    }
}

/// Prints `key: value` lines with the values aligned.
pub fn print_fields(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in fields {
        println!("{:width$}  {v}", format!("{k}:"), width = width + 1);
    }
}

/// A JSON value as a cell: strings unquoted, `null` as `-`.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An RFC 3339 time without its fraction of a second (`2026-11-22T05:32:28Z`); `-` when absent.
pub fn time(v: &Value) -> String {
    match v.as_str() {
        Some(s) => match (s.find('.'), s.find(['Z', '+'])) {
            (Some(dot), Some(zone)) if dot < zone => format!("{}{}", &s[..dot], &s[zone..]),
            _ => s.to_owned(),
        },
        None => text(v),
    }
}

/// A yes/no cell from a JSON boolean.
pub fn yes_no(v: &Value) -> String {
    if v.as_bool().unwrap_or(false) { "yes" } else { "no" }.into()
}

/// At most `max` characters, with `…` when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `1 dead letter`, `2 dead letters`.
pub fn count(n: u64, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// A long text cell: in full with `wide`, else clipped to 80 characters (noting in `clipped` that it was).
pub fn cell(s: &str, wide: bool, clipped: &mut bool) -> String {
    const MAX: usize = 80;
    if wide || s.chars().count() <= MAX {
        return s.to_owned();
    }
    *clipped = true;
    clip(s, MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_are_aligned_and_lines_trimmed() {
        let mut t = Table::new(&["NAME", "STATE", "NOTE"]);
        t.row(vec!["hook".into(), "paused".into(), String::new()]);
        t.row(vec!["a-longer-name".into(), "ok".into(), "x\ny".into()]);
        assert_eq!(
            t.render(),
            "NAME           STATE   NOTE\nhook           paused\na-longer-name  ok      x y\n"
        );
    }

    #[test]
    fn cells_from_json() {
        assert_eq!(text(&Value::Null), "-");
        assert_eq!(text(&json!("a")), "a");
        assert_eq!(text(&json!(3)), "3");
        assert_eq!(time(&json!("2026-11-22T05:32:28.123456Z")), "2026-11-22T05:32:28Z");
        assert_eq!(time(&json!("2026-11-22T05:32:28Z")), "2026-11-22T05:32:28Z");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
