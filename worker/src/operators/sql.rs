//! `sql`: runs one statement on a PostgreSQL connection; Airflow's
//! `%(name)s` placeholders become `$n` with the values bound as parameters
//! (never spliced into the text), and the rows become the `return_value`
//! XCom as a list of objects, bounded in rows and bytes.

use std::time::Duration;

use futures_util::{pin_mut, TryStreamExt};
use gust_shared::{
    dag::{OperatorSpec, SqlArgs, DEFAULT_SQL_MAX_ROWS},
    message::TaskMessage,
};
use tokio_postgres::{
    types::{to_sql_checked, Format, FromSql, IsNull, ToSql, Type},
    NoTls, Row,
};
use tokio_util::sync::CancellationToken;

use super::{fail, Operator, OperatorFuture, Outcome, RunLimits};
use crate::log_sink::{LogSink, Stream};

/// The `sql` operator.
pub struct Sql;

impl Operator for Sql {
    fn run<'a>(
        &'a self,
        task: &'a TaskMessage,
        log: &'a LogSink,
        limits: &'a RunLimits,
        stop: &'a CancellationToken,
    ) -> OperatorFuture<'a> {
        Box::pin(run_sql(task, log, limits, stop))
    }
}

async fn run_sql(task: &TaskMessage, log: &LogSink, limits: &RunLimits, stop: &CancellationToken) -> Outcome {
    let OperatorSpec::Sql(args) = &task.operator else {
        return fail(log, "sql operator got a message for another operator").await;
    };
    let session = match Session::open(args, limits, log).await {
        Ok(session) => session,
        Err(reason) => return fail(log, reason).await,
    };
    let cancel = session.client.cancel_token();
    let max_rows = args.max_rows.unwrap_or(DEFAULT_SQL_MAX_ROWS) as usize;
    let limit = task.execution_timeout_ms.map(Duration::from_millis);
    tokio::select! {
        result = session.query(max_rows) => match result {
            Ok(rows) => to_xcom(rows, args, max_rows, limits, log).await,
            Err(reason) => fail(log, reason).await,
        },
        _ = async { match limit { Some(l) => tokio::time::sleep(l).await, None => std::future::pending().await } } => {
            let _ = cancel.cancel_query(NoTls).await;
            fail(log, format!("timed out after {:?} (execution_timeout); the statement was cancelled", limit.unwrap_or_default())).await
        }
        _ = stop.cancelled() => {
            let _ = cancel.cancel_query(NoTls).await;
            log.line(Stream::Gust, "worker shutdown: statement cancelled").await;
            Outcome::interrupted(None)
        }
    }
}

/// One connection to a task's database, opened for one statement (the
/// `sql` operator's, or one poke of `sql_sensor`); closed when dropped.
pub(super) struct Session {
    client: tokio_postgres::Client,
    driver: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
    statement: String,
    values: Vec<TextParam>,
}

impl Session {
    /// Translates the statement's placeholders, resolves the connection and connects, logging where.
    pub(super) async fn open(args: &SqlArgs, limits: &RunLimits, log: &LogSink) -> Result<Session, String> {
        let (statement, values) = placeholders(&args.sql, &args.parameters)?;
        let conn = limits.connections.resolve(&args.conn_id).await?;
        if !matches!(conn.conn_type.as_str(), "postgres" | "postgresql") {
            return Err(format!(
                "connection `{}` is of type `{}`; the sql operator speaks PostgreSQL only",
                conn.conn_id, conn.conn_type
            ));
        }
        let mut config = tokio_postgres::Config::new();
        let port = conn.port.and_then(|p| u16::try_from(p).ok()).unwrap_or(5432);
        config.host(conn.host.as_deref().unwrap_or("localhost")).port(port);
        config.application_name("gust-sql-operator").connect_timeout(Duration::from_secs(30));
        if let Some(login) = &conn.login {
            config.user(login);
        }
        if let Some(password) = &conn.password {
            config.password(password);
        }
        if let Some(db) = &conn.schema {
            config.dbname(db);
        }
        let place = format!(
            "{}@{}:{}/{}",
            conn.login.as_deref().unwrap_or(""),
            conn.host.as_deref().unwrap_or("localhost"),
            port,
            conn.schema.as_deref().unwrap_or("")
        );
        log.line(Stream::Gust, format!("connecting to PostgreSQL {place} (connection `{}`)", conn.conn_id)).await;
        let (client, connection) =
            config.connect(NoTls).await.map_err(|e| format!("cannot connect to {place}: {}", db_message(&e)))?;
        log.line(Stream::Gust, format!("running: {}", statement.trim())).await;
        Ok(Session { client, driver: tokio::spawn(connection), statement, values })
    }

