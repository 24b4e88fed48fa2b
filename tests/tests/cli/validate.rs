//! `gust dags validate`: exit codes, the three output formats, and each kind
//! of bad input reported with its file, line, task and fix.

use serde_json::{json, Value};

use crate::helpers::{gust, Scratch};

#[test]
fn the_example_dags_are_valid_and_validate_exits_0() {
    let run = gust(&["dags", "validate", "--dags-folder", "dags"]).expect_code(0);
    assert_eq!(
        run.stdout,
        "ok     dags/example_asset_consumer.yaml (example_asset_consumer, 1 tasks)\n\
         ok     dags/example_asset_producer.yaml (example_asset_producer, 1 tasks)\n\
         ok     dags/example_etl.yaml (example_etl, 4 tasks)\n\
         ok     dags/example_hello.yaml (example_hello, 2 tasks)\n\
         ok     dags/example_hourly_report.yaml (example_hourly_report, 3 tasks)\n\
         5 file(s) checked, 5 valid, 0 invalid\n"
    );
}

#[test]
fn the_dag_folder_comes_from_gust_dags_folder_when_no_path_is_given() {
    let scratch = Scratch::new("env-folder");
    scratch.dag("a.yaml", "dag_id: a\ntasks:\n  - {id: t, operator: noop}\n");
    let run = std::process::Command::new(crate::helpers::binary("gust"))
        .args(["dags", "validate"])
        .current_dir(&scratch.dir)
        .env("GUST__DAGS__FOLDER", scratch.dir.join("dags"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}");
    assert!(stdout.contains("a.yaml (a, 1 tasks)"), "{stdout}");
}

const BROKEN: &[(&str, &str)] = &[
    ("cycle.yaml", "dag_id: cycle\ntasks:\n  - id: a\n    operator: noop\n    depends_on: [b]\n  - id: b\n    operator: noop\n    depends_on: [a]\n"),
    ("not_yaml.yaml", "dag_id: broken\ntasks:\n  - id: a\n    operator: noop\n   depends_on: [\n"),
    ("operator.yaml", "dag_id: operator\ntasks:\n  - id: first\n    operator: noop\n  - id: spark_job\n    operator: Spark\n"),
    ("cron.yaml", "dag_id: cron\nstart_date: 2026-01-01\nschedule: '0 25 * * *'\ntasks:\n  - {id: a, operator: noop}\n"),
    ("template.yaml", "dag_id: template\ntasks:\n  - {id: a, operator: noop}\n  - {id: greet, operator: bash, command: 'echo {{ params.who', depends_on: [a]}\n"),
];

/// The errors of each file, from `--format json`.
fn errors_by_file(run: &crate::helpers::Run) -> Vec<(String, Vec<Value>)> {
    run.json()["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            let name = f["file"].as_str().unwrap_or_default().rsplit('/').next().unwrap_or_default().to_string();
            (name, f["errors"].as_array().cloned().unwrap_or_default())
        })
        .collect()
}

#[test]
fn each_kind_of_bad_input_is_reported_with_file_line_task_and_fix_and_exit_1() {
    let scratch = Scratch::new("broken");
    for (name, text) in BROKEN {
        scratch.dag(name, text);
    }
    let run = scratch.gust(&["dags", "validate", "--format", "json", "dags"]).expect_code(1);
    let doc = run.json();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["summary"], json!({"files": 5, "invalid": 5}));
    let by_file = errors_by_file(&run);
    let finding = |name: &str| -> Value {
        let (_, errors) = by_file.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(errors.len(), 1, "{name}: {errors:?}");
        errors[0].clone()
    };

    let cycle = finding("cycle.yaml");
    assert_eq!((cycle["line"].as_u64(), cycle["task"].as_str()), (Some(6), Some("b")), "{cycle}");
    assert_eq!(cycle["problem"], "dependency cycle: b -> a -> b");
    assert_eq!(cycle["fix"], "remove one of the depends_on links on the cycle so the tasks form a DAG");

    let not_yaml = finding("not_yaml.yaml");
    assert!(not_yaml["problem"].as_str().unwrap().starts_with("not a valid DAG file: "), "{not_yaml}");
    assert_eq!(not_yaml["line"], 5, "{not_yaml}");
    assert!(not_yaml["fix"].as_str().unwrap().starts_with("fix the YAML at that line"), "{not_yaml}");

    let operator = finding("operator.yaml");
    assert_eq!((operator["line"].as_u64(), operator["task"].as_str()), (Some(5), Some("spark_job")), "{operator}");
    assert!(
        operator["problem"]
            .as_str()
            .unwrap()
            .starts_with("unknown operator `Spark`: built-in operators are noop, bash"),
        "{operator}"
    );
    assert!(operator["fix"].as_str().unwrap().contains("gust-op-<name>"), "{operator}");

    let cron = finding("cron.yaml");
    assert_eq!((cron["line"].as_u64(), &cron["task"]), (Some(3), &Value::Null), "{cron}");
    assert!(cron["problem"].as_str().unwrap().starts_with("bad schedule `0 25 * * *`"), "{cron}");
    assert!(cron["fix"].as_str().unwrap().contains("5-field cron"), "{cron}");

    let template = finding("template.yaml");
    assert_eq!((template["line"].as_u64(), template["task"].as_str()), (Some(4), Some("greet")), "{template}");
    assert!(template["problem"].as_str().unwrap().starts_with("command: template syntax error"), "{template}");
    assert!(template["fix"].as_str().unwrap().starts_with("fix the Jinja syntax"), "{template}");
}

