//! The trigger form, generated from the params of the DAG's latest version,
//! and the backfill form. Both only translate form fields into the API's JSON
//! body and send it through [`Api::call`], so a run or a backfill is checked
//! exactly as `POST …/dagRuns` and `POST /api/v2/backfills` check it, roles
//! included; a refusal re-renders the form with what the user entered and
//! the API's detail and status.

use std::collections::BTreeMap;

use axum::{
    extract::{Path, State},
    http::{Method, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Extension,
};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use gust_shared::{
    dag::{Param, ParamType, Params},
    db::{
        self,
        dags::{DagRow, DagVersion},
    },
};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::{
    ui::{
        api_call::{path, Api},
        error::UiError,
        layout::{self, Nav},
        pages::dag::dag_header,
        session::{Session, UiForm, CSRF_FIELD},
    },
    AppState,
};

/// The API route template that triggers a run, for [`Session::may`].
const TRIGGER_ROUTE: &str = "/api/v2/dags/{dag_id}/dagRuns";
/// The API route template that creates a backfill, for [`Session::may`].
const BACKFILL_ROUTE: &str = "/api/v2/backfills";

/// A form's fields by name as entered (the last value of a repeated name wins).
type Fields = BTreeMap<String, String>;

/// How a param is entered: by its declared type, or by its default's type when it declares none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    /// `enum:` values, as a `<select>`.
    Choice,
    /// A boolean, as a checkbox.
    Checkbox,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// A string.
    Text,
    /// Arrays, objects, several types or any value: JSON text.
    Json,
}

fn kind_of(param: &Param) -> FieldKind {
    if param.allowed.is_some() {
        return FieldKind::Choice;
    }
    let single = match (param.types.as_slice(), param.effective_default()) {
        ([one], _) => Some(*one),
        ([], Some(Value::String(_))) => Some(ParamType::String),
        ([], Some(Value::Bool(_))) => Some(ParamType::Boolean),
        ([], Some(Value::Number(n))) if n.is_i64() || n.is_u64() => Some(ParamType::Integer),
        ([], Some(Value::Number(_))) => Some(ParamType::Number),
        _ => None,
    };
    match single {
        Some(ParamType::String) => FieldKind::Text,
        Some(ParamType::Boolean) => FieldKind::Checkbox,
        Some(ParamType::Integer) => FieldKind::Integer,
        Some(ParamType::Number) => FieldKind::Number,
        _ => FieldKind::Json,
    }
}

/// The form field of param `name`.
fn field_name(name: &str) -> String {
    format!("param.{name}")
}

/// The hidden field sent with a param's checkbox, so an unchecked box means `false` rather than "not given".
fn checkbox_marker(name: &str) -> String {
    format!("checkbox.{name}")
}

/// A value as a field shows it: strings as themselves, other values as JSON (pretty in a JSON field).
fn field_text(kind: FieldKind, value: &Value) -> String {
    match (kind, value) {
        (FieldKind::Json, value) => serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()),
        (_, Value::String(text)) => text.clone(),
        (_, value) => value.to_string(),
    }
}

/// The fields of a fresh trigger form: every param with a default shows it.
fn default_fields(params: &Params) -> Fields {
    params
        .iter()
        .filter_map(|(name, param)| {
            let default = param.effective_default()?;
            Some((field_name(name), field_text(kind_of(param), default)))
        })
        .collect()
}

/// A number as typed: whole numbers stay integers.
fn parse_number(text: &str) -> Option<Value> {
    text.parse::<i64>()
        .map(Value::from)
        .ok()
        .or_else(|| text.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number))
}

