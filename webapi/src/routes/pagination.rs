//! `limit`, `offset` and `order_by` query parameters, as Airflow reads them:
//! `limit` defaults to 50 and is capped silently at 1000; negative values are
//! a 400; `order_by` names fields a list allows, `-field` for descending.

use serde::Deserialize;
use utoipa::IntoParams;

use super::input_checks::at_least_zero;
use crate::error::ApiError;

/// Page size when the client names none.
pub(crate) const DEFAULT_LIMIT: i64 = 50;
/// Largest page; bigger requests get this many (Airflow's `maximum_page_limit`).
pub(crate) const MAX_LIMIT: i64 = 1000;

/// The raw `limit` and `offset` query parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageParams {
    /// Most items to return (default 50, at most 1000).
    #[param(schema_with = count_or_empty)]
    limit: Option<i64>,
    /// Items to skip.
    #[param(schema_with = count_or_empty)]
    offset: Option<i64>,
}

/// The schema of `limit` and `offset`: a count, or empty for the default (`airflowctl` sends `limit=`).
fn count_or_empty() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, Type};
    let count = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).maximum(Some(i64::MAX));
    let empty = ObjectBuilder::new().schema_type(Type::String).max_length(Some(0));
    Schema::AnyOf(AnyOfBuilder::new().item(count).item(empty).build())
}

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    /// Most items to return.
    pub(crate) limit: i64,
    /// Items to skip.
    pub(crate) offset: i64,
}

impl PageParams {
    /// Checks the parameters and applies the default and the cap.
    pub(crate) fn page(&self) -> Result<Page, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        let offset = self.offset.unwrap_or(0);
        if limit < 0 {
            return Err(at_least_zero(["query", "limit"], limit));
        }
        if offset < 0 {
            return Err(at_least_zero(["query", "offset"], offset));
        }
        Ok(Page { limit: limit.min(MAX_LIMIT), offset })
    }
}

impl Page {
    /// The part of an in-memory list this page covers.
    pub(crate) fn slice<T>(self, items: Vec<T>) -> Vec<T> {
        let offset = usize::try_from(self.offset).unwrap_or(usize::MAX);
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        items.into_iter().skip(offset).take(limit).collect()
    }
}

/// Alternatives of a field-list pattern ([`crate::extract::field_list_parameter`])
/// for ordering by `fields` (name, column): each name, optionally `-`-prefixed.
pub(crate) fn order_alternatives(fields: &[(&str, &str)]) -> Vec<String> {
    fields.iter().map(|(name, _)| format!("-?{}", crate::extract::regex_escape(name))).collect()
}

/// Declares `$name`, whose only use is to document the `order_by` query
/// parameter of the list ordered by `$fields` in `#[utoipa::path(params(…))]`.
macro_rules! order_by_param {
    ($name:ident, $fields:expr) => {
        crate::extract::field_list_param!(
            $name,
            "order_by",
            "Fields to sort by, first first, repeated or comma-separated; `-field` sorts descending",
            crate::routes::pagination::order_alternatives($fields)
        );
    };
}
pub(crate) use order_by_param;

/// The `order_by` query parameter: repeated (`order_by=a&order_by=-b`) or comma-separated.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OrderParams {
    /// Fields to sort by, first first; `-field` sorts descending.
    #[serde(default)]
    order_by: Vec<String>,
}

