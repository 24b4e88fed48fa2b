//! Typed DAG params in the style of Airflow's `Param`, and how a trigger's
//! `conf` resolves against them.
//!
//! In a DAG file each entry under `params:` is either a plain value, which is
//! the default and accepts any value, or a declaration: an object with a
//! `default` and/or `type` key.
//!
//! ```yaml
//! params:
//!   region: eu                                        # default "eu", any type
//!   count: {type: integer, default: 1, minimum: 1, maximum: 100}
//!   env: {type: string, enum: [dev, prod], description: target}   # required
//!   tag: {type: ["null", "string"], default: null}
//! ```
//!
//! Types are JSON Schema's: `string`, `integer`, `number`, `boolean`, `array`,
//! `object`, `null`, or a list of them. A declaration without a default, or
//! with `default: null` when its types do not allow null, is required: a
//! trigger's `conf` must set it. An object default that itself has a
//! `default` or `type` key must be wrapped: `cfg: {default: {type: x}}`.
//!
//! The stored JSON has the same shape, so definitions stored before params had
//! types (a plain map of values) still load, and default-only params are
//! stored as plain values again.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};

/// A JSON type a param may be declared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// A JSON string.
    String,
    /// A number without a fractional part.
    Integer,
    /// Any JSON number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A JSON array.
    Array,
    /// A JSON object.
    Object,
    /// JSON `null`.
    Null,
}

const TYPE_NAMES: [(&str, ParamType); 7] = [
    ("string", ParamType::String),
    ("integer", ParamType::Integer),
    ("number", ParamType::Number),
    ("boolean", ParamType::Boolean),
    ("array", ParamType::Array),
    ("object", ParamType::Object),
    ("null", ParamType::Null),
];

impl ParamType {
    /// The type's name as written in DAG files.
    pub fn name(self) -> &'static str {
        TYPE_NAMES.iter().find(|(_, t)| *t == self).map(|(name, _)| *name).expect("every type is named")
    }

    /// The type named `name` in a DAG file, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        TYPE_NAMES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// Whether `value` is of this type (`5.0` is an integer, as in JSON Schema).
    pub fn matches(self, value: &Value) -> bool {
        match self {
            ParamType::String => value.is_string(),
            ParamType::Integer => match value {
                Value::Number(n) => n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0),
                _ => false,
            },
            ParamType::Number => value.is_number(),
            ParamType::Boolean => value.is_boolean(),
            ParamType::Array => value.is_array(),
            ParamType::Object => value.is_object(),
            ParamType::Null => value.is_null(),
        }
    }

    fn noun(self) -> &'static str {
        match self {
            ParamType::String => "a string",
            ParamType::Integer => "an integer",
            ParamType::Number => "a number",
            ParamType::Boolean => "a boolean",
            ParamType::Array => "an array",
            ParamType::Object => "an object",
            ParamType::Null => "null",
        }
    }
}

/// One declared DAG param: its default and what a trigger's value must be.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Param {
    /// The value a run gets when its `conf` does not set the param; `None` when there is none.
    pub default: Option<Value>,
    /// Accepted types; empty accepts any value.
    pub types: Vec<ParamType>,
    /// Accepted values (`enum:`); `None` accepts any.
    pub allowed: Option<Vec<Value>>,
    /// Smallest accepted number.
    pub minimum: Option<Number>,
    /// Largest accepted number.
    pub maximum: Option<Number>,
    /// Short label for people.
    pub title: Option<String>,
    /// Free text for people.
    pub description: Option<String>,
}

/// The object form of a param, in YAML and in stored JSON.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Declaration {
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    default: Option<Value>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    types: Option<Value>,
    #[serde(rename = "enum", default, skip_serializing_if = "Option::is_none")]
    allowed: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    minimum: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    maximum: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

/// Keeps an explicit `default: null` apart from a missing default.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

fn is_declaration(value: &Value) -> bool {
    value.as_object().is_some_and(|map| map.contains_key("default") || map.contains_key("type"))
}

