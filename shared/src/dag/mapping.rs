//! Dynamic task mapping: a task with `expand` becomes one task instance per
//! element of a list known only when the task is ready (Airflow's `expand`).
//!
//! The list comes from the DAG file (`expand: [a, b]`), a param
//! (`expand: {param: files}`) or an upstream task's `return_value` XCom
//! (`expand: {xcom: list_files}`). Each instance gets a `map_index` (0, 1, …)
//! and sees its element as `{{ item }}` in templates and `$GUST_MAP_ITEM`.

use serde::{Deserialize, Serialize};

use crate::template::{Xcoms, RETURN_VALUE_KEY};

/// Most instances one mapped task may expand into (Airflow's `max_map_length`).
pub const MAX_MAP_LENGTH: usize = 1024;

/// Where a mapped task's list comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpandSource {
    /// A list written in the DAG file.
    Items(Vec<serde_json::Value>),
    /// The run's value of a declared param.
    Param(String),
    /// The `return_value` XCom of an upstream task.
    Xcom(String),
}

/// Why a mapped task could not be expanded when it became ready.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The source is not a JSON list.
    #[error("`expand` needs a list, but {origin} is {found}")]
    NotAList {
        /// The source, e.g. "param `files`".
        origin: String,
        /// What it was instead.
        found: String,
    },
    /// The upstream task pushed no `return_value`.
    #[error("`expand` reads the XCom of `{task_id}`, which pushed none; make it write a JSON list to $GUST_XCOM")]
    MissingXcom {
        /// The upstream task.
        task_id: String,
    },
    /// The list is longer than [`MAX_MAP_LENGTH`].
    #[error("`expand` got {len} elements from {origin}; at most {MAX_MAP_LENGTH} are allowed")]
    TooLong {
        /// The source.
        origin: String,
        /// Its length.
        len: usize,
    },
}

impl ExpandSource {
    /// Reads the YAML value of `expand`: a list, `{param: name}` or `{xcom: task_id}`.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, String> {
        const SHAPES: &str = "use a list, {param: <name>} or {xcom: <upstream task id>}";
        match value {
            serde_json::Value::Array(items) if items.len() > MAX_MAP_LENGTH => {
                Err(format!("{} elements; at most {MAX_MAP_LENGTH} are allowed", items.len()))
            }
            serde_json::Value::Array(items) => Ok(ExpandSource::Items(items.clone())),
            serde_json::Value::Object(map) if map.len() == 1 => {
                let (kind, name) = map.iter().next().expect("one entry");
                let Some(name) = name.as_str().filter(|n| !n.trim().is_empty()) else {
                    return Err(format!("`{kind}` needs a name; {SHAPES}"));
                };
                match kind.as_str() {
                    "param" => Ok(ExpandSource::Param(name.to_string())),
                    "xcom" => Ok(ExpandSource::Xcom(name.to_string())),
                    other => Err(format!("unknown source `{other}`; {SHAPES}")),
                }
            }
            _ => Err(format!("cannot expand over {value}; {SHAPES}")),
        }
    }

    /// The elements to map over, given the run's resolved params and the run's XComs.
    pub fn items(
        &self,
        params: &serde_json::Map<String, serde_json::Value>,
        xcoms: &Xcoms,
    ) -> Result<Vec<serde_json::Value>, MapError> {
        let (source, value) = match self {
            ExpandSource::Items(items) => return Ok(items.clone()),
            ExpandSource::Param(name) => {
                (format!("param `{name}`"), params.get(name).cloned().unwrap_or(serde_json::Value::Null))
            }
            ExpandSource::Xcom(task_id) => {
                let value = xcoms.get(task_id).and_then(|keys| keys.get(RETURN_VALUE_KEY)).cloned();
                let Some(value) = value else { return Err(MapError::MissingXcom { task_id: task_id.clone() }) };
                (format!("the XCom of `{task_id}`"), value)
            }
        };
        match value {
            serde_json::Value::Array(items) if items.len() > MAX_MAP_LENGTH => {
                Err(MapError::TooLong { origin: source, len: items.len() })
            }
            serde_json::Value::Array(items) => Ok(items),
            other => Err(MapError::NotAList { origin: source, found: describe(&other) }),
        }
    }
}

fn describe(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "null".into(),
        serde_json::Value::String(s) => format!("the string {s:?}"),
        other => format!("{other}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn expand_accepts_a_list_a_param_or_an_upstream_xcom() {
        assert_eq!(ExpandSource::from_value(&json!([1, "a"])), Ok(ExpandSource::Items(vec![json!(1), json!("a")])));
        assert_eq!(ExpandSource::from_value(&json!({"param": "files"})), Ok(ExpandSource::Param("files".into())));
        assert_eq!(ExpandSource::from_value(&json!({"xcom": "list"})), Ok(ExpandSource::Xcom("list".into())));
        let err = ExpandSource::from_value(&json!({"env": "x"})).unwrap_err();
        assert!(err.contains("unknown source `env`"), "{err}");
        assert!(ExpandSource::from_value(&json!("a,b")).unwrap_err().contains("cannot expand over"));
    }

    #[test]
    fn a_param_or_xcom_that_is_not_a_list_is_an_error_naming_it() {
        let params = json!({"files": "a.csv"}).as_object().unwrap().clone();
        let err = ExpandSource::Param("files".into()).items(&params, &Xcoms::new()).unwrap_err();
        assert_eq!(err.to_string(), "`expand` needs a list, but param `files` is the string \"a.csv\"");
        let err = ExpandSource::Xcom("list".into()).items(&params, &Xcoms::new()).unwrap_err();
        assert!(err.to_string().contains("`list`, which pushed none"), "{err}");
    }

    #[test]
    fn xcom_lists_are_mapped_element_by_element() {
        let mut xcoms = Xcoms::new();
        xcoms.entry("list".into()).or_default().insert(RETURN_VALUE_KEY.into(), json!(["a", "b", "c"]));
        let items = ExpandSource::Xcom("list".into()).items(&Default::default(), &xcoms).unwrap();
        assert_eq!(items, vec![json!("a"), json!("b"), json!("c")]);
    }

    #[test]
    fn lists_longer_than_the_maximum_are_refused() {
        let params = json!({"many": vec![0; MAX_MAP_LENGTH + 1]}).as_object().unwrap().clone();
        let err = ExpandSource::Param("many".into()).items(&params, &Xcoms::new()).unwrap_err();
        assert!(matches!(err, MapError::TooLong { len, .. } if len == MAX_MAP_LENGTH + 1));
    }
}
