//! Jinja templating of operator arguments, with Airflow's template variables.
//!
//! A caller (the scheduler, right before it dispatches a task) builds a
//! [`TemplateContext`] from what it already has, and calls [`render_operator`]:
//!
//! - `dag_id`, `task_id`, `map_index`, `try_number`: the task instance being dispatched;
//! - `run_id`, `logical_date`, `data_interval_start`/`_end`, `run_after`, `conf`: its `dag_runs` row;
//! - `params`: [`resolve_params`](crate::dag::resolve_params) of the run's DAG version's params
//!   and the run's `conf` (already checked when the run was triggered, so a failure here means
//!   the DAG changed under the run);
//! - `xcoms`: the XComs of the task's upstream tasks, task id → key → value (for a mapped upstream,
//!   the caller decides the value, e.g. a list in map-index order). Only what is loaded here can be
//!   pulled; a missing task or key pulls `None`, as in Airflow;
//! - `variables`: Airflow's Variables, key → text, read as `var.value.<key>` (the text) and
//!   `var.json.<key>` (the text parsed as JSON). The caller loads them only when
//!   [`operator_reads_variables`]; a key that does not exist is an error naming it, unless read
//!   as `var.value.get('key', 'default')`.
//!
//! Variables, as in Airflow: `ds`, `ds_nodash`, `ts`, `ts_nodash`, `ts_nodash_with_tz`,
//! `logical_date`, `data_interval_start`, `data_interval_end`, `run_id`, `params`,
//! `dag_run.{conf, run_id, logical_date, run_after, data_interval_start, data_interval_end}`,
//! `ti.{task_id, try_number, map_index, run_id, dag_id, xcom_pull(...)}` (also as
//! `task_instance`), `task.task_id`, `dag.dag_id`, `var.value.<key>`, `var.json.<key>`,
//! `conn.<id>.{host, login, password, schema, port, conn_type, extra, extra_dejson}` (Airflow's
//! connection attributes, when the caller loaded [`TemplateContext::connections`]),
//! `macros.ds_add(ds, days)` and
//! `macros.ds_format(ds, input_format, output_format)` (Python `strftime` formats). Dates
//! are ISO 8601 strings with `+00:00`. A run without a logical date (a manual run may have
//! none) takes its `run_after` time for `ds`, `ts`, `logical_date` and the data interval;
//! `dag_run.logical_date` stays `None`.
//!
//! Differences from Airflow, on purpose:
//! - non-string values print as JSON (`{"a": 1}`, `[1, 2]`, `true`, `null`) where Airflow prints
//!   Python's repr (`{'a': 1}`, `True`, `None`): JSON is what a shell command or a program
//!   downstream can parse;
//! - a trailing newline is kept, so rendering changes only the template's tags;
//! - a string without `{{` or `{%` is returned as is, without the engine (so `${#x}` in a bash
//!   command is not taken for a Jinja comment unless the command is a template anyway).
//!
//! Undefined variables are errors (Airflow's `StrictUndefined`); dict methods such as
//! `dag_run.conf.get('k', 'default')` and Python string methods work as in Jinja.
//!
//! A template is untrusted input (DAG files can be pushed over the API) rendered in the
//! scheduler, so:
//! - it sees only the [`TemplateContext`] the caller hands it: the environment has no loader
//!   (`include`, `import`, `extends` and `from` find no template, on disk or anywhere), no
//!   global that reads the process environment or files, and the Variables and Connections
//!   it can read are those the caller loaded;
//! - one render may spend at most [`MAX_TEMPLATE_FUEL`] of minijinja's fuel, which every
//!   instruction and every byte the template produces (output, strings, lists) costs: a
//!   template that loops without end or builds ever larger strings fails with
//!   [`TemplateError::TooMuchWork`] instead of holding the scheduler's CPU or memory.

use std::{collections::BTreeMap, fmt::Write as _, sync::Arc, sync::OnceLock};

use chrono::{format::StrftimeItems, DateTime, NaiveDate, NaiveTime, SecondsFormat, Timelike, Utc};
use minijinja::{
    value::{from_args, Kwargs, Object, ObjectRepr, Serde, ValueKind},
    AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value,
};

use crate::dag::OperatorSpec;

/// XComs a template may pull: task id → key → value.
pub type Xcoms = BTreeMap<String, BTreeMap<String, serde_json::Value>>;

/// Variables a template may read: key → text value.
pub type Variables = BTreeMap<String, String>;

/// Connections a template may read as `conn.<id>`: id → the connection, decrypted,
/// or why it could not be (shown only when a template reads that one).
pub type Connections = BTreeMap<String, Result<crate::connections::Connection, String>>;

/// minijinja fuel one render may spend: about a million instructions, or 64 MB of produced
/// data (one fuel pays for 64 bytes). Rendering a 1 MiB XCom into a command takes about 16,000.
pub const MAX_TEMPLATE_FUEL: u64 = 1_000_000;

/// The XCom key `ti.xcom_pull` reads when given none.
pub const RETURN_VALUE_KEY: &str = "return_value";

/// Everything a template can see about the task instance being rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateContext {
    /// The DAG's id.
    pub dag_id: String,
    /// The task's id.
    pub task_id: String,
    /// The run's id.
    pub run_id: String,
    /// The map index (-1 for a task that is not mapped).
    pub map_index: i32,
    /// The try being rendered (1 for the first).
    pub try_number: i32,
    /// The run's logical date, if it has one.
    pub logical_date: Option<DateTime<Utc>>,
    /// Start of the run's data interval, if it has one.
    pub data_interval_start: Option<DateTime<Utc>>,
    /// End of the run's data interval, if it has one.
    pub data_interval_end: Option<DateTime<Utc>>,
    /// When the run was due; stands in for a missing logical date.
    pub run_after: DateTime<Utc>,
    /// The run's `conf`, as triggered.
    pub conf: serde_json::Map<String, serde_json::Value>,
    /// The run's params, already resolved against `conf`.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Upstream XComs that `ti.xcom_pull` can return.
    pub xcoms: Xcoms,
    /// The element a mapped task instance runs for (`{{ item }}`); `None` when not mapped.
    pub map_item: Option<serde_json::Value>,
    /// Variables that `var.value.<key>` and `var.json.<key>` read (empty unless loaded).
    pub variables: Arc<Variables>,
    /// Connections that `conn.<id>` reads (empty unless loaded).
    pub connections: Arc<Connections>,
}

