//! `gust tasks render`: a task's arguments rendered by the scheduler's own
//! code ([`template::render_operator`]) with a [`TemplateContext`] built as
//! the scheduler's dispatch builds it for a manual run, params resolved
//! against the conf as the trigger API resolves them. XComs, Variables and
//! Connections live in the database, so templates that read them are refused.

use chrono::{DateTime, SecondsFormat, Utc};
use gust_shared::{
    dag::{resolve_params, ExpandSource, OperatorSpec},
    template::{self, TemplateContext},
};
use serde_json::{Map, Value};

use crate::{
    args::{DagsFolder, RenderArgs, RenderFormat, RunInputArgs},
    files::{self, FilesError, LoadedDag},
};

/// Why a task could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The DAG could not be found or parsed.
    #[error(transparent)]
    Files(#[from] FilesError),
    /// The DAG has no such task.
    #[error("DAG `{dag}` has no task `{task}`; its tasks are {}", known.join(", "))]
    NoSuchTask {
        /// The DAG.
        dag: String,
        /// The task asked for.
        task: String,
        /// The tasks it has.
        known: Vec<String>,
    },
    /// A command-line value is malformed.
    #[error("{0}")]
    Argument(String),
    /// A template reads what only the database has.
    #[error(
        "task `{task}`: field `{field}` reads {what} (template `{template}`); {what} live in the gust database, \
         which `gust tasks render` does not use, so this template cannot be rendered locally"
    )]
    NeedsDatabase {
        /// The task.
        task: String,
        /// The field, e.g. `command` or `env.TARGET`.
        field: String,
        /// `XComs`, `Variables` or `Connections`.
        what: &'static str,
        /// The template text.
        template: String,
    },
    /// Rendering failed as it would fail at dispatch.
    #[error("task `{task}`: template error in {detail}")]
    Template {
        /// The task.
        task: String,
        /// The field and the error.
        detail: String,
    },
}

/// Runs the command: the rendered arguments as YAML or JSON.
pub fn render(args: &RenderArgs) -> Result<String, RenderError> {
    let target = &args.target;
    let RenderInputs { loaded, logical_date, conf } = inputs(&target.dag, &target.folder, &target.run)?;
    let rendered = render_task(&loaded, &target.task, logical_date, conf, Utc::now())?;
    Ok(match args.output {
        RenderFormat::Json => format!("{}\n", serde_json::to_string_pretty(&rendered).unwrap_or_default()),
        RenderFormat::Yaml => serde_yaml_ng::to_string(&rendered).unwrap_or_default(),
    })
}

/// What rendering reads from the command line.
pub struct RenderInputs {
    /// The DAG.
    pub loaded: LoadedDag,
    /// `--logical-date`.
    pub logical_date: Option<DateTime<Utc>>,
    /// `--conf`.
    pub conf: Map<String, Value>,
}

/// Reads the DAG (a dag_id in `folder` or a path), the logical date and the conf the command line names.
pub fn inputs(dag: &str, folder: &DagsFolder, run: &RunInputArgs) -> Result<RenderInputs, RenderError> {
    let loaded = files::load(dag, folder)?;
    let logical_date = run
        .logical_date
        .as_deref()
        .map(|text| {
            files::parse_instant(text, loaded.dag.timezone)
                .map_err(|e| RenderError::Argument(format!("--logical-date: {e}")))
        })
        .transpose()?;
    let conf = parse_conf(run.conf.as_deref()).map_err(RenderError::Argument)?;
    Ok(RenderInputs { loaded, logical_date, conf })
}

/// `--conf`: a JSON object, or nothing.
pub fn parse_conf(conf: Option<&str>) -> Result<Map<String, Value>, String> {
    match conf.map(serde_json::from_str::<Value>) {
        None => Ok(Map::new()),
        Some(Ok(Value::Object(conf))) => Ok(conf),
        Some(Ok(other)) => Err(format!("--conf must be a JSON object such as '{{\"key\": \"value\"}}', got {other}")),
        Some(Err(e)) => Err(format!("--conf is not JSON: {e}")),
    }
}

