//! How remote commands print what the API answered: a table for people, or
//! the API's own JSON document as JSON or YAML for scripts.

use std::io::{self, Write};

use clap::ValueEnum;
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use serde_json::Value;

/// Output formats of the remote commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Output {
    /// A table (a list) or field/value pairs (one object), for people.
    #[default]
    Table,
    /// The API's JSON document, as it answered.
    Json,
    /// The same document as YAML.
    Yaml,
}

/// One column of a table: its header and the field of each object it shows.
pub type Column = (&'static str, &'static str);

/// Prints the list `body[key]` (an API collection) with `columns`, or the whole document as JSON or YAML.
pub fn list(out: &mut dyn Write, format: Output, body: &Value, key: &str, columns: &[Column]) -> io::Result<()> {
    if format != Output::Table {
        return document(out, format, body);
    }
    let items = body[key].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut table = new_table();
    table.set_header(columns.iter().map(|(header, _)| *header));
    for item in items {
        table.add_row(columns.iter().map(|(_, field)| cell(&item[*field])));
    }
    if items.is_empty() {
        writeln!(out, "(none)")?;
    } else {
        writeln!(out, "{table}")?;
    }
    if let Some(total) = body["total_entries"].as_u64().filter(|total| *total > items.len() as u64) {
        writeln!(out, "{} of {total} shown; use --limit and --offset for more", items.len())?;
    }
    Ok(())
}

/// Prints one object as field/value pairs (only `fields`, or every field when empty), or as JSON or YAML.
pub fn object(out: &mut dyn Write, format: Output, body: &Value, fields: &[&str]) -> io::Result<()> {
    if format != Output::Table {
        return document(out, format, body);
    }
    let mut table = new_table();
    match (fields, body.as_object()) {
        ([], Some(map)) => map.iter().for_each(|(field, value)| {
            table.add_row([field.clone(), cell(value)]);
        }),
        _ => fields.iter().for_each(|field| {
            table.add_row([field.to_string(), cell(&body[*field])]);
        }),
    }
    writeln!(out, "{table}")
}

/// Prints `message` for people (table format), or the API's answer for scripts.
pub fn done(out: &mut dyn Write, format: Output, body: &Value, message: &str) -> io::Result<()> {
    match format {
        Output::Table => writeln!(out, "{message}"),
        _ => document(out, format, body),
    }
}

/// Prints the whole document as pretty JSON or YAML.
pub fn document(out: &mut dyn Write, format: Output, body: &Value) -> io::Result<()> {
    let text = match format {
        Output::Yaml => serde_yaml_ng::to_string(body).map_err(io::Error::other)?,
        _ => serde_json::to_string_pretty(body).map_err(io::Error::other)? + "\n",
    };
    out.write_all(text.as_bytes())
}

fn new_table() -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    table
}

/// A JSON value as plain text, exactly: a string bare, `null` empty, anything else as JSON.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A JSON value as a table cell: strings bare (timestamps to the second), `null` empty, fractions to
/// two decimals, lists joined (tags by name), objects as JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => match chrono::DateTime::parse_from_rfc3339(text) {
            Ok(time) if time.offset().local_minus_utc() == 0 => time.format("%Y-%m-%d %H:%M:%SZ").to_string(),
            _ => text.clone(),
        },
        Value::Number(number) if number.is_f64() => format!("{:.2}", number.as_f64().unwrap_or_default()),
        Value::Array(items) => items
            .iter()
            .map(|item| match item.get("name") {
                Some(name) => cell(name),
                None => cell(item),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn printed(print: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        print(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn cells_show_values_as_people_read_them() {
        assert_eq!(cell(&json!(null)), "");
        assert_eq!(cell(&json!("x")), "x");
        assert_eq!(cell(&json!("2026-11-30T07:36:28.878092Z")), "2026-11-30 07:36:28Z");
        assert_eq!(cell(&json!("2026-11-30T07:36:28+01:00")), "2026-11-30T07:36:28+01:00");
        assert_eq!(cell(&json!(0.030694)), "0.03");
        assert_eq!(cell(&json!(true)), "true");
        assert_eq!(cell(&json!(3)), "3");
        assert_eq!(cell(&json!(["a", "b"])), "a, b");
        assert_eq!(cell(&json!([{"name": "etl", "dag_id": "d"}])), "etl");
        assert_eq!(cell(&json!({"a": 1})), r#"{"a":1}"#);
        assert_eq!(text(&json!("2026-11-30T07:36:28Z")), "2026-11-30T07:36:28Z");
        assert_eq!(text(&json!(null)), "");
    }

    #[test]
    fn a_table_has_the_chosen_columns_and_says_when_more_entries_exist() {
        let body = json!({"dags": [{"dag_id": "etl", "is_paused": false, "x": 1}], "total_entries": 3});
        let text =
            printed(|out| list(out, Output::Table, &body, "dags", &[("DAG", "dag_id"), ("PAUSED", "is_paused")]));
        assert!(text.contains("DAG") && text.contains("etl") && text.contains("false"), "{text}");
        assert!(!text.contains('x'), "{text}");
        assert!(text.contains("1 of 3 shown"), "{text}");
        let empty = printed(|out| list(out, Output::Table, &json!({"dags": []}), "dags", &[("DAG", "dag_id")]));
        assert_eq!(empty, "(none)\n");
    }

    #[test]
    fn json_and_yaml_print_the_api_document_unchanged() {
        let body = json!({"dags": [{"dag_id": "etl"}], "total_entries": 1});
        let json_text = printed(|out| list(out, Output::Json, &body, "dags", &[]));
        assert_eq!(serde_json::from_str::<Value>(&json_text).unwrap(), body);
        let yaml_text = printed(|out| object(out, Output::Yaml, &body, &[]));
        assert_eq!(serde_yaml_ng::from_str::<Value>(&yaml_text).unwrap(), body);
    }
}