/// Why a template could not be rendered, with the line when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template is not valid Jinja.
    #[error("template syntax error{}: {detail}", on_line(*line))]
    Syntax {
        /// Line of the template (1 for the first), when known.
        line: Option<usize>,
        /// What the parser found wrong.
        detail: String,
    },
    /// The template uses a variable or attribute that does not exist.
    #[error("`{name}` is undefined{}; check its spelling against the template variables", on_line(*line))]
    Undefined {
        /// The undefined expression, e.g. `params.regoin`.
        name: String,
        /// Line of the template, when known.
        line: Option<usize>,
    },
    /// Evaluating the template failed (bad filter, macro argument, operation).
    #[error("template error{}: {detail}", on_line(*line))]
    Render {
        /// Line of the template, when known.
        line: Option<usize>,
        /// What went wrong.
        detail: String,
    },
    /// The render spent its [`MAX_TEMPLATE_FUEL`]: an endless or very long loop, or ever larger values.
    #[error(
        "the template does more work than a render may{}: the limit is {MAX_TEMPLATE_FUEL} fuel (an instruction \
         costs 1, 64 bytes of produced text cost 1); loop over less, or do the heavy work in the task itself",
        on_line(*line)
    )]
    TooMuchWork {
        /// Line of the template, when known.
        line: Option<usize>,
    },
    /// Rendering one field of an operator failed.
    #[error("{field}: {source}")]
    Field {
        /// The field, e.g. `command` or `env.TARGET`.
        field: String,
        /// Why it failed.
        source: Box<TemplateError>,
    },
}

fn on_line(line: Option<usize>) -> String {
    line.map(|line| format!(" on line {line}")).unwrap_or_default()
}

impl From<Error> for TemplateError {
    fn from(error: Error) -> Self {
        let line = error.line();
        let detail = error.detail().map(str::to_string).unwrap_or_else(|| error.kind().to_string());
        match error.kind() {
            ErrorKind::SyntaxError => TemplateError::Syntax { line, detail },
            ErrorKind::OutOfFuel => TemplateError::TooMuchWork { line },
            ErrorKind::UndefinedError => match undefined_name(&detail) {
                Some(name) => TemplateError::Undefined { name, line },
                None => TemplateError::Render { line, detail: format!("undefined value: {detail}") },
            },
            _ => TemplateError::Render { line, detail },
        }
    }
}

/// The expression in minijinja's "`x.y` is undefined" detail.
fn undefined_name(detail: &str) -> Option<String> {
    let start = detail.find('`')? + 1;
    let end = start + detail[start..].find("` is undefined")?;
    Some(detail[start..end].to_string())
}

/// Whether `text` needs the template engine at all.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// The operator's templatable arguments: bash's `command`, `env` values and `cwd`.
fn templated_fields(operator: &OperatorSpec) -> Vec<&str> {
    match operator {
        OperatorSpec::Noop => Vec::new(),
        OperatorSpec::Bash { command, env, cwd, .. } | OperatorSpec::Branch { command, env, cwd } => {
            std::iter::once(command.as_str()).chain(env.values().map(String::as_str)).chain(cwd.as_deref()).collect()
        }
        OperatorSpec::Http(args) => args.templated_fields(),
        OperatorSpec::Sql(args) => args.templated_fields(),
        OperatorSpec::Python(args) => args.templated_fields(),
        OperatorSpec::HttpSensor(sensor) => sensor.check.templated_fields(),
        OperatorSpec::SqlSensor(sensor) => sensor.check.templated_fields(),
        OperatorSpec::FileSensor(sensor) => sensor.check.templated_fields(),
        OperatorSpec::ExternalTaskSensor(sensor) => sensor.check.templated_fields(),
        OperatorSpec::Custom { args, .. } => args.values().flat_map(crate::dag::json_strings).collect(),
    }
}

/// Whether any argument of the operator needs rendering.
pub fn operator_is_templated(operator: &OperatorSpec) -> bool {
    templated_fields(operator).into_iter().any(is_template)
}

/// Whether a templated argument of the operator mentions `word` (e.g. `xcom_pull`,
/// so a caller loads XComs only for templates that can pull them).
pub fn operator_mentions(operator: &OperatorSpec, word: &str) -> bool {
    templated_fields(operator).into_iter().any(|text| is_template(text) && text.contains(word))
}

/// Whether a templated argument of the operator may read Connections (`conn.x.host`),
/// so a caller loads them only for such templates.
pub fn operator_reads_connections(operator: &OperatorSpec) -> bool {
    operator_mentions(operator, "conn")
}

/// Whether a templated argument of the operator may read Variables (`var.value.x`,
/// `var.json.x`), so a caller loads them only for such templates.
pub fn operator_reads_variables(operator: &OperatorSpec) -> bool {
    operator_mentions(operator, "var")
}

/// Renders one template string against `ctx`.
pub fn render(template: &str, ctx: &TemplateContext) -> Result<String, TemplateError> {
    if !is_template(template) {
        return Ok(template.to_string());
    }
    render_with(template, &context_value(ctx))
}

/// The operator with every templated argument rendered: bash's `command`, each `env` value and `cwd`.
pub fn render_operator(operator: &OperatorSpec, ctx: &TemplateContext) -> Result<OperatorSpec, TemplateError> {
    let context = OnceLock::new();
    let render_field = |field: &str, text: &str| -> Result<String, TemplateError> {
        if !is_template(text) {
            return Ok(text.to_string());
        }
        render_with(text, context.get_or_init(|| context_value(ctx)))
            .map_err(|error| TemplateError::Field { field: field.to_string(), source: Box::new(error) })
    };
    let render_env = |env: &BTreeMap<String, String>| -> Result<BTreeMap<String, String>, TemplateError> {
        env.iter().map(|(name, value)| Ok((name.clone(), render_field(&format!("env.{name}"), value)?))).collect()
    };
    let render_cwd = |cwd: &Option<String>| cwd.as_deref().map(|cwd| render_field("cwd", cwd)).transpose();
    Ok(match operator {
        OperatorSpec::Noop => OperatorSpec::Noop,
        OperatorSpec::Bash { command, env, cwd, do_xcom_push } => OperatorSpec::Bash {
            command: render_field("command", command)?,
            env: render_env(env)?,
            cwd: render_cwd(cwd)?,
            do_xcom_push: *do_xcom_push,
        },
        OperatorSpec::Branch { command, env, cwd } => OperatorSpec::Branch {
            command: render_field("command", command)?,
            env: render_env(env)?,
            cwd: render_cwd(cwd)?,
        },
        OperatorSpec::Http(args) => OperatorSpec::Http(args.render(&mut |field, text| render_field(field, text))?),
        OperatorSpec::Sql(args) => OperatorSpec::Sql(args.render(&mut |field, text| render_field(field, text))?),
        OperatorSpec::Python(args) => OperatorSpec::Python(args.render(&mut |field, text| render_field(field, text))?),
        OperatorSpec::HttpSensor(s) => {
            OperatorSpec::HttpSensor(s.try_map(|c| c.render(&mut |f, t| render_field(f, t)))?)
        }
        OperatorSpec::SqlSensor(s) => OperatorSpec::SqlSensor(s.try_map(|c| c.render(&mut |f, t| render_field(f, t)))?),
        OperatorSpec::FileSensor(s) => {
            OperatorSpec::FileSensor(s.try_map(|c| c.render(&mut |f, t| render_field(f, t)))?)
        }
        OperatorSpec::ExternalTaskSensor(s) => {
            OperatorSpec::ExternalTaskSensor(s.try_map(|c| c.render(&mut |f, t| render_field(f, t)))?)
        }
        OperatorSpec::Custom { name, args } => OperatorSpec::Custom {
            name: name.clone(),
            args: args
                .iter()
                .map(|(key, value)| {
                    let rendered =
                        crate::dag::render_json(&format!("args.{key}"), value, &mut |f, t| render_field(f, t))?;
                    Ok((key.clone(), rendered))
                })
                .collect::<Result<_, TemplateError>>()?,
        },
    })
}

