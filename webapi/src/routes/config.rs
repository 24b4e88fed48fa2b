//! `/api/v2/config`: gust's effective settings in Airflow's `Config` shape
//! (sections of options), as JSON or `text/plain` INI. Off unless
//! `GUST__WEBAPI__EXPOSE_CONFIG` allows it (Airflow's `[api] expose_config`);
//! secrets are always hidden and URLs show no password.

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use gust_shared::{secrets::is_sensitive, settings::redact_url};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::{
    error::ApiError,
    extract::{ApiPath, ApiQuery},
    AppState,
};

/// What a hidden value reads as (Airflow's wording).
const HIDDEN: &str = "< hidden >";

/// Options that hold secrets, by section; besides these, any option whose name looks secret is hidden.
const SECRET_OPTIONS: &[(&str, &str)] =
    &[("auth", "jwt_secret"), ("auth", "admin_password"), ("secrets", "key"), ("metrics", "token")];

/// The end of option names that look secret but are not (`token_lifetime`, `cli_token_lifetime`).
const NOT_SECRET_SUFFIX: &str = "_lifetime";

/// Airflow's `Config`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Config {
    sections: Vec<ConfigSection>,
}

/// Airflow's `ConfigSection`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConfigSection {
    name: String,
    options: Vec<ConfigOption>,
}

/// Airflow's `ConfigOption` (gust's values are always text).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConfigOption {
    key: String,
    value: String,
}

/// The query of `GET /config`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConfigQuery {
    /// Only this section.
    section: Option<String>,
}

/// `GET /api/v2/config`: every section, or the one `section` names.
#[utoipa::path(get, path = "/api/v2/config", tag = "Config", operation_id = "get_config", params(ConfigQuery), responses((status = 200, description = "The settings, as JSON or as INI text", content((Config = "application/json"), (String = "text/plain"))), (status = 403, description = "GUST__WEBAPI__EXPOSE_CONFIG is false"), (status = 406, description = "Neither JSON nor text was accepted")))]
pub(crate) async fn get_config(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ConfigQuery>,
) -> Result<Response, ApiError> {
    check_exposed(&state)?;
    let text = wants_text(&headers)?;
    let mut config = effective(&state.settings);
    if let Some(section) = &query.section {
        config.sections.retain(|s| &s.name == section);
        if config.sections.is_empty() {
            return Err(ApiError::NotFound(format!("Section {section} not found.")));
        }
    }
    Ok(answer(config, text))
}

/// `GET /api/v2/config/section/{section}/option/{option}`: one option.
#[utoipa::path(get, path = "/api/v2/config/section/{section}/option/{option}", tag = "Config", operation_id = "get_config_value", params(("section" = String, Path, description = "The section, e.g. `webapi`"), ("option" = String, Path, description = "The option, e.g. `bind`")), responses((status = 200, description = "The settings, as JSON or as INI text", content((Config = "application/json"), (String = "text/plain"))), (status = 403, description = "GUST__WEBAPI__EXPOSE_CONFIG is false"), (status = 406, description = "Neither JSON nor text was accepted")))]
pub(crate) async fn get_config_value(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath((section, option)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    check_exposed(&state)?;
    let text = wants_text(&headers)?;
    let found = effective(&state.settings)
        .sections
        .into_iter()
        .find(|s| s.name == section.to_lowercase())
        .and_then(|s| s.options.into_iter().find(|o| o.key == option.to_lowercase()));
    let Some(found) = found else {
        return Err(ApiError::NotFound(format!("Option [{section}/{option}] not found.")));
    };
    Ok(answer(Config { sections: vec![ConfigSection { name: section, options: vec![found] }] }, text))
}

fn check_exposed(state: &AppState) -> Result<(), ApiError> {
    if state.settings.webapi.expose_config.exposed() {
        return Ok(());
    }
    Err(ApiError::Forbidden(
        "Your gust administrator chose not to expose the configuration, most likely for security reasons \
         (set GUST__WEBAPI__EXPOSE_CONFIG=true to show it to admins; secrets stay hidden)."
            .into(),
    ))
}

/// True for `text/plain`, false for JSON (also `*/*` or no `Accept`); 406 for anything else.
fn wants_text(headers: &HeaderMap) -> Result<bool, ApiError> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else { return Ok(false) };
    let types: Vec<&str> = accept.split(',').map(|part| part.split(';').next().unwrap_or_default().trim()).collect();
    if types.iter().any(|t| matches!(*t, "application/json" | "*/*" | "application/*" | "")) {
        return Ok(false);
    }
    if types.iter().any(|t| matches!(*t, "text/plain" | "text/*")) {
        return Ok(true);
    }
    Err(ApiError::with_status(
        StatusCode::NOT_ACCEPTABLE,
        format!("cannot answer with `{accept}`; accept application/json or text/plain"),
    ))
}

