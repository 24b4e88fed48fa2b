//! Extractors whose rejections are [`ApiError`]s, so a malformed body, path
//! or query string gets the same JSON error shape as everything else: a
//! body, query string or path value that does not fit the operation's types
//! is a 422 with FastAPI's `detail` list, each entry locating the problem
//! (`["body", "slots"]`, `["query", "limit"]`, `["path", "try_number"]`).

use axum::{
    extract::{
        path::ErrorKind as PathErrorKind, rejection::PathRejection, FromRequest, FromRequestParts, Path, RawPathParams,
        Request,
    },
    http::{request::Parts, StatusCode},
};
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use std::fmt::Write as _;
use utoipa::openapi::{
    path::{Parameter, ParameterBuilder, ParameterIn},
    schema::{ArrayBuilder, ObjectBuilder, Type},
    Required,
};

use crate::error::{ApiError, FieldError, Loc};

/// A JSON request body (`Content-Type: application/json`): a JSON object
/// (422 otherwise, as for one that is not JSON or does not fit `T`), or with `ANY` set
/// ([`ANY_JSON`]) any JSON value, which the handler checks itself.
pub struct ApiJson<T, const ANY: bool = false>(pub T);

/// The `ANY` of an [`ApiJson`] whose handler takes any JSON value.
pub const ANY_JSON: bool = true;

/// The query string, deserialized; unknown keys are ignored, a repeated key
/// (`tags=a&tags=b`, how Airflow's clients send lists) fills a `Vec`, and a
/// value that does not parse is a 422 naming the parameter.
pub struct ApiQuery<T>(pub T);

/// The path parameters, deserialized; one that does not parse is a 422 naming it.
pub struct ApiPath<T>(pub T);

impl<S, T, const ANY: bool> FromRequest<S> for ApiJson<T, ANY>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // As FastAPI reads a body: without a Content-Type it is parsed as JSON; with another
        // type it is not JSON, and an empty body is a missing one (both 422s).
        let declared = req.headers().get(axum::http::header::CONTENT_TYPE).is_some();
        let json = crate::is_json(req.headers());
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| ApiError::with_status(rejection.status(), rejection.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::invalid(
                ["body"],
                "missing",
                "the JSON body is missing; send one with `Content-Type: application/json`",
            ));
        }
        if declared && !json {
            return Err(ApiError::invalid(
                ["body"],
                "model_attributes_type",
                "the body must be JSON sent with `Content-Type: application/json`",
            ));
        }
        if has_escaped_nul(&bytes) {
            return Err(ApiError::BadRequest(NUL_DETAIL.replace("{where}", "the JSON body")));
        }
        // serde fills a struct from a JSON array too (`[null, null]`); the API's bodies are objects.
        let object = bytes.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{');
        if !ANY && !object && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() {
            return Err(ApiError::invalid(
                ["body"],
                "model_attributes_type",
                "the body must be a JSON object, such as {\"field\": \"value\"}",
            ));
        }
        json_body::<T>(&bytes).map(Self)
    }
}

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        refuse_nul(query, "the query string")?;
        serde_path_to_error::deserialize(serde_html_form::Deserializer::from_bytes(query.as_bytes()))
            .map(Self)
            .map_err(|error| query_error(query, &error))
    }
}

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        refuse_nul(parts.uri.path(), "the path")?;
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(error)) => {
                let names = match RawPathParams::from_request_parts(parts, state).await {
                    Ok(params) => params.iter().map(|(name, _)| name.to_string()).collect(),
                    Err(_) => Vec::new(),
                };
                Err(path_error(error.into_kind(), &names))
            }
            Err(other) => Err(ApiError::with_status(other.status(), other.body_text())),
        }
    }
}

/// The body as `T`: a 422 `json_invalid` at the byte where it stops being
/// JSON, or one entry locating the field that does not fit `T`.
fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => deserializer.end().map(|()| value).map_err(|error| not_json(&error, bytes)),
        Err(error) if error.inner().classify() != Category::Data => Err(not_json(error.inner(), bytes)),
        Err(error) if is_whole_float_refused(&error) => with_whole_floats_as_integers(bytes, error),
        Err(error) => Err(ApiError::Invalid(vec![body_field_error(&error)])),
    }
}

