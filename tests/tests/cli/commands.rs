//! `--help`, `--version`, completions, `schema`, `dags show`, `dags next-runs`
//! and `tasks render`, as a person at a terminal sees them.

use crate::helpers::{gust, workspace, Scratch};

/// The subcommands a `--help` text lists under "Commands:", without clap's own `help`.
fn listed_subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect()
}

#[test]
fn help_on_every_command_exits_0_and_says_what_it_does() {
    let mut pending: Vec<Vec<String>> = vec![vec![]];
    let mut seen = Vec::new();
    while let Some(command) = pending.pop() {
        let args: Vec<&str> = command.iter().map(String::as_str).chain(["--help"]).collect();
        let run = gust(&args).expect_code(0);
        assert!(run.stdout.contains("Usage: gust"), "{args:?}:\n{}", run.stdout);
        for sub in listed_subcommands(&run.stdout) {
            pending.push(command.iter().cloned().chain([sub]).collect());
        }
        seen.push(command.join(" "));
    }
    for command in
        ["dags test", "tasks test", "standalone", "db clean", "pools delete", "users list", "backfill cancel"]
    {
        assert!(seen.iter().any(|c| c == command), "`gust {command} --help` was not reached: {seen:?}");
    }
    let validate = gust(&["dags", "validate", "--help"]).stdout;
    for flag in ["--format <FORMAT>", "--strict", "--policy <FILE>", "--dags-folder <DIR>", "GUST__DAGS__FOLDER"] {
        assert!(validate.contains(flag), "{flag} missing from:\n{validate}");
    }
}

#[test]
fn the_daemons_answer_help_and_version_with_exit_0_and_usage_errors_with_exit_2() {
    for daemon in ["gust-scheduler", "gust-worker", "gust-webapi"] {
        let run =
            |args: &[&str]| std::process::Command::new(crate::helpers::binary(daemon)).args(args).output().unwrap();
        let help = run(&["--help"]);
        let text = String::from_utf8_lossy(&help.stdout);
        assert_eq!(help.status.code(), Some(0), "{daemon} --help");
        assert!(text.contains(&format!("Usage: {daemon} [OPTIONS]")) && text.contains("migrate"), "{daemon}:\n{text}");
        let version = run(&["--version"]);
        assert_eq!(version.status.code(), Some(0), "{daemon} --version");
        let version = String::from_utf8_lossy(&version.stdout).into_owned();
        assert!(version.starts_with(&format!("{daemon} {} (commit ", env!("CARGO_PKG_VERSION"))), "{version}");
        assert!(version.ends_with(")\n") && !version.contains("(commit )"), "{version}");
        let bad = run(&["--bogus"]);
        assert_eq!(bad.status.code(), Some(2), "{daemon} --bogus");
        assert!(String::from_utf8_lossy(&bad.stderr).contains("unexpected argument '--bogus'"), "{daemon}");
    }
}

#[test]
fn version_names_the_package_version_and_the_commit() {
    let run = gust(&["--version"]).expect_code(0);
    let version = run.stdout.trim();
    assert!(version.starts_with(&format!("gust {} (commit ", env!("CARGO_PKG_VERSION"))), "{version}");
    assert!(version.ends_with(')') && !version.contains("(commit )"), "{version}");
}

#[test]
fn a_usage_error_goes_to_stderr_with_a_non_zero_exit() {
    let run = gust(&["dags", "frobnicate"]);
    assert_eq!(run.code, Some(2));
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("unrecognized subcommand 'frobnicate'"), "{}", run.stderr);
}

#[test]
fn completions_are_written_for_bash_zsh_and_fish() {
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef gust"), ("fish", "complete -c gust")] {
        let run = gust(&["completions", shell]).expect_code(0);
        assert!(run.stdout.contains(marker), "{shell}:\n{}", &run.stdout[..run.stdout.len().min(400)]);
        assert!(run.stdout.contains("next-runs"), "{shell} completes the subcommands");
    }
    assert_eq!(gust(&["completions", "powershell"]).code, Some(2));
}

#[test]
fn schema_prints_the_committed_schema() {
    let run = gust(&["schema"]).expect_code(0);
    let committed = std::fs::read_to_string(workspace().join("schema/dag.schema.json")).unwrap();
    assert!(
        run.stdout == committed,
        "schema/dag.schema.json is stale: `cargo run -p gust-cli -- schema > schema/dag.schema.json`"
    );
    let schema = run.json();
    assert_eq!(schema["required"], serde_json::json!(["dag_id", "tasks"]));
}

#[test]
fn show_draws_the_example_etl_as_text_graphviz_and_mermaid() {
    let ascii = gust(&["dags", "show", "example_etl", "--dags-folder", "dags"]).expect_code(0).stdout;
    assert_eq!(
        ascii,
        "example_etl (schedule 0 3 * * *, 4 tasks)\n\
         extract [bash]\n\
         \x20 transform_orders [bash]     <- extract\n\
         \x20 transform_customers [bash]  <- extract\n\
         \x20   load [bash]               <- transform_orders, transform_customers\n"
    );
    let dot = gust(&["dags", "show", "dags/example_etl.yaml", "--format", "dot"]).expect_code(0).stdout;
    assert_eq!(
        dot,
        "digraph \"example_etl\" {\n  rankdir=LR;\n  node [shape=box];\n\
         \x20 \"extract\" [label=\"extract\\nbash\"];\n\
         \x20 \"transform_orders\" [label=\"transform_orders\\nbash\"];\n\
         \x20 \"transform_customers\" [label=\"transform_customers\\nbash\"];\n\
         \x20 \"load\" [label=\"load\\nbash\"];\n\
         \x20 \"extract\" -> \"transform_orders\";\n\
         \x20 \"extract\" -> \"transform_customers\";\n\
         \x20 \"transform_orders\" -> \"load\";\n\
         \x20 \"transform_customers\" -> \"load\";\n}\n"
    );
    let mermaid =
        gust(&["dags", "show", "example_hello", "--dags-folder", "dags", "--format", "mermaid"]).expect_code(0).stdout;
    assert_eq!(mermaid, "flowchart LR\n  t0[\"hello (bash)\"]\n  t1[\"done (noop)\"]\n  t0 --> t1\n");
}

