//! Extractors whose rejections are [`ApiError`]s, so a malformed body, path
//! or query string gets the same JSON error shape as everything else.

use axum::{
    extract::{FromRequest, FromRequestParts, Path, Request},
    http::request::Parts,
    Json,
};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body (`Content-Type: application/json`).
pub struct ApiJson<T>(pub T);

/// The query string, deserialized; unknown keys are ignored and a repeated key
/// (`tags=a&tags=b`, how Airflow's clients send lists) fills a `Vec`.
pub struct ApiQuery<T>(pub T);

/// The path parameters, deserialized.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
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