fn parse_types(value: &Value) -> Result<Vec<ParamType>, String> {
    let one = |v: &Value| {
        v.as_str().and_then(ParamType::from_name).ok_or_else(|| {
            let names: Vec<_> = TYPE_NAMES.iter().map(|(n, _)| *n).collect();
            format!("unknown type {v}; use one of {} or a list of them", names.join(", "))
        })
    };
    match value {
        Value::Array(items) if items.is_empty() => Err("`type` lists no type".into()),
        Value::Array(items) => items.iter().map(one).collect(),
        single => Ok(vec![one(single)?]),
    }
}

impl Param {
    /// A param with only a default, accepting any value.
    pub fn plain(default: Value) -> Self {
        Param { default: Some(default), ..Param::default() }
    }

    /// Reads a param as written in a DAG file or stored JSON: a plain default or a declaration object.
    pub fn from_value(value: Value) -> Result<Self, String> {
        if !is_declaration(&value) {
            return Ok(Param::plain(value));
        }
        let declaration: Declaration = serde_json::from_value(value).map_err(|e| e.to_string())?;
        let types = match &declaration.types {
            Some(types) => parse_types(types)?,
            None => Vec::new(),
        };
        Ok(Param {
            default: declaration.default,
            types,
            allowed: declaration.allowed,
            minimum: declaration.minimum,
            maximum: declaration.maximum,
            title: declaration.title,
            description: declaration.description,
        })
    }

    /// The value a run gets when its `conf` does not set the param; `None` makes the param required.
    ///
    /// `default: null` counts as no default when the declared types do not allow null
    /// (Airflow's `Param(None, type="string")` idiom for a required param).
    pub fn effective_default(&self) -> Option<&Value> {
        match &self.default {
            Some(Value::Null) if !self.types.is_empty() && !self.types.contains(&ParamType::Null) => None,
            other => other.as_ref(),
        }
    }

    /// Whether a trigger must set the param.
    pub fn is_required(&self) -> bool {
        self.effective_default().is_none()
    }

    /// Checks `value` against the declared types, `enum` and bounds.
    pub fn check(&self, value: &Value) -> Result<(), ParamProblem> {
        if !self.types.is_empty() && !self.types.iter().any(|t| t.matches(value)) {
            return Err(ParamProblem::WrongType { expected: self.expected(), got: describe(value) });
        }
        if let Some(allowed) = &self.allowed {
            if !allowed.iter().any(|a| json_equal(a, value)) {
                return Err(ParamProblem::NotAllowed { allowed: list_values(allowed), got: describe(value) });
            }
        }
        if let Some(number) = value.as_f64() {
            if let Some(min) = self.minimum.as_ref().filter(|min| min.as_f64().is_some_and(|m| number < m)) {
                return Err(ParamProblem::OutOfRange { bound: format!("at least {min}"), got: describe(value) });
            }
            if let Some(max) = self.maximum.as_ref().filter(|max| max.as_f64().is_some_and(|m| number > m)) {
                return Err(ParamProblem::OutOfRange { bound: format!("at most {max}"), got: describe(value) });
            }
        }
        Ok(())
    }

    /// What the param accepts, in words: "an integer", "null or a string", "one of \"a\", \"b\"".
    pub fn expected(&self) -> String {
        if let Some(allowed) = &self.allowed {
            return format!("one of {}", list_values(allowed));
        }
        if self.types.is_empty() {
            return "any JSON value".into();
        }
        self.types.iter().map(|t| t.noun()).collect::<Vec<_>>().join(" or ")
    }

    fn is_plain(&self) -> bool {
        self.types.is_empty()
            && self.allowed.is_none()
            && self.minimum.is_none()
            && self.maximum.is_none()
            && self.title.is_none()
            && self.description.is_none()
            && self.default.as_ref().is_some_and(|d| !is_declaration(d))
    }
}