/// The JSON value of param `name` from the form; `None` when not given, so its default applies.
fn param_value(name: &str, param: &Param, fields: &Fields) -> Result<Option<Value>, String> {
    let kind = kind_of(param);
    let entered = fields.get(&field_name(name));
    if kind == FieldKind::Checkbox {
        return Ok(match entered.map(String::as_str) {
            Some("true" | "on") => Some(Value::Bool(true)),
            Some("false") => Some(Value::Bool(false)),
            Some(other) => Some(Value::String(other.to_string())),
            None => fields.contains_key(&checkbox_marker(name)).then_some(Value::Bool(false)),
        });
    }
    let Some(text) = entered.filter(|text| !text.trim().is_empty()) else {
        return Ok(None);
    };
    let value = match kind {
        FieldKind::Text | FieldKind::Checkbox => Value::String(text.clone()),
        FieldKind::Choice => param
            .allowed
            .iter()
            .flatten()
            .find(|allowed| field_text(kind, allowed) == *text)
            .cloned()
            .unwrap_or_else(|| Value::String(text.clone())),
        FieldKind::Integer | FieldKind::Number => parse_number(text.trim()).ok_or_else(|| {
            format!(
                "param `{name}` must be {}, and `{text}` is not a number; enter digits such as 42",
                param.expected()
            )
        })?,
        FieldKind::Json => serde_json::from_str(text).map_err(|e| {
            format!("param `{name}` must be {} written as JSON (strings in double quotes): {e}", param.expected())
        })?,
    };
    Ok(Some(value))
}

/// A `datetime-local` value (or an RFC 3339 time, or a date) read as UTC.
fn utc_from_form(label: &str, text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(at.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|day| day.and_time(NaiveTime::MIN).and_utc())
        .map_err(|_| format!("{label} `{text}` is not a date and time; write it as 2026-01-31T14:30 (UTC)"))
}

/// The non-blank value of field `name`.
fn entered<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields.get(name).map(String::as_str).filter(|text| !text.trim().is_empty())
}

/// The body of `POST …/dagRuns` the trigger form asks for; a sentence naming the field when a
/// field cannot become JSON of its type (what the values may be is the API's to check).
fn trigger_body(params: &Params, fields: &Fields) -> Result<Value, String> {
    let mut conf = match entered(fields, "conf") {
        None => Map::new(),
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Object(conf)) => conf,
            Ok(_) => return Err("the extra conf must be a JSON object such as {\"key\": \"value\"}".into()),
            Err(e) => return Err(format!("the extra conf is not valid JSON: {e}")),
        },
    };
    for (name, param) in params.iter() {
        if let Some(value) = param_value(name, param, fields)? {
            conf.insert(name.to_string(), value);
        }
    }
    let mut body = Map::new();
    if let Some(run_id) = entered(fields, "run_id") {
        body.insert("dag_run_id".into(), Value::from(run_id.trim()));
    }
    if let Some(date) = entered(fields, "logical_date") {
        body.insert("logical_date".into(), Value::from(utc_from_form("the logical date", date)?.to_rfc3339()));
    }
    if let Some(note) = entered(fields, "note") {
        body.insert("note".into(), Value::from(note));
    }
    body.insert("conf".into(), Value::Object(conf));
    Ok(Value::Object(body))
}

/// A DAG and its latest version (whose params the form shows); 404 for an unknown DAG.
async fn dag_and_latest(state: &AppState, dag_id: &str) -> Result<(DagRow, DagVersion), UiError> {
    let db = state.db().await?;
    let dag = db::dags::get(&db, dag_id)
        .await?
        .ok_or_else(|| UiError::NotFound(format!("DAG `{dag_id}` not found; the DAG list shows every DAG")))?;
    let version = db::dags::version(&db, dag.latest_version_id).await?.ok_or_else(|| {
        UiError::Internal(format!("DAG version {} of DAG `{dag_id}` is missing", dag.latest_version_id))
    })?;
    Ok((dag, version))
}

/// The notice a user whose role cannot do what the form does sees instead of its button.
fn role_notice(session: &Session, id: &str, what: &str) -> Markup {
    html! {
        p.notice id=(id) role="note" {
            "Your role (" (session.user.role) ") cannot " (what) "; an operator or admin can."
        }
    }
}