fn render_with(template: &str, context: &Value) -> Result<String, TemplateError> {
    let template = environment().template_from_str(template)?;
    Ok(template.render(context)?)
}

/// The one template environment: strict undefined, no autoescape, kept trailing newline, JSON output,
/// a fuel budget, and no loader (so no template can name another, nor a file).
fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(build_environment)
}

fn build_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .expect("the default delimiters are valid"),
    );
    env.set_fuel(Some(MAX_TEMPLATE_FUEL));
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.set_formatter(|out, state, value| match value.kind() {
        ValueKind::None | ValueKind::Bool | ValueKind::Seq | ValueKind::Map => match serde_json::to_string(value) {
            Ok(json) => out.write_str(&json).map_err(|_| Error::from(ErrorKind::WriteFailure)),
            Err(_) => minijinja::escape_formatter(out, state, value),
        },
        _ => minijinja::escape_formatter(out, state, value),
    });
    env
}

fn context_value(ctx: &TemplateContext) -> Value {
    let date = ctx.logical_date.unwrap_or(ctx.run_after);
    let iso = |d: DateTime<Utc>| Value::from(iso_8601(d));
    let iso_or_none = |d: Option<DateTime<Utc>>| d.map(iso).unwrap_or(Value::from(()));
    let interval_start = ctx.data_interval_start.unwrap_or(date);
    let interval_end = ctx.data_interval_end.unwrap_or(date);
    let conf = Value::from(Serde(&ctx.conf));

    let dag_run = map([
        ("dag_id", Value::from(ctx.dag_id.clone())),
        ("run_id", Value::from(ctx.run_id.clone())),
        ("conf", conf),
        ("logical_date", iso_or_none(ctx.logical_date)),
        ("run_after", iso(ctx.run_after)),
        ("data_interval_start", iso_or_none(ctx.data_interval_start)),
        ("data_interval_end", iso_or_none(ctx.data_interval_end)),
    ]);
    let ti = map([
        ("dag_id", Value::from(ctx.dag_id.clone())),
        ("task_id", Value::from(ctx.task_id.clone())),
        ("run_id", Value::from(ctx.run_id.clone())),
        ("try_number", Value::from(ctx.try_number)),
        ("map_index", Value::from(ctx.map_index)),
        ("xcom_pull", xcom_pull(ctx.dag_id.clone(), Arc::new(ctx.xcoms.clone()))),
    ]);
    let macros = map([("ds_add", Value::from_function(ds_add)), ("ds_format", Value::from_function(ds_format))]);
    let var = map([
        ("value", Value::from_object(VariableAccessor { variables: ctx.variables.clone(), json: false })),
        ("json", Value::from_object(VariableAccessor { variables: ctx.variables.clone(), json: true })),
    ]);

    let context = map([
        ("ds", Value::from(date.format("%Y-%m-%d").to_string())),
        ("ds_nodash", Value::from(date.format("%Y%m%d").to_string())),
        ("ts", iso(date)),
        ("ts_nodash", Value::from(date.format("%Y%m%dT%H%M%S").to_string())),
        ("ts_nodash_with_tz", Value::from(date.format("%Y%m%dT%H%M%S%z").to_string())),
        ("logical_date", iso(date)),
        ("data_interval_start", iso(interval_start)),
        ("data_interval_end", iso(interval_end)),
        ("run_id", Value::from(ctx.run_id.clone())),
        ("params", Value::from(Serde(&ctx.params))),
        ("dag_run", dag_run),
        ("task_instance", ti.clone()),
        ("ti", ti),
        ("task", map([("task_id", Value::from(ctx.task_id.clone()))])),
        ("dag", map([("dag_id", Value::from(ctx.dag_id.clone()))])),
        ("macros", macros),
        ("var", var),
        ("conn", Value::from_object(ConnectionAccessor { connections: ctx.connections.clone() })),
    ]);
    match &ctx.map_item {
        Some(item) => minijinja::context! { item => Value::from(Serde(item)), ..context },
        None => context,
    }
}

fn map<const N: usize>(entries: [(&'static str, Value); N]) -> Value {
    Value::from_object(entries.into_iter().collect::<BTreeMap<&'static str, Value>>())
}

/// Python's `datetime.isoformat()`: seconds, microseconds only when there are some, `+00:00`.
fn iso_8601(date: DateTime<Utc>) -> String {
    let precision = if date.nanosecond() / 1_000 == 0 { SecondsFormat::Secs } else { SecondsFormat::Micros };
    date.to_rfc3339_opts(precision, false)
}

/// `ti.xcom_pull(task_ids, key='return_value')`: one value (or none) for a task id, a list for a list of them.
fn xcom_pull(dag_id: String, xcoms: Arc<Xcoms>) -> Value {
    Value::from_function(move |task_ids: Option<Value>, kwargs: Kwargs| -> Result<Value, Error> {
        let task_ids = match (task_ids, kwargs.get::<Option<Value>>("task_ids")?) {
            (Some(_), Some(_)) => {
                return Err(Error::new(ErrorKind::TooManyArguments, "xcom_pull: task_ids given twice"));
            }
            (Some(ids), None) | (None, Some(ids)) => ids,
            (None, None) => {
                return Err(Error::new(
                    ErrorKind::MissingArgument,
                    "xcom_pull needs task_ids, e.g. ti.xcom_pull('extract')",
                ));
            }
        };
        let key = kwargs.get::<Option<String>>("key")?.unwrap_or_else(|| RETURN_VALUE_KEY.to_string());
        if let Some(other) = kwargs.get::<Option<String>>("dag_id")?.filter(|other| *other != dag_id) {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("xcom_pull from another DAG (`{other}`) is not supported"),
            ));
        }
        kwargs.assert_all_used()?;
        let pull = |task_id: &str| match xcoms.get(task_id).and_then(|keys| keys.get(&key)) {
            Some(value) => Value::from(Serde(value)),
            None => Value::from(()),
        };
        if let Some(task_id) = task_ids.as_str() {
            return Ok(pull(task_id));
        }
        if task_ids.kind() != ValueKind::Seq {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "xcom_pull: task_ids must be a task id or a list of them",
            ));
        }
        task_ids
            .try_iter()?
            .map(|id| match id.as_str() {
                Some(task_id) => Ok(pull(task_id)),
                None => Err(Error::new(ErrorKind::InvalidOperation, "xcom_pull: task_ids must be strings")),
            })
            .collect()
    })
}

