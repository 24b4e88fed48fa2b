//! Airflow's Connections as tasks see them: decrypted, from `GUST_CONN_<ID>`
//! environment variables (URIs or JSON, Airflow's `AIRFLOW_CONN_` rules) or the
//! `connections` table. Operators call [`resolve`]; templates read `conn.<id>`.

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use crate::{
    db::{self, connections::ConnectionRow, DbError, GenericClient},
    secrets::{is_sensitive, Secrets, SecretsError},
};

/// Prefix of the environment variables that define connections (`GUST_CONN_MY_DB`).
pub const ENV_PREFIX: &str = "GUST_CONN_";

/// Why a connection could not be resolved or stored.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// Neither the environment nor the table has it.
    #[error("connection `{0}` is not defined; create it with POST /api/v2/connections or set {ENV_PREFIX}{upper}", upper = .0.to_uppercase())]
    NotFound(String),
    /// A `GUST_CONN_` variable is not a connection URI or JSON.
    #[error(
        "{variable} is not a connection URI (type://login:password@host:port/schema?extra=value) or JSON: {problem}"
    )]
    BadEnv {
        /// The environment variable.
        variable: String,
        /// What is wrong.
        problem: String,
    },
    /// `extra` is not a JSON object.
    #[error("the `extra` of connection `{0}` must be a JSON object as text, e.g. \"{{\\\"timeout\\\": 5}}\"")]
    BadExtra(String),
    /// Encryption or decryption failed.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A connection, decrypted.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Connection {
    /// Its id.
    pub conn_id: String,
    /// The kind of system, e.g. `postgres`, `http`.
    pub conn_type: String,
    /// Free text.
    pub description: Option<String>,
    /// Host name.
    pub host: Option<String>,
    /// User name.
    pub login: Option<String>,
    /// Password, in clear.
    pub password: Option<String>,
    /// Database or path.
    pub schema: Option<String>,
    /// Port.
    pub port: Option<i32>,
    /// JSON object text, in clear.
    pub extra: Option<String>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("conn_id", &self.conn_id)
            .field("conn_type", &self.conn_type)
            .field("host", &self.host)
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("schema", &self.schema)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// `extra` parsed (Airflow's `extra_dejson`); empty when absent or not an object.
    pub fn extra_dejson(&self) -> Map<String, Value> {
        match self.extra.as_deref().map(serde_json::from_str::<Value>) {
            Some(Ok(Value::Object(fields))) => fields,
            _ => Map::new(),
        }
    }

    /// The secret strings of this connection (password, secret extra fields), to mask in logs.
    pub fn secret_values(&self) -> Vec<String> {
        let mut secrets: Vec<String> = self.password.iter().cloned().collect();
        for (name, value) in self.extra_dejson() {
            if is_sensitive(&name) {
                secrets.push(match value {
                    Value::String(text) => text,
                    other => other.to_string(),
                });
            }
        }
        secrets.retain(|secret| !secret.is_empty());
        secrets
    }

    /// The connection as stored: the password and secret extra fields encrypted.
    /// Without keys, only a connection with nothing secret can be stored.
    pub fn encrypt(&self, secrets: Option<&Secrets>) -> Result<ConnectionRow, ConnectionError> {
        Ok(ConnectionRow {
            connection_id: self.conn_id.clone(),
            conn_type: self.conn_type.clone(),
            description: self.description.clone(),
            host: self.host.clone(),
            login: self.login.clone(),
            schema: self.schema.clone(),
            port: self.port,
            password_encrypted: match &self.password {
                Some(password) => Some(secrets.ok_or(SecretsError::NoKey)?.encrypt(password)),
                None => None,
            },
            extra: map_secret_extra(&self.conn_id, self.extra.as_deref(), |plain| {
                Ok(Value::String(secrets.ok_or(SecretsError::NoKey)?.encrypt(&plain.to_string())))
            })?,
        })
    }

    /// The connection a stored row holds, decrypted.
    pub fn decrypt(row: ConnectionRow, secrets: Option<&Secrets>) -> Result<Self, ConnectionError> {
        let extra = map_secret_extra(&row.connection_id, row.extra.as_deref(), |token| {
            let token = token.as_str().unwrap_or_default();
            let plain = secrets.ok_or(SecretsError::NoKey)?.decrypt(token)?;
            Ok(serde_json::from_str(&plain).unwrap_or(Value::String(plain)))
        })?;
        Ok(Self {
            password: match &row.password_encrypted {
                Some(token) => Some(secrets.ok_or(SecretsError::NoKey)?.decrypt(token)?),
                None => None,
            },
            conn_id: row.connection_id,
            conn_type: row.conn_type,
            description: row.description,
            host: row.host,
            login: row.login,
            schema: row.schema,
            port: row.port,
            extra,
        })
    }

    /// A connection from an Airflow URI (`postgres://user:pw@host:5432/db?sslmode=require`)
    /// or Airflow's JSON form (`{"conn_type": …, "host": …}`), as `AIRFLOW_CONN_<ID>` takes.
    pub fn from_env_value(conn_id: &str, variable: &str, text: &str) -> Result<Self, ConnectionError> {
        let bad = |problem: String| ConnectionError::BadEnv { variable: variable.to_string(), problem };
        let text = text.trim();
        if text.starts_with('{') {
            let mut connection: Connection =
                serde_json::from_str(&json_with_object_extra(text).map_err(|e| bad(e.to_string()))?)
                    .map_err(|e| bad(e.to_string()))?;
            connection.conn_id = conn_id.to_string();
            return Ok(connection);
        }
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("no `://`".into()))?;
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        let non_empty = |s: String| Some(s).filter(|s| !s.is_empty());
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let (authority, path) = match rest.split_once('/') {
            Some((authority, path)) => (authority, Some(path)),
            None => (rest, None),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (login, password) = match userinfo {
            Some(info) => match info.split_once(':') {
                Some((login, password)) => (non_empty(decode(login)), non_empty(decode(password))),
                None => (non_empty(decode(info)), None),
            },
            None => (None, None),
        };
        let split_at = if hostport.starts_with('[') { hostport.find("]:").map(|i| i + 1) } else { hostport.rfind(':') };
        let (host, port) = match split_at {
            Some(i) => {
                let port = &hostport[i + 1..];
                let port = port.parse::<i32>().map_err(|_| bad(format!("port `{port}` is not a number")))?;
                (&hostport[..i], Some(port))
            }
            None => (hostport, None),
        };
        let mut extra = Map::new();
        for pair in query.unwrap_or_default().split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode(&value.replace('+', " "));
            if key == "__extra__" {
                match serde_json::from_str(&value) {
                    Ok(Value::Object(fields)) => extra.extend(fields),
                    _ => return Err(bad("`__extra__` must be a JSON object".into())),
                }
            } else {
                extra.insert(decode(key), Value::String(value));
            }
        }
        let conn_type = match scheme.replace('-', "_").as_str() {
            "postgresql" => "postgres".to_string(),
            other => other.to_string(),
        };
        Ok(Self {
            conn_id: conn_id.to_string(),
            conn_type,
            description: None,
            host: non_empty(decode(host)),
            login,
            password,
            schema: path.map(decode).and_then(non_empty),
            port,
            extra: (!extra.is_empty()).then(|| Value::Object(extra).to_string()),
        })
    }

    /// The connection `GUST_CONN_<ID>` (id upper-cased) defines in this process's environment, if any.
    pub fn from_env(conn_id: &str) -> Result<Option<Self>, ConnectionError> {
        let variable = format!("{ENV_PREFIX}{}", conn_id.to_uppercase());
        match std::env::var(&variable) {
            Ok(text) => Self::from_env_value(conn_id, &variable, &text).map(Some),
            Err(_) => Ok(None),
        }
    }
}

