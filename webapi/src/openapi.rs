//! The OpenAPI 3.1 document of the API. Paths come from the handlers'
//! `#[utoipa::path]` annotations, collected by the same `routes!` calls that
//! register them with the router, so the document cannot list a route the
//! server does not serve or miss one it does. This module adds what every
//! operation shares: the bearer scheme and the error responses, derived
//! from what each operation takes: [`ErrorBody`] for every error but a 422,
//! which has FastAPI's `HTTPValidationError` shape ([`ValidationErrorBody`]).

use axum::http::Method;
use utoipa::{
    openapi::{
        path::{Operation, ParameterIn},
        schema::{
            AnyOfBuilder, ArrayBuilder, KnownFormat, Object, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
        },
        security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme},
        ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder,
    },
    ToSchema,
};

use crate::{
    auth::{required_access, Access, Role},
    error::{FieldError, Loc},
};

/// Name of the bearer-token security scheme in the document.
const BEARER: &str = "HTTPBearer";

/// The JSON body of every error response but a 422 (Airflow's `HTTPExceptionResponse`, plus `status` and `title`).
#[derive(Debug, serde::Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// The HTTP status code.
    pub(crate) status: u16,
    /// The status code's reason phrase.
    pub(crate) title: &'static str,
    /// What went wrong and what to do about it.
    pub(crate) detail: String,
}

/// The JSON body of a 422: FastAPI's `HTTPValidationError`, whose `detail`
/// lists each problem with its location, plus `status` and `title`.
#[derive(ToSchema)]
#[schema(as = HTTPValidationError)]
#[allow(dead_code)]
pub(crate) struct ValidationErrorBody {
    /// The HTTP status code, 422.
    status: u16,
    /// The status code's reason phrase.
    title: String,
    /// Every problem found, each with where it is (`["body", "slots"]`), what it is and its pydantic kind.
    detail: Vec<FieldError>,
}

/// The document's fixed parts; the router adds the paths, then [`finish`] the shared responses.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "gust API",
        description = "Airflow 3 compatible REST API of gust (`/api/v2`); gust's own additions live under `/api/v2/gust`. \
                       Get a token from `POST /auth/token` and send it as `Authorization: Bearer <token>`."
    ),
    components(schemas(ErrorBody, ValidationErrorBody, FieldError, Loc))
)]
pub(crate) struct ApiDoc;

/// Adds the bearer scheme, and to every operation the error responses it can
/// give, derived from what it takes (see [`derived_errors`]); statuses only
/// its handler knows (409, 429, a 404 for a resource named in the body) its
/// `#[utoipa::path]` lists itself. Every 4xx and 5xx answer has the
/// [`ErrorBody`] shape (a 422 [`ValidationErrorBody`]'s) unless the operation
/// documents another body.
pub(crate) fn finish(openapi: &mut OpenApi) {
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(BEARER, SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    for (path, item) in openapi.paths.paths.iter_mut() {
        for (method, operation) in operations(item) {
            let access = required_access(&method, path);
            if access != Access::Public {
                operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
            }
            for (status, description) in derived_errors(operation, access) {
                operation
                    .responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| error_response(status, description).into());
            }
            for (status, response) in operation.responses.responses.iter_mut() {
                if let (true, RefOr::T(response)) = (status.starts_with(['4', '5']), response) {
                    if response.content.is_empty() {
                        *response = error_response(status.parse().unwrap_or(500), &response.description);
                    }
                }
            }
        }
    }
}

/// Every operation of one path, with its method.
fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = (Method, &mut Operation)> {
    [
        (Method::GET, &mut item.get),
        (Method::PUT, &mut item.put),
        (Method::POST, &mut item.post),
        (Method::DELETE, &mut item.delete),
        (Method::PATCH, &mut item.patch),
        (Method::HEAD, &mut item.head),
    ]
    .into_iter()
    .filter_map(|(method, operation)| Some((method, operation.as_mut()?)))
}

/// The error statuses an operation can answer with, from what it takes:
///
/// - path, query or header parameters: 400 (a NUL, or a value the handler refuses),
///   422 (a value that does not parse as its type, a required one missing);
///   path parameters also 404 (the resource they name is missing);
/// - a JSON body: 400 (a NUL, or a value the handler refuses), 413 (larger
///   than `GUST__WEBAPI__MAX_BODY_BYTES`), 422 (missing, not JSON, sent as
///   another content type, or JSON that does not fit the body's schema);
/// - a bearer token: 401 (missing, invalid, expired or void), 403 when the
///   operation needs more than the viewer role (every user has that), and
///   503, since checking the token reads the users table. Public operations
///   document their own 503 where they use the database.
fn derived_errors(operation: &Operation, access: Access) -> Vec<(u16, &'static str)> {
    let located = |place: ParameterIn| {
        operation.parameters.iter().flatten().any(|p| matches!(p, RefOr::T(p) if p.parameter_in == place))
    };
    let (in_path, body) = (located(ParameterIn::Path), operation.request_body.is_some());
    let in_query = located(ParameterIn::Query) || located(ParameterIn::Header);
    let mut errors = Vec::new();
    if in_path || in_query || body {
        errors.push((400, "A parameter or the body is malformed or refused; `detail` names it"));
    }
    if in_path {
        errors.push((404, "The resource the path names does not exist"));
    }
    if body {
        errors.push((413, "The body is larger than the server's limit (GUST__WEBAPI__MAX_BODY_BYTES)"));
    }
    if in_path || in_query || body {
        errors.push((
            422,
            "Validation Error: a parameter or the body does not fit the schema (not JSON, a missing field, \
             a wrong type or an unknown field); each entry of `detail` locates one problem",
        ));
    }
    if let Access::Role(role) = access {
        errors.push((401, "No valid bearer token"));
        if role > Role::Viewer {
            errors.push((403, "The token's role is too weak for this request"));
        }
        errors.push((503, "The metadata database is unavailable; try again shortly"));
    }
    errors
}