/// The field of one param, of the kind its type asks for, with its label, help and default.
fn param_field(name: &str, param: &Param, fields: &Fields) -> Markup {
    let kind = kind_of(param);
    let field = field_name(name);
    let value = fields.get(&field).map(String::as_str).unwrap_or("");
    let required = param.is_required() && kind != FieldKind::Checkbox;
    let bound = |n: &Option<serde_json::Number>| n.as_ref().map(ToString::to_string);
    let step = if kind == FieldKind::Integer { "1" } else { "any" };
    html! {
        label.param.check[kind == FieldKind::Checkbox] data-param=(name) {
            span.name {
                (param.title.as_deref().unwrap_or(name))
                @if required { " " abbr.required title="required" { "*" } }
            }
            @match kind {
                FieldKind::Choice => {
                    select name=(field) required[required] {
                        @if param.effective_default().is_none() { option value="" { "— choose —" } }
                        @for allowed in param.allowed.iter().flatten() {
                            @let text = field_text(kind, allowed);
                            option value=(text) selected[text == value] { (text) }
                        }
                    }
                }
                FieldKind::Checkbox => {
                    input type="hidden" name=(checkbox_marker(name)) value="1";
                    input type="checkbox" name=(field) value="true" checked[value == "true"];
                }
                FieldKind::Integer | FieldKind::Number => {
                    input type="number" name=(field) step=(step) min=[bound(&param.minimum)]
                        max=[bound(&param.maximum)] required[required] value=(value);
                }
                FieldKind::Text => { input type="text" name=(field) required[required] value=(value); }
                FieldKind::Json => { textarea name=(field) rows="4" required[required] { (value) } }
            }
            @if let Some(description) = &param.description { span.help { (description) } }
            span.help {
                code { (name) } ": " (param.expected())
                @if !required && kind != FieldKind::Checkbox { "; empty takes the default" }
            }
        }
    }
}

/// The trigger page: the form with `fields` entered, and `problem` above it.
fn trigger_page(
    session: &Session,
    (dag, latest): &(DagRow, DagVersion),
    fields: &Fields,
    problem: Option<&str>,
) -> Markup {
    let (dag_id, params) = (dag.dag_id.as_str(), &latest.definition.params);
    let may = session.may(Method::POST, TRIGGER_ROUTE);
    let value = |name: &str| fields.get(name).map(String::as_str).unwrap_or("");
    let content = html! {
        (dag_header(session, dag, latest.version_number, None, None))
        h2 { "Trigger a run" }
        @if !may { (role_notice(session, "trigger-not-allowed", "trigger runs")) }
        (layout::alert(problem))
        form #trigger-form .stack method="post" action=(path(&["dags", dag_id, "trigger"])) {
            (layout::csrf_field(session))
            fieldset {
                legend { "Params" }
                @if params.is_empty() { p.muted { "This DAG declares no params." } }
                @for (name, param) in params.iter() { (param_field(name, param, fields)) }
            }
            fieldset {
                legend { "Run" }
                label {
                    "Run id"
                    input type="text" name="run_id" value=(value("run_id")) maxlength="250" pattern="[A-Za-z0-9_.:+~\\-]+";
                    span.help { "Optional; letters, digits and _ - . : + ~. Made from the time when empty." }
                }
                label {
                    "Logical date (UTC)"
                    input type="datetime-local" name="logical_date" step="1" value=(value("logical_date"));
                    span.help { "Optional; the run has no logical date when empty." }
                }
                label { "Note" textarea name="note" rows="2" maxlength="1000" { (value("note")) } }
                label {
                    "Extra conf (JSON object)"
                    textarea name="conf" rows="4" placeholder="{\"key\": \"value\"}" { (value("conf")) }
                    span.help { "Keys that are not params; a param's field above wins over the same key here." }
                }
            }
            @if may { div.actions { button #trigger-submit type="submit" { "Trigger" } } }
        }
    };
    layout::page(session, &format!("Trigger {dag_id}"), Nav::Dags, content)
}

/// `GET /dags/{dag_id}/trigger`: the form, one field per param, defaults filled in.
pub(crate) async fn trigger_form(
    State(state): State<AppState>,
    Path(dag_id): Path<String>,
    session: Session,
) -> Result<Markup, UiError> {
    let dag = dag_and_latest(&state, &dag_id).await?;
    Ok(trigger_page(&session, &dag, &default_fields(&dag.1.definition.params), None))
}

/// The fields of a posted form, without the CSRF token.
fn fields_of(pairs: Vec<(String, String)>) -> Fields {
    pairs.into_iter().filter(|(name, _)| name != CSRF_FIELD).collect()
}

/// `POST /dags/{dag_id}/trigger`: triggers through `POST …/dagRuns`; 303 to the new run.
pub(crate) async fn trigger(
    State(state): State<AppState>,
    Extension(api): Extension<Api>,
    Path(dag_id): Path<String>,
    UiForm { session, form }: UiForm<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let dag = dag_and_latest(&state, &dag_id).await?;
    let fields = fields_of(form);
    let refused = |status: StatusCode, detail: &str| {
        (status, trigger_page(&session, &dag, &fields, Some(detail))).into_response()
    };
    let body = match trigger_body(&dag.1.definition.params, &fields) {
        Ok(body) => body,
        Err(problem) => return Ok(refused(StatusCode::BAD_REQUEST, &problem)),
    };
    let api_path = path(&["api", "v2", "dags", &dag_id, "dagRuns"]);
    match api.call(&session, Method::POST, &api_path, Some(&body)).await {
        Ok(reply) => {
            let run_id = reply.json["dag_run_id"]
                .as_str()
                .ok_or_else(|| UiError::Internal("the trigger answer has no dag_run_id".into()))?;
            Ok(Redirect::to(&path(&["dags", &dag_id, "runs", run_id])).into_response())
        }
        Err(UiError::Api(error)) => {
            let (status, detail) = error.status_and_detail();
            Ok(refused(status, &detail))
        }
        Err(other) => Err(other),
    }
}

/// The backfill form's fields.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct BackfillFields {
    #[serde(default)]
    from_date: String,
    #[serde(default)]
    to_date: String,
    #[serde(default)]
    reprocess_behavior: String,
    #[serde(default)]
    max_active_runs: String,
    #[serde(default)]
    run_backwards: Option<String>,
    #[serde(default)]
    dag_run_conf: String,
    /// `preview` (the dry run) or `create`.
    #[serde(default)]
    action: String,
}