    /// Runs the statement; returns at most `max_rows + 1` rows (one more tells that there were too many).
    pub(super) async fn query(&self, max_rows: usize) -> Result<Vec<Row>, String> {
        query(&self.client, &self.statement, &self.values, max_rows).await
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Runs the statement; returns at most `max_rows + 1` rows (one more tells that there were too many).
async fn query(
    client: &tokio_postgres::Client,
    statement: &str,
    values: &[TextParam],
    max_rows: usize,
) -> Result<Vec<Row>, String> {
    let stream = client.query_raw(statement, values.iter()).await.map_err(|e| statement_error(&e))?;
    pin_mut!(stream);
    let mut rows = Vec::new();
    while let Some(row) = stream.try_next().await.map_err(|e| statement_error(&e))? {
        rows.push(row);
        if rows.len() > max_rows {
            break;
        }
    }
    Ok(rows)
}

async fn to_xcom(rows: Vec<Row>, args: &SqlArgs, max_rows: usize, limits: &RunLimits, log: &LogSink) -> Outcome {
    if rows.len() > max_rows {
        return fail(
            log,
            format!(
                "the statement returned more than max_rows ({max_rows}) rows; aggregate in SQL, add a LIMIT, or raise the task's max_rows"
            ),
        )
        .await;
    }
    log.line(Stream::Gust, format!("statement returned {} row(s)", rows.len())).await;
    if rows.is_empty() && rows_are_not_a_result(&args.sql) {
        return Outcome::success();
    }
    let mut list = Vec::with_capacity(rows.len());
    for row in &rows {
        match row_object(row) {
            Ok(object) => list.push(serde_json::Value::Object(object)),
            Err(reason) => return fail(log, reason).await,
        }
    }
    let value = serde_json::Value::Array(list);
    let size = value.to_string().len();
    if size > limits.max_xcom_bytes {
        return fail(
            log,
            format!(
                "the rows take {size} bytes of JSON, more than the worker's max_xcom_bytes ({}); aggregate in SQL or raise the limit",
                limits.max_xcom_bytes
            ),
        )
        .await;
    }
    Outcome { xcom: Some(value), ..Outcome::success() }
}

/// Whether an empty result is no result at all (a statement that returns no rows by nature).
fn rows_are_not_a_result(sql: &str) -> bool {
    let first = sql.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
    !matches!(first.as_str(), "select" | "with" | "values" | "table" | "show" | "explain")
        && !sql.to_ascii_lowercase().contains("returning")
}

/// The database's own message (with detail and hint) rather than "db error".
fn db_message(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("{}: {}", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" (detail: {detail})"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!(" (hint: {hint})"));
            }
            text
        }
        None => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
    }
}

fn statement_error(error: &tokio_postgres::Error) -> String {
    format!("the statement failed: {}", db_message(error))
}