/// Most fields [`with_whole_floats_as_integers`] converts in one body.
const MAX_FLOAT_FIXES: usize = 64;

/// Whether serde may have refused a float where it wanted an integer: said so,
/// or an untagged enum (a `[task_id, map_index]` pair) none of whose variants fit.
fn is_whole_float_refused(error: &serde_path_to_error::Error<serde_json::Error>) -> bool {
    let message = error.inner().to_string();
    message.contains("invalid type: floating point")
        && (message.contains("expected i") || message.contains("expected u"))
        || message.contains("did not match any variant of untagged enum")
}

/// The body read again with `7.0` taken as `7` where an integer is wanted, as
/// pydantic's lax mode reads it (a JSON Schema `integer` allows `7.0` too).
/// Only the values serde refused are converted (with every whole float of the
/// innermost object serde names, when it cannot name the field itself, as
/// inside an internally tagged enum), so other numbers stay as sent.
fn with_whole_floats_as_integers<T: DeserializeOwned>(
    bytes: &[u8],
    mut error: serde_path_to_error::Error<serde_json::Error>,
) -> Result<T, ApiError> {
    let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Err(ApiError::Invalid(vec![body_field_error(&error)]));
    };
    for _ in 0..MAX_FLOAT_FIXES {
        let Some(place) = value_at(&mut body, error.path()) else { break };
        if !integers_for_whole_floats(place) {
            break;
        }
        match serde_path_to_error::deserialize(body.clone()) {
            Ok(value) => return Ok(value),
            Err(next) if is_whole_float_refused(&next) => error = next,
            Err(next) => return Err(ApiError::Invalid(vec![body_field_error(&next)])),
        }
    }
    Err(ApiError::Invalid(vec![body_field_error(&error)]))
}

/// The value at `path` in `body`, or the innermost one the path reaches.
fn value_at<'a>(
    body: &'a mut serde_json::Value,
    path: &serde_path_to_error::Path,
) -> Option<&'a mut serde_json::Value> {
    let mut place = body;
    for segment in path.iter() {
        let next = match (segment, &mut *place) {
            (serde_path_to_error::Segment::Seq { index }, serde_json::Value::Array(items)) => index.lt(&items.len()),
            (serde_path_to_error::Segment::Map { key }, serde_json::Value::Object(map)) => map.contains_key(key),
            _ => false,
        };
        if !next {
            break;
        }
        place = match (segment, place) {
            (serde_path_to_error::Segment::Seq { index }, serde_json::Value::Array(items)) => &mut items[*index],
            (serde_path_to_error::Segment::Map { key }, serde_json::Value::Object(map)) => map.get_mut(key)?,
            _ => return None,
        };
    }
    Some(place)
}

/// Turns every whole float in `value` (itself, or in the object or array it is) into an integer;
/// whether it changed any.
fn integers_for_whole_floats(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::Number(number) if number.is_f64() => {
            let float = number.as_f64().unwrap_or(f64::NAN);
            if float.fract() == 0.0 && float.abs() < 9.0e18 {
                *value = serde_json::Value::from(float as i64);
                true
            } else {
                false
            }
        }
        serde_json::Value::Array(items) => {
            items.iter_mut().fold(false, |changed, item| integers_for_whole_floats(item) | changed)
        }
        serde_json::Value::Object(map) => {
            map.values_mut().fold(false, |changed, item| integers_for_whole_floats(item) | changed)
        }
        _ => false,
    }
}

/// The 422 for a body that is not JSON, located at the byte offset where the parser stopped.
fn not_json(error: &serde_json::Error, bytes: &[u8]) -> ApiError {
    let line_start: usize =
        bytes.split_inclusive(|byte| *byte == b'\n').take(error.line().saturating_sub(1)).map(<[u8]>::len).sum();
    let offset = (line_start + error.column().saturating_sub(1)).min(bytes.len());
    ApiError::Invalid(vec![FieldError::new(
        [Loc::from("body"), Loc::Index(offset)],
        "json_invalid",
        format!("the body is not valid JSON: {error}"),
    )])
}

