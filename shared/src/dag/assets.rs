//! Assets (Airflow 3's data-aware scheduling) in DAG files: the assets tasks
//! produce (`outlets:`) and consume (`inlets:`), the condition an
//! asset-scheduled DAG waits for (`schedule: {assets: …}`), and the pure
//! logic on them: parsing, evaluating a condition against the assets that
//! have queued events, and Airflow's `asset_expression` JSON form.
//!
//! An asset is written as a string (its URI, which is also its name) or as
//! `{uri, name?, group?, extra?}` (`{name}` alone also works: the name is
//! then the URI too, as in Airflow). A condition is a list (all of them),
//! `{all: […]}` or `{any: […]}`, nested freely.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The group an asset belongs to unless it names another (Airflow's default).
pub const DEFAULT_ASSET_GROUP: &str = "asset";
/// The longest URI or name an asset may have (Airflow's limit).
pub const MAX_ASSET_TEXT: usize = 1500;

/// One asset as a DAG file names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetRef {
    /// Where the data lives (`s3://bucket/key`, or any unique string); identifies the asset.
    pub uri: String,
    /// The asset's name, its URI unless set.
    pub name: String,
    /// Free-form grouping shown in the API.
    #[serde(default = "default_group", skip_serializing_if = "is_default_group")]
    pub group: String,
    /// Free-form JSON about the asset, stored with it.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, Value>,
}

fn default_group() -> String {
    DEFAULT_ASSET_GROUP.into()
}

fn is_default_group(group: &str) -> bool {
    group == DEFAULT_ASSET_GROUP
}

/// What an asset-scheduled DAG waits for: Airflow's `Asset`, `AssetAll` and `AssetAny`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetCondition {
    /// An event of this asset.
    Asset(AssetRef),
    /// Every one of these holds.
    All(Vec<AssetCondition>),
    /// At least one of these holds.
    Any(Vec<AssetCondition>),
}

/// The outlets of one task, parsed: the assets it updates and the aliases it may record events through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outlets {
    /// Assets that get an event when the task succeeds.
    pub assets: Vec<AssetRef>,
    /// Aliases (`{alias: name}`), registered but resolved at run time.
    pub aliases: Vec<String>,
}

impl AssetCondition {
    /// Whether the condition holds when exactly the assets whose URIs are in `queued` have events waiting.
    pub fn evaluate(&self, queued: &HashSet<&str>) -> bool {
        match self {
            AssetCondition::Asset(asset) => queued.contains(asset.uri.as_str()),
            AssetCondition::All(all) => all.iter().all(|c| c.evaluate(queued)),
            AssetCondition::Any(any) => any.iter().any(|c| c.evaluate(queued)),
        }
    }

    /// Every asset the condition names, each once, in the order written.
    pub fn assets(&self) -> Vec<&AssetRef> {
        fn walk<'a>(condition: &'a AssetCondition, seen: &mut HashSet<&'a str>, out: &mut Vec<&'a AssetRef>) {
            match condition {
                AssetCondition::Asset(asset) => {
                    if seen.insert(asset.uri.as_str()) {
                        out.push(asset);
                    }
                }
                AssetCondition::All(list) | AssetCondition::Any(list) => {
                    list.iter().for_each(|c| walk(c, seen, out));
                }
            }
        }
        let mut out = Vec::new();
        walk(self, &mut HashSet::new(), &mut out);
        out
    }

    /// Airflow's `asset_expression` (`{"all": [{"asset": {"uri", "name", "group", "id"}}]}`), with
    /// each asset's id from `ids` (by URI; `null` when it is not registered).
    pub fn as_expression(&self, ids: &BTreeMap<String, i64>) -> Value {
        match self {
            AssetCondition::Asset(asset) => serde_json::json!({"asset": {
                "uri": asset.uri,
                "name": asset.name,
                "group": asset.group,
                "id": ids.get(&asset.uri),
            }}),
            AssetCondition::All(all) => {
                serde_json::json!({"all": all.iter().map(|c| c.as_expression(ids)).collect::<Vec<_>>()})
            }
            AssetCondition::Any(any) => {
                serde_json::json!({"any": any.iter().map(|c| c.as_expression(ids)).collect::<Vec<_>>()})
            }
        }
    }

    /// Parses the value of `schedule: {assets: …}`: a list (all of them), `{all: […]}` or `{any: […]}`.
    pub fn parse(value: &Value) -> Result<Self, String> {
        match value {
            Value::Array(items) => Ok(AssetCondition::All(parse_items(items, "assets")?)),
            Value::Object(map) if is_combinator(map) => parse_combinator(map),
            Value::Object(_) | Value::String(_) => Ok(AssetCondition::All(vec![parse_leaf(value)?])),
            other => Err(format!("expected a list of assets, {{all: […]}} or {{any: […]}}, got {}", describe(other))),
        }
    }
}