/// What `reprocess_behavior` may be, with what each means.
const REPROCESS_BEHAVIORS: [(&str, &str); 3] = [
    ("none", "keep every existing run"),
    ("failed", "run failed runs again"),
    ("completed", "run failed and successful runs again"),
];

/// The body of `POST /api/v2/backfills` (and its dry run) the form asks for.
fn backfill_body(dag_id: &str, fields: &BackfillFields) -> Result<Value, String> {
    let from_date = utc_from_form("the from date", &fields.from_date)?;
    let to_date = utc_from_form("the to date", &fields.to_date)?;
    let mut body = json!({
        "dag_id": dag_id,
        "from_date": from_date.to_rfc3339(),
        "to_date": to_date.to_rfc3339(),
        "run_backwards": fields.run_backwards.is_some(),
    });
    let reprocess = fields.reprocess_behavior.trim();
    if !reprocess.is_empty() {
        body["reprocess_behavior"] = Value::from(reprocess);
    }
    let max_active_runs = fields.max_active_runs.trim();
    if !max_active_runs.is_empty() {
        let number = max_active_runs.parse::<i64>().map_err(|_| {
            format!("max active runs must be a whole number such as 10, and `{max_active_runs}` is not one")
        })?;
        body["max_active_runs"] = Value::from(number);
    }
    let conf = fields.dag_run_conf.trim();
    if !conf.is_empty() {
        body["dag_run_conf"] =
            serde_json::from_str(conf).map_err(|e| format!("the runs' conf is not valid JSON: {e}"))?;
    }
    Ok(body)
}