/// Airflow's JSON form may give `extra` as an object; stored here as its text.
fn json_with_object_extra(text: &str) -> Result<String, serde_json::Error> {
    let mut value: Value = serde_json::from_str(text)?;
    if let Some(extra) = value.get_mut("extra").filter(|extra| extra.is_object()) {
        *extra = Value::String(extra.to_string());
    }
    Ok(value.to_string())
}

/// `extra` with `change` applied to the value of each secret-looking top-level field.
fn map_secret_extra(
    conn_id: &str,
    extra: Option<&str>,
    mut change: impl FnMut(&Value) -> Result<Value, ConnectionError>,
) -> Result<Option<String>, ConnectionError> {
    let Some(text) = extra.filter(|text| !text.trim().is_empty()) else { return Ok(None) };
    let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(text) else {
        return Err(ConnectionError::BadExtra(conn_id.to_string()));
    };
    let mut changed = false;
    for (name, value) in fields.iter_mut() {
        if is_sensitive(name) {
            *value = change(value)?;
            changed = true;
        }
    }
    Ok(Some(if changed { Value::Object(fields).to_string() } else { text.to_string() }))
}

/// Whether `extra` (JSON object text) is valid for a connection.
pub fn check_extra(conn_id: &str, extra: Option<&str>) -> Result<(), ConnectionError> {
    map_secret_extra(conn_id, extra, |value| Ok(value.clone())).map(|_| ())
}