fn is_combinator(map: &serde_json::Map<String, Value>) -> bool {
    map.contains_key("all") || map.contains_key("any")
}

fn parse_combinator(map: &serde_json::Map<String, Value>) -> Result<AssetCondition, String> {
    let mut keys = map.keys();
    let (Some(key), None) = (keys.next(), keys.next()) else {
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        return Err(format!("`{{{}}}`: a condition takes exactly one key, `all` or `any`", keys.join(", ")));
    };
    let Some(Value::Array(items)) = map.get(key) else {
        return Err(format!("`{key}` takes a list of assets and conditions"));
    };
    let items = parse_items(items, key)?;
    Ok(if key == "all" { AssetCondition::All(items) } else { AssetCondition::Any(items) })
}

fn parse_items(items: &[Value], within: &str) -> Result<Vec<AssetCondition>, String> {
    if items.is_empty() {
        return Err(format!("`{within}` is an empty list; name at least one asset"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let parsed = match item {
                Value::Object(map) if is_combinator(map) => parse_combinator(map),
                _ => parse_leaf(item),
            };
            parsed.map_err(|p| format!("`{within}` item {}: {p}", i + 1))
        })
        .collect()
}

fn parse_leaf(value: &Value) -> Result<AssetCondition, String> {
    if matches!(value, Value::Object(map) if map.contains_key("alias")) {
        return Err("a schedule cannot wait for an asset alias yet; name the assets themselves".into());
    }
    parse_asset(value).map(AssetCondition::Asset)
}

/// Parses one asset: a string (URI and name), or `{uri, name?, group?, extra?}` (or `{name, …}`).
pub fn parse_asset(value: &Value) -> Result<AssetRef, String> {
    let (uri, name, group, extra) = match value {
        Value::String(text) => (Some(text.clone()), None, None, serde_json::Map::new()),
        Value::Object(map) => {
            if let Some(key) = map.keys().find(|k| !["uri", "name", "group", "extra"].contains(&k.as_str())) {
                return Err(format!("unknown key `{key}` in an asset; an asset takes uri, name, group and extra"));
            }
            let text = |key: &str| match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) => Ok(Some(text.clone())),
                Some(other) => Err(format!("an asset's {key} must be a string, got {}", describe(other))),
            };
            let extra = match map.get("extra") {
                None | Some(Value::Null) => serde_json::Map::new(),
                Some(Value::Object(extra)) => extra.clone(),
                Some(other) => return Err(format!("an asset's extra must be a map, got {}", describe(other))),
            };
            (text("uri")?, text("name")?, text("group")?, extra)
        }
        other => return Err(format!("expected an asset (a URI, or {{uri: …, name: …}}), got {}", describe(other))),
    };
    let (uri, name) = match (uri, name) {
        (Some(uri), Some(name)) => (uri, name),
        (Some(uri), None) => (uri.clone(), uri),
        (None, Some(name)) => (name.clone(), name),
        (None, None) => return Err("an asset needs a uri or a name".into()),
    };
    for (what, text) in [("uri", &uri), ("name", &name)] {
        check_text(what, text)?;
    }
    let group = group.unwrap_or_else(default_group);
    check_text("group", &group)?;
    Ok(AssetRef { uri, name, group, extra })
}

