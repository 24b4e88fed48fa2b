//! `gust dags validate`: every file through the scheduler's parser and
//! validator ([`parse_dag_file`]), the folder rule that a `dag_id` belongs to
//! its first file, a template syntax check, and with `--strict` the policy;
//! each finding with its file, line where known, task and fix.

use std::{io::Write, path::Path};

use gust_shared::{
    dag::{parse_dag_file, resolve_params, Dag, DagError},
    dag_folder::duplicate_dag_id,
    template::{self, TemplateContext, TemplateError},
};
use serde::Serialize;

use crate::{
    args::{ValidateArgs, ValidateFormat},
    files::{self, FilesError},
    policy::{Policy, PolicyError, POLICY_FILE},
};

/// Why validation could not run at all (as opposed to files being invalid).
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// The files could not be found.
    #[error(transparent)]
    Files(#[from] FilesError),
    /// The policy file is broken.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// `--strict` without a policy file.
    #[error("--strict needs a policy: put {POLICY_FILE} next to the DAG folder ({}) or pass --policy FILE", .0.display())]
    NoPolicy(std::path::PathBuf),
    /// The paths hold no DAG file, so nothing would be checked.
    #[error("no DAG files (*.yaml, *.yml) in {}: pass the files, or point --dags-folder or GUST__DAGS__FOLDER at the folder that holds them", display_paths(.0))]
    NoFiles(Vec<std::path::PathBuf>),
    /// Writing the report failed.
    #[error("cannot write the report: {0}")]
    Write(#[from] std::io::Error),
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Line of the file (1 for the first), when known.
    pub line: Option<usize>,
    /// The task at fault, if one is.
    pub task: Option<String>,
    /// What is wrong.
    pub problem: String,
    /// What to change.
    pub fix: String,
}

/// The verdict on one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileReport {
    /// The file, as given or found.
    pub file: String,
    /// The DAG it defines, when it parsed.
    pub dag_id: Option<String>,
    /// Its tasks, when it parsed.
    pub tasks: usize,
    /// Problems; none means valid.
    pub errors: Vec<Finding>,
}

/// Runs the command; `Ok(true)` when every file is valid.
pub fn run(args: &ValidateArgs, out: &mut dyn Write) -> Result<bool, ValidateError> {
    let folder = match (&args.folder.dags_folder, args.paths.is_empty(), args.strict && args.policy.is_none()) {
        (Some(folder), _, _) => Some(folder.clone()),
        (None, true, _) | (None, _, true) => Some(files::dags_folder(&args.folder)?),
        (None, false, false) => None,
    };
    let paths = if args.paths.is_empty() { folder.iter().cloned().collect() } else { args.paths.clone() };
    let policy = match (args.strict, &args.policy) {
        (false, _) => None,
        (true, Some(file)) => Some(load_policy(file)?),
        (true, None) => {
            let folder = folder.unwrap_or_default();
            let beside = folder.canonicalize().unwrap_or(folder.clone()).parent().map(|p| p.join(POLICY_FILE));
            match beside.filter(|p| p.is_file()) {
                Some(file) => Some(load_policy(&file)?),
                None => return Err(ValidateError::NoPolicy(folder)),
            }
        }
    };
    let files = files::expand(&paths)?;
    if files.is_empty() {
        return Err(ValidateError::NoFiles(paths));
    }
    let mut texts = Vec::with_capacity(files.len());
    for path in &files {
        let name = path.display().to_string();
        // As the scheduler reads it: a file that is not UTF-8 is an import error.
        let text = std::fs::read_to_string(path);
        texts.push((name, text));
    }
    let reports = validate_texts(&texts, policy.as_ref());
    write_report(&reports, args.format, out)?;
    Ok(reports.iter().all(|r| r.errors.is_empty()))
}

