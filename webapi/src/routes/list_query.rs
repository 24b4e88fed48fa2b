//! Reading the filters of the DAG and DAG-run listings from the query string,
//! as Airflow's clients send them: a list is a repeated key (`state=a&state=b`),
//! an empty value counts as not given, a single-valued key given twice keeps
//! its last value, and a value that does not parse is a 422 naming its key
//! (FastAPI's answer to a query value of the wrong type).

use std::marker::PhantomData;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use gust_shared::db::filters::{TextMatch, TimeRange};
use utoipa::{
    openapi::{
        path::{Parameter, ParameterIn},
        schema::{AnyOfBuilder, ArrayItems, ObjectBuilder, Schema, Type},
        RefOr,
    },
    IntoParams,
};

use crate::error::ApiError;

/// Documents the filters `T` of a list read through [`QueryPairs`]: each
/// parameter as `T` describes it, or empty, which the server takes as not given.
pub(crate) struct Filters<T>(PhantomData<T>);

impl<T: IntoParams> IntoParams for Filters<T> {
    fn into_params(parameter_in: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut parameters = T::into_params(parameter_in);
        for parameter in &mut parameters {
            if let Some(schema) = parameter.schema.take() {
                parameter.schema = Some(or_empty_items(schema));
            }
        }
        parameters
    }
}

/// `schema`, or for an array `schema` with each item, that may also be the empty string.
fn or_empty_items(schema: RefOr<Schema>) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Array(mut array)) => {
            if let ArrayItems::RefOrSchema(item) = array.items {
                array.items = ArrayItems::RefOrSchema(Box::new(or_empty(*item)));
            }
            RefOr::T(Schema::Array(array))
        }
        other => or_empty(other),
    }
}

fn or_empty(schema: RefOr<Schema>) -> RefOr<Schema> {
    let empty = ObjectBuilder::new().schema_type(Type::String).max_length(Some(0));
    AnyOfBuilder::new().item(schema).item(empty).into()
}

/// Declares `$name`, a string schema whose values are `$values` (an iterator of
/// `&str`), for a query parameter's value in the OpenAPI document (`#[param(inline)]`).
macro_rules! string_choice {
    ($name:ident, $values:expr) => {
        /// One of a fixed set of strings, for the OpenAPI document.
        pub(crate) struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some($values))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use string_choice;

/// The query string as its key-value pairs, in order (a repeated key appears once per value).
pub(crate) struct QueryPairs(pub(crate) Vec<(String, String)>);

impl QueryPairs {
    /// Every non-empty value of `key`.
    pub(crate) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, v)| k == key && !v.is_empty()).map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of `key`, owned.
    pub(crate) fn strings(&self, key: &str) -> Vec<String> {
        self.all(key).map(str::to_string).collect()
    }

    /// The last non-empty value of `key`.
    pub(crate) fn last(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, v)| k == key && !v.is_empty()).map(|(_, v)| v.as_str())
    }

    /// `key` as a boolean (`true`/`false`, also `1`/`0`, any case).
    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        let Some(value) = self.last(key) else { return Ok(None) };
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(ApiError::invalid(
                ["query", key],
                "bool_parsing",
                format!("`{key}` must be true or false, got `{value}`"),
            )),
        }
    }

    /// The last value of `key` as an integer.
    pub(crate) fn integer<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        self.last(key).map(|value| parse_integer(key, value)).transpose()
    }

    /// Every value of `key` as an integer.
    pub(crate) fn integers<T: std::str::FromStr>(&self, key: &str) -> Result<Vec<T>, ApiError> {
        self.all(key).map(|value| parse_integer(key, value)).collect()
    }

    /// `{name}_gte`, `{name}_gt`, `{name}_lte` and `{name}_lt` as date-times.
    pub(crate) fn time_range(&self, name: &str) -> Result<TimeRange, ApiError> {
        let bound = |suffix: &str| {
            let key = format!("{name}_{suffix}");
            self.last(&key).map(|value| parse_time(&key, value)).transpose()
        };
        Ok(TimeRange { gte: bound("gte")?, gt: bound("gt")?, lte: bound("lte")?, lt: bound("lt")? })
    }

    /// `{name}_pattern` (case-insensitive substring) and `{name}_prefix_pattern` (case-sensitive prefix).
    pub(crate) fn text_matches(&self, name: &str) -> Vec<TextMatch> {
        let contains = self.last(&format!("{name}_pattern")).and_then(TextMatch::contains);
        let prefix = self.last(&format!("{name}_prefix_pattern")).and_then(TextMatch::starts_with);
        contains.into_iter().chain(prefix).collect()
    }

    /// A 422 naming the first of `unsupported` (Airflow parameters gust cannot apply yet) that was given,
    /// so a filter is never silently ignored.
    pub(crate) fn refuse(&self, unsupported: &[&str]) -> Result<(), ApiError> {
        match self.0.iter().find(|(k, v)| !v.is_empty() && unsupported.contains(&k.as_str())) {
            None => Ok(()),
            Some((key, _)) => Err(ApiError::invalid(
                ["query", key.as_str()],
                "value_error",
                format!(
                    "the `{key}` filter is not supported by gust yet; leave it out and filter the response instead"
                ),
            )),
        }
    }
}