/// The entry for a body field that does not fit: where it is, what kind of problem, serde's explanation.
fn body_field_error(error: &serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let mut loc = vec![Loc::from("body")];
    for segment in error.path().iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => loc.push(Loc::Index(*index)),
            serde_path_to_error::Segment::Map { key } | serde_path_to_error::Segment::Enum { variant: key } => {
                loc.push(Loc::Name(key.clone()));
            }
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    let text = error.inner().to_string();
    let message = text.rsplit_once(" at line ").map_or(text.as_str(), |(message, _)| message);
    let kind = kind_of(message);
    let named = match kind {
        "missing" | "extra_forbidden" => first_quoted(message).map(str::to_string),
        _ => None,
    };
    let names_its_field = matches!(loc.last(), Some(Loc::Name(field)) if message.contains(&format!("`{field}`")));
    let msg = match (&named, loc.len()) {
        (Some(_), _) | (None, 1) => message.to_string(),
        (None, _) if names_its_field => message.to_string(),
        (None, _) => format!("`{}`: {message}", dotted(&loc[1..])),
    };
    if let Some(name) = named.filter(|name| loc.last() != Some(&Loc::Name(name.clone()))) {
        loc.push(Loc::Name(name));
    }
    FieldError::new(loc, kind, msg)
}

/// The 422 for a query string that does not fit: the parameter, and the value it had.
fn query_error(query: &str, error: &serde_path_to_error::Error<serde_html_form::de::Error>) -> ApiError {
    let message = error.inner().to_string();
    let kind = kind_of(&message);
    let mut names = error.path().iter().filter_map(|segment| match segment {
        serde_path_to_error::Segment::Map { key } => Some(key.clone()),
        _ => None,
    });
    let Some(name) = names.next().or_else(|| first_quoted(&message).map(str::to_string)) else {
        return ApiError::invalid(["query"], kind, format!("the query string does not fit this operation: {message}"));
    };
    let index = error.path().iter().find_map(|segment| match segment {
        serde_path_to_error::Segment::Seq { index } => Some(*index),
        _ => None,
    });
    let values: Vec<(String, String)> = serde_html_form::from_str(query).unwrap_or_default();
    let value = values.into_iter().filter(|(key, _)| *key == name).nth(index.unwrap_or(0)).map(|(_, value)| value);
    let msg = if kind == "missing" {
        format!("the query parameter `{name}` is required")
    } else {
        parse_message(&name, kind, &message, value.as_deref())
    };
    let mut field = FieldError::new([Loc::from("query"), Loc::Name(name)], kind, msg);
    if let Some(value) = value {
        field = field.with_input(value);
    }
    ApiError::Invalid(vec![field])
}

/// The 422 for a path segment that does not parse; `names` are the route's parameters, in order.
fn path_error(kind: PathErrorKind, names: &[String]) -> ApiError {
    let at = |index: usize| names.get(index).cloned().unwrap_or_else(|| format!("parameter {}", index + 1));
    let (name, kind, msg, value) = match kind {
        PathErrorKind::ParseErrorAtKey { key, value, expected_type } => {
            let kind = kind_of_type(expected_type);
            (key.clone(), kind, parse_message(&key, kind, expected_type, Some(&value)), Some(value))
        }
        PathErrorKind::ParseErrorAtIndex { index, value, expected_type } => {
            let (name, kind) = (at(index), kind_of_type(expected_type));
            (name.clone(), kind, parse_message(&name, kind, expected_type, Some(&value)), Some(value))
        }
        PathErrorKind::ParseError { value, expected_type } => {
            let (name, kind) = (at(0), kind_of_type(expected_type));
            (name.clone(), kind, parse_message(&name, kind, expected_type, Some(&value)), Some(value))
        }
        PathErrorKind::DeserializeError { key, value, message } => {
            let msg = parse_message(&key, "value_error", &message, Some(&value));
            (key, "value_error", msg, Some(value))
        }
        PathErrorKind::InvalidUtf8InPathParam { key } => {
            let msg = format!("`{key}` is not valid UTF-8 once percent-decoded");
            (key, "string_unicode", msg, None)
        }
        PathErrorKind::Message(message) => return ApiError::invalid(["path"], "value_error", message),
        other => {
            tracing::error!(error = %other, "a handler's path type does not fit its route");
            return ApiError::with_status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal server error; the gust-webapi log has the details",
            );
        }
    };
    let mut field = FieldError::new([Loc::from("path"), Loc::Name(name)], kind, msg);
    if let Some(value) = value {
        field = field.with_input(value);
    }
    ApiError::Invalid(vec![field])
}