/// The backfill page: the form with `fields` entered, `problem` above it, and a dry run's dates below.
fn backfill_page(
    session: &Session,
    (dag, latest): &(DagRow, DagVersion),
    fields: &BackfillFields,
    problem: Option<&str>,
    preview: Option<&[Value]>,
) -> Markup {
    let dag_id = dag.dag_id.as_str();
    let may = session.may(Method::POST, BACKFILL_ROUTE);
    let reprocess = if fields.reprocess_behavior.is_empty() { "none" } else { fields.reprocess_behavior.as_str() };
    let max_active_runs = if fields.max_active_runs.is_empty() { "10" } else { fields.max_active_runs.as_str() };
    let content = html! {
        (dag_header(session, dag, latest.version_number, None, None))
        h2 { "Backfill" }
        p.muted { "Runs for the DAG's past data intervals whose logical date lies between the two dates (UTC)." }
        @if !may { (role_notice(session, "backfill-not-allowed", "create backfills")) }
        (layout::alert(problem))
        form #backfill-form .stack method="post" action=(path(&["dags", dag_id, "backfill"])) {
            (layout::csrf_field(session))
            label { "From (UTC)" input type="datetime-local" name="from_date" step="1" required value=(fields.from_date); }
            label { "To (UTC)" input type="datetime-local" name="to_date" step="1" required value=(fields.to_date); }
            label {
                "Existing runs"
                select name="reprocess_behavior" {
                    @for (value, meaning) in REPROCESS_BEHAVIORS {
                        option value=(value) selected[value == reprocess] { (value) ": " (meaning) }
                    }
                }
            }
            label { "Max active runs" input type="number" name="max_active_runs" min="1" step="1" value=(max_active_runs); }
            label.check { input type="checkbox" name="run_backwards" value="true" checked[fields.run_backwards.is_some()]; "Newest first" }
            label {
                "Conf of every run (JSON object)"
                textarea name="dag_run_conf" rows="3" placeholder="{}" { (fields.dag_run_conf) }
            }
            @if may {
                div.actions {
                    button #backfill-preview-button .secondary type="submit" name="action" value="preview" { "Preview" }
                    button #backfill-submit type="submit" name="action" value="create" { "Create backfill" }
                }
            }
        }
        @if let Some(dates) = preview {
            section #backfill-dry-run {
                h2 { "Preview: " (dates.len()) " run" @if dates.len() != 1 { "s" } }
                @if dates.is_empty() {
                    p.muted { "No ended data interval starts between these dates, or every one has a run this choice keeps." }
                }
                ul #backfill-preview {
                    @for date in dates {
                        @let text = date["logical_date"].as_str().unwrap_or_default();
                        li { (layout::time(DateTime::parse_from_rfc3339(text).ok().map(|at| at.with_timezone(&Utc)))) }
                    }
                }
            }
        }
    };
    layout::page(session, &format!("Backfill {dag_id}"), Nav::Dags, content)
}

/// `GET /dags/{dag_id}/backfill`: the backfill form.
pub(crate) async fn backfill_form(
    State(state): State<AppState>,
    Path(dag_id): Path<String>,
    session: Session,
) -> Result<Markup, UiError> {
    let dag = dag_and_latest(&state, &dag_id).await?;
    Ok(backfill_page(&session, &dag, &BackfillFields::default(), None, None))
}