impl OrderParams {
    /// An `ORDER BY` list made only of the static SQL in `allowed` (field name → column
    /// expression), followed by `tiebreak` so pages are stable; `default` when the
    /// client names no field. An unknown field is a 400 naming the allowed ones.
    pub(crate) fn sql(
        &self,
        allowed: &[(&str, &'static str)],
        default: &'static str,
        tiebreak: &'static str,
    ) -> Result<String, ApiError> {
        let mut keys: Vec<String> = Vec::new();
        for field in self.order_by.iter().flat_map(|raw| raw.split(',')).map(str::trim).filter(|f| !f.is_empty()) {
            let (name, descending) = match field.strip_prefix('-') {
                Some(name) => (name, true),
                None => (field, false),
            };
            let Some((_, column)) = allowed.iter().find(|(allowed_name, _)| *allowed_name == name) else {
                let names: Vec<&str> = allowed.iter().map(|(name, _)| *name).collect();
                return Err(ApiError::BadRequest(format!(
                    "cannot order by `{name}`; `order_by` takes one of {} (prefix `-` for descending)",
                    names.join(", ")
                )));
            };
            keys.push(format!("{column} {}", if descending { "DESC" } else { "ASC" }));
        }
        if keys.is_empty() {
            keys.push(default.to_string());
        }
        keys.push(tiebreak.to_string());
        Ok(keys.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: [(&str, &str); 2] = [("dag_id", "d.dag_id"), ("start_date", "r.start_date")];

    fn order(raw: &[&str]) -> Result<String, ApiError> {
        OrderParams { order_by: raw.iter().map(|s| s.to_string()).collect() }.sql(&FIELDS, "d.dag_id ASC", "d.id")
    }

    #[test]
    fn order_by_maps_fields_to_columns_with_direction_and_a_tiebreak() {
        assert_eq!(order(&[]).unwrap(), "d.dag_id ASC, d.id");
        assert_eq!(order(&["-start_date", "dag_id"]).unwrap(), "r.start_date DESC, d.dag_id ASC, d.id");
        assert_eq!(order(&["start_date,-dag_id"]).unwrap(), "r.start_date ASC, d.dag_id DESC, d.id");
    }

    #[test]
    fn order_by_an_unknown_field_is_a_bad_request_listing_the_allowed_ones() {
        let error = order(&["dag_id; drop table dags"]).unwrap_err().to_string();
        assert!(error.contains("dag_id, start_date"), "{error}");
    }

    fn page(limit: Option<i64>, offset: Option<i64>) -> Result<Page, ApiError> {
        PageParams { limit, offset }.page()
    }

    #[test]
    fn no_parameters_mean_the_first_fifty() {
        assert_eq!(page(None, None).unwrap(), Page { limit: 50, offset: 0 });
    }

    #[test]
    fn a_limit_over_the_maximum_is_capped_silently() {
        assert_eq!(page(Some(5000), Some(10)).unwrap(), Page { limit: MAX_LIMIT, offset: 10 });
        assert_eq!(page(Some(0), None).unwrap().limit, 0);
    }

    #[test]
    fn negative_limit_or_offset_is_a_bad_request_naming_the_parameter() {
        let limit = page(Some(-1), None).unwrap_err().to_string();
        assert!(limit.contains("`limit`"), "{limit}");
        let offset = page(None, Some(-3)).unwrap_err().to_string();
        assert!(offset.contains("`offset`"), "{offset}");
    }

    #[test]
    fn query_strings_parse_into_page_params() {
        let params: PageParams = serde_urlencoded_like("limit=7&offset=2&other=x");
        assert_eq!(params.page().unwrap(), Page { limit: 7, offset: 2 });
    }

    #[test]
    fn a_page_slices_an_in_memory_list() {
        let items: Vec<i32> = (0..10).collect();
        assert_eq!(Page { limit: 3, offset: 8 }.slice(items.clone()), vec![8, 9]);
        assert_eq!(Page { limit: 2, offset: 20 }.slice(items), Vec::<i32>::new());
    }

    /// Parses a query string the way the `ApiQuery` extractor does.
    fn serde_urlencoded_like(query: &str) -> PageParams {
        serde_html_form::from_str(query).unwrap()
    }

    #[test]
    fn repeated_order_by_keys_fill_the_list() {
        let params: OrderParams = serde_html_form::from_str("order_by=a&order_by=-b&limit=3").unwrap();
        assert_eq!(params.order_by, ["a", "-b"]);
    }
}