/// `var.value` (each variable's text) or `var.json` (each variable's text parsed as JSON),
/// Airflow's variable accessors: `var.value.key`, `var.value['key']`, `var.value.get('key', default)`.
struct VariableAccessor {
    variables: Arc<Variables>,
    json: bool,
}

impl VariableAccessor {
    fn name(&self) -> &'static str {
        if self.json {
            "var.json"
        } else {
            "var.value"
        }
    }

    /// The variable's value, an invalid value (an error when used) when it is not JSON
    /// but read as JSON, or `None` when there is no such variable.
    fn lookup(&self, key: &str) -> Option<Value> {
        let text = self.variables.get(key)?;
        if !self.json {
            return Some(Value::from(text.as_str()));
        }
        Some(match serde_json::from_str::<serde_json::Value>(text) {
            Ok(json) => Value::from(Serde(json)),
            Err(error) => Value::from(Error::new(
                ErrorKind::InvalidOperation,
                format!("variable `{key}` is not JSON ({error}); read its text with var.value"),
            )),
        })
    }

    fn unknown(&self, key: &str) -> Error {
        Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "variable `{key}` (read as {}) does not exist; create it with POST /api/v2/variables, \
                 or give a default with {}.get('{key}', 'default')",
                self.name(),
                self.name()
            ),
        )
    }
}

/// Without the values, so printing the accessor shows no secret.
impl std::fmt::Debug for VariableAccessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} variables)", self.name(), self.variables.len())
    }
}

impl Object for VariableAccessor {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        Some(self.lookup(key).unwrap_or_else(|| Value::from(self.unknown(key))))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut minijinja::State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method != "get" {
            return Err(Error::from(ErrorKind::UnknownMethod));
        }
        let (key, default): (&str, Option<Value>) = from_args(args)?;
        match (self.lookup(key), default) {
            (Some(value), _) => Ok(value),
            (None, Some(default)) => Ok(default),
            (None, None) => Err(self.unknown(key)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}>", self.name())
    }
}

/// `conn.<id>`: Airflow's connection accessor, with `host`, `login`, `password`, `schema`,
/// `port`, `conn_type`, `conn_id`, `description`, `extra` (text) and `extra_dejson` (parsed).
struct ConnectionAccessor {
    connections: Arc<Connections>,
}

/// Without the connections, so printing the accessor shows no secret.
impl std::fmt::Debug for ConnectionAccessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conn ({} connections)", self.connections.len())
    }
}

impl Object for ConnectionAccessor {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let id = key.as_str()?;
        let error = |detail: String| Some(Value::from(Error::new(ErrorKind::InvalidOperation, detail)));
        match self.connections.get(id) {
            Some(Ok(c)) => Some(Value::from(Serde(serde_json::json!({
                "conn_id": c.conn_id, "conn_type": c.conn_type, "description": c.description,
                "host": c.host, "login": c.login, "password": c.password, "schema": c.schema,
                "port": c.port, "extra": c.extra, "extra_dejson": c.extra_dejson(),
            })))),
            Some(Err(problem)) => error(format!("connection `{id}` cannot be read: {problem}")),
            None => error(format!(
                "connection `{id}` does not exist; create it with POST /api/v2/connections or set GUST_CONN_{}",
                id.to_uppercase()
            )),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<conn>")
    }
}

/// `macros.ds_add('2026-01-01', 5)` is `'2026-01-06'`; days may be negative.
fn ds_add(ds: &str, days: i64) -> Result<String, Error> {
    let date = NaiveDate::parse_from_str(ds, "%Y-%m-%d").map_err(|_| {
        Error::new(ErrorKind::InvalidOperation, format!("macros.ds_add: `{ds}` is not a YYYY-MM-DD date"))
    })?;
    let shifted = chrono::Days::new(days.unsigned_abs());
    let result = if days >= 0 { date.checked_add_days(shifted) } else { date.checked_sub_days(shifted) };
    let result = result.ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "macros.ds_add: date out of range"))?;
    Ok(result.format("%Y-%m-%d").to_string())
}

/// `macros.ds_format('2026-01-05', '%Y-%m-%d', '%d/%m/%Y')` is `'05/01/2026'` (Python strftime formats).
fn ds_format(ds: &str, input_format: &str, output_format: &str) -> Result<String, Error> {
    let fail = |problem: String| Error::new(ErrorKind::InvalidOperation, format!("macros.ds_format: {problem}"));
    let input_format = python_format(input_format);
    let output_format = python_format(output_format);
    let mut parsed = chrono::format::Parsed::new();
    chrono::format::parse(&mut parsed, ds, strftime_items(&input_format).map_err(&fail)?)
        .map_err(|e| fail(format!("`{ds}` does not match `{input_format}` ({e})")))?;
    let date = parsed.to_naive_date().map_err(|e| fail(format!("`{input_format}` does not give a full date ({e})")))?;
    let time = parsed.to_naive_time().unwrap_or(NaiveTime::MIN);
    let mut out = String::new();
    write!(out, "{}", date.and_time(time).format_with_items(strftime_items(&output_format).map_err(&fail)?))
        .map_err(|_| fail(format!("`{output_format}` cannot format a date")))?;
    Ok(out)
}

/// Python's `%f` is microseconds; chrono's is nanoseconds.
fn python_format(format: &str) -> String {
    format.replace("%f", "%6f")
}

