//! `gust-policy.yaml`: the house rules `gust dags validate --strict` applies on
//! top of the parser's, as Airflow users' DAG-integrity tests do. Pure: a
//! [`Policy`] and a [`Dag`] in, [`Violation`]s out.
//!
//! ```yaml
//! require_owner: true          # default_args.owner must be set (not the default `gust`)
//! required_tags: [team]        # every DAG carries each of these tags
//! min_tags: 1                  # and at least this many tags
//! min_retries: 1               # every task retries at least once
//! allowed_queues: [default, reports]
//! allowed_operators: [bash, noop, http]
//! ```

use gust_shared::dag::Dag;
use serde::Deserialize;

/// The owner a DAG gets when its `default_args` name none.
const DEFAULT_OWNER: &str = "gust";

/// The file name `--strict` looks for next to the DAG folder.
pub const POLICY_FILE: &str = "gust-policy.yaml";

/// House rules for DAG files; every rule is off unless set.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// `default_args.owner` must be set.
    #[serde(default)]
    pub require_owner: bool,
    /// Tags every DAG must carry.
    #[serde(default)]
    pub required_tags: Vec<String>,
    /// Fewest tags a DAG may have.
    #[serde(default)]
    pub min_tags: usize,
    /// Fewest retries a task may have.
    #[serde(default)]
    pub min_retries: Option<u32>,
    /// Queues tasks may be sent to; any when unset.
    #[serde(default)]
    pub allowed_queues: Option<Vec<String>>,
    /// Operators tasks may use; any when unset.
    #[serde(default)]
    pub allowed_operators: Option<Vec<String>>,
}

/// Why a policy file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file does not parse as a policy.
    #[error("{file}: not a valid policy: {problem}; the keys are require_owner, required_tags, min_tags, min_retries, allowed_queues, allowed_operators")]
    Invalid {
        /// The policy file.
        file: String,
        /// What the YAML parser said.
        problem: String,
    },
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The task at fault, when the rule is about one task.
    pub task: Option<String>,
    /// The DAG file key the rule is about, to find its line.
    pub key: &'static str,
    /// What is wrong.
    pub problem: String,
    /// What to change.
    pub fix: String,
}

impl Policy {
    /// Reads a policy from the YAML text of `file`.
    pub fn parse(file: &str, yaml: &str) -> Result<Self, PolicyError> {
        if yaml.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_yaml_ng::from_str(yaml).map_err(|e| PolicyError::Invalid { file: file.into(), problem: e.to_string() })
    }

    /// Every rule the DAG breaks, DAG-wide ones first, then task by task.
    pub fn check(&self, dag: &Dag) -> Vec<Violation> {
        let mut found = Vec::new();
        let dag_rule = |key, problem: String, fix: String| Violation { task: None, key, problem, fix };
        if self.require_owner && dag.owners.iter().all(|o| o.trim().is_empty() || o == DEFAULT_OWNER) {
            found.push(dag_rule(
                "default_args",
                "policy: the DAG has no owner".into(),
                "set default_args.owner to the team that answers for the DAG".into(),
            ));
        }
        let missing: Vec<&str> =
            self.required_tags.iter().filter(|t| !dag.tags.contains(t)).map(String::as_str).collect();
        if !missing.is_empty() {
            found.push(dag_rule(
                "tags",
                format!("policy: the DAG lacks the required tag(s) {}", missing.join(", ")),
                format!("add them to `tags:`, e.g. tags: [{}]", merged(&dag.tags, &missing).join(", ")),
            ));
        }
        if dag.tags.len() < self.min_tags {
            found.push(dag_rule(
                "tags",
                format!("policy: the DAG has {} tag(s), at least {} are required", dag.tags.len(), self.min_tags),
                "add tags under `tags:` that say what the DAG is for and who owns it".into(),
            ));
        }
        for task in &dag.tasks {
            let task_rule =
                |key, problem: String, fix: String| Violation { task: Some(task.task_id.clone()), key, problem, fix };
            if let Some(min) = self.min_retries.filter(|min| task.retries < *min) {
                found.push(task_rule(
                    "retries",
                    format!("policy: retries is {}, at least {min} are required", task.retries),
                    format!("set `retries: {min}` on the task or in default_args"),
                ));
            }
            if let Some(allowed) = self.allowed_queues.as_ref().filter(|q| !q.contains(&task.queue)) {
                found.push(task_rule(
                    "queue",
                    format!("policy: queue `{}` is not allowed", task.queue),
                    format!("send the task to one of: {}", allowed.join(", ")),
                ));
            }
            let operator = task.operator.name();
            if let Some(allowed) = self.allowed_operators.as_ref().filter(|o| !o.iter().any(|o| o == operator)) {
                found.push(task_rule(
                    "operator",
                    format!("policy: operator `{operator}` is not allowed"),
                    format!("use one of: {}", allowed.join(", ")),
                ));
            }
        }
        found
    }
}

fn merged<'a>(have: &'a [String], add: &[&'a str]) -> Vec<&'a str> {
    have.iter().map(String::as_str).chain(add.iter().copied()).collect()
}

#[cfg(test)]
mod tests {
    use gust_shared::dag::parse_dag_file;

    use super::*;

    const DAG: &str = "dag_id: x\ntags: [etl]\ndefault_args: {owner: data}\ntasks:\n  - {id: a, operator: bash, command: ls, retries: 2}\n  - {id: b, operator: noop, queue: gpu}\n";

    fn violations(policy: &str, dag: &str) -> Vec<Violation> {
        let dag = parse_dag_file("dags/x.yaml", dag).unwrap();
        Policy::parse("gust-policy.yaml", policy).unwrap().check(&dag)
    }

    #[test]
    fn an_empty_policy_allows_everything() {
        assert_eq!(violations("", DAG), []);
        assert_eq!(violations("{}", DAG), []);
    }

    #[test]
    fn an_owner_is_required_when_the_policy_says_so() {
        assert_eq!(violations("require_owner: true", DAG), []);
        let found = violations("require_owner: true", "dag_id: x\ntasks:\n  - {id: a, operator: noop}\n");
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].task.as_deref(), found[0].key), (None, "default_args"));
        assert!(found[0].fix.contains("default_args.owner"), "{:?}", found[0]);
    }

    #[test]
    fn missing_tags_are_named_with_the_tags_line_to_write() {
        let found = violations("required_tags: [etl, team-a]\nmin_tags: 3", DAG);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].problem.ends_with("required tag(s) team-a"), "{:?}", found[0]);
        assert_eq!(found[0].fix, "add them to `tags:`, e.g. tags: [etl, team-a]");
        assert!(found[1].problem.contains("has 1 tag(s), at least 3"), "{:?}", found[1]);
    }

    #[test]
    fn task_rules_name_each_task_that_breaks_them() {
        let found = violations("min_retries: 1\nallowed_queues: [default]\nallowed_operators: [bash]", DAG);
        let named: Vec<(Option<&str>, &str)> = found.iter().map(|v| (v.task.as_deref(), v.key)).collect();
        assert_eq!(named, [(Some("b"), "retries"), (Some("b"), "queue"), (Some("b"), "operator")]);
        assert_eq!(found[2].problem, "policy: operator `noop` is not allowed");
    }

    #[test]
    fn an_unknown_policy_key_is_refused_with_the_known_ones() {
        let err = Policy::parse("p.yaml", "min_retry: 1").unwrap_err().to_string();
        assert!(err.starts_with("p.yaml: not a valid policy: unknown field `min_retry`"), "{err}");
        assert!(err.contains("min_retries"), "{err}");
    }
}