impl Serialize for Param {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.is_plain() {
            return self.default.serialize(serializer);
        }
        let types = match self.types.as_slice() {
            [] => None,
            [one] => Some(Value::from(one.name())),
            many => Some(Value::Array(many.iter().map(|t| Value::from(t.name())).collect())),
        };
        Declaration {
            default: self.default.clone(),
            types,
            allowed: self.allowed.clone(),
            minimum: self.minimum.clone(),
            maximum: self.maximum.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Param {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Param::from_value(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// The params a DAG declares, by name.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Params(BTreeMap<String, Param>);

impl Params {
    /// Reads and checks the `params:` of a DAG file: every declaration well formed, every default fitting it.
    pub fn declare(raw: Map<String, Value>) -> Result<Self, String> {
        let mut params = BTreeMap::new();
        for (name, value) in raw {
            let param = Param::from_value(value).map_err(|problem| format!("param `{name}`: {problem}"))?;
            if let (Some(min), Some(max)) = (&param.minimum, &param.maximum) {
                if min.as_f64() > max.as_f64() {
                    return Err(format!("param `{name}`: minimum {min} is above maximum {max}"));
                }
            }
            if let Some(default) = param.effective_default() {
                param.check(default).map_err(|problem| format!("param `{name}`: the default {problem}"))?;
            }
            params.insert(name, param);
        }
        Ok(Params(params))
    }

    /// The param named `name`, if declared.
    pub fn get(&self, name: &str) -> Option<&Param> {
        self.0.get(name)
    }

    /// Every param with its name, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Param)> {
        self.0.iter().map(|(name, param)| (name.as_str(), param))
    }

    /// Whether the DAG declares no params.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Names of the params a trigger must set, in name order.
    pub fn required(&self) -> impl Iterator<Item = &str> {
        self.iter().filter(|(_, param)| param.is_required()).map(|(name, _)| name)
    }
}

impl FromIterator<(String, Param)> for Params {
    fn from_iter<I: IntoIterator<Item = (String, Param)>>(iter: I) -> Self {
        Params(iter.into_iter().collect())
    }
}

/// What is wrong with one param's value, without the param's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamProblem {
    /// Not set by the trigger and no default to fall back on.
    #[error("is required: it has no default, so the trigger's conf must set it to {expected}")]
    Missing {
        /// What the param accepts.
        expected: String,
    },
    /// The value is not of a declared type.
    #[error("must be {expected}, got {got}")]
    WrongType {
        /// The declared types, in words.
        expected: String,
        /// The value received, in words.
        got: String,
    },
    /// The value is not one of the `enum` values.
    #[error("must be one of {allowed}, got {got}")]
    NotAllowed {
        /// The accepted values.
        allowed: String,
        /// The value received, in words.
        got: String,
    },
    /// The number is below `minimum` or above `maximum`.
    #[error("must be {bound}, got {got}")]
    OutOfRange {
        /// The bound broken, e.g. "at least 1".
        bound: String,
        /// The value received, in words.
        got: String,
    },
}

/// Why a trigger's `conf` does not fit a DAG's params: the param and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("param `{param}` {problem}")]
pub struct ParamError {
    /// The param at fault.
    pub param: String,
    /// What is wrong with its value.
    pub problem: ParamProblem,
}

/// The params a run sees: each declared param's default, overridden by the `conf` key of the same name,
/// checked against its declaration. Keys of `conf` that name no param stay out (they remain in `conf`).
pub fn resolve_params(declared: &Params, conf: &Map<String, Value>) -> Result<Map<String, Value>, ParamError> {
    let mut resolved = Map::new();
    for (name, param) in declared.iter() {
        let fail = |problem| ParamError { param: name.to_string(), problem };
        let value = match conf.get(name).or_else(|| param.effective_default()) {
            Some(value) => value,
            None => return Err(fail(ParamProblem::Missing { expected: param.expected() })),
        };
        param.check(value).map_err(fail)?;
        resolved.insert(name.to_string(), value.clone());
    }
    Ok(resolved)
}

/// A value in words for an error message, e.g. `the string "x"`; long values are cut.
fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".into(),
        Value::Bool(_) => "the boolean",
        Value::Number(_) => "the number",
        Value::String(_) => "the string",
        Value::Array(_) => "the array",
        Value::Object(_) => "the object",
    };
    format!("{kind} {}", Shortened(value))
}

fn list_values(values: &[Value]) -> String {
    values.iter().map(|v| Shortened(v).to_string()).collect::<Vec<_>>().join(", ")
}

/// Numbers compare by value (`5` equals `5.0`), everything else structurally.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// JSON text of a value, cut to a readable length.
struct Shortened<'a>(&'a Value);