fn answer(config: Config, text: bool) -> Response {
    if !text {
        return Json(config).into_response();
    }
    let body: String = config
        .sections
        .iter()
        .map(|section| {
            let options: String = section.options.iter().map(|o| format!("{} = {}\n", o.key, o.value)).collect();
            format!("[{}]\n{options}", section.name)
        })
        .collect::<Vec<_>>()
        .join("\n");
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// The settings as sections of text options, secrets hidden.
fn effective(settings: &gust_shared::settings::Settings) -> Config {
    let Ok(Value::Object(sections)) = serde_json::to_value(settings) else { return Config { sections: Vec::new() } };
    let sections = sections
        .into_iter()
        .map(|(name, options)| {
            let options = match options {
                Value::Object(options) => options
                    .into_iter()
                    .map(|(key, value)| ConfigOption { value: shown(&name, &key, value), key })
                    .collect(),
                _ => Vec::new(),
            };
            ConfigSection { name, options }
        })
        .collect();
    Config { sections }
}

/// An option's value as text: hidden when secret, URLs without their passwords.
fn shown(section: &str, option: &str, value: Value) -> String {
    let secret =
        SECRET_OPTIONS.contains(&(section, option)) || (is_sensitive(option) && !option.ends_with(NOT_SECRET_SUFFIX));
    let text = match value {
        Value::Null => String::new(),
        Value::String(text) => text,
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map_or(item.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    if secret && !text.is_empty() {
        HIDDEN.to_string()
    } else if text.contains("://") || text.contains("password") {
        redact_url(&text)
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option<'a>(config: &'a Config, section: &str, key: &str) -> &'a str {
        let section = config.sections.iter().find(|s| s.name == section).unwrap();
        &section.options.iter().find(|o| o.key == key).unwrap().value
    }

    #[test]
    fn secrets_are_hidden_and_urls_lose_their_passwords() {
        let mut settings = gust_shared::settings::Settings::default();
        settings.auth.jwt_secret = Some("signing-secret".into());
        settings.auth.admin_password = Some("hunter2".into());
        settings.secrets.key = Some("fernet".into());
        settings.database.url = "postgres://gust:db-pw@db/gust".into();
        let config = effective(&settings);
        assert_eq!(option(&config, "auth", "jwt_secret"), HIDDEN);
        assert_eq!(option(&config, "auth", "admin_password"), HIDDEN);
        assert_eq!(option(&config, "secrets", "key"), HIDDEN);
        assert_eq!(option(&config, "database", "url"), "postgres://gust:***@db/gust");
        assert_eq!(option(&config, "amqp", "url"), "amqp://guest:***@127.0.0.1:5672/%2f");
        assert_eq!(option(&config, "auth", "token_lifetime"), "1day");
        assert_eq!(option(&config, "worker", "queues"), "default");
        assert_eq!(option(&config, "webapi", "expose_config"), "false");
    }

    #[test]
    fn json_is_the_default_text_is_asked_for_and_other_types_are_refused() {
        let accept = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, value.parse().unwrap());
            wants_text(&headers)
        };
        assert!(!wants_text(&HeaderMap::new()).unwrap());
        assert!(!accept("*/*").unwrap());
        assert!(accept("text/plain").unwrap());
        assert!(!accept("text/plain, application/json;q=0.9").unwrap());
        assert!(accept("image/png").is_err());
    }
}
