//! `GET /api/v2/dags/{dag_id}/details`: a DAG with everything its definition says.

use axum::{extract::State, Extension, Json};
use chrono::{DateTime, Utc};
use gust_shared::{
    dag::{Dag, Param},
    db,
};
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::{
    dag_runs::DagVersionResponse,
    dags::{dag_or_404, dag_response, DagResponse},
    path_params::DagPath,
};
use crate::{auth::CurrentUser, error::ApiError, extract::ApiPath, AppState};

/// Airflow's `DAGDetailsResponse`: the `DAGResponse` fields and the definition's.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DagDetailsResponse {
    #[serde(flatten)]
    dag: DagResponse,
    catchup: bool,
    /// gust has no DAG run timeout: always null.
    #[schema(value_type = Option<String>)]
    dag_run_timeout: Option<String>,
    #[schema(value_type = Option<Object>)]
    asset_expression: Option<Value>,
    doc_md: Option<String>,
    start_date: Option<DateTime<Utc>>,
    end_date: Option<DateTime<Utc>>,
    is_paused_upon_creation: Option<bool>,
    #[schema(value_type = Option<Object>)]
    params: Option<Map<String, Value>>,
    render_template_as_native_obj: bool,
    template_search_path: Option<Vec<String>>,
    timezone: Option<String>,
    last_parsed: Option<DateTime<Utc>>,
    #[schema(value_type = Option<Object>)]
    default_args: Option<Map<String, Value>>,
    rerun_with_latest_version: Option<bool>,
    owner_links: Option<std::collections::BTreeMap<String, String>>,
    is_favorite: bool,
    active_runs_count: i64,
    concurrency: i32,
    latest_dag_version: Option<DagVersionResponse>,
}

/// A declared param as Airflow's `Param.dump()` shows it: its value, description and JSON schema.
pub(crate) fn param_dump(param: &Param) -> Value {
    let mut schema = Map::new();
    match param.types.as_slice() {
        [] => {}
        [one] => {
            schema.insert("type".into(), json!(one.name()));
        }
        many => {
            schema.insert("type".into(), json!(many.iter().map(|t| t.name()).collect::<Vec<_>>()));
        }
    }
    if let Some(allowed) = &param.allowed {
        schema.insert("enum".into(), json!(allowed));
    }
    if let Some(minimum) = &param.minimum {
        schema.insert("minimum".into(), json!(minimum));
    }
    if let Some(maximum) = &param.maximum {
        schema.insert("maximum".into(), json!(maximum));
    }
    if let Some(title) = &param.title {
        schema.insert("title".into(), json!(title));
    }
    json!({
        "__class": "airflow.sdk.definitions.param.Param",
        "value": param.default.clone().unwrap_or(Value::Null),
        "description": param.description,
        "schema": schema,
        "source": null,
    })
}

/// The params `definition` declares, by name, as Airflow dumps them.
pub(crate) fn params_of(definition: &Dag) -> Map<String, Value> {
    definition.params.iter().map(|(name, param)| (name.to_string(), param_dump(param))).collect()
}

/// `GET /api/v2/dags/{dag_id}/details`
#[utoipa::path(get, path = "/api/v2/dags/{dag_id}/details", operation_id = "get_dag_details", tag = "DAG", params(DagPath), responses((status = 200, body = DagDetailsResponse)))]
pub(crate) async fn get_dag_details(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    ApiPath(dag_id): ApiPath<String>,
) -> Result<Json<DagDetailsResponse>, ApiError> {
    let db = state.db().await?;
    let row = dag_or_404(&db, &dag_id).await?;
    let version = db::dags::version(&db, row.latest_version_id).await?;
    let definition = match &version {
        Some(version) => version.definition.clone(),
        None => db::dags::definition(&db, &dag_id).await?.ok_or_else(|| super::dags::dag_not_found(&dag_id))?,
    };
    let is_favorite = !db::favorites::of_user(&db, &user.username, std::slice::from_ref(&dag_id)).await?.is_empty();
    let active_runs_count = db::runs::count_live(&db, &dag_id).await?;
    let last_parsed = row.last_parsed_at;
    let concurrency = row.max_active_tasks;
    let dag = dag_response(&db, row).await?;
    Ok(Json(DagDetailsResponse {
        dag,
        catchup: definition.catchup,
        dag_run_timeout: None,
        asset_expression: None,
        doc_md: None,
        start_date: Some(definition.start_date),
        end_date: definition.end_date,
        is_paused_upon_creation: definition.is_paused_upon_creation,
        params: Some(params_of(&definition)),
        render_template_as_native_obj: false,
        template_search_path: None,
        timezone: Some(definition.timezone.to_string()),
        last_parsed: Some(last_parsed),
        default_args: None,
        rerun_with_latest_version: None,
        owner_links: None,
        is_favorite,
        active_runs_count,
        concurrency,
        latest_dag_version: version.as_ref().map(DagVersionResponse::from),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_param_is_dumped_with_its_value_description_and_schema() {
        let param = Param::from_value(json!({"default": 3, "type": "integer", "minimum": 1, "description": "n"}))
            .expect("a valid declaration");
        let dump = param_dump(&param);
        assert_eq!(dump["value"], json!(3));
        assert_eq!(dump["description"], json!("n"));
        assert_eq!(dump["schema"], json!({"type": "integer", "minimum": 1}));
        assert_eq!(param_dump(&Param::plain(json!("eu")))["schema"], json!({}));
    }
}