const SHORTENED_CHARS: usize = 60;

impl fmt::Display for Shortened<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        match text.char_indices().nth(SHORTENED_CHARS) {
            Some((cut, _)) => write!(f, "{}…", &text[..cut]),
            None => f.write_str(&text),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn declare(params: Value) -> Result<Params, String> {
        Params::declare(params.as_object().expect("an object").clone())
    }

    fn conf(value: Value) -> Map<String, Value> {
        value.as_object().expect("an object").clone()
    }

    #[test]
    fn a_plain_value_is_a_default_of_any_type() {
        let params = declare(json!({"region": "eu"})).unwrap();
        assert_eq!(params.get("region"), Some(&Param::plain(json!("eu"))));
        assert_eq!(resolve_params(&params, &conf(json!({}))).unwrap(), conf(json!({"region": "eu"})));
        assert_eq!(resolve_params(&params, &conf(json!({"region": 7}))).unwrap(), conf(json!({"region": 7})));
    }

    #[test]
    fn a_declaration_has_a_default_a_type_and_constraints() {
        let params = declare(json!({
            "count": {"type": "integer", "default": 1, "minimum": 1, "maximum": 10, "description": "how many"},
            "env": {"type": "string", "enum": ["dev", "prod"], "default": "dev"},
            "tag": {"type": ["null", "string"], "default": null},
        }))
        .unwrap();
        let count = params.get("count").unwrap();
        assert_eq!(count.types, [ParamType::Integer]);
        assert_eq!(count.description.as_deref(), Some("how many"));
        assert_eq!(params.get("tag").unwrap().types, [ParamType::Null, ParamType::String]);
        let resolved = resolve_params(&params, &conf(json!({"count": 5, "tag": "x"}))).unwrap();
        assert_eq!(resolved, conf(json!({"count": 5, "env": "dev", "tag": "x"})));
    }

    #[test]
    fn conf_keys_override_defaults_and_undeclared_keys_stay_out() {
        let params = declare(json!({"count": {"type": "integer", "default": 1}})).unwrap();
        let resolved = resolve_params(&params, &conf(json!({"count": 3, "other": true}))).unwrap();
        assert_eq!(resolved, conf(json!({"count": 3})));
    }