/// Parses a task's `outlets:` list: assets, and aliases written `{alias: name}`.
pub fn parse_outlets(items: &[Value]) -> Result<Outlets, String> {
    let mut outlets = Outlets::default();
    for (i, item) in items.iter().enumerate() {
        let at = |p: String| format!("item {}: {p}", i + 1);
        match item {
            Value::Object(map) if map.contains_key("alias") => {
                let alias = match (map.get("alias"), map.len()) {
                    (Some(Value::String(alias)), 1) => alias.clone(),
                    (Some(Value::String(_)), _) => return Err(at("an alias is written {alias: name}, alone".into())),
                    (_, _) => return Err(at("an alias's name must be a string".into())),
                };
                check_text("alias", &alias).map_err(at)?;
                if !outlets.aliases.contains(&alias) {
                    outlets.aliases.push(alias);
                }
            }
            _ => {
                let asset = parse_asset(item).map_err(at)?;
                if !outlets.assets.iter().any(|a| a.uri == asset.uri) {
                    outlets.assets.push(asset);
                }
            }
        }
    }
    Ok(outlets)
}

/// Parses a task's `inlets:` list of assets.
pub fn parse_inlets(items: &[Value]) -> Result<Vec<AssetRef>, String> {
    let mut inlets: Vec<AssetRef> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let asset = parse_asset(item).map_err(|p| format!("item {}: {p}", i + 1))?;
        if !inlets.iter().any(|a| a.uri == asset.uri) {
            inlets.push(asset);
        }
    }
    Ok(inlets)
}

/// Checks that every asset named more than once in a DAG is named the same way
/// (one name per URI, one URI per name); `assets` are all the DAG names.
pub fn check_consistent<'a>(assets: impl IntoIterator<Item = &'a AssetRef>) -> Result<(), String> {
    let mut by_uri: BTreeMap<&str, &str> = BTreeMap::new();
    let mut by_name: BTreeMap<&str, &str> = BTreeMap::new();
    for asset in assets {
        if let Some(name) = by_uri.insert(&asset.uri, &asset.name).filter(|n| *n != asset.name) {
            return Err(format!(
                "asset `{}` is named both `{name}` and `{}`; give one URI one name",
                asset.uri, asset.name
            ));
        }
        if let Some(uri) = by_name.insert(&asset.name, &asset.uri).filter(|u| *u != asset.uri) {
            return Err(format!(
                "asset name `{}` is used for both `{uri}` and `{}`; give each URI its own name",
                asset.name, asset.uri
            ));
        }
    }
    Ok(())
}