/// A message for parameter `name` whose value does not parse as `kind` (`why` is the parser's explanation).
fn parse_message(name: &str, kind: &str, why: &str, value: Option<&str>) -> String {
    let got = value.map(|value| format!(", got `{value}`")).unwrap_or_default();
    match kind {
        "int_parsing" => format!("`{name}` must be a whole number{got}"),
        "float_parsing" => format!("`{name}` must be a number{got}"),
        "bool_parsing" => format!("`{name}` must be true or false{got}"),
        _ => format!("`{name}`: {why}{got}"),
    }
}

/// The pydantic kind of a Rust type name's parse failure (`i32` → `int_parsing`).
fn kind_of_type(type_name: &str) -> &'static str {
    let base = type_name.rsplit("::").next().unwrap_or(type_name);
    match base {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => {
            "int_parsing"
        }
        "f32" | "f64" => "float_parsing",
        "bool" => "bool_parsing",
        _ => "value_error",
    }
}

/// The pydantic kind of a serde error message (`missing field …` → `missing`).
fn kind_of(message: &str) -> &'static str {
    if message.starts_with("missing field") {
        return "missing";
    }
    if message.starts_with("unknown field") {
        return "extra_forbidden";
    }
    if message.starts_with("unknown variant") {
        return "enum";
    }
    if message.contains("invalid digit") || message.contains("parse integer") || message.contains("fit in target type")
    {
        return "int_parsing";
    }
    if message.contains("invalid float literal") {
        return "float_parsing";
    }
    if message.contains("was not `true` or `false`") {
        return "bool_parsing";
    }
    let Some((got, expected)) = message.strip_prefix("invalid type: ").and_then(|rest| rest.split_once(", expected "))
    else {
        return "value_error";
    };
    let integer = ["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "usize", "isize", "integer"];
    if integer.iter().any(|name| expected.split(|c: char| !c.is_ascii_alphanumeric()).any(|word| word == *name)) {
        return if got.starts_with("string") { "int_parsing" } else { "int_type" };
    }
    match expected {
        e if e.contains("bool") => {
            if got.starts_with("string") {
                "bool_parsing"
            } else {
                "bool_type"
            }
        }
        e if e.contains("f64") || e.contains("f32") || e.contains("float") => "float_type",
        e if e.contains("string") || e.contains("char") => "string_type",
        e if e.contains("sequence") || e.contains("array") || e.contains("tuple") => "list_type",
        e if e.contains("map") || e.contains("struct") => "dict_type",
        _ => "value_error",
    }
}

/// The first `backquoted` word of a serde message (the field of `missing field `x``).
fn first_quoted(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once('`')?;
    rest.split_once('`').map(|(word, _)| word)
}

/// A body location as people write it: `conf.items[0]`.
fn dotted(loc: &[Loc]) -> String {
    loc.iter().fold(String::new(), |mut text, step| {
        match step {
            Loc::Name(name) if text.is_empty() => text.push_str(name),
            Loc::Name(name) => {
                text.push('.');
                text.push_str(name);
            }
            Loc::Index(index) => {
                let _ = write!(text, "[{index}]");
            }
        }
        text
    })
}

/// Deserializes a body field that is present (even as `null`) into `Some`, so
/// a PATCH can tell "set to null" (`Some(None)`) from "not given" (`None`).
pub(crate) fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// The fields an `update_mask` query parameter names (repeated, comma-separated,
/// or both); empty when it names none, when every field of the body applies.
pub(crate) fn mask_fields(update_mask: &[String]) -> Vec<&str> {
    update_mask.iter().flat_map(|raw| raw.split(',')).map(str::trim).filter(|field| !field.is_empty()).collect()
}

/// A query parameter naming fields, repeated or comma-separated (`update_mask`,
/// `order_by`), for the OpenAPI document: each value is a comma-separated list
/// of `alternatives` (regular expressions), spaces around them and empty
/// entries allowed, exactly what [`mask_fields`] and the order parser accept.
pub(crate) fn field_list_parameter(
    name: &str,
    description: &str,
    alternatives: impl IntoIterator<Item = String>,
) -> Parameter {
    let one = format!("(?:{})", alternatives.into_iter().collect::<Vec<_>>().join("|"));
    let item = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!(r"^\s*(?:{one}\s*)?(?:,\s*(?:{one}\s*)?)*$")));
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ArrayBuilder::new().items(item).build()))
        .build()
}

