//! The scheduler's registration of the assets a DAG names, on every sync of a
//! new DAG version and in its transaction: the assets themselves (created, or
//! their group and extra brought up to date), the DAG's schedule references,
//! its tasks' outlet and inlet references, and the aliases its outlets name.
//!
//! An asset is identified by its URI. A name already held by another URI
//! cannot be given to a second asset (names are unique too): such an asset is
//! left out with a warning, and the DAG's other assets are still registered.

use std::collections::BTreeMap;

use crate::{
    dag::{AssetCondition, AssetRef, Dag},
    db::{DbError, GenericClient},
};

/// Registers the assets `dag` names and replaces its schedule and task references.
pub async fn register(db: &impl GenericClient, dag: &Dag) -> Result<(), DbError> {
    let mut named: BTreeMap<&str, &AssetRef> = BTreeMap::new();
    let scheduled = dag.asset_schedule.as_ref().map(AssetCondition::assets).unwrap_or_default();
    for asset in scheduled.iter().copied().chain(dag.tasks.iter().flat_map(|t| t.outlets.iter().chain(&t.inlets))) {
        named.entry(asset.uri.as_str()).or_insert(asset);
    }
    let ids = upsert_assets(db, named.values().copied()).await?;
    let missing: Vec<&str> = named.keys().copied().filter(|uri| !ids.contains_key(*uri)).collect();
    if !missing.is_empty() {
        tracing::warn!(dag_id = %dag.dag_id, assets = ?missing, "assets not registered: their name belongs to another URI");
    }

    let schedule_ids: Vec<i64> = scheduled.iter().filter_map(|a| ids.get(&a.uri)).copied().collect();
    db.execute(
        "DELETE FROM dag_schedule_assets WHERE dag_id = $1 AND NOT (asset_id = ANY($2))",
        &[&dag.dag_id, &schedule_ids],
    )
    .await?;
    db.execute(
        "INSERT INTO dag_schedule_assets (dag_id, asset_id) SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING",
        &[&dag.dag_id, &schedule_ids],
    )
    .await?;
    // Events queued for an asset the schedule no longer names can never count.
    db.execute(
        "DELETE FROM asset_queued_events WHERE dag_id = $1 AND NOT (asset_id = ANY($2))",
        &[&dag.dag_id, &schedule_ids],
    )
    .await?;
    db.execute("DELETE FROM dag_schedule_asset_aliases WHERE dag_id = $1", &[&dag.dag_id]).await?;

    let (mut task_ids, mut asset_ids, mut directions) = (Vec::new(), Vec::new(), Vec::new());
    for task in &dag.tasks {
        let refs = task.outlets.iter().map(|a| (a, "outlet")).chain(task.inlets.iter().map(|a| (a, "inlet")));
        for (asset, direction) in refs {
            if let Some(id) = ids.get(&asset.uri) {
                task_ids.push(task.task_id.as_str());
                asset_ids.push(*id);
                directions.push(direction);
            }
        }
    }
    db.execute(
        r#"
DELETE FROM task_asset_references r WHERE r.dag_id = $1 AND (r.task_id, r.asset_id, r.direction) NOT IN (
    SELECT * FROM unnest($2::text[], $3::bigint[], $4::text[]))"#,
        &[&dag.dag_id, &task_ids, &asset_ids, &directions],
    )
    .await?;
    db.execute(
        r#"
INSERT INTO task_asset_references (dag_id, task_id, asset_id, direction)
SELECT $1, t, a, d FROM unnest($2::text[], $3::bigint[], $4::text[]) AS u(t, a, d)
ON CONFLICT DO NOTHING"#,
        &[&dag.dag_id, &task_ids, &asset_ids, &directions],
    )
    .await?;

    let aliases: Vec<&str> = dag.tasks.iter().flat_map(|t| t.outlet_aliases.iter().map(String::as_str)).collect();
    if !aliases.is_empty() {
        db.execute(
            "INSERT INTO asset_aliases (name) SELECT DISTINCT unnest($1::text[]) ON CONFLICT (name) DO NOTHING",
            &[&aliases],
        )
        .await?;
    }
    Ok(())
}

/// Creates the assets that do not exist yet and updates the group and extra of
/// those that changed; returns the ids by URI of all that could be registered.
async fn upsert_assets<'a>(
    db: &impl GenericClient,
    assets: impl Iterator<Item = &'a AssetRef>,
) -> Result<BTreeMap<String, i64>, DbError> {
    let (mut names, mut uris, mut groups, mut extras) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for asset in assets {
        names.push(asset.name.as_str());
        uris.push(asset.uri.as_str());
        groups.push(asset.group.as_str());
        extras.push(serde_json::Value::Object(asset.extra.clone()));
    }
    if uris.is_empty() {
        return Ok(BTreeMap::new());
    }
    db.execute(
        r#"
INSERT INTO assets (name, uri, asset_group, extra)
SELECT g.name, g.uri, g.grp, g.extra FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[]) AS g(name, uri, grp, extra)
WHERE NOT EXISTS (SELECT 1 FROM assets a WHERE a.name = g.name AND a.uri <> g.uri)
ON CONFLICT (uri) DO UPDATE SET asset_group = EXCLUDED.asset_group, extra = EXCLUDED.extra, updated_at = now()
WHERE (assets.asset_group, assets.extra) IS DISTINCT FROM (EXCLUDED.asset_group, EXCLUDED.extra)"#,
        &[&names, &uris, &groups, &extras],
    )
    .await?;
    ids_by_uri(db, &uris).await
}

/// The ids of the registered assets among `uris`, by URI.
pub async fn ids_by_uri(db: &impl GenericClient, uris: &[&str]) -> Result<BTreeMap<String, i64>, DbError> {
    let rows = db.query("SELECT uri, id FROM assets WHERE uri = ANY($1)", &[&uris]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Airflow's `asset_expression` of an asset-scheduled DAG, with the registered assets' ids.
pub async fn asset_expression(
    db: &impl GenericClient,
    condition: &AssetCondition,
) -> Result<serde_json::Value, DbError> {
    let uris: Vec<&str> = condition.assets().iter().map(|a| a.uri.as_str()).collect();
    Ok(condition.as_expression(&ids_by_uri(db, &uris).await?))
}