/// `value` of query parameter `key` as an integer, or a 422 naming it.
fn parse_integer<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ApiError> {
    value.trim().parse().map_err(|_| {
        ApiError::invalid(["query", key], "int_parsing", format!("`{key}` must be an integer, got `{value}`"))
    })
}

/// An ISO 8601 date-time (a date alone is its midnight, no offset is UTC; the
/// offset may be `+00:00` or `+0000`, as Python's `isoformat` and `strftime`
/// write it); anything else is a 422 naming `param`, as FastAPI answers it.
pub(crate) fn parse_time(param: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    let value = value.trim();
    // An offset's `+` sent without URL-encoding arrives as a space: `…T00:00:00 02:00`.
    let repaired = match (value.find('T'), value.rfind(' ')) {
        (Some(t), Some(space)) if space > t => format!("{}+{}", &value[..space], &value[space + 1..]),
        _ => value.to_string(),
    };
    DateTime::parse_from_rfc3339(&repaired)
        .or_else(|_| DateTime::parse_from_str(&repaired, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|t| t.and_utc()))
        .or_else(|| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
        })
        .ok_or_else(|| {
            ApiError::invalid(
                ["query", param],
                "datetime_from_date_parsing",
                format!("`{param}` must be an ISO 8601 date-time such as 2026-01-01T00:00:00Z, got `{value}`"),
            )
        })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn query(text: &str) -> QueryPairs {
        QueryPairs(serde_html_form::from_str(text).unwrap())
    }

    #[test]
    fn repeated_keys_are_lists_empty_values_are_absent_and_the_last_single_value_wins() {
        let q = query("state=queued&state=&state=failed&paused=false&paused=true");
        assert_eq!(q.strings("state"), ["queued", "failed"]);
        assert_eq!(q.bool("paused").unwrap(), Some(true));
        assert_eq!(q.bool("missing").unwrap(), None);
    }

    #[test]
    fn a_bad_boolean_or_date_names_its_parameter() {
        let error = query("paused=maybe").bool("paused").unwrap_err().to_string();
        assert!(error.contains("`paused`") && error.contains("maybe"), "{error}");
        let error = query("start_date_lt=soon").time_range("start_date").unwrap_err().to_string();
        assert!(error.contains("`start_date_lt`") && error.contains("soon"), "{error}");
    }

    #[test]
    fn dates_parse_as_iso_8601_with_or_without_an_offset() {
        let midnight = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        for text in [
            "2026-01-02T00:00:00Z",
            "2026-01-02T02:00:00+02:00",
            "2026-01-02T02:00:00 02:00",
            "2026-01-02T02:00:00.000000+0200",
            "2026-01-02T02:00:00.000000 0200",
            "2026-01-02",
            "2026-01-02T00:00:00",
        ] {
            assert_eq!(parse_time("run_after_gte", text).unwrap(), midnight, "{text}");
        }
        let range =
            query("run_after_gte=2026-01-02&run_after_lt=2026-01-02T00%3A00%3A00%2B00%3A00").time_range("run_after");
        assert_eq!(range.unwrap(), TimeRange { gte: Some(midnight), lt: Some(midnight), ..TimeRange::default() });
    }

    #[test]
    fn patterns_and_prefixes_become_text_matches() {
        let q = query("dag_id_pattern=etl&dag_id_prefix_pattern=night&run_id_pattern=~");
        assert_eq!(
            q.text_matches("dag_id"),
            [TextMatch::Contains(vec!["etl".into()]), TextMatch::StartsWith(vec!["night".into()])]
        );
        assert!(q.text_matches("run_id").is_empty());
    }

    #[test]
    fn an_unsupported_filter_is_refused_by_name() {
        assert!(query("dag_version=&limit=3").refuse(&["dag_version"]).is_ok());
        let error = query("limit=3&dag_version=2").refuse(&["dag_version"]).unwrap_err().to_string();
        assert!(error.contains("`dag_version`"), "{error}");
    }
}
