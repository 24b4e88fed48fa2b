//! The OpenAPI 3.1 document of the API. Paths come from the handlers'
//! `#[utoipa::path]` annotations, collected by the same `routes!` calls that
//! register them with the router, so the document cannot list a route the
//! server does not serve or miss one it does. This module adds what every
//! operation shares: the bearer scheme and the error responses.

use utoipa::{
    openapi::{
        path::Operation,
        security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme},
        ContentBuilder, OpenApi, Ref, ResponseBuilder,
    },
    ToSchema,
};

use crate::auth::PUBLIC_ROUTES;

/// Name of the bearer-token security scheme in the document.
const BEARER: &str = "HTTPBearer";

/// The JSON body of every error response.
#[derive(Debug, serde::Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// The HTTP status code.
    pub(crate) status: u16,
    /// The status code's reason phrase.
    pub(crate) title: &'static str,
    /// What went wrong and what to do about it.
    pub(crate) detail: String,
}

/// The document's fixed parts; the router adds the paths, then [`finish`] the shared responses.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "gust API",
        description = "Airflow 3 compatible REST API of gust (`/api/v2`); gust's own additions live under `/api/v2/gust`. \
                       Get a token from `POST /auth/token` and send it as `Authorization: Bearer <token>`."
    ),
    components(schemas(ErrorBody))
)]
pub(crate) struct ApiDoc;

/// Adds the bearer scheme, and to every operation the responses it can give
/// besides its own: 401/403 when it needs a token, and the shared client and
/// availability errors.
pub(crate) fn finish(openapi: &mut OpenApi) {
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(BEARER, SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    for (path, item) in openapi.paths.paths.iter_mut() {
        let public = PUBLIC_ROUTES.contains(&path.as_str());
        for operation in operations(item) {
            add_shared_responses(operation, public);
        }
    }
}

/// Every operation of one path.
fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head]
        .into_iter()
        .filter_map(Option::as_mut)
}

fn add_shared_responses(operation: &mut Operation, public: bool) {
    let mut shared = vec![
        (
            "4XX",
            "The request is invalid: malformed JSON or parameters, an unknown resource, a conflict, a too-large body",
        ),
        ("503", "The metadata database is unavailable; try again shortly"),
    ];
    if !public {
        operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
        shared.push(("401", "No valid bearer token"));
        shared.push(("403", "The token's role is too weak for this request"));
    }
    for (status, description) in shared {
        operation.responses.responses.entry(status.to_string()).or_insert_with(|| error_response(description).into());
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
        .build()
}