/// `text` with the characters that mean something in a regular expression escaped.
pub(crate) fn regex_escape(text: &str) -> String {
    text.chars().fold(String::new(), |mut escaped, c| {
        if !(c.is_ascii_alphanumeric() || c == '_') {
            escaped.push('\\');
        }
        escaped.push(c);
        escaped
    })
}

/// Declares `$name`, whose only use is to document a field-list query
/// parameter ([`field_list_parameter`]) in `#[utoipa::path(params(…))]`.
macro_rules! field_list_param {
    ($name:ident, $param:literal, $description:literal, $alternatives:expr) => {
        /// A field-list query parameter, for the OpenAPI document.
        pub(crate) struct $name;

        impl utoipa::IntoParams for $name {
            fn into_params(
                _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
            ) -> Vec<utoipa::openapi::path::Parameter> {
                vec![crate::extract::field_list_parameter($param, $description, $alternatives)]
            }
        }
    };
}
pub(crate) use field_list_param;

/// Declares `$name`, documenting an `update_mask` query parameter that may name `$fields`.
macro_rules! update_mask_param {
    ($name:ident, $fields:expr) => {
        crate::extract::field_list_param!(
            $name,
            "update_mask",
            "Fields of the body to apply, repeated or comma-separated; every field the body has when absent",
            $fields.iter().map(|field: &&str| crate::extract::regex_escape(field))
        );
    };
}
pub(crate) use update_mask_param;

/// Why text with a NUL character is refused: PostgreSQL cannot store it in `text` or `jsonb`.
const NUL_DETAIL: &str = "{where} contains a NUL character (%00 or \\u0000), which gust cannot store; remove it";

/// A 400 when a raw (percent-encoded) path or query string holds an encoded NUL.
fn refuse_nul(raw: &str, place: &str) -> Result<(), ApiError> {
    if raw.to_ascii_lowercase().contains("%00") {
        return Err(ApiError::BadRequest(NUL_DETAIL.replace("{where}", place)));
    }
    Ok(())
}

/// True when a JSON text holds the escape `\u0000` (an escaped backslash followed by `u0000` is not one).
fn has_escaped_nul(json: &[u8]) -> bool {
    json.windows(6).enumerate().any(|(at, window)| {
        window.eq_ignore_ascii_case(b"\\u0000")
            && json[..at].iter().rev().take_while(|byte| **byte == b'\\').count() % 2 == 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_floats_are_read_as_integers_where_integers_are_wanted_and_nothing_else_changes() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Body {
            slots: i32,
            items: Vec<u8>,
            conf: serde_json::Value,
        }
        let body: Body = json_body(br#"{"slots": 7.0, "items": [1.0, 2], "conf": {"x": 1.0}}"#).unwrap();
        assert_eq!(body, Body { slots: 7, items: vec![1, 2], conf: serde_json::json!({"x": 1.0}) });
        let fraction = json_body::<Body>(br#"{"slots": 7.5, "items": [], "conf": {}}"#).unwrap_err();
        assert!(fraction.to_string().contains("floating point `7.5`"), "{fraction}");
    }

    #[test]
    fn escaped_nul_characters_are_found_but_escaped_backslashes_are_not() {
        assert!(has_escaped_nul(br#"{"a": "x\u0000y"}"#));
        assert!(has_escaped_nul(br#"{"a": "\\\U0000"}"#));
        assert!(!has_escaped_nul(br#"{"a": "\\u0000"}"#));
        assert!(!has_escaped_nul(br#"{"a": "u0000"}"#));
    }

    #[test]
    fn an_encoded_nul_in_a_path_or_query_is_a_bad_request_naming_where() {
        let error = refuse_nul("tags=a%00b", "the query string").unwrap_err().to_string();
        assert!(error.contains("the query string") && error.contains("NUL"), "{error}");
        assert!(refuse_nul("tags=a%200", "the query string").is_ok());
    }
}