/// The connection `conn_id`, decrypted: from `GUST_CONN_<ID>` first, then the
/// `connections` table (Airflow's order: environment before the metastore).
/// `secrets` are the keys of `GUST__SECRETS__KEY` (`Settings::secrets.secrets()`).
pub async fn resolve(
    db: &impl GenericClient,
    secrets: Option<&Secrets>,
    conn_id: &str,
) -> Result<Connection, ConnectionError> {
    if let Some(connection) = Connection::from_env(conn_id)? {
        return Ok(connection);
    }
    let row = db::connections::get(db, conn_id).await?.ok_or_else(|| ConnectionError::NotFound(conn_id.into()))?;
    Connection::decrypt(row, secrets)
}

/// Every connection a template may read as `conn.<id>`: the table's, decrypted (a
/// `GUST_CONN_<ID>` variable of this process wins, as in Airflow), and those only the
/// environment defines (id: the variable's suffix in lower case). One that cannot be
/// read keeps the reason, shown only if a template reads it.
pub async fn for_templates(
    db: &impl GenericClient,
    secrets: Option<&Secrets>,
) -> Result<crate::template::Connections, DbError> {
    let mut connections = crate::template::Connections::new();
    for row in db::connections::every(db).await? {
        let id = row.connection_id.clone();
        let connection = match Connection::from_env(&id) {
            Ok(Some(from_env)) => Ok(from_env),
            Ok(None) => Connection::decrypt(row, secrets).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        connections.insert(id, connection);
    }
    for (variable, text) in std::env::vars() {
        let Some(suffix) = variable.strip_prefix(ENV_PREFIX) else { continue };
        if suffix.is_empty() || connections.keys().any(|id| id.to_uppercase() == suffix) {
            continue;
        }
        let id = suffix.to_lowercase();
        let connection = Connection::from_env_value(&id, &variable, &text).map_err(|e| e.to_string());
        connections.insert(id, connection);
    }
    Ok(connections)
}

/// Re-encrypts every stored connection with the first key (after a new key was put
/// first in `GUST__SECRETS__KEY`); returns how many were rewritten.
pub async fn rotate_all(db: &impl GenericClient, secrets: &Secrets) -> Result<usize, ConnectionError> {
    let rows = db::connections::all(db).await?;
    let mut count = 0;
    for row in rows {
        let connection = Connection::decrypt(row, Some(secrets))?;
        let fresh = connection.encrypt(Some(secrets))?;
        db::connections::set_encrypted(
            db,
            &fresh.connection_id,
            fresh.password_encrypted.as_deref(),
            fresh.extra.as_deref(),
        )
        .await?;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_airflow_uri_gives_every_field_with_query_parameters_as_extra() {
        let c = Connection::from_env_value(
            "my_db",
            "GUST_CONN_MY_DB",
            "postgresql://us%40er:p%2Fw@db.example:5432/warehouse?sslmode=require&application_name=gust+x",
        )
        .unwrap();
        assert_eq!(c.conn_type, "postgres");
        assert_eq!(c.login.as_deref(), Some("us@er"));
        assert_eq!(c.password.as_deref(), Some("p/w"));
        assert_eq!(c.host.as_deref(), Some("db.example"));
        assert_eq!(c.port, Some(5432));
        assert_eq!(c.schema.as_deref(), Some("warehouse"));
        assert_eq!(c.extra_dejson()["sslmode"], "require");
        assert_eq!(c.extra_dejson()["application_name"], "gust x");
        let c = Connection::from_env_value("h", "GUST_CONN_H", "http://api.example").unwrap();
        assert_eq!((c.host.as_deref(), c.port, c.login), (Some("api.example"), None, None));
        let c =
            Connection::from_env_value("h", "V", r#"{"conn_type": "http", "host": "h", "extra": {"a": 1}}"#).unwrap();
        assert_eq!(c.extra_dejson()["a"], 1);
        assert!(Connection::from_env_value("h", "V", "not a uri").unwrap_err().to_string().contains("V is not"));
    }

    #[test]
    fn password_and_secret_extras_are_encrypted_and_decrypt_back() {
        let secrets = Secrets::from_keys(&Secrets::generate_key()).unwrap();
        let c = Connection {
            conn_id: "x".into(),
            conn_type: "http".into(),
            password: Some("hunter2".into()),
            extra: Some(r#"{"api_key": "k-123", "timeout": 5}"#.into()),
            ..Default::default()
        };
        let row = c.encrypt(secrets.as_ref()).unwrap();
        assert!(!row.password_encrypted.as_deref().unwrap().contains("hunter2"));
        assert!(!row.extra.as_deref().unwrap().contains("k-123") && row.extra.as_deref().unwrap().contains("5"));
        let back = Connection::decrypt(row, secrets.as_ref()).unwrap();
        assert_eq!(back.password.as_deref(), Some("hunter2"));
        assert_eq!(back.extra_dejson()["api_key"], "k-123");
        assert_eq!(back.secret_values(), ["hunter2", "k-123"]);
        assert!(matches!(c.encrypt(None), Err(ConnectionError::Secrets(SecretsError::NoKey))));
    }
}
