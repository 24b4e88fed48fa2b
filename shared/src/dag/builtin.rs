//! Arguments of the built-in `http`, `sql` and `python` operators (names as
//! in Airflow's), how a DAG file's arguments become them, and which of their
//! fields are templates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// HTTP methods the `http` operator sends.
pub const HTTP_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Most rows a `sql` task returns as its XCom unless it sets `max_rows`.
pub const DEFAULT_SQL_MAX_ROWS: u32 = 1000;

/// Arguments of the `http` operator (Airflow's `HttpOperator`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpArgs {
    /// HTTP method, upper case; `GET` by default.
    #[serde(default = "default_method")]
    pub method: String,
    /// Full URL; either this or `http_conn_id` (+ `endpoint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Connection whose host (scheme, port, credentials) the request goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_conn_id: Option<String>,
    /// Path appended to the connection's base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Request body: a JSON object or array is sent as JSON, a string as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// Statuses that count as success; empty means any 2xx.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_status: Vec<u16>,
}

fn default_method() -> String {
    "GET".into()
}

/// Arguments of the `sql` operator (Airflow's `SQLExecuteQueryOperator`), PostgreSQL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlArgs {
    /// Connection to the database.
    pub conn_id: String,
    /// The statement; `%(name)s` placeholders take values from `parameters`.
    pub sql: String,
    /// Values bound to the placeholders (never spliced into the text).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// Most rows the `return_value` XCom may hold; more fails the try.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u32>,
}

/// Arguments of the `python` operator (Airflow's `PythonOperator` /
/// `ExternalPythonOperator`): a callable run by an interpreter in its own process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PythonArgs {
    /// `module:function` to call.
    pub python_callable: String,
    /// Folders put first on `sys.path`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub python_path: Vec<String>,
    /// Keyword arguments of the call.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub op_kwargs: serde_json::Map<String, serde_json::Value>,
    /// Interpreter (a path or a virtualenv's `bin/python`); `python3` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
}

fn from_args<T: serde::de::DeserializeOwned>(
    operator: &str,
    args: &serde_json::Map<String, serde_json::Value>,
) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::Object(args.clone())).map_err(|e| format!("operator `{operator}`: {e}"))
}

impl HttpArgs {
    /// Reads and checks the arguments a DAG file gives the `http` operator.
    pub fn parse(args: &serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        let mut http: HttpArgs = from_args("http", args)?;
        http.method = http.method.to_ascii_uppercase();
        if !HTTP_METHODS.contains(&http.method.as_str()) {
            return Err(format!(
                "operator `http`: unknown method `{}`; use one of {}",
                http.method,
                HTTP_METHODS.join(", ")
            ));
        }
        match (&http.url, &http.http_conn_id) {
            (Some(_), Some(_)) => return Err("operator `http`: give either `url` or `http_conn_id`, not both".into()),
            (None, None) => return Err("operator `http`: give `url`, or `http_conn_id` and `endpoint`".into()),
            (Some(_), None) if http.endpoint.is_some() => {
                return Err(
                    "operator `http`: `endpoint` goes with `http_conn_id`; put the whole address in `url`".into()
                )
            }
            _ => {}
        }
        if let Some(bad) = http.expected_status.iter().find(|s| !(100..=599).contains(*s)) {
            return Err(format!("operator `http`: expected_status {bad} is not an HTTP status (100-599)"));
        }
        Ok(http)
    }

    /// The fields that may hold templates.
    pub fn templated_fields(&self) -> Vec<&str> {
        let mut fields: Vec<&str> = [&self.url, &self.endpoint].into_iter().flatten().map(String::as_str).collect();
        fields.extend(self.headers.values().map(String::as_str));
        fields.extend(self.data.iter().flat_map(json_strings));
        fields
    }

    /// The arguments with every templated field passed through `render(field name, text)`.
    pub fn render<E>(&self, render: &mut dyn FnMut(&str, &str) -> Result<String, E>) -> Result<Self, E> {
        Ok(HttpArgs {
            method: self.method.clone(),
            url: self.url.as_deref().map(|u| render("url", u)).transpose()?,
            http_conn_id: self.http_conn_id.clone(),
            endpoint: self.endpoint.as_deref().map(|e| render("endpoint", e)).transpose()?,
            headers: self
                .headers
                .iter()
                .map(|(k, v)| Ok((k.clone(), render(&format!("headers.{k}"), v)?)))
                .collect::<Result<_, E>>()?,
            data: self.data.as_ref().map(|d| render_json("data", d, render)).transpose()?,
            expected_status: self.expected_status.clone(),
        })
    }
}

impl SqlArgs {
    /// Reads and checks the arguments a DAG file gives the `sql` operator.
    pub fn parse(args: &serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        let sql: SqlArgs = from_args("sql", args)?;
        if sql.sql.trim().is_empty() {
            return Err("operator `sql`: sql is empty".into());
        }
        if sql.conn_id.trim().is_empty() {
            return Err("operator `sql`: conn_id is empty".into());
        }
        if sql.max_rows == Some(0) {
            return Err("operator `sql`: max_rows must be at least 1".into());
        }
        Ok(sql)
    }

    /// The fields that may hold templates.
    pub fn templated_fields(&self) -> Vec<&str> {
        std::iter::once(self.sql.as_str()).chain(self.parameters.values().flat_map(json_strings)).collect()
    }