#[test]
fn show_of_an_unknown_dag_lists_the_dags_in_the_folder() {
    let run = gust(&["dags", "show", "example_elt", "--dags-folder", "dags"]).expect_code(2);
    assert_eq!(
        run.stderr,
        "gust: no DAG `example_elt` in dags: it has example_asset_consumer, example_asset_producer, example_etl, example_hello, example_hourly_report\n"
    );
}

#[test]
fn next_runs_show_local_time_and_utc_and_mark_the_daylight_saving_change() {
    let scratch = Scratch::new("next-runs");
    scratch.dag(
        "nightly.yaml",
        "dag_id: nightly\nschedule: '30 2 * * *'\ntimezone: Europe/Amsterdam\nstart_date: 2026-01-01\ntasks:\n  - {id: a, operator: noop}\n",
    );
    let run = scratch
        .gust(&["dags", "next-runs", "nightly", "--dags-folder", "dags", "-n", "3", "--after", "2026-03-27T12:00:00Z"])
        .expect_code(0);
    // 02:30 does not exist on 29 March in Amsterdam: that run is at the first instant after the gap.
    assert_eq!(
        run.stdout,
        "nightly: schedule `30 2 * * *`, timezone Europe/Amsterdam, catchup false\n\
         #  runs at (Europe/Amsterdam)       runs at (UTC)         logical date (UTC)\n\
         1  2026-03-28 02:30:00 +01:00 CET   2026-03-28 01:30:00Z  2026-03-27 01:30:00Z\n\
         2  2026-03-29 03:00:00 +02:00 CEST  2026-03-29 01:00:00Z  2026-03-28 01:30:00Z  <- UTC offset +01:00 -> +02:00 (daylight saving)\n\
         3  2026-03-30 02:30:00 +02:00 CEST  2026-03-30 00:30:00Z  2026-03-29 01:00:00Z\n"
    );
}

/// `gust tasks render example_etl extract` with the example folder and `extra` arguments.
fn render_extract(extra: &[&str]) -> crate::helpers::Run {
    let args: Vec<&str> = ["tasks", "render", "example_etl", "extract", "--dags-folder", "dags"]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    gust(&args)
}

#[test]
fn render_prints_the_arguments_as_the_scheduler_would_send_them() {
    let run = render_extract(&["--logical-date", "2026-05-01", "--conf", r#"{"region": "apac"}"#]).expect_code(0);
    assert_eq!(
        run.stdout,
        "command: echo \"extracting day ${GUST_DS:-manual} of region apac for run $GUST_RUN_ID\"; sleep 1\noperator: bash\n"
    );
    let json = render_extract(&["--output", "json"]).expect_code(0).json();
    assert_eq!(json["operator"], "bash");
    assert!(json["command"].as_str().unwrap().contains("of region eu for run"), "the param's default: {json}");
}

#[test]
fn render_refuses_a_conf_that_does_not_fit_the_params() {
    let run = render_extract(&["--conf", r#"{"region": "mars"}"#]).expect_code(2);
    assert!(run.stderr.starts_with("gust: --conf does not fit the params of DAG `example_etl`: "), "{}", run.stderr);
    assert!(run.stderr.contains("region"), "{}", run.stderr);
    let run = render_extract(&["--conf", "[1]"]).expect_code(2);
    assert!(run.stderr.starts_with("gust: --conf must be a JSON object"), "{}", run.stderr);
}

#[test]
fn render_says_that_xcoms_variables_and_connections_are_not_available_locally() {
    let scratch = Scratch::new("render-xcom");
    scratch.dag(
        "x.yaml",
        "dag_id: x\ntasks:\n  - {id: a, operator: bash, command: ls, do_xcom_push: true}\n  - id: b\n    operator: bash\n    command: \"echo {{ ti.xcom_pull('a') }}\"\n    depends_on: [a]\n  - id: c\n    operator: http\n    url: \"{{ var.value.base_url }}/load\"\n",
    );
    let run = scratch.gust(&["tasks", "render", "x", "b", "--dags-folder", "dags"]).expect_code(2);
    assert_eq!(
        run.stderr,
        "gust: task `b`: field `command` reads XComs (template `echo {{ ti.xcom_pull('a') }}`); XComs live in the gust database, which `gust tasks render` does not use, so this template cannot be rendered locally\n"
    );
    let run = scratch.gust(&["tasks", "render", "x", "c", "--dags-folder", "dags"]).expect_code(2);
    assert!(
        run.stderr
            .starts_with("gust: task `c`: field `url` reads Variables (template `{{ var.value.base_url }}/load`)"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_broken_setting_is_named_once_on_one_line() {
    let env = [("GUST__HEALTH__BIND", "127.0.0.1:1"), ("GUST__METRICS__BIND", "127.0.0.1:2")];
    let run = crate::helpers::gust_with_env(&workspace(), &["standalone"], &env).expect_code(2);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("gust: cannot read the settings: invalid configuration: GUST__METRICS__BIND: `127.0.0.1:2` differs from GUST__HEALTH__BIND"), "{}", run.stderr);
    assert_eq!(run.stderr.matches("invalid configuration").count(), 1, "{}", run.stderr);
}
