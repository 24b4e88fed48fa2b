//! Checking a custom operator's `args` against the `args_schema` its workers
//! advertise (`gust-op-<name> --describe`) before the task is sent: args that
//! do not fit fail the task at once, with the validation errors as its reason.

use std::collections::HashMap;

use gust_shared::{
    dag::OperatorSpec,
    db::{heartbeats, GenericClient},
};
use serde_json::Value;

use crate::error::SchedulerError;

/// Most validation errors named in a failure reason.
const MAX_ERRORS: usize = 5;

/// The version and `args_schema` a worker advertises for an operator, if any.
type Advertised = Option<(Option<String>, Value)>;

/// Advertised schemas looked up during one dispatch batch, by (queue, operator).
#[derive(Default)]
pub struct ArgsSchemas {
    found: HashMap<(String, String), Advertised>,
}

impl ArgsSchemas {
    /// Whether `operator`'s args (rendered) fit the schema advertised on `queue`;
    /// `Err` says why not. Built-ins and operators advertised without a schema always fit.
    pub async fn check(
        &mut self,
        db: &impl GenericClient,
        operator: &OperatorSpec,
        queue: &str,
    ) -> Result<Result<(), String>, SchedulerError> {
        let OperatorSpec::Custom { name, args } = operator else { return Ok(Ok(())) };
        let key = (queue.to_string(), name.clone());
        if !self.found.contains_key(&key) {
            let schema = heartbeats::args_schema(db, queue, name).await?;
            self.found.insert(key.clone(), schema);
        }
        let Some((version, schema)) = &self.found[&key] else { return Ok(Ok(())) };
        Ok(validate(name, version.as_deref(), schema, &Value::Object(args.clone())))
    }
}

/// Validates `args` against `schema`; an invalid schema is logged and not enforced.
fn validate(name: &str, version: Option<&str>, schema: &Value, args: &Value) -> Result<(), String> {
    let validator = match jsonschema::validator_for(schema) {
        Ok(validator) => validator,
        Err(e) => {
            tracing::warn!(operator = name, error = %e, "the args_schema a worker advertises is not a valid JSON schema; args are not checked");
            return Ok(());
        }
    };
    let errors: Vec<String> = validator
        .iter_errors(args)
        .take(MAX_ERRORS)
        .map(|e| {
            let path = e.instance_path().to_string();
            if path.is_empty() {
                e.to_string()
            } else {
                format!("{e} (at args{})", path.replace('/', "."))
            }
        })
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    Err(format!(
        "args do not fit the args_schema of operator `{name}` (version {}): {}",
        version.unwrap_or("unknown"),
        errors.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::validate;

    #[test]
    fn args_that_do_not_fit_the_schema_are_refused_naming_each_problem() {
        let schema = json!({"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"}}, "required": ["name"], "additionalProperties": false});
        assert_eq!(validate("hello", Some("1.0"), &schema, &json!({"name": "x", "n": 3})), Ok(()));
        let err = validate("hello", Some("1.0"), &schema, &json!({"n": "three", "extra": 1})).unwrap_err();
        assert!(err.starts_with("args do not fit the args_schema of operator `hello` (version 1.0): "), "{err}");
        assert!(err.contains("\"name\" is a required property"), "{err}");
        assert!(err.contains("(at args.n)"), "{err}");
        assert!(err.contains("extra"), "{err}");
    }

    #[test]
    fn an_invalid_schema_is_not_enforced() {
        assert_eq!(validate("hello", None, &json!({"type": 12}), &json!({})), Ok(()));
    }
}