    #[test]
    fn a_value_of_the_wrong_type_names_the_param_the_type_and_the_value() {
        let params = declare(json!({"count": {"type": "integer", "default": 1}})).unwrap();
        let error = resolve_params(&params, &conf(json!({"count": "x"}))).unwrap_err();
        assert_eq!(error.param, "count");
        assert_eq!(error.to_string(), r#"param `count` must be an integer, got the string "x""#);
        let error = resolve_params(&params, &conf(json!({"count": 1.5}))).unwrap_err();
        assert_eq!(error.to_string(), "param `count` must be an integer, got the number 1.5");
        assert!(resolve_params(&params, &conf(json!({"count": 2.0}))).is_ok());
    }

    #[test]
    fn every_type_accepts_its_own_values_only() {
        let cases = [
            ("string", json!("s"), json!(1)),
            ("integer", json!(-3), json!("3")),
            ("number", json!(2.5), json!(true)),
            ("boolean", json!(false), json!("false")),
            ("array", json!([1]), json!({})),
            ("object", json!({"a": 1}), json!([])),
            ("null", json!(null), json!(0)),
        ];
        for (name, good, bad) in cases {
            let t = ParamType::from_name(name).unwrap();
            assert_eq!(t.name(), name);
            assert!(t.matches(&good), "{name} should accept {good}");
            assert!(!t.matches(&bad), "{name} should reject {bad}");
        }
    }

    #[test]
    fn a_list_of_types_accepts_any_of_them() {
        let params = declare(json!({"tag": {"type": ["null", "string"], "default": null}})).unwrap();
        assert!(resolve_params(&params, &conf(json!({"tag": null}))).is_ok());
        let error = resolve_params(&params, &conf(json!({"tag": 1}))).unwrap_err();
        assert_eq!(error.to_string(), "param `tag` must be null or a string, got the number 1");
    }

    #[test]
    fn a_param_without_a_default_is_required() {
        let params = declare(json!({"env": {"type": "string"}, "day": {"type": "string", "default": null}})).unwrap();
        assert_eq!(params.required().collect::<Vec<_>>(), ["day", "env"]);
        let error = resolve_params(&params, &conf(json!({"day": "mon"}))).unwrap_err();
        assert_eq!(error.param, "env");
        assert_eq!(
            error.to_string(),
            "param `env` is required: it has no default, so the trigger's conf must set it to a string"
        );
        assert!(resolve_params(&params, &conf(json!({"day": "mon", "env": "prod"}))).is_ok());
    }

    #[test]
    fn enum_and_bounds_are_enforced() {
        let params = declare(json!({
            "env": {"type": "string", "enum": ["dev", "prod"], "default": "dev"},
            "count": {"type": "integer", "default": 1, "minimum": 1, "maximum": 10},
        }))
        .unwrap();
        let error = resolve_params(&params, &conf(json!({"env": "test"}))).unwrap_err();
        assert_eq!(error.to_string(), r#"param `env` must be one of "dev", "prod", got the string "test""#);
        let error = resolve_params(&params, &conf(json!({"count": 0}))).unwrap_err();
        assert_eq!(error.to_string(), "param `count` must be at least 1, got the number 0");
        let error = resolve_params(&params, &conf(json!({"count": 11}))).unwrap_err();
        assert_eq!(error.to_string(), "param `count` must be at most 10, got the number 11");
    }

    #[test]
    fn a_default_that_does_not_fit_its_declaration_is_rejected() {
        let error = declare(json!({"count": {"type": "integer", "default": "one"}})).unwrap_err();
        assert_eq!(error, r#"param `count`: the default must be an integer, got the string "one""#);
        let error = declare(json!({"env": {"enum": ["a"], "default": "b"}})).unwrap_err();
        assert!(error.contains("param `env`: the default must be one of \"a\""), "{error}");
    }

    #[test]
    fn malformed_declarations_are_rejected() {
        let error = declare(json!({"count": {"type": "integr"}})).unwrap_err();
        assert!(error.starts_with("param `count`: unknown type \"integr\"; use one of string, integer"), "{error}");
        let error = declare(json!({"count": {"type": "integer", "defualt": 1}})).unwrap_err();
        assert!(error.contains("unknown field `defualt`"), "{error}");
        let error = declare(json!({"count": {"type": "integer", "minimum": 5, "maximum": 1}})).unwrap_err();
        assert!(error.contains("minimum 5 is above maximum 1"), "{error}");
    }

    #[test]
    fn an_object_default_with_a_type_key_must_be_wrapped() {
        let params = declare(json!({"cfg": {"default": {"type": "x"}}})).unwrap();
        assert_eq!(params.get("cfg").unwrap().effective_default(), Some(&json!({"type": "x"})));
        let plain_object = declare(json!({"cfg": {"a": 1}})).unwrap();
        assert_eq!(plain_object.get("cfg"), Some(&Param::plain(json!({"a": 1}))));
    }

    #[test]
    fn old_stored_params_load_and_serialize_unchanged() {
        let stored = json!({"region": "eu", "limits": {"a": 1}, "n": 3});
        let params: Params = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(serde_json::to_value(&params).unwrap(), stored);
    }

    #[test]
    fn declarations_survive_a_json_round_trip() {
        let params = declare(json!({
            "count": {"type": "integer", "default": 1, "minimum": 0},
            "tag": {"type": ["null", "string"], "default": null, "title": "Tag"},
            "env": {"type": "string"},
            "cfg": {"default": {"type": "x"}},
        }))
        .unwrap();
        let json = serde_json::to_value(&params).unwrap();
        assert_eq!(json["env"], json!({"type": "string"}));
        assert_eq!(json["tag"]["default"], Value::Null);
        assert_eq!(serde_json::from_value::<Params>(json).unwrap(), params);
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let params = declare(json!({"n": {"type": "integer", "default": 1}})).unwrap();
        let long = "y".repeat(500);
        let error = resolve_params(&params, &conf(json!({ "n": long }))).unwrap_err().to_string();
        assert!(error.len() < 150 && error.ends_with('…'), "{error}");
    }
}