#[test]
fn text_output_puts_file_line_and_task_first_and_the_fix_under_it() {
    let scratch = Scratch::new("text");
    scratch.dag("cycle.yaml", BROKEN[0].1).dag("ok.yaml", "dag_id: ok\ntasks:\n  - {id: a, operator: noop}\n");
    let run = scratch.gust(&["dags", "validate", "dags"]).expect_code(1);
    assert_eq!(
        run.stdout,
        "error  dags/cycle.yaml:6: task `b`: dependency cycle: b -> a -> b\n\
         \x20      fix: remove one of the depends_on links on the cycle so the tasks form a DAG\n\
         ok     dags/ok.yaml (ok, 1 tasks)\n\
         2 file(s) checked, 1 valid, 1 invalid\n"
    );
}

#[test]
fn github_format_writes_one_error_annotation_per_finding() {
    let scratch = Scratch::new("github");
    scratch.dag("cycle.yaml", BROKEN[0].1).dag("operator.yaml", BROKEN[2].1);
    let run = scratch
        .gust(&["dags", "validate", "--format", "github", "dags/cycle.yaml", "dags/operator.yaml"])
        .expect_code(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert_eq!(
        lines[0],
        "::error file=dags/cycle.yaml,line=6,title=gust dags validate::task `b`: dependency cycle: b -> a -> b (fix: remove one of the depends_on links on the cycle so the tasks form a DAG)"
    );
    assert!(lines[1].starts_with("::error file=dags/operator.yaml,line=5,title=gust dags validate::task `spark_job`: unknown operator `Spark`"), "{}", lines[1]);
    assert_eq!(lines[2], "2 file(s) checked, 0 valid, 2 invalid");
}

#[test]
fn a_dag_id_defined_twice_fails_the_later_file_as_the_scheduler_would() {
    let scratch = Scratch::new("duplicate");
    let dag = "dag_id: same\ntasks:\n  - {id: a, operator: noop}\n";
    scratch.dag("a.yaml", dag).dag("b.yaml", dag);
    let run = scratch.gust(&["dags", "validate", "--format", "json", "--dags-folder", "dags"]).expect_code(1);
    let by_file = errors_by_file(&run);
    assert!(by_file[0].1.is_empty(), "{by_file:?}");
    assert_eq!(by_file[1].1[0]["problem"], "dag_id `same` is already defined in dags/a.yaml");
    assert_eq!(by_file[1].1[0]["line"], 1);
}

#[test]
fn strict_applies_the_policy_next_to_the_dag_folder() {
    let scratch = Scratch::new("strict");
    scratch
        .dag(
            "etl.yaml",
            "dag_id: etl\ntags: [etl]\ntasks:\n  - id: load\n    operator: bash\n    command: ls\n    queue: gpu\n",
        )
        .file(
            "gust-policy.yaml",
            "require_owner: true\nrequired_tags: [team]\nmin_retries: 1\nallowed_queues: [default]\n",
        );
    scratch.gust(&["dags", "validate", "--dags-folder", "dags"]).expect_code(0);
    let run = scratch.gust(&["dags", "validate", "--strict", "--dags-folder", "dags"]).expect_code(1);
    assert_eq!(
        run.stdout,
        "error  dags/etl.yaml: policy: the DAG has no owner\n\
         \x20      fix: set default_args.owner to the team that answers for the DAG\n\
         error  dags/etl.yaml:2: policy: the DAG lacks the required tag(s) team\n\
         \x20      fix: add them to `tags:`, e.g. tags: [etl, team]\n\
         error  dags/etl.yaml:4: task `load`: policy: retries is 0, at least 1 are required\n\
         \x20      fix: set `retries: 1` on the task or in default_args\n\
         error  dags/etl.yaml:4: task `load`: policy: queue `gpu` is not allowed\n\
         \x20      fix: send the task to one of: default\n\
         1 file(s) checked, 0 valid, 1 invalid\n"
    );
    let explicit =
        scratch.gust(&["dags", "validate", "--strict", "--policy", "gust-policy.yaml", "dags"]).expect_code(1);
    assert_eq!(explicit.stdout, run.stdout);
}

#[test]
fn strict_without_a_policy_file_says_where_it_looked_and_fails() {
    let scratch = Scratch::new("no-policy");
    scratch.dag("a.yaml", "dag_id: a\ntasks:\n  - {id: t, operator: noop}\n");
    let run = scratch.gust(&["dags", "validate", "--strict", "--dags-folder", "dags"]).expect_code(2);
    assert!(
        run.stderr.contains("--strict needs a policy: put gust-policy.yaml next to the DAG folder"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_path_that_does_not_exist_is_an_error_on_stderr() {
    let run = gust(&["dags", "validate", "no/such/dags"]).expect_code(2);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, "gust: no/such/dags: no such file or folder\n");
}

#[test]
fn a_folder_without_dag_files_is_an_error_not_a_pass() {
    let scratch = Scratch::new("empty-folder");
    scratch.file("dags/README.md", "not a DAG");
    let run = scratch.gust(&["dags", "validate", "--dags-folder", "dags"]).expect_code(2);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "gust: no DAG files (*.yaml, *.yml) in dags: pass the files, or point --dags-folder or GUST__DAGS__FOLDER at the folder that holds them\n"
    );
}