/// Translates Airflow's `%(name)s` placeholders into `$n` (the same name the
/// same number) and returns the values to bind in that order. `%%` is a
/// literal `%` when the task has parameters, as in psycopg2.
fn placeholders(
    sql: &str,
    parameters: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<(String, Vec<TextParam>), String> {
    let mut out = String::with_capacity(sql.len());
    let mut names: Vec<&str> = Vec::new();
    let mut rest = sql;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if !parameters.is_empty() && tail.starts_with("%%") {
            out.push('%');
            rest = &tail[2..];
        } else if let Some(end) = tail.strip_prefix("%(").and_then(|t| t.find(")s")) {
            let name = &tail[2..2 + end];
            if !parameters.contains_key(name) {
                return Err(format!(
                    "sql uses the placeholder %({name})s but parameters has no `{name}`; add it to parameters"
                ));
            }
            let index = match names.iter().position(|n| *n == name) {
                Some(i) => i,
                None => {
                    names.push(name);
                    names.len() - 1
                }
            };
            out.push_str(&format!("${}", index + 1));
            rest = &tail[2 + end + 2..];
        } else {
            out.push('%');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    let values = names.iter().map(|name| TextParam::from_json(&parameters[*name])).collect();
    Ok((out, values))
}

/// A parameter sent in PostgreSQL's text format, which the server parses
/// as the placeholder's type (numbers, dates, JSON, …); JSON null is NULL.
#[derive(Debug)]
struct TextParam(Option<String>);

impl TextParam {
    fn from_json(value: &serde_json::Value) -> TextParam {
        TextParam(match value {
            serde_json::Value::Null => None,
            serde_json::Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        })
    }
}

impl ToSql for TextParam {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.0 {
            None => Ok(IsNull::Yes),
            Some(text) => {
                out.extend_from_slice(text.as_bytes());
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// The first column of a row as JSON (what `sql_sensor` judges).
pub(super) fn first_cell(row: &Row) -> Result<serde_json::Value, String> {
    match row.columns().first() {
        Some(column) => cell(row, 0, column.type_()).map_err(|e| {
            format!(
                "column `{}` (type {}) cannot be read: {e}; cast it in the statement",
                column.name(),
                column.type_()
            )
        }),
        None => Ok(serde_json::Value::Null),
    }
}

/// One row as a JSON object, column name to value.
fn row_object(row: &Row) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let mut object = serde_json::Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let value = cell(row, i, column.type_()).map_err(|e| {
            format!(
                "column `{}` (type {}) cannot be turned into JSON: {e}; cast it in the statement, e.g. `{}::text`",
                column.name(),
                column.type_(),
                column.name()
            )
        })?;
        object.insert(column.name().to_string(), value);
    }
    Ok(object)
}

type CellResult = Result<serde_json::Value, Box<dyn std::error::Error + Sync + Send>>;

fn cell(row: &Row, i: usize, ty: &Type) -> CellResult {
    use serde_json::Value;
    fn get<'r, T: FromSql<'r>>(row: &'r Row, i: usize) -> Result<Option<T>, tokio_postgres::Error> {
        row.try_get::<_, Option<T>>(i)
    }
    let json = |v: Option<Value>| v.unwrap_or(Value::Null);
    Ok(match *ty {
        Type::BOOL => json(get::<bool>(row, i)?.map(Value::from)),
        Type::INT2 => json(get::<i16>(row, i)?.map(Value::from)),
        Type::INT4 => json(get::<i32>(row, i)?.map(Value::from)),
        Type::INT8 => json(get::<i64>(row, i)?.map(Value::from)),
        Type::OID => json(get::<u32>(row, i)?.map(Value::from)),
        Type::FLOAT4 => json(get::<f32>(row, i)?.map(|f| Value::from(f64::from(f)))),
        Type::FLOAT8 => json(get::<f64>(row, i)?.map(Value::from)),
        Type::NUMERIC => json(get::<Numeric>(row, i)?.map(|n| n.0)),
        Type::JSON | Type::JSONB => json(get::<Value>(row, i)?),
        Type::UUID => json(get::<uuid::Uuid>(row, i)?.map(|u| Value::from(u.to_string()))),
        Type::TIMESTAMPTZ => json(get::<chrono::DateTime<chrono::Utc>>(row, i)?.map(|d| Value::from(d.to_rfc3339()))),
        Type::TIMESTAMP => json(get::<chrono::NaiveDateTime>(row, i)?.map(|d| Value::from(d.to_string()))),
        Type::DATE => json(get::<chrono::NaiveDate>(row, i)?.map(|d| Value::from(d.to_string()))),
        Type::TIME => json(get::<chrono::NaiveTime>(row, i)?.map(|d| Value::from(d.to_string()))),
        _ => match get::<String>(row, i) {
            Ok(text) => json(text.map(Value::from)),
            Err(_) => return Err("the sql operator has no JSON form for this type".into()),
        },
    })
}

/// PostgreSQL's `numeric` read from its binary form into a JSON number
/// (`NaN` and infinities as strings).
struct Numeric(serde_json::Value);

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let word = |at: usize| -> Result<u16, Box<dyn std::error::Error + Sync + Send>> {
            raw.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or_else(|| "short numeric".into())
        };
        let (ndigits, weight, sign, dscale) = (word(0)? as usize, word(2)? as i16, word(4)?, word(6)? as usize);
        match sign {
            0xC000 => return Ok(Numeric("NaN".into())),
            0xD000 => return Ok(Numeric("Infinity".into())),
            0xF000 => return Ok(Numeric("-Infinity".into())),
            _ => {}
        }
        let digits = (0..ndigits).map(|k| word(8 + 2 * k)).collect::<Result<Vec<_>, _>>()?;
        // Integer part: groups 0..=weight; fraction: the groups after, cut to dscale digits.
        let mut integer = String::new();
        for g in 0..=i32::from(weight).max(-1) {
            let d = digits.get(g as usize).copied().unwrap_or(0);
            if integer.is_empty() {
                integer = d.to_string();
            } else {
                integer.push_str(&format!("{d:04}"));
            }
        }
        if integer.is_empty() {
            integer.push('0');
        }
        let mut fraction = String::new();
        let mut g = i32::from(weight) + 1;
        while fraction.len() < dscale {
            let d = if g < 0 { 0 } else { digits.get(g as usize).copied().unwrap_or(0) };
            fraction.push_str(&format!("{d:04}"));
            g += 1;
        }
        fraction.truncate(dscale);
        let sign = if sign == 0x4000 { "-" } else { "" };
        let text = if fraction.is_empty() { format!("{sign}{integer}") } else { format!("{sign}{integer}.{fraction}") };
        Ok(Numeric(serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_placeholders_become_numbered_parameters_in_first_use_order() {
        let parameters = [("day".to_string(), json!("2026-03-04")), ("n".to_string(), json!(3))].into();
        let (sql, values) =
            placeholders("select %(n)s, x from t where day = %(day)s and y like 'a%%' and z = %(n)s", &parameters)
                .unwrap();
        assert_eq!(sql, "select $1, x from t where day = $2 and y like 'a%' and z = $1");
        assert_eq!(
            values.iter().map(|v| v.0.clone()).collect::<Vec<_>>(),
            [Some("3".into()), Some("2026-03-04".into())]
        );
        let err = placeholders("select %(missing)s", &parameters).unwrap_err();
        assert!(err.contains("%(missing)s") && err.contains("add it to parameters"), "{err}");
        let (sql, values) = placeholders("select 'a%'", &Default::default()).unwrap();
        assert_eq!((sql.as_str(), values.len()), ("select 'a%'", 0));
    }

    /// PostgreSQL's binary numeric: digit count, weight, sign, display scale, base-10000 digits.
    fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> serde_json::Value {
        let mut raw = Vec::new();
        for word in [digits.len() as u16, weight as u16, sign, dscale].into_iter().chain(digits.iter().copied()) {
            raw.extend_from_slice(&word.to_be_bytes());
        }
        Numeric::from_sql(&Type::NUMERIC, &raw).unwrap().0
    }

    #[test]
    fn numerics_become_json_numbers_at_any_scale_and_sign() {
        assert_eq!(numeric(0, 0, 2, &[1, 5000]), json!(1.5));
        assert_eq!(numeric(1, 0, 3, &[1, 2345, 6780]), json!(12345.678));
        assert_eq!(numeric(-1, 0, 7, &[1, 2340]), json!(0.0001234));
        assert_eq!(numeric(0, 0x4000, 0, &[5]), json!(-5));
        assert_eq!(numeric(1, 0, 0, &[1]), json!(10000));
        assert_eq!(numeric(0, 0, 0, &[]), json!(0));
        assert_eq!(numeric(0, 0xC000, 0, &[]), json!("NaN"));
    }
}