/// A list of `values` or nulls, or null, for `#[schema(schema_with = …)]` on an `Option<Vec<Option<String>>>`.
pub(crate) fn nullable_list_of<S: Into<String>>(values: impl IntoIterator<Item = S>) -> Schema {
    let null = || ObjectBuilder::new().schema_type(Type::Null);
    let item = AnyOfBuilder::new().item(one_of_strings(values)).item(null());
    Schema::AnyOf(AnyOfBuilder::new().item(ArrayBuilder::new().items(item)).item(null()).build())
}

/// A string schema whose only values are `values`, for `#[schema(schema_with = …)]`.
pub(crate) fn one_of_strings<S: Into<String>>(values: impl IntoIterator<Item = S>) -> Object {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values.into_iter().map(Into::into))).build()
}

/// An optional date-time field: an RFC 3339 date-time or null (utoipa's
/// `["string", "null"]` with `format` lets generators send `""`, which is neither).
pub(crate) fn date_time_or_null() -> Schema {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build()
        .into()
}

/// The schema of a field gust does not support yet and takes only as `null` (or left out).
pub(crate) fn only_null() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Null)
        .description(Some("Not supported by gust: leave it out or null"))
        .build()
}

/// The schema of a flag gust does not support yet and takes only as `false` (or left out).
pub(crate) fn only_false() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .enum_values(Some([false]))
        .description(Some("Not supported by gust: leave it out or false"))
        .build()
}

/// The response of error `status`: an [`ErrorBody`], or for 422 a [`ValidationErrorBody`].
fn error_response(status: u16, description: &str) -> utoipa::openapi::Response {
    let schema = if status == 422 { "HTTPValidationError" } else { "ErrorBody" };
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).build())
        .build()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn document() -> Value {
        serde_json::from_str(&crate::openapi_document().to_json().unwrap()).unwrap()
    }

    fn statuses(document: &Value, method: &str, path: &str) -> Vec<String> {
        document["paths"][path][method]["responses"].as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn each_operation_documents_the_statuses_what_it_takes_can_give() {
        let document = document();
        let cases: [(&str, &str, &[&str]); 6] = [
            ("get", "/api/v2/version", &["200"]),
            ("get", "/api/v2/dags", &["200", "400", "401", "422", "503"]),
            ("get", "/api/v2/gust/users/{username}", &["200", "400", "401", "403", "404", "422", "503"]),
            ("patch", "/api/v2/dags/{dag_id}", &["200", "400", "401", "403", "404", "413", "422", "503"]),
            ("post", "/api/v2/pools", &["201", "400", "401", "403", "409", "413", "422", "503"]),
            ("post", "/auth/token", &["201", "400", "401", "413", "422", "429", "503"]),
        ];
        for (method, path, expected) in cases {
            assert_eq!(statuses(&document, method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn a_422_is_documented_with_fastapis_validation_error_shape() {
        let document = document();
        let response = &document["paths"]["/api/v2/pools"]["post"]["responses"]["422"];
        assert_eq!(
            response["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/HTTPValidationError"
        );
        let schemas = &document["components"]["schemas"];
        let detail = &schemas["HTTPValidationError"]["properties"]["detail"];
        assert_eq!(detail["items"]["$ref"], "#/components/schemas/ValidationError", "{detail}");
        let problem = &schemas["ValidationError"];
        assert_eq!(problem["required"], serde_json::json!(["loc", "msg", "type"]), "{problem}");
        let loc = serde_json::to_string(&schemas["Loc"]).unwrap();
        assert!(loc.contains("\"string\"") && loc.contains("\"integer\""), "{loc}");
        let not_found = &document["paths"]["/api/v2/pools/{pool_name}"]["get"]["responses"]["404"];
        assert_eq!(not_found["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody");
    }

    #[test]
    fn no_catch_all_status_and_every_error_has_a_json_body() {
        let document = document();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for (status, response) in operation["responses"].as_object().unwrap() {
                    assert!(status.parse::<u16>().is_ok(), "{method} {path} documents `{status}`");
                    if status.starts_with(['4', '5']) {
                        assert!(
                            response["content"]["application/json"]["schema"].is_object(),
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
    }
}