fn display_paths(paths: &[std::path::PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

fn load_policy(file: &Path) -> Result<Policy, ValidateError> {
    let text = files::read(file)?;
    Ok(Policy::parse(&file.display().to_string(), &text)?)
}

/// Validates named file texts as the scheduler would read them as one folder, in order.
pub fn validate_texts(files: &[(String, std::io::Result<String>)], policy: Option<&Policy>) -> Vec<FileReport> {
    let mut owner_of: Vec<(String, String)> = Vec::new();
    let mut reports = Vec::with_capacity(files.len());
    for (file, text) in files {
        let text = match text {
            Ok(text) => text,
            Err(e) => {
                let finding = Finding {
                    line: None,
                    task: None,
                    problem: format!("cannot read the file: {e}"),
                    fix: match e.kind() {
                        std::io::ErrorKind::InvalidData => "save the file as UTF-8".into(),
                        _ => "make the file readable by the scheduler, or remove it from the DAG folder".into(),
                    },
                };
                reports.push(FileReport { file: file.clone(), dag_id: None, tasks: 0, errors: vec![finding] });
                continue;
            }
        };
        let dag = match parse_dag_file(file, text) {
            Ok(dag) => dag,
            Err(error) => {
                let finding = from_dag_error(&error, text);
                reports.push(FileReport { file: file.clone(), dag_id: None, tasks: 0, errors: vec![finding] });
                continue;
            }
        };
        let mut errors = Vec::new();
        match owner_of.iter().find(|(id, _)| *id == dag.dag_id) {
            Some((_, first)) => {
                let problem = duplicate_dag_id(file, &dag.dag_id, Path::new(first));
                errors.push(Finding {
                    line: key_line(text, "dag_id"),
                    task: None,
                    problem: problem.trim_start_matches(&format!("{file}: ")).to_string(),
                    fix: format!("give this DAG its own dag_id; the scheduler keeps `{}` from {first}", dag.dag_id),
                });
            }
            None => owner_of.push((dag.dag_id.clone(), file.clone())),
        }
        errors.extend(template_findings(&dag, text));
        if let Some(policy) = policy {
            errors.extend(policy.check(&dag).into_iter().map(|v| Finding {
                line: v.task.as_deref().and_then(|t| task_line(text, t)).or_else(|| key_line(text, v.key)),
                task: v.task,
                problem: v.problem,
                fix: v.fix,
            }));
        }
        reports.push(FileReport {
            file: file.clone(),
            dag_id: Some(dag.dag_id.clone()),
            tasks: dag.tasks.len(),
            errors,
        });
    }
    reports
}

/// A parser error as a finding: its line from the YAML error or the task, and a fix.
fn from_dag_error(error: &DagError, text: &str) -> Finding {
    let line = yaml_line(&error.problem)
        .or_else(|| error.task.as_deref().and_then(|t| task_line(text, t)))
        .or_else(|| mentioned_keys(&error.problem).find_map(|key| key_line(text, key)));
    Finding { line, task: error.task.clone(), problem: error.problem.clone(), fix: fix_for(&error.problem) }
}

/// Template syntax errors, and params a template reads that the DAG does not declare.
fn template_findings(dag: &Dag, text: &str) -> Vec<Finding> {
    let params = resolve_params(&dag.params, &Default::default()).unwrap_or_default();
    let mut found = Vec::new();
    for task in &dag.tasks {
        let ctx = TemplateContext {
            dag_id: dag.dag_id.clone(),
            task_id: task.task_id.clone(),
            run_id: "manual__validate".into(),
            map_index: if task.expand.is_some() { 0 } else { -1 },
            try_number: 1,
            logical_date: Some(dag.start_date),
            data_interval_start: Some(dag.start_date),
            data_interval_end: Some(dag.start_date),
            run_after: dag.start_date,
            conf: Default::default(),
            params: params.clone(),
            xcoms: Default::default(),
            map_item: task.expand.as_ref().map(|_| serde_json::Value::Null),
            variables: Default::default(),
            connections: Default::default(),
        };
        let Err(error) = template::render_operator(&task.operator, &ctx) else { continue };
        let (field, cause) = match &error {
            TemplateError::Field { field, source } => (field.as_str(), source.as_ref()),
            other => ("", other),
        };
        let fix = match cause {
            TemplateError::Syntax { .. } => {
                "fix the Jinja syntax: close every `{{` with `}}` and every `{%` with `%}`, and quote strings"
                    .to_string()
            }
            TemplateError::Undefined { name, .. } if is_undeclared_param(name, dag) => {
                let declared: Vec<&str> = dag.params.iter().map(|(name, _)| name).collect();
                format!(
                    "declare it under `params:` or correct the name (declared: {})",
                    if declared.is_empty() { "none".into() } else { declared.join(", ") }
                )
            }
            // Anything else may depend on the run (XComs, Variables, Connections, conf): `gust tasks render` tells.
            _ => continue,
        };
        found.push(Finding {
            line: task_line(text, &task.task_id),
            task: Some(task.task_id.clone()),
            problem: format!("{field}: {cause}"),
            fix,
        });
    }
    found
}

fn is_undeclared_param(name: &str, dag: &Dag) -> bool {
    name.strip_prefix("params.")
        .map(|rest| rest.split(['.', '[']).next().unwrap_or(rest))
        .is_some_and(|param| dag.params.get(param).is_none())
}

/// Fixes by the words of the problem: the first row whose words all occur wins.
const FIXES: &[(&[&str], &str)] = &[
    (&["not a valid DAG file", "unknown field"], "remove the field or correct its spelling; `gust schema` lists every field a DAG file takes"),
    (&["not a valid DAG file", "missing field"], "add the field; every DAG needs dag_id and tasks, every task id and operator"),
    (&["not a valid DAG file"], "fix the YAML at that line: indentation, a missing `:`, unclosed quotes or brackets, or a value of the wrong type"),
    (&["dependency cycle"], "remove one of the depends_on links on the cycle so the tasks form a DAG"),
    (&["depends_on names unknown task"], "correct the task id in depends_on, or add the missing task"),
    (&["depends on itself"], "remove the task's own id from its depends_on"),
    (&["duplicate task id"], "rename one of the tasks; ids are unique within a DAG"),
    (&["unknown operator"], UNKNOWN_OPERATOR_FIX),
    (&["is not built in"], UNKNOWN_OPERATOR_FIX),
    (&["bad schedule"], "use a 5-field cron such as \"0 3 * * *\", a preset such as @daily, @once, {every: 15m}, or null for manual runs"),
    (&["bad duration"], "write the duration as e.g. 30s, 5m or 1h 30m"),
    (&["timezone"], "use an IANA timezone name such as Europe/Amsterdam or UTC"),
    (&["bad date"], DATE_FIX),
    (&["does not exist in"], DATE_FIX),
    (&["start_date"], "add `start_date: 2026-01-01` (the first logical date), or make the DAG manual-only with `schedule: null`"),
    (&["trigger rule"], "use one of the accepted trigger rules listed"),
    (&["takes no arguments"], "remove the arguments, or use an operator that takes them"),
    (&["operator `"], "correct the operator's arguments; `gust schema` lists the arguments of each built-in operator"),
    (&["param `"], "correct the param's declaration under `params:` (type, default, enum)"),
    (&["expand"], "expand over a list, a declared param ({param: name}) or an upstream task's XCom ({xcom: task_id})"),
];

const UNKNOWN_OPERATOR_FIX: &str = "use a built-in operator, or a custom operator (lowercase name, arguments under `args:`) that the workers have as gust-op-<name>";
const DATE_FIX: &str = "write the date as e.g. 2026-01-01 or 2026-01-01T06:00:00, on a time the DAG's timezone has";

/// The fix for a parser problem, by its kind.
pub fn fix_for(problem: &str) -> String {
    FIXES
        .iter()
        .find(|(words, _)| words.iter().all(|word| problem.contains(word)))
        .map_or("see the problem; `gust schema` describes every field a DAG file takes", |(_, fix)| fix)
        .to_string()
}

/// The line serde_yaml_ng names in its error (`… at line 3 column 5`).
fn yaml_line(problem: &str) -> Option<usize> {
    let rest = &problem[problem.find(" at line ")? + " at line ".len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The top-level keys of a DAG file, for finding the line a DAG-wide problem is about.
const TOP_LEVEL_KEYS: &[&str] = &[
    "dag_id",
    "schedule",
    "start_date",
    "end_date",
    "timezone",
    "default_args",
    "max_active_runs",
    "max_active_tasks",
    "params",
    "tags",
    "tasks",
];

/// The top-level keys a problem names, the one it starts with first (`end_date: bad date …`, `param `x`: …`).
fn mentioned_keys(problem: &str) -> impl Iterator<Item = &'static str> + '_ {
    let lead = problem.split([':', ' ', '.']).next().unwrap_or_default();
    let lead = TOP_LEVEL_KEYS.iter().copied().filter(move |key| *key == lead || (lead == "param" && *key == "params"));
    lead.chain(TOP_LEVEL_KEYS.iter().copied().filter(move |key| problem.contains(key)))
}

/// The line of a top-level `key:` in the file.
fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| line.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with(':')))
        .map(|i| i + 1)
}

/// The line that gives a task its id (`- id: load`, `{id: load, …}`).
pub fn task_line(text: &str, task: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            line.match_indices("id:").any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let value = line[at + 3..].trim_start().trim_start_matches(['"', '\'']);
                before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
                    && value.strip_prefix(task).is_some_and(|rest| {
                        rest.chars().next().is_none_or(|c| matches!(c, '"' | '\'' | ',' | '}' | ' ' | '#'))
                    })
            })
        })
        .map(|i| i + 1)
}