/// `POST /dags/{dag_id}/backfill`: `action=preview` lists the dates through the API's dry run;
/// otherwise creates the backfill through `POST /api/v2/backfills` and 303s to the DAG's runs.
pub(crate) async fn backfill(
    State(state): State<AppState>,
    Extension(api): Extension<Api>,
    Path(dag_id): Path<String>,
    UiForm { session, form }: UiForm<BackfillFields>,
) -> Result<Response, UiError> {
    let dag = dag_and_latest(&state, &dag_id).await?;
    let page = |status: StatusCode, problem: Option<&str>, preview: Option<&[Value]>| {
        (status, backfill_page(&session, &dag, &form, problem, preview)).into_response()
    };
    let body = match backfill_body(&dag_id, &form) {
        Ok(body) => body,
        Err(problem) => return Ok(page(StatusCode::BAD_REQUEST, Some(&problem), None)),
    };
    let preview = form.action == "preview";
    let api_path = if preview { "/api/v2/backfills/dry_run" } else { BACKFILL_ROUTE };
    match api.call(&session, Method::POST, api_path, Some(&body)).await {
        Ok(reply) if preview => {
            let dates = reply.json["backfills"].as_array().cloned().unwrap_or_default();
            Ok(page(StatusCode::OK, None, Some(&dates)))
        }
        Ok(_) => Ok(Redirect::to(&path(&["dags", &dag_id, "runs"])).into_response()),
        Err(UiError::Api(error)) => {
            let (status, detail) = error.status_and_detail();
            Ok(page(status, Some(&detail), None))
        }
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(yaml: serde_json::Value) -> Params {
        Params::declare(yaml.as_object().expect("an object").clone()).expect("valid params")
    }

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn each_type_gets_its_kind_of_field() {
        let declared = params(json!({
            "env": {"type": "string", "enum": ["dev", "prod"]},
            "flag": {"type": "boolean", "default": false},
            "count": {"type": "integer", "default": 1},
            "ratio": {"type": "number", "default": 0.5},
            "name": {"type": "string", "default": "x"},
            "items": {"type": "array", "default": []},
            "tag": {"type": ["null", "string"], "default": null},
            "region": "eu",
        }));
        let kinds: BTreeMap<&str, FieldKind> = declared.iter().map(|(n, p)| (n, kind_of(p))).collect();
        assert_eq!(kinds["env"], FieldKind::Choice);
        assert_eq!(kinds["flag"], FieldKind::Checkbox);
        assert_eq!(kinds["count"], FieldKind::Integer);
        assert_eq!(kinds["ratio"], FieldKind::Number);
        assert_eq!(kinds["name"], FieldKind::Text);
        assert_eq!(kinds["items"], FieldKind::Json);
        assert_eq!(kinds["tag"], FieldKind::Json);
        assert_eq!(kinds["region"], FieldKind::Text, "an untyped param is entered as its default's type");
    }

    #[test]
    fn fields_become_json_of_the_params_types() {
        let declared = params(json!({
            "count": {"type": "integer", "default": 1},
            "flag": {"type": "boolean", "default": true},
            "items": {"type": "array", "default": []},
            "level": {"type": "integer", "enum": [1, 2]},
        }));
        let body = trigger_body(
            &declared,
            &fields(&[
                ("param.count", " 7 "),
                ("checkbox.flag", "1"),
                ("param.items", "[1, \"a\"]"),
                ("param.level", "2"),
                ("conf", "{\"extra\": true, \"count\": 0}"),
                ("logical_date", "2026-01-31T14:30"),
                ("run_id", ""),
            ]),
        )
        .unwrap();
        assert_eq!(
            body,
            json!({
                "logical_date": "2026-01-31T14:30:00+00:00",
                "conf": {"count": 7, "flag": false, "items": [1, "a"], "level": 2, "extra": true},
            })
        );
    }

    #[test]
    fn an_empty_field_leaves_the_param_to_its_default_and_a_bad_number_names_the_param() {
        let declared = params(json!({"count": {"type": "integer", "default": 1}}));
        assert_eq!(trigger_body(&declared, &fields(&[("param.count", "")])).unwrap(), json!({"conf": {}}));
        let problem = trigger_body(&declared, &fields(&[("param.count", "seven")])).unwrap_err();
        assert!(problem.contains("param `count`") && problem.contains("seven"), "{problem}");
    }

    #[test]
    fn form_times_are_utc() {
        let at = utc_from_form("x", "2026-01-31T14:30:05").unwrap();
        assert_eq!(at.to_rfc3339(), "2026-01-31T14:30:05+00:00");
        assert_eq!(utc_from_form("x", "2026-01-31").unwrap().to_rfc3339(), "2026-01-31T00:00:00+00:00");
        assert!(utc_from_form("the from date", "soon").unwrap_err().starts_with("the from date `soon`"));
    }
}
