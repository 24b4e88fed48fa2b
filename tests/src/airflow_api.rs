//! Airflow 3.3.2's REST API as its own OpenAPI document describes it, and how
//! much of it gust serves: the operations of a document, and the table of
//! Airflow's API areas that README.md shows.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::python;

/// The line before the table in README.md.
pub const TABLE_START: &str = "<!-- airflow-api-table:start -->";
/// The line after the table in README.md.
pub const TABLE_END: &str = "<!-- airflow-api-table:end -->";

const METHODS: [&str; 6] = ["get", "put", "post", "delete", "patch", "head"];

/// Airflow 3.3.2's OpenAPI document ([`python::airflow_openapi_document`]), parsed.
pub fn airflow_document() -> Value {
    let path = python::airflow_openapi_document();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// gust's OpenAPI document, as `GET /openapi.json` serves it.
pub fn gust_document() -> Value {
    serde_json::to_value(gust_webapi::openapi_document()).expect("gust's OpenAPI document serializes to JSON")
}

/// One operation of an OpenAPI document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Operation {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path template, e.g. `/api/v2/dags/{dag_id}`.
    pub path: String,
    /// Its `operationId`.
    pub operation_id: String,
    /// Its first tag: the API area it belongs to.
    pub area: String,
}

impl Operation {
    /// How schemathesis names the operation: `GET /api/v2/dags`.
    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Every operation of `document`, in the document's order.
pub fn operations(document: &Value) -> Vec<Operation> {
    let paths = document["paths"].as_object().expect("paths in an OpenAPI document");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS.into_iter().filter_map(move |method| {
                let operation = item.get(method)?;
                Some(Operation {
                    method: method.to_uppercase(),
                    path: path.clone(),
                    operation_id: operation["operationId"].as_str().unwrap_or_default().to_string(),
                    area: operation["tags"][0].as_str().unwrap_or("(untagged)").to_string(),
                })
            })
        })
        .collect()
}

/// The operations of `airflow` that `gust` serves too: same method, same path template.
pub fn served(airflow: &Value, gust: &Value) -> Vec<Operation> {
    let gust: BTreeSet<(String, String)> = operations(gust).into_iter().map(|o| (o.method, o.path)).collect();
    operations(airflow).into_iter().filter(|o| gust.contains(&(o.method.clone(), o.path.clone()))).collect()
}

/// The Markdown table of Airflow's API areas (the first OpenAPI tag of each
/// operation, alphabetically): per area the operations gust serves of the area's
/// total and the `operationId`s of those it does not, then the total line.
pub fn coverage_table(airflow: &Value, gust: &Value) -> String {
    let all = operations(airflow);
    let served: BTreeSet<Operation> = served(airflow, gust).into_iter().collect();
    let mut areas: Vec<String> = Vec::new();
    let mut by_area: BTreeMap<&str, (usize, usize, Vec<&str>)> = BTreeMap::new();
    for operation in &all {
        if !areas.contains(&operation.area) {
            areas.push(operation.area.clone());
        }
        let (count, total, missing) = by_area.entry(&operation.area).or_default();
        *total += 1;
        if served.contains(operation) {
            *count += 1;
        } else {
            missing.push(&operation.operation_id);
        }
    }
    areas.sort_by_key(|area| area.to_lowercase());
    let mut table = String::from("| area | served | not served |\n|---|---|---|\n");
    for area in &areas {
        let (count, total, missing) = &by_area[area.as_str()];
        let missing = if missing.is_empty() {
            "—".to_string()
        } else {
            missing.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ")
        };
        table.push_str(&format!("| {area} | {count} / {total} | {missing} |\n"));
    }
    table.push_str(&format!("| **total** | **{} of {} served** | |\n", served.len(), all.len()));
    table
}

/// The table between [`TABLE_START`] and [`TABLE_END`] in `readme`, if both markers are there.
pub fn readme_table(readme: &str) -> Option<&str> {
    let start = readme.find(TABLE_START)? + TABLE_START.len();
    let end = start + readme[start..].find(TABLE_END)?;
    Some(readme[start..end].trim_matches('\n'))
}