fn write_report(reports: &[FileReport], format: ValidateFormat, out: &mut dyn Write) -> std::io::Result<()> {
    let invalid = reports.iter().filter(|r| !r.errors.is_empty()).count();
    match format {
        ValidateFormat::Json => {
            let doc = serde_json::json!({
                "valid": invalid == 0,
                "files": reports,
                "summary": {"files": reports.len(), "invalid": invalid},
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default())
        }
        ValidateFormat::Text => {
            for report in reports {
                match (&report.dag_id, report.errors.is_empty()) {
                    (Some(dag_id), true) => writeln!(out, "ok     {} ({dag_id}, {} tasks)", report.file, report.tasks)?,
                    _ => {
                        for e in &report.errors {
                            let at = e.line.map(|l| format!(":{l}")).unwrap_or_default();
                            let task = e.task.as_ref().map(|t| format!("task `{t}`: ")).unwrap_or_default();
                            writeln!(out, "error  {}{at}: {task}{}", report.file, e.problem)?;
                            writeln!(out, "       fix: {}", e.fix)?;
                        }
                    }
                }
            }
            writeln!(out, "{} file(s) checked, {} valid, {invalid} invalid", reports.len(), reports.len() - invalid)
        }
        ValidateFormat::Github => {
            for report in reports {
                for e in &report.errors {
                    let line = e.line.map(|l| format!(",line={l}")).unwrap_or_default();
                    let task = e.task.as_ref().map(|t| format!("task `{t}`: ")).unwrap_or_default();
                    let message = format!("{task}{} (fix: {})", e.problem, e.fix);
                    writeln!(
                        out,
                        "::error file={}{line},title=gust dags validate::{}",
                        escape_property(&report.file),
                        escape_data(&message)
                    )?;
                }
            }
            writeln!(out, "{} file(s) checked, {} valid, {invalid} invalid", reports.len(), reports.len() - invalid)
        }
    }
}

/// GitHub's escaping of a workflow command's message.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// GitHub's escaping of a workflow command's property value.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Vec<Finding> {
        let files = [("dags/t.yaml".to_string(), Ok(yaml.to_string()))];
        validate_texts(&files, None).remove(0).errors
    }

    #[test]
    fn a_yaml_error_carries_its_line() {
        let found = check("dag_id: x\ntasks:\n  - id: a\n    operator: noop\n   bad: [\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].line.is_some(), "{found:?}");
        assert!(found[0].fix.starts_with("fix the YAML"), "{found:?}");
    }

    #[test]
    fn a_task_error_points_at_the_task_line() {
        let found = check(
            "dag_id: x\ntasks:\n  - id: a\n    operator: noop\n  - id: b\n    operator: noop\n    depends_on: [c]\n",
        );
        assert_eq!((found[0].line, found[0].task.as_deref()), (Some(5), Some("b")));
        assert_eq!(found[0].fix, "correct the task id in depends_on, or add the missing task");
    }

    #[test]
    fn a_bad_schedule_points_at_the_schedule_line() {
        let found =
            check("dag_id: x\nstart_date: 2026-01-01\nschedule: '61 * * * *'\ntasks:\n  - {id: a, operator: noop}\n");
        assert_eq!(found[0].line, Some(3), "{found:?}");
        assert!(found[0].fix.contains("5-field cron"), "{found:?}");
    }

    #[test]
    fn template_syntax_errors_and_undeclared_params_are_findings_but_run_time_values_are_not() {
        let found = check(
            "dag_id: x\nparams: {region: eu}\ntasks:\n  - {id: a, operator: bash, command: 'echo {{ ds'}\n  - {id: b, operator: bash, command: 'echo {{ params.regoin }}'}\n  - {id: c, operator: bash, command: \"echo {{ ti.xcom_pull('a') }} {{ params.region }} {{ var.value.k }}\"}\n",
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].task.as_deref(), found[0].line), (Some("a"), Some(4)));
        assert!(found[0].problem.starts_with("command: template syntax error"), "{found:?}");
        assert!(found[1].problem.contains("`params.regoin` is undefined"), "{found:?}");
        assert!(found[1].fix.contains("declared: region"), "{found:?}");
    }

    #[test]
    fn a_dag_id_defined_twice_is_an_error_of_the_second_file() {
        let yaml = "dag_id: same\ntasks:\n  - {id: a, operator: noop}\n";
        let files = [("a.yaml".to_string(), Ok(yaml.to_string())), ("b.yaml".to_string(), Ok(yaml.to_string()))];
        let reports = validate_texts(&files, None);
        assert!(reports[0].errors.is_empty());
        assert_eq!(reports[1].errors[0].problem, "dag_id `same` is already defined in a.yaml");
        assert_eq!(reports[1].errors[0].line, Some(1));
    }

    #[test]
    fn task_lines_are_found_in_block_and_flow_style_but_not_in_longer_ids() {
        let text = "tasks:\n  - id: load_all\n  - {id: 'load', operator: noop}\n  - task_id: load\n";
        assert_eq!(task_line(text, "load"), Some(3));
        assert_eq!(task_line(text, "load_all"), Some(2));
    }

    #[test]
    fn github_annotations_escape_what_would_end_them() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }
}