/// The task's rendered operator; for a mapped task, one per element, with its map index.
pub fn render_task(
    loaded: &LoadedDag,
    task_id: &str,
    logical_date: Option<DateTime<Utc>>,
    conf: Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<Value, RenderError> {
    let dag = &loaded.dag;
    let task = dag.task(task_id).ok_or_else(|| RenderError::NoSuchTask {
        dag: dag.dag_id.clone(),
        task: task_id.to_string(),
        known: dag.tasks.iter().map(|t| t.task_id.clone()).collect(),
    })?;
    refuse_database_reads(task_id, &task.operator)?;
    let params = resolve_params(&dag.params, &conf)
        .map_err(|e| RenderError::Argument(format!("--conf does not fit the params of DAG `{}`: {e}", dag.dag_id)))?;
    let items = match &task.expand {
        None => None,
        Some(ExpandSource::Xcom(source)) => {
            return Err(RenderError::NeedsDatabase {
                task: task_id.into(),
                field: "expand".into(),
                what: "XComs",
                template: format!("{{xcom: {source}}}"),
            })
        }
        Some(source) => {
            Some(source.items(&params, &Default::default()).map_err(|e| RenderError::Argument(e.to_string()))?)
        }
    };
    // As a manual trigger makes the run: the logical date (if any) is also the data interval, due now.
    let ctx = TemplateContext {
        dag_id: dag.dag_id.clone(),
        task_id: task_id.to_string(),
        run_id: format!("manual__{}", logical_date.unwrap_or(now).to_rfc3339_opts(SecondsFormat::Micros, false)),
        map_index: -1,
        map_item: None,
        try_number: 1,
        logical_date,
        data_interval_start: logical_date,
        data_interval_end: logical_date,
        run_after: logical_date.unwrap_or(now),
        conf,
        params,
        xcoms: Default::default(),
        variables: Default::default(),
        connections: Default::default(),
    };
    let render_one = |ctx: &TemplateContext| {
        template::render_operator(&task.operator, ctx)
            .map(|op| serde_json::to_value(op).unwrap_or_default())
            .map_err(|e| RenderError::Template { task: task_id.into(), detail: e.to_string() })
    };
    match items {
        None => render_one(&ctx),
        Some(items) => items
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                let ctx = TemplateContext {
                    map_index: i32::try_from(index).unwrap_or(i32::MAX),
                    map_item: Some(item),
                    ..ctx.clone()
                };
                let mut rendered = render_one(&ctx)?;
                if let Value::Object(fields) = &mut rendered {
                    fields.insert("map_index".into(), index.into());
                }
                Ok(rendered)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
    }
}

/// Refuses, naming field and template, a template that reads XComs, Variables or Connections.
fn refuse_database_reads(task: &str, operator: &OperatorSpec) -> Result<(), RenderError> {
    let mut strings = Vec::new();
    collect_templates("", &serde_json::to_value(operator).unwrap_or_default(), &mut strings);
    for (field, text) in strings {
        // `xcom_pull` is a method (`ti.xcom_pull`); `var` and `conn` are top-level template variables.
        let reads = [(".xcom_pull", "XComs"), ("var.", "Variables"), ("conn.", "Connections")]
            .into_iter()
            .find(|(word, _)| mentions(&text, word));
        if let Some((_, what)) = reads {
            return Err(RenderError::NeedsDatabase { task: task.into(), field, what, template: text });
        }
    }
    Ok(())
}

/// Whether `word` stands in `text` as a name of its own (not the tail of a longer name, nor an attribute).
/// A `word` that starts with `.` is an attribute, wherever it stands.
fn mentions(text: &str, word: &str) -> bool {
    if word.starts_with('.') {
        return text.contains(word);
    }
    text.match_indices(word)
        .any(|(at, _)| text[..at].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.')))
}

/// The templated strings in an operator's JSON, with their field paths (`command`, `env.TARGET`, `args.paths[0]`).
fn collect_templates(path: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(text) if template::is_template(text) => out.push((path.to_string(), text.clone())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_templates(&format!("{path}[{i}]"), item, out);
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                let path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                collect_templates(&path, item, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use gust_shared::dag::parse_dag_file;
    use serde_json::json;

    use super::*;

    fn loaded(yaml: &str) -> LoadedDag {
        LoadedDag { file: "d.yaml".into(), text: yaml.into(), dag: parse_dag_file("d.yaml", yaml).unwrap() }
    }

    const DAG: &str = "dag_id: d\nparams: {region: {type: string, enum: [eu, us], default: eu}}\ntasks:\n  - {id: a, operator: bash, command: 'echo {{ ds }} {{ params.region }} {{ run_id }}', env: {WHO: '{{ dag_run.conf.get(\"who\", \"nobody\") }}'}}\n  - {id: m, operator: bash, command: 'echo {{ item }}', expand: [x, y]}\n  - {id: p, operator: bash, command: \"echo {{ ti.xcom_pull('a') }}\"}\n";

    #[test]
    fn a_task_renders_with_the_logical_date_and_the_conf_resolved_against_params() {
        let at = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
        let rendered = render_task(
            &loaded(DAG),
            "a",
            Some(at),
            json!({"region": "us", "who": "ana"}).as_object().unwrap().clone(),
            at,
        )
        .unwrap();
        assert_eq!(rendered["command"], "echo 2026-05-01 us manual__2026-05-01T00:00:00.000000+00:00");
        assert_eq!(rendered["env"]["WHO"], "ana");
        let err = render_task(&loaded(DAG), "a", None, json!({"region": "mars"}).as_object().unwrap().clone(), at)
            .unwrap_err();
        assert!(err.to_string().starts_with("--conf does not fit the params of DAG `d`"), "{err}");
    }

    #[test]
    fn a_mapped_task_renders_once_per_element() {
        let rendered = render_task(&loaded(DAG), "m", None, Map::new(), Utc::now()).unwrap();
        assert_eq!(rendered[0]["command"], "echo x");
        assert_eq!((rendered[1]["command"].as_str(), rendered[1]["map_index"].as_u64()), (Some("echo y"), Some(1)));
    }

    #[test]
    fn a_template_that_pulls_an_xcom_is_refused_naming_the_field_and_the_template() {
        let err = render_task(&loaded(DAG), "p", None, Map::new(), Utc::now()).unwrap_err().to_string();
        assert!(
            err.starts_with("task `p`: field `command` reads XComs (template `echo {{ ti.xcom_pull('a') }}`)"),
            "{err}"
        );
        assert!(err.contains("cannot be rendered locally"), "{err}");
    }

    #[test]
    fn an_unknown_task_lists_the_tasks_of_the_dag() {
        let err = render_task(&loaded(DAG), "zz", None, Map::new(), Utc::now()).unwrap_err().to_string();
        assert_eq!(err, "DAG `d` has no task `zz`; its tasks are a, m, p");
    }

    #[test]
    fn a_name_that_merely_ends_in_var_is_not_a_variable_read() {
        assert!(mentions("{{ var.value.x }}", "var."));
        assert!(!mentions("{{ myvar.x }}", "var."));
        assert!(!mentions("{{ params.conn.host }}", "conn."));
        assert!(mentions("{{ ti.xcom_pull('a') }}", ".xcom_pull"), "xcom_pull is a method of ti");
    }
}
