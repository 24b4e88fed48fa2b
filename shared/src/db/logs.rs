//! Queries on `task_logs`: the output of each try, line by line.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{DbError, GenericClient};

/// One stored log line.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// Position in the log; also the continuation token.
    pub id: i64,
    /// When the worker read it.
    pub ts: DateTime<Utc>,
    /// `stdout`, `stderr` or `gust` (the worker's own notes).
    pub stream: String,
    /// The text, without its newline.
    pub line: String,
}

/// Appends lines of one try in one statement.
pub async fn append(
    db: &impl GenericClient,
    ti_id: Uuid,
    try_number: i32,
    lines: &[(DateTime<Utc>, &str, &str)],
) -> Result<(), DbError> {
    if lines.is_empty() {
        return Ok(());
    }
    let ts: Vec<DateTime<Utc>> = lines.iter().map(|l| l.0).collect();
    let streams: Vec<&str> = lines.iter().map(|l| l.1).collect();
    let text: Vec<std::borrow::Cow<'_, str>> = lines.iter().map(|l| super::storable_text(l.2)).collect();
    let text: Vec<&str> = text.iter().map(|t| t.as_ref()).collect();
    db.execute(
        r#"
INSERT INTO task_logs (ti_id, try_number, ts, stream, line)
SELECT $1, $2, t.ts, t.stream, t.line
FROM unnest($3::timestamptz[], $4::text[], $5::text[]) WITH ORDINALITY AS t(ts, stream, line, n)
ORDER BY t.n"#,
        &[&ti_id, &try_number, &ts, &streams, &text],
    )
    .await?;
    Ok(())
}

/// Up to `limit` lines of one try after position `after`.
pub async fn read(
    db: &impl GenericClient,
    ti_id: Uuid,
    try_number: i32,
    after: i64,
    limit: i64,
) -> Result<Vec<LogLine>, DbError> {
    let rows = db
        .query(
            r#"
SELECT id, ts, stream, line FROM task_logs WHERE ti_id = $1 AND try_number = $2 AND id > $3
ORDER BY id LIMIT $4"#,
            &[&ti_id, &try_number, &after, &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| LogLine { id: r.get(0), ts: r.get(1), stream: r.get(2), line: r.get(3) }).collect())
}
