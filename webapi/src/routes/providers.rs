//! `/api/v2/providers`: what gust can run, as Airflow's providers: its
//! built-in operator families, and the custom operators (`gust-op-<name>`)
//! that live workers advertise, with what their `--describe` printed.

use std::collections::BTreeMap;

use axum::{extract::State, Json};
use gust_shared::db::{self, providers::AdvertisedOperator};
use serde::Serialize;
use utoipa::ToSchema;

use super::pagination::PageParams;
use crate::{error::ApiError, extract::ApiQuery, AppState};

/// gust's version, the version of every built-in family.
const GUST_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The built-in operator families: package name, description, the operators (`operator:` values) it has.
const BUILT_IN: &[(&str, &str, &[&str])] = &[
    (
        "gust-standard",
        "Built in: noop, bash, branch, python and the file and external task sensors",
        &["noop", "bash", "branch", "python", "file_sensor", "external_task_sensor"],
    ),
    (
        "gust-http",
        "Built in: HTTP requests (http) and the HTTP sensor (http_sensor), with http connections",
        &["http", "http_sensor"],
    ),
    (
        "gust-postgres",
        "Built in: PostgreSQL statements (sql) and the SQL sensor (sql_sensor), with postgres connections",
        &["sql", "sql_sensor"],
    ),
];

/// Airflow's `ProviderResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProviderResponse {
    package_name: String,
    description: String,
    version: String,
    documentation_url: Option<String>,
}

/// Airflow's `ProviderCollectionResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProviderCollection {
    providers: Vec<ProviderResponse>,
    total_entries: i64,
}

/// `GET /api/v2/providers`: the built-in families, then each custom operator (and version) live workers have.
#[utoipa::path(get, path = "/api/v2/providers", tag = "Provider", operation_id = "get_providers", params(PageParams), responses((status = 200, body = ProviderCollection)))]
pub(crate) async fn get_providers(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<ProviderCollection>, ApiError> {
    let page = page.page()?;
    let db = state.db().await?;
    let providers = all_providers(db::providers::custom_operators(&db).await?);
    let total_entries = i64::try_from(providers.len()).unwrap_or(i64::MAX);
    Ok(Json(ProviderCollection { providers: page.slice(providers), total_entries }))
}

/// The built-in families, then one provider per custom operator name and version, naming its workers.
fn all_providers(custom: Vec<AdvertisedOperator>) -> Vec<ProviderResponse> {
    let built_in = BUILT_IN.iter().map(|(package, description, _)| ProviderResponse {
        package_name: (*package).to_string(),
        description: (*description).to_string(),
        version: GUST_VERSION.to_string(),
        documentation_url: None,
    });
    let mut by_version: BTreeMap<(String, String), (Option<String>, Vec<String>)> = BTreeMap::new();
    for operator in custom {
        let version = operator.version.unwrap_or_else(|| "unknown".into());
        let entry = by_version.entry((operator.name, version)).or_default();
        entry.0 = entry.0.take().or(operator.description);
        entry.1.push(operator.worker);
    }
    let custom = by_version.into_iter().map(|((name, version), (description, workers))| ProviderResponse {
        description: format!(
            "{} (custom operator `{name}` on worker {})",
            description.unwrap_or_else(|| format!("gust-op-{name}")),
            workers.join(", ")
        ),
        package_name: format!("gust-op-{name}"),
        version,
        documentation_url: None,
    });
    built_in.chain(custom).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_operator_belongs_to_one_family() {
        for operator in gust_shared::dag::KNOWN_OPERATORS {
            let families = BUILT_IN.iter().filter(|(_, _, operators)| operators.contains(operator)).count();
            assert_eq!(families, 1, "{operator}");
        }
    }

    #[test]
    fn a_custom_operator_is_one_provider_per_version_naming_its_workers() {
        let op = |worker: &str, version: Option<&str>| AdvertisedOperator {
            worker: worker.into(),
            name: "s3_copy".into(),
            path: None,
            version: version.map(Into::into),
            description: Some("Copies S3 objects".into()),
            describe_error: None,
        };
        let providers = all_providers(vec![op("w1", Some("1.2")), op("w2", Some("1.2")), op("w3", None)]);
        let custom: Vec<_> = providers.iter().filter(|p| p.package_name == "gust-op-s3_copy").collect();
        assert_eq!(custom.len(), 2);
        assert_eq!(custom[0].version, "1.2");
        assert_eq!(custom[0].description, "Copies S3 objects (custom operator `s3_copy` on worker w1, w2)");
        assert_eq!(custom[1].version, "unknown");
    }
}