fn check_text(what: &str, text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err(format!("an asset's {what} is empty"));
    }
    if text.trim() != text {
        return Err(format!("an asset's {what} `{text}` has leading or trailing spaces"));
    }
    if text.len() > MAX_ASSET_TEXT {
        return Err(format!("an asset's {what} is {} bytes, over the limit of {MAX_ASSET_TEXT}", text.len()));
    }
    Ok(())
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a map".into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn asset(uri: &str) -> AssetCondition {
        AssetCondition::Asset(AssetRef {
            uri: uri.into(),
            name: uri.into(),
            group: DEFAULT_ASSET_GROUP.into(),
            extra: serde_json::Map::new(),
        })
    }

    fn queued<'a>(uris: &[&'a str]) -> HashSet<&'a str> {
        uris.iter().copied().collect()
    }

    #[test]
    fn all_holds_only_when_every_asset_has_an_event() {
        let all = AssetCondition::All(vec![asset("a"), asset("b")]);
        assert!(!all.evaluate(&queued(&[])));
        assert!(!all.evaluate(&queued(&["a"])));
        assert!(all.evaluate(&queued(&["a", "b"])));
        assert!(all.evaluate(&queued(&["b", "a", "c"])));
    }

    #[test]
    fn any_holds_when_one_asset_has_an_event() {
        let any = AssetCondition::Any(vec![asset("a"), asset("b")]);
        assert!(!any.evaluate(&queued(&["c"])));
        assert!(any.evaluate(&queued(&["b"])));
    }

    #[test]
    fn nested_conditions_combine_as_written() {
        // a OR (b AND c)
        let condition = AssetCondition::Any(vec![asset("a"), AssetCondition::All(vec![asset("b"), asset("c")])]);
        assert!(condition.evaluate(&queued(&["a"])));
        assert!(!condition.evaluate(&queued(&["b"])));
        assert!(condition.evaluate(&queued(&["b", "c"])));
        assert_eq!(condition.assets().iter().map(|a| a.uri.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn a_list_a_bare_asset_and_combinators_parse_into_conditions() {
        assert_eq!(
            AssetCondition::parse(&json!(["a", "b"])).unwrap(),
            AssetCondition::All(vec![asset("a"), asset("b")])
        );
        assert_eq!(AssetCondition::parse(&json!("a")).unwrap(), AssetCondition::All(vec![asset("a")]));
        let nested = AssetCondition::parse(&json!({"any": ["a", {"all": ["b", {"uri": "c"}]}]})).unwrap();
        assert_eq!(nested, AssetCondition::Any(vec![asset("a"), AssetCondition::All(vec![asset("b"), asset("c")])]));
    }

    #[test]
    fn an_asset_is_a_uri_a_name_or_a_map_with_group_and_extra() {
        let full = parse_asset(&json!({"uri": "s3://b/k", "name": "orders", "group": "raw", "extra": {"x": 1}}));
        let full = full.unwrap();
        assert_eq!((full.uri.as_str(), full.name.as_str(), full.group.as_str()), ("s3://b/k", "orders", "raw"));
        assert_eq!(full.extra["x"], 1);
        let named = parse_asset(&json!({"name": "orders"})).unwrap();
        assert_eq!((named.uri.as_str(), named.name.as_str(), named.group.as_str()), ("orders", "orders", "asset"));
    }

    #[test]
    fn bad_conditions_and_assets_say_what_is_wrong() {
        let problem = |v: Value| AssetCondition::parse(&v).unwrap_err();
        assert_eq!(problem(json!([])), "`assets` is an empty list; name at least one asset");
        assert_eq!(problem(json!({"any": []})), "`any` is an empty list; name at least one asset");
        assert!(problem(json!({"any": ["a"], "all": ["b"]})).contains("exactly one key, `all` or `any`"));
        assert_eq!(problem(json!({"all": "a"})), "`all` takes a list of assets and conditions");
        assert!(problem(json!(["a", {"ur": "b"}])).starts_with("`assets` item 2: unknown key `ur` in an asset"));
        assert!(problem(json!({"any": [{"all": [3]}]})).contains("`all` item 1: expected an asset"));
        assert!(problem(json!(["a", {"alias": "x"}])).contains("cannot wait for an asset alias"));
        assert!(problem(json!(7)).contains("got the number 7"));
        assert!(parse_asset(&json!({"group": "g"})).unwrap_err().contains("needs a uri or a name"));
        assert!(parse_asset(&json!(" a")).unwrap_err().contains("leading or trailing spaces"));
        assert!(parse_asset(&json!({"uri": "a", "extra": [1]})).unwrap_err().contains("extra must be a map"));
    }

    #[test]
    fn outlets_hold_assets_and_aliases_once_each() {
        let outlets = parse_outlets(&[json!("a"), json!({"alias": "daily"}), json!("a")]).unwrap();
        assert_eq!(outlets.assets.len(), 1);
        assert_eq!(outlets.aliases, ["daily"]);
        assert!(parse_outlets(&[json!({"alias": "x", "uri": "y"})]).unwrap_err().contains("{alias: name}, alone"));
        assert!(parse_inlets(&[json!("a"), json!(1)]).unwrap_err().starts_with("item 2:"));
    }

    #[test]
    fn one_uri_with_two_names_is_inconsistent() {
        let a = parse_asset(&json!({"uri": "s3://x", "name": "one"})).unwrap();
        let b = parse_asset(&json!({"uri": "s3://x", "name": "two"})).unwrap();
        let c = parse_asset(&json!({"uri": "s3://y", "name": "one"})).unwrap();
        assert!(check_consistent([&a, &a]).is_ok());
        assert!(check_consistent([&a, &b]).unwrap_err().contains("named both `one` and `two`"));
        assert!(check_consistent([&a, &c]).unwrap_err().contains("used for both `s3://x` and `s3://y`"));
    }

    #[test]
    fn the_expression_has_airflows_shape_with_ids() {
        let condition = AssetCondition::Any(vec![asset("a"), AssetCondition::All(vec![asset("b")])]);
        let ids = BTreeMap::from([("a".to_string(), 7)]);
        assert_eq!(
            condition.as_expression(&ids),
            json!({"any": [
                {"asset": {"uri": "a", "name": "a", "group": "asset", "id": 7}},
                {"all": [{"asset": {"uri": "b", "name": "b", "group": "asset", "id": null}}]}
            ]})
        );
    }

    #[test]
    fn a_condition_survives_a_json_round_trip() {
        let condition = AssetCondition::Any(vec![asset("a"), AssetCondition::All(vec![asset("b")])]);
        let json = serde_json::to_value(&condition).unwrap();
        assert_eq!(
            json,
            json!({"any": [{"asset": {"uri": "a", "name": "a"}}, {"all": [{"asset": {"uri": "b", "name": "b"}}]}]})
        );
        assert_eq!(serde_json::from_value::<AssetCondition>(json).unwrap(), condition);
    }
}

/// The YAML forms in whole DAG files, through the parser.
#[cfg(test)]
mod yaml {
    use super::{AssetCondition, DEFAULT_ASSET_GROUP};
    use crate::dag::{parse_dag_file, Dag};

    fn parse(yaml: &str) -> Dag {
        parse_dag_file("dags/test.yaml", yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    fn problem_of(yaml: &str) -> String {
        parse_dag_file("dags/test.yaml", yaml).unwrap_err().to_string()
    }

    fn consumer(schedule: &str) -> String {
        format!("dag_id: c\nschedule: {schedule}\ntasks:\n  - {{id: a, operator: noop}}\n")
    }

    #[test]
    fn tasks_name_their_outlets_and_inlets() {
        let dag = parse(
            "dag_id: p\ntasks:\n  - id: a\n    operator: noop\n    outlets: [s3://b/orders, {uri: s3://b/items, name: items, group: raw}, {alias: daily}]\n    inlets: [s3://b/raw]\n",
        );
        let a = dag.task("a").unwrap();
        let outlets: Vec<(&str, &str)> = a.outlets.iter().map(|o| (o.uri.as_str(), o.name.as_str())).collect();
        assert_eq!(outlets, [("s3://b/orders", "s3://b/orders"), ("s3://b/items", "items")]);
        assert_eq!(a.outlets[1].group, "raw");
        assert_eq!(a.outlet_aliases, ["daily"]);
        assert_eq!(a.inlets[0].uri, "s3://b/raw");
        assert_eq!(dag.timetable_summary(), None);
    }

    #[test]
    fn a_dag_is_scheduled_on_a_list_all_or_any_of_assets_and_needs_no_start_date() {
        let list = parse(&consumer("{assets: [a, b]}"));
        assert_eq!((list.schedule.is_none(), list.timetable_summary().as_deref()), (true, Some("Asset")));
        let Some(AssetCondition::All(all)) = list.asset_schedule else { panic!("a list is all of its assets") };
        assert_eq!(all.len(), 2);
        let any = parse(&consumer("{assets: {any: [a, {all: [b, {uri: c, name: see}]}]}}"));
        let assets = any.asset_schedule.as_ref().unwrap().assets();
        assert_eq!(assets.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["a", "b", "see"]);
        assert!(matches!(parse(&consumer("{assets: {all: [a]}}")).asset_schedule, Some(AssetCondition::All(_))));
        assert_eq!(assets[0].group, DEFAULT_ASSET_GROUP);
    }

    #[test]
    fn a_dag_without_assets_stores_no_asset_fields() {
        let dag = parse("dag_id: x\ntasks:\n  - {id: a, operator: noop}\n");
        let json = serde_json::to_value(&dag).unwrap();
        assert!(json.get("asset_schedule").is_none(), "{json}");
        assert!(json["tasks"][0].get("outlets").is_none() && json["tasks"][0].get("inlets").is_none(), "{json}");
        let with_assets = parse(&consumer("{assets: {any: [a, b]}}"));
        let round_trip: Dag = serde_json::from_value(serde_json::to_value(&with_assets).unwrap()).unwrap();
        assert_eq!(round_trip, with_assets);
    }

    #[test]
    fn bad_asset_yaml_names_the_file_the_task_and_the_problem() {
        assert_eq!(
            problem_of(&consumer("{assets: []}")),
            "dags/test.yaml: schedule: assets: `assets` is an empty list; name at least one asset"
        );
        let err = problem_of(&consumer("{assets: {any: [a], all: [b]}}"));
        assert!(
            err.starts_with("dags/test.yaml: schedule: assets: `{all, any}`: a condition takes exactly one key"),
            "{err}"
        );
        let err = problem_of(&consumer("{assets: {any: [a, {all: []}]}}"));
        assert_eq!(
            err,
            "dags/test.yaml: schedule: assets: `any` item 2: `all` is an empty list; name at least one asset"
        );
        let err = problem_of(&consumer("{assets: [a], every: 1h}"));
        assert!(err.contains("`{assets: …}` takes no other key"), "{err}");
        let err = problem_of("dag_id: p\ntasks:\n  - {id: a, operator: noop, outlets: s3://x}\n");
        assert_eq!(err, "dags/test.yaml: task `a`: outlets: must be a list of assets, e.g. [s3://bucket/orders]");
        let err = problem_of("dag_id: p\ntasks:\n  - {id: a, operator: noop, outlets: [{url: s3://x}]}\n");
        assert!(err.starts_with("dags/test.yaml: task `a`: outlets: item 1: unknown key `url` in an asset"), "{err}");
        let err = problem_of("dag_id: p\ntasks:\n  - {id: a, operator: noop, inlets: [{alias: x}]}\n");
        assert!(err.starts_with("dags/test.yaml: task `a`: inlets: item 1: unknown key `alias`"), "{err}");
        let err = problem_of(
            "dag_id: p\ntasks:\n  - {id: a, operator: noop, outlets: [{uri: s3://x, name: one}]}\n  - {id: b, operator: noop, inlets: [{uri: s3://x, name: two}]}\n",
        );
        assert!(err.contains("asset `s3://x` is named both `one` and `two`"), "{err}");
    }

    #[test]
    fn an_asset_scheduled_dag_cannot_have_a_required_param() {
        let err = problem_of(
            "dag_id: c\nschedule: {assets: [a]}\nparams: {env: {type: string}}\ntasks:\n  - {id: a, operator: noop}\n",
        );
        assert!(err.contains("param `env` has no default"), "{err}");
    }
}