    /// The arguments with every templated field passed through `render(field name, text)`.
    pub fn render<E>(&self, render: &mut dyn FnMut(&str, &str) -> Result<String, E>) -> Result<Self, E> {
        Ok(SqlArgs {
            conn_id: self.conn_id.clone(),
            sql: render("sql", &self.sql)?,
            parameters: self
                .parameters
                .iter()
                .map(|(k, v)| Ok((k.clone(), render_json(&format!("parameters.{k}"), v, render)?)))
                .collect::<Result<_, E>>()?,
            max_rows: self.max_rows,
        })
    }
}

impl PythonArgs {
    /// Reads and checks the arguments a DAG file gives the `python` operator.
    pub fn parse(args: &serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        let python: PythonArgs = from_args("python", args)?;
        let well_formed = python
            .python_callable
            .split_once(':')
            .is_some_and(|(module, function)| !module.trim().is_empty() && !function.trim().is_empty());
        if !well_formed {
            return Err(format!(
                "operator `python`: python_callable `{}` is not `module:function` (e.g. `scoring:run`)",
                python.python_callable
            ));
        }
        Ok(python)
    }

    /// The fields that may hold templates.
    pub fn templated_fields(&self) -> Vec<&str> {
        self.op_kwargs.values().flat_map(json_strings).collect()
    }

    /// The arguments with every templated field passed through `render(field name, text)`.
    pub fn render<E>(&self, render: &mut dyn FnMut(&str, &str) -> Result<String, E>) -> Result<Self, E> {
        Ok(PythonArgs {
            python_callable: self.python_callable.clone(),
            python_path: self.python_path.clone(),
            op_kwargs: self
                .op_kwargs
                .iter()
                .map(|(k, v)| Ok((k.clone(), render_json(&format!("op_kwargs.{k}"), v, render)?)))
                .collect::<Result<_, E>>()?,
            python: self.python.clone(),
        })
    }
}

/// Every string inside a JSON value, depth first (the templated strings of JSON arguments).
pub fn json_strings(value: &serde_json::Value) -> Vec<&str> {
    match value {
        serde_json::Value::String(s) => vec![s.as_str()],
        serde_json::Value::Array(items) => items.iter().flat_map(json_strings).collect(),
        serde_json::Value::Object(map) => map.values().flat_map(json_strings).collect(),
        _ => Vec::new(),
    }
}

/// The JSON value with each string inside rendered (keys stay as written); `field` names where
/// each string sits for errors (`args.path`, `args.files[2]`).
pub fn render_json<E>(
    field: &str,
    value: &serde_json::Value,
    render: &mut dyn FnMut(&str, &str) -> Result<String, E>,
) -> Result<serde_json::Value, E> {
    Ok(match value {
        serde_json::Value::String(s) => serde_json::Value::String(render(field, s)?),
        serde_json::Value::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| render_json(&format!("{field}[{i}]"), item, render))
                .collect::<Result<_, E>>()?,
        ),
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(&format!("{field}.{k}"), v, render)?)))
                .collect::<Result<_, E>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(json: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        json.as_object().expect("an object").clone()
    }

    #[test]
    fn http_needs_an_address_and_a_known_method() {
        let http = HttpArgs::parse(&args(serde_json::json!({"url": "http://x/", "method": "post"}))).unwrap();
        assert_eq!(http.method, "POST");
        assert!(HttpArgs::parse(&args(serde_json::json!({}))).unwrap_err().contains("give `url`"));
        assert!(HttpArgs::parse(&args(serde_json::json!({"url": "u", "method": "FETCH"})))
            .unwrap_err()
            .contains("unknown method `FETCH`"));
        assert!(HttpArgs::parse(&args(serde_json::json!({"url": "u", "expected_status": [42]})))
            .unwrap_err()
            .contains("42"));
        assert!(HttpArgs::parse(&args(serde_json::json!({"url": "u", "timeout": 3})))
            .unwrap_err()
            .contains("unknown field `timeout`"));
    }

    #[test]
    fn python_callable_must_name_a_module_and_a_function() {
        assert!(PythonArgs::parse(&args(serde_json::json!({"python_callable": "scoring:run"}))).is_ok());
        let err = PythonArgs::parse(&args(serde_json::json!({"python_callable": "scoring.run"}))).unwrap_err();
        assert!(err.contains("not `module:function`"), "{err}");
    }

    #[test]
    fn strings_nested_in_json_arguments_are_rendered_and_named_by_their_path() {
        let sql = SqlArgs::parse(&args(serde_json::json!({
            "conn_id": "w", "sql": "select {{ x }}", "parameters": {"day": "{{ x }}", "n": 3, "l": ["{{ x }}"]}
        })))
        .unwrap();
        let mut seen = Vec::new();
        let rendered = sql
            .render::<()>(&mut |field, text| {
                seen.push(field.to_string());
                Ok(text.replace("{{ x }}", "1"))
            })
            .unwrap();
        assert_eq!(rendered.sql, "select 1");
        assert_eq!(rendered.parameters["day"], "1");
        assert_eq!(rendered.parameters["n"], 3);
        assert_eq!(rendered.parameters["l"], serde_json::json!(["1"]));
        assert!(seen.contains(&"parameters.l[0]".to_string()), "{seen:?}");
    }
}
