//! Extractors whose rejections are [`ApiError`]s, so a malformed body, path
//! or query string gets the same JSON error shape as everything else.

use axum::{
    extract::{FromRequest, FromRequestParts, Path, Request},
    http::request::Parts,
    Json,
};
use serde::de::DeserializeOwned;
use utoipa::openapi::{
    path::{Parameter, ParameterBuilder, ParameterIn},
    schema::{ArrayBuilder, ObjectBuilder, Type},
    Required,
};

use crate::error::ApiError;

/// A JSON request body (`Content-Type: application/json`): a JSON object
/// (422 otherwise, as for one that does not fit `T`), or with `ANY` set
/// ([`ANY_JSON`]) any JSON value, which the handler checks itself.
pub struct ApiJson<T, const ANY: bool = false>(pub T);

/// The `ANY` of an [`ApiJson`] whose handler takes any JSON value.
pub const ANY_JSON: bool = true;

/// The query string, deserialized; unknown keys are ignored and a repeated key
/// (`tags=a&tags=b`, how Airflow's clients send lists) fills a `Vec`.
pub struct ApiQuery<T>(pub T);

/// The path parameters, deserialized.
pub struct ApiPath<T>(pub T);

impl<S, T, const ANY: bool> FromRequest<S> for ApiJson<T, ANY>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !crate::is_json(req.headers()) {
            return Err(ApiError::with_status(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expected request with `Content-Type: application/json`",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| ApiError::with_status(rejection.status(), rejection.body_text()))?;
        if has_escaped_nul(&bytes) {
            return Err(ApiError::BadRequest(NUL_DETAIL.replace("{where}", "the JSON body")));
        }
        let Json(value) = Json::<T>::from_bytes(&bytes)?;
        // serde fills a struct from a JSON array too (`[null, null]`); the API's bodies are objects.
        if !ANY && bytes.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::with_status(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "the body must be a JSON object, such as {\"field\": \"value\"}",
            ));
        }
        Ok(Self(value))
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
        serde_html_form::from_str(query)
            .map(Self)
            .map_err(|error| ApiError::BadRequest(format!("invalid query string: {error}")))
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
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
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