fn strftime_items(format: &str) -> Result<StrftimeItems<'_>, String> {
    let items = StrftimeItems::new(format);
    if items.clone().any(|item| matches!(item, chrono::format::Item::Error)) {
        return Err(format!("bad format `{format}`"));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    fn ctx() -> TemplateContext {
        let warehouse = crate::connections::Connection {
            conn_id: "warehouse".into(),
            conn_type: "postgres".into(),
            host: Some("db.example".into()),
            login: Some("loader".into()),
            password: Some("hunter2".into()),
            port: Some(5432),
            schema: Some("dwh".into()),
            extra: Some(r#"{"sslmode": "require"}"#.into()),
            ..Default::default()
        };
        TemplateContext {
            map_item: None,
            connections: Arc::new(BTreeMap::from([
                ("warehouse".to_string(), Ok(warehouse)),
                ("broken".to_string(), Err("no key".to_string())),
            ])),
            variables: Arc::new(BTreeMap::from([
                ("bucket".to_string(), "s3://warehouse".to_string()),
                ("cfg".to_string(), r#"{"region": "eu", "shards": [1, 2]}"#.to_string()),
                ("my-key".to_string(), "dashed".to_string()),
            ])),
            dag_id: "etl".into(),
            task_id: "load".into(),
            run_id: "scheduled__2026-03-04T00:00:00+00:00".into(),
            map_index: -1,
            try_number: 2,
            logical_date: Some(day(2026, 3, 4)),
            data_interval_start: Some(day(2026, 3, 4)),
            data_interval_end: Some(day(2026, 3, 5)),
            run_after: day(2026, 3, 5),
            conf: json!({"region": "us", "flags": {"dry": true}}).as_object().unwrap().clone(),
            params: json!({"region": "eu", "count": 3, "tags": ["a", "b"]}).as_object().unwrap().clone(),
            xcoms: BTreeMap::from([(
                "extract".to_string(),
                BTreeMap::from([
                    ("return_value".to_string(), json!("/data/2026-03-04.csv")),
                    ("rows".to_string(), json!(42)),
                ]),
            )]),
        }
    }

    fn r(template: &str) -> String {
        render(template, &ctx()).unwrap_or_else(|e| panic!("{template}: {e}"))
    }

    fn err(template: &str) -> TemplateError {
        render(template, &ctx()).unwrap_err()
    }

    #[test]
    fn connections_are_read_with_airflows_attribute_names() {
        assert_eq!(
            r("{{ conn.warehouse.login }}:{{ conn.warehouse.password }}@{{ conn.warehouse.host }}:{{ conn.warehouse.port }}/{{ conn.warehouse.schema }}"),
            "loader:hunter2@db.example:5432/dwh"
        );
        assert_eq!(
            r("{{ conn.warehouse.extra_dejson.sslmode }} {{ conn['warehouse'].conn_type }}"),
            "require postgres"
        );
        let error = err("{{ conn.nope.host }}").to_string();
        assert!(error.contains("connection `nope` does not exist") && error.contains("GUST_CONN_NOPE"), "{error}");
        assert!(err("{{ conn.broken.host }}").to_string().contains("no key"));
    }

    #[test]
    fn date_variables_follow_airflow() {
        assert_eq!(r("{{ ds }}"), "2026-03-04");
        assert_eq!(r("{{ ds_nodash }}"), "20260304");
        assert_eq!(r("{{ ts }}"), "2026-03-04T00:00:00+00:00");
        assert_eq!(r("{{ ts_nodash }}"), "20260304T000000");
        assert_eq!(r("{{ ts_nodash_with_tz }}"), "20260304T000000+0000");
        assert_eq!(r("{{ logical_date }}"), "2026-03-04T00:00:00+00:00");
        assert_eq!(
            r("{{ data_interval_start }} {{ data_interval_end }}"),
            "2026-03-04T00:00:00+00:00 2026-03-05T00:00:00+00:00"
        );
    }

    #[test]
    fn a_timestamp_with_microseconds_keeps_them() {
        let mut ctx = ctx();
        ctx.logical_date = Some(day(2026, 3, 4) + chrono::Duration::microseconds(1_500));
        assert_eq!(render("{{ ts }}", &ctx).unwrap(), "2026-03-04T00:00:00.001500+00:00");
    }

    #[test]
    fn a_run_without_a_logical_date_uses_its_run_after_time() {
        let mut ctx = ctx();
        ctx.logical_date = None;
        ctx.data_interval_start = None;
        ctx.data_interval_end = None;
        ctx.run_after = Utc.with_ymd_and_hms(2026, 7, 8, 9, 10, 11).unwrap();
        let text = "{{ ds }} {{ ts }} {{ data_interval_end }} {{ dag_run.logical_date }} {{ dag_run.run_after }}";
        assert_eq!(
            render(text, &ctx).unwrap(),
            "2026-07-08 2026-07-08T09:10:11+00:00 2026-07-08T09:10:11+00:00 null 2026-07-08T09:10:11+00:00"
        );
    }

    #[test]
    fn run_dag_and_task_instance_variables_are_available() {
        assert_eq!(
            r("{{ run_id }}|{{ dag_run.run_id }}"),
            "scheduled__2026-03-04T00:00:00+00:00|scheduled__2026-03-04T00:00:00+00:00"
        );
        assert_eq!(r("{{ dag.dag_id }} {{ dag_run.dag_id }} {{ task.task_id }}"), "etl etl load");
        assert_eq!(r("{{ ti.task_id }} {{ ti.try_number }} {{ ti.map_index }}"), "load 2 -1");
        assert_eq!(r("{{ task_instance.try_number }}"), "2");
        assert_eq!(r("{{ dag_run.logical_date }}"), "2026-03-04T00:00:00+00:00");
    }

    #[test]
    fn params_and_conf_are_available_and_dicts_render_as_json() {
        assert_eq!(r("--region {{ params.region }} --count {{ params.count + 1 }}"), "--region eu --count 4");
        assert_eq!(r("{{ params['region'] }}"), "eu");
        assert_eq!(r("{{ dag_run.conf.region }}"), "us");
        assert_eq!(r("{{ dag_run.conf.get('missing', 'fallback') }}"), "fallback");
        assert_eq!(r("{{ dag_run.conf.flags }}"), r#"{"dry":true}"#);
        assert_eq!(r("{{ params.tags }}"), r#"["a","b"]"#);
        assert_eq!(r("{{ params.tags | tojson }}"), r#"["a", "b"]"#);
        assert_eq!(r("{{ dag_run.conf.flags.dry }}"), "true");
        assert_eq!(r("{% for t in params.tags %}{{ t }};{% endfor %}"), "a;b;");
    }

    #[test]
    fn xcom_pull_reads_upstream_values_by_task_and_key() {
        assert_eq!(r("{{ ti.xcom_pull('extract') }}"), "/data/2026-03-04.csv");
        assert_eq!(r("{{ ti.xcom_pull(task_ids='extract') }}"), "/data/2026-03-04.csv");
        assert_eq!(r("{{ ti.xcom_pull(task_ids='extract', key='rows') }}"), "42");
        assert_eq!(r("{{ task_instance.xcom_pull('extract', key='rows') + 1 }}"), "43");
        assert_eq!(r("{{ ti.xcom_pull(task_ids=['extract', 'nope']) }}"), r#"["/data/2026-03-04.csv",null]"#);
    }

    #[test]
    fn a_missing_xcom_is_none_as_in_airflow() {
        assert_eq!(r("{{ ti.xcom_pull('nope') }}"), "null");
        assert_eq!(r("{{ ti.xcom_pull('extract', key='nope') is none }}"), "true");
        assert_eq!(r("{% if not ti.xcom_pull('nope') %}empty{% endif %}"), "empty");
    }

    #[test]
    fn xcom_pull_rejects_bad_arguments() {
        let error = err("{{ ti.xcom_pull() }}").to_string();
        assert!(error.contains("xcom_pull needs task_ids"), "{error}");
        let error = err("{{ ti.xcom_pull('extract', keyy='rows') }}").to_string();
        assert!(error.contains("keyy"), "{error}");
        let error = err("{{ ti.xcom_pull('extract', dag_id='other') }}").to_string();
        assert!(error.contains("another DAG (`other`)"), "{error}");
    }

    #[test]
    fn ds_add_shifts_a_date_by_days() {
        assert_eq!(r("{{ macros.ds_add(ds, 5) }}"), "2026-03-09");
        assert_eq!(r("{{ macros.ds_add(ds, -4) }}"), "2026-02-28");
        assert_eq!(r("{{ macros.ds_add('2024-12-31', 1) }}"), "2025-01-01");
        let error = err("{{ macros.ds_add('tomorrow', 1) }}").to_string();
        assert!(error.contains("`tomorrow` is not a YYYY-MM-DD date"), "{error}");
    }

    #[test]
    fn ds_format_reformats_with_python_formats() {
        assert_eq!(r("{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }}"), "04/03/2026");
        assert_eq!(r("{{ macros.ds_format('20260304', '%Y%m%d', '%Y-%m-%d') }}"), "2026-03-04");
        assert_eq!(r("{{ macros.ds_format(ts, '%Y-%m-%dT%H:%M:%S%:z', '%H%M %f') }}"), "0000 000000");
        let error = err("{{ macros.ds_format('2026/03/04', '%Y-%m-%d', '%Y') }}").to_string();
        assert!(error.contains("does not match `%Y-%m-%d`"), "{error}");
    }

    #[test]
    fn an_undefined_variable_is_an_error_naming_it() {
        assert_eq!(err("echo {{ dss }}"), TemplateError::Undefined { name: "dss".into(), line: Some(1) });
        let error = err("line one\necho {{ params.regoin }}");
        assert_eq!(error, TemplateError::Undefined { name: "params.regoin".into(), line: Some(2) });
        assert_eq!(
            error.to_string(),
            "`params.regoin` is undefined on line 2; check its spelling against the template variables"
        );
        assert_eq!(r("{{ params.regoin is defined }}"), "false");
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let error = err("echo ok\necho {{ ds }\n");
        let TemplateError::Syntax { line, .. } = &error else { panic!("{error:?}") };
        assert_eq!(*line, Some(2));
        assert!(error.to_string().starts_with("template syntax error on line 2: "), "{error}");
        assert!(matches!(err("{% if ds %}x"), TemplateError::Syntax { .. }));
    }

    #[test]
    fn a_string_without_tags_is_returned_unchanged() {
        assert_eq!(r("echo ${#x} {# not a comment #}"), "echo ${#x} {# not a comment #}");
        assert!(!is_template("plain"));
        assert!(is_template("{% if x %}{% endif %}"));
    }

    #[test]
    fn a_trailing_newline_is_kept() {
        assert_eq!(r("echo {{ ds }}\n"), "echo 2026-03-04\n");
    }

    #[test]
    fn render_operator_renders_command_env_and_cwd() {
        let bash = OperatorSpec::Bash {
            command: "load --day {{ ds }} --file {{ ti.xcom_pull('extract') }}".into(),
            env: BTreeMap::from([
                ("REGION".to_string(), "{{ params.region }}".to_string()),
                ("PLAIN".to_string(), "as is".to_string()),
            ]),
            cwd: Some("/work/{{ ds_nodash }}".into()),
            do_xcom_push: true,
        };
        let rendered = render_operator(&bash, &ctx()).unwrap();
        assert_eq!(
            rendered,
            OperatorSpec::Bash {
                command: "load --day 2026-03-04 --file /data/2026-03-04.csv".into(),
                env: BTreeMap::from([
                    ("REGION".to_string(), "eu".to_string()),
                    ("PLAIN".to_string(), "as is".to_string()),
                ]),
                cwd: Some("/work/20260304".into()),
                do_xcom_push: true,
            }
        );
        assert_eq!(render_operator(&OperatorSpec::Noop, &ctx()).unwrap(), OperatorSpec::Noop);
    }

    #[test]
    fn a_custom_operators_args_are_rendered_at_every_depth_and_errors_name_the_path() {
        let args = |v: serde_json::Value| v.as_object().unwrap().clone();
        let custom = OperatorSpec::Custom {
            name: "wordcount".into(),
            args: args(json!({"path": "/in/{{ ds }}", "n": 3, "nested": [true, {"region": "{{ params.region }}"}]})),
        };
        assert!(operator_is_templated(&custom));
        assert_eq!(
            render_operator(&custom, &ctx()).unwrap(),
            OperatorSpec::Custom {
                name: "wordcount".into(),
                args: args(json!({"path": "/in/2026-03-04", "n": 3, "nested": [true, {"region": "eu"}]})),
            }
        );
        let broken = OperatorSpec::Custom { name: "w".into(), args: args(json!({"list": [1, {"x": "{{ nope }}"}]})) };
        let error = render_operator(&broken, &ctx()).unwrap_err();
        assert!(error.to_string().contains("args.list[1].x"), "{error}");
        assert!(!operator_is_templated(&OperatorSpec::Custom { name: "w".into(), args: args(json!({"a": "plain"})) }));
    }

    #[test]
    fn an_operator_is_templated_when_any_rendered_argument_is() {
        let bash = |command: &str, env: &str, cwd: Option<&str>| OperatorSpec::Bash {
            command: command.into(),
            env: BTreeMap::from([("E".to_string(), env.to_string())]),
            cwd: cwd.map(Into::into),
            do_xcom_push: false,
        };
        assert!(!operator_is_templated(&bash("echo ${#x}", "plain", None)));
        assert!(operator_is_templated(&bash("echo", "{{ ds }}", None)));
        assert!(operator_is_templated(&bash("echo", "plain", Some("/{{ ds }}"))));
        assert!(!operator_is_templated(&OperatorSpec::Noop));
        assert!(operator_mentions(&bash("{{ ti.xcom_pull('a') }}", "", None), "xcom_pull"));
        assert!(!operator_mentions(&bash("echo xcom_pull", "{{ ds }}", None), "xcom_pull"));
    }

    #[test]
    fn render_operator_names_the_failing_field() {
        let bash = OperatorSpec::Bash {
            command: "echo".into(),
            env: BTreeMap::from([("TARGET".to_string(), "{{ params.nope }}".to_string())]),
            cwd: None,
            do_xcom_push: false,
        };
        let error = render_operator(&bash, &ctx()).unwrap_err();
        assert!(error.to_string().starts_with("env.TARGET: `params.nope` is undefined on line 1"), "{error}");
    }

    #[test]
    fn variables_are_read_as_text_with_var_value() {
        assert_eq!(r("aws s3 ls {{ var.value.bucket }}/{{ ds_nodash }}"), "aws s3 ls s3://warehouse/20260304");
        assert_eq!(r("{{ var.value['my-key'] }}"), "dashed");
        assert_eq!(r("{{ var.value.cfg }}"), r#"{"region": "eu", "shards": [1, 2]}"#);
        assert_eq!(
            r("{{ var.value.get('bucket') }} {{ var.value.get('nope', 'fallback') }}"),
            "s3://warehouse fallback"
        );
    }

    #[test]
    fn variables_holding_json_are_read_as_values_with_var_json() {
        assert_eq!(r("{{ var.json.cfg.region }} {{ var.json.cfg.shards[1] }}"), "eu 2");
        assert_eq!(r("{{ var.json.cfg.shards }}"), "[1,2]");
        assert_eq!(r("{{ var.json.get('nope', {'a': 1}).a }}"), "1");
        let error = err("{{ var.json.bucket }}").to_string();
        assert!(error.contains("variable `bucket` is not JSON") && error.contains("var.value"), "{error}");
    }

    #[test]
    fn an_unknown_variable_is_an_error_naming_it() {
        let error = err("echo\necho {{ var.value.missing_key }}");
        assert!(matches!(error, TemplateError::Render { line: Some(2), .. }), "{error:?}");
        let text = error.to_string();
        assert!(text.contains("variable `missing_key` (read as var.value) does not exist"), "{text}");
        assert!(text.contains("POST /api/v2/variables"), "{text}");
        let text = err("{{ var.json.get('missing_key') }}").to_string();
        assert!(text.contains("variable `missing_key` (read as var.json) does not exist"), "{text}");
        let text = err("{{ var.json.cfg.nope }}").to_string();
        assert!(text.contains("`var.json.cfg.nope` is undefined"), "{text}");
    }

    #[test]
    fn the_variable_accessors_do_not_print_every_variable() {
        assert_eq!(r("{{ var.value }} {{ var.json }}"), "<var.value> <var.json>");
    }

    #[test]
    fn only_templates_that_mention_var_need_the_variables_loaded() {
        let bash = |command: &str| OperatorSpec::Bash {
            command: command.into(),
            env: BTreeMap::new(),
            cwd: None,
            do_xcom_push: false,
        };
        assert!(operator_reads_variables(&bash("echo {{ var.value.x }}")));
        assert!(operator_reads_connections(&bash("psql -h {{ conn.warehouse.host }}")));
        assert!(!operator_reads_variables(&bash("echo {{ ds }}")));
        assert!(!operator_reads_variables(&bash("echo $var.value")), "not a template");
    }

    #[test]
    fn a_mapped_instance_sees_its_element_as_item_and_others_get_an_undefined_error() {
        let mapped = TemplateContext { map_index: 1, map_item: Some(serde_json::json!({"file": "b.csv"})), ..ctx() };
        assert_eq!(render("load {{ item.file }} #{{ ti.map_index }}", &mapped).unwrap(), "load b.csv #1");
        let err = render("{{ item }}", &ctx()).unwrap_err();
        assert!(err.to_string().contains("`item` is undefined"), "{err}");
    }

    /// What a render shows: its output, or its error's text.
    fn shown(template: &str) -> (bool, String) {
        match render(template, &ctx()) {
            Ok(text) => (true, text),
            Err(error) => (false, error.to_string()),
        }
    }

    #[test]
    fn a_template_cannot_include_import_or_extend_a_file() {
        for template in [
            "{% include '/etc/passwd' %}",
            "{% include '../../../../../../etc/passwd' %}",
            "{% include 'Cargo.toml' %}",
            "{% import '/etc/passwd' as p %}{{ p }}",
            "{% from '/etc/passwd' import root %}{{ root }}",
            "{% extends '/etc/passwd' %}",
        ] {
            let (rendered, text) = shown(template);
            assert!(!rendered, "{template} rendered {text:?}");
            assert!(text.contains("non-existing template") || text.contains("does not exist"), "{template}: {text}");
            assert!(!text.contains("root:") && !text.contains("[package]"), "{template}: {text}");
        }
        assert_eq!(r("{% include ['/etc/passwd', 'Cargo.toml'] ignore missing %}done"), "done");
    }

    #[test]
    fn a_template_cannot_read_the_process_environment() {
        let path = std::env::var("PATH").expect("tests run with a PATH");
        for template in [
            "{{ PATH }}",
            "{{ env.PATH }}",
            "{{ environ.PATH }}",
            "{{ os.environ.PATH }}",
            "{{ getenv('PATH') }}",
            "{{ lookup('env', 'PATH') }}",
            "{{ var.value.PATH }}",
            "{{ conn.PATH.host }}",
            "{{ ''.__class__.__mro__ }}",
            "{{ self }}",
            "{{ config }}",
        ] {
            let (rendered, text) = shown(template);
            assert!(!rendered, "{template} rendered {text:?}");
            assert!(!text.contains(&path), "{template}: {text}");
        }
    }

    #[test]
    fn debug_shows_the_context_but_no_connection_password_or_variable_values() {
        let dump = r("{{ debug() }}");
        assert!(dump.contains("run_id"), "{dump}");
        for secret in ["hunter2", "s3://warehouse", "dashed"] {
            assert!(!dump.contains(secret), "debug() shows {secret}: {dump}");
        }
    }

    #[test]
    fn an_endless_loop_runs_out_of_fuel_with_an_error_naming_the_limit() {
        let error = err("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");
        assert!(matches!(error, TemplateError::TooMuchWork { line: Some(1) }), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with("the template does more work than a render may on line 1: the limit is 1000000 fuel"),
            "{error}"
        );
    }

    #[test]
    fn a_string_doubled_until_it_fills_memory_runs_out_of_fuel_before_it_does() {
        let doubling = format!("{{% set s = 'x' * 1000 %}}{}{{{{ s | length }}}}", "{% set s = s ~ s %}".repeat(48));
        assert!(matches!(err(&doubling), TemplateError::TooMuchWork { .. }));
        assert!(matches!(err("{{ 'x' * 100000000 }}"), TemplateError::TooMuchWork { .. }));
        assert!(matches!(err("{{ [0] * 100000000 }}"), TemplateError::TooMuchWork { .. }));
    }

    #[test]
    fn a_macro_that_calls_itself_forever_is_an_error_not_a_stack_overflow() {
        let error = err("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}");
        assert!(!error.to_string().is_empty(), "{error}");
    }

    #[test]
    fn a_megabyte_xcom_and_a_loop_over_a_mapped_list_render_well_within_the_fuel() {
        let big = "x".repeat(1 << 20);
        let mut ctx = ctx();
        ctx.xcoms.insert("big".into(), BTreeMap::from([("return_value".into(), json!(big))]));
        ctx.xcoms.insert("list".into(), BTreeMap::from([("return_value".into(), json!(vec![7; 1024]))]));
        assert_eq!(render("{{ ti.xcom_pull('big') }}", &ctx).unwrap().len(), 1 << 20);
        let summed = render("{% set ns = namespace(n=0) %}{% for v in ti.xcom_pull('list') %}{% set ns.n = ns.n + v %}{% endfor %}{{ ns.n }}", &ctx);
        assert_eq!(summed.unwrap(), (7 * 1024).to_string());
    }

    mod properties {
        //! Property tests of the renderer on untrusted templates: arbitrary text,
        //! token soups of Jinja's syntax and gust's variables, and the seed corpus
        //! `tests/corpus/template/`. proptest on stable rather than cargo-fuzz,
        //! which needs nightly (see `crate::test_corpus`). The properties: a
        //! render never panics; it returns text or an error that says something;
        //! text without tags comes back unchanged.

        use proptest::{prelude::*, sample::select, test_runner::Config};

        use super::{ctx, render};
        use crate::test_corpus;

        const TOKENS: &[&str] = &[
            "{{",
            "}}",
            "{%",
            "%}",
            "{#",
            "#}",
            "{%-",
            "-%}",
            " ",
            "\n",
            "x",
            "ds",
            "ts",
            "params",
            "conf",
            "dag_run",
            "ti",
            "task_instance",
            "item",
            "var",
            "value",
            "json",
            "conn",
            "warehouse",
            "broken",
            "password",
            "extra_dejson",
            "macros",
            "ds_add",
            "ds_format",
            "xcom_pull",
            "'extract'",
            "task_ids",
            "key",
            "=",
            ".",
            "[",
            "]",
            "(",
            ")",
            ",",
            "'",
            "\"",
            "|",
            "~",
            "+",
            "-",
            "*",
            "/",
            "//",
            "%",
            "**",
            "1",
            "-1",
            "0",
            "99999999999999999999",
            "1e308",
            "for",
            "in",
            "endfor",
            "if",
            "else",
            "endif",
            "set",
            "endset",
            "with",
            "endwith",
            "macro",
            "endmacro",
            "call",
            "endcall",
            "filter",
            "endfilter",
            "raw",
            "endraw",
            "include",
            "import",
            "from",
            "extends",
            "block",
            "endblock",
            "super",
            "self",
            "loop",
            "range",
            "namespace",
            "dict",
            "debug",
            "lipsum",
            "cycler",
            "joiner",
            "upper",
            "tojson",
            "join",
            "map",
            "attribute",
            "select",
            "reject",
            "sort",
            "unique",
            "batch",
            "slice",
            "replace",
            "format",
            "length",
            "split",
            "startswith",
            "get",
            "items",
            "keys",
            "true",
            "none",
            "None",
            "is",
            "not",
            "and",
            "or",
            "defined",
            "undefined",
            "%s",
            "%Y",
            "\u{0}",
            "é",
        ];

        fn soup() -> impl Strategy<Value = String> {
            prop::collection::vec(select(TOKENS), 0..40).prop_map(|tokens| tokens.concat())
        }

        fn outcome(template: &str) -> Result<(), TestCaseError> {
            match render(template, &ctx()) {
                Ok(_) => Ok(()),
                Err(error) if error.to_string().trim().is_empty() => {
                    Err(TestCaseError::fail(format!("an error without text: {error:?}")))
                }
                Err(_) => Ok(()),
            }
        }

        proptest! {
            #![proptest_config(Config::with_cases(50_000))]

            #[test]
            fn a_soup_of_jinja_tokens_renders_or_fails_with_a_message(template in soup()) {
                outcome(&template)?;
            }
        }

        proptest! {
            #![proptest_config(Config::with_cases(10_000))]

            #[test]
            fn any_text_renders_or_fails_with_a_message(template in any::<String>()) {
                outcome(&template)?;
            }

            #[test]
            fn text_without_tags_comes_back_unchanged(text in "([^{]|\\{[^{%])*") {
                prop_assert_eq!(render(&text, &ctx()).unwrap(), text);
            }
        }

        #[test]
        fn the_template_corpus_renders_or_fails_as_its_names_say() {
            let mut wrong = Vec::new();
            for file in test_corpus::files("template") {
                let outcome = render(&file.text(), &ctx());
                match (&outcome, file.must_pass()) {
                    (Ok(text), false) => wrong.push(format!("{} rendered {text:?}", file.name)),
                    (Err(error), true) => wrong.push(format!("{} failed: {error}", file.name)),
                    _ => {}
                }
                match (&outcome, file.expectation("refused"), file.expectation("renders")) {
                    (Err(error), Some(expected), _) if !error.to_string().contains(&expected) => {
                        wrong.push(format!("{}: {error}\n  does not say: {expected}", file.name))
                    }
                    (Ok(text), _, Some(expected)) if text.trim() != expected => {
                        wrong.push(format!("{} rendered {:?}, not {expected:?}", file.name, text.trim()))
                    }
                    _ => {}
                }
            }
            assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        }
    }
}
