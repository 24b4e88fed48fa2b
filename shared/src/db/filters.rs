//! The `WHERE` clauses of filtered list queries: built only from static SQL
//! fragments and `$n` placeholders, every value a client chose being a bound
//! parameter.

use chrono::{DateTime, Utc};
use tokio_postgres::{types::ToSql, Row};

use super::{DbError, GenericClient};

/// Bounds on one timestamp; each bound that is set must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Greater than or equal to.
    pub gte: Option<DateTime<Utc>>,
    /// Strictly greater than.
    pub gt: Option<DateTime<Utc>>,
    /// Less than or equal to.
    pub lte: Option<DateTime<Utc>>,
    /// Strictly less than.
    pub lt: Option<DateTime<Utc>>,
}

/// A text match on one column, as Airflow's `*_pattern` and `*_prefix_pattern`
/// parameters ask: the client's text is literal (`%`, `_` and `\` match
/// themselves) and any of the alternatives may match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextMatch {
    /// Case-insensitive substring (`ILIKE '%text%'`).
    Contains(Vec<String>),
    /// Case-sensitive prefix (`LIKE 'text%'`).
    StartsWith(Vec<String>),
}

impl TextMatch {
    /// A `*_pattern` value: `|` separates alternatives; empty or `~` matches everything (`None`).
    pub fn contains(raw: &str) -> Option<Self> {
        alternatives(raw).map(TextMatch::Contains)
    }

    /// A `*_prefix_pattern` value: `|` separates alternatives; empty or `~` matches everything (`None`).
    pub fn starts_with(raw: &str) -> Option<Self> {
        alternatives(raw).map(TextMatch::StartsWith)
    }

    /// The `LIKE` patterns, wildcards of the client's text escaped.
    fn patterns(&self) -> Vec<String> {
        match self {
            TextMatch::Contains(texts) => texts.iter().map(|t| format!("%{}%", like_literal(t))).collect(),
            TextMatch::StartsWith(texts) => texts.iter().map(|t| format!("{}%", like_literal(t))).collect(),
        }
    }
}

/// The non-empty `|`-separated parts of `raw`, or `None` when it asks for no filter.
fn alternatives(raw: &str) -> Option<Vec<String>> {
    if raw.trim() == "~" {
        return None;
    }
    let parts: Vec<String> = raw.split('|').filter(|p| !p.is_empty()).map(str::to_string).collect();
    (!parts.is_empty()).then_some(parts)
}

/// `text` with the `LIKE` wildcards and the escape character (`\`, PostgreSQL's default) escaped.
pub fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// A `WHERE` clause being built: static SQL fragments in which `$?` stands
/// for the value bound with them.
#[derive(Default)]
pub struct Conditions {
    sql: Vec<String>,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Conditions {
    /// Adds `fragment` (static SQL), its `$?` bound to `value`.
    pub fn push(&mut self, fragment: &'static str, value: impl ToSql + Sync + Send + 'static) {
        self.params.push(Box::new(value));
        self.sql.push(fragment.replace("$?", &format!("${}", self.params.len())));
    }

    /// Adds `fragment` bound to `value` when there is one.
    pub fn push_opt<T: ToSql + Sync + Send + 'static>(&mut self, fragment: &'static str, value: Option<T>) {
        if let Some(value) = value {
            self.push(fragment, value);
        }
    }

    /// Adds `fragment` (such as `state = ANY($?)`) bound to `values`, unless there are none.
    pub fn push_any(&mut self, fragment: &'static str, values: &[String]) {
        if !values.is_empty() {
            self.push(fragment, values.to_vec());
        }
    }

    /// Adds the bounds of `range` on the static SQL expression `column`.
    pub fn push_range(&mut self, column: &'static str, range: &TimeRange) {
        let bounds = [(">=", range.gte), (">", range.gt), ("<=", range.lte), ("<", range.lt)];
        for (operator, bound) in bounds {
            if let Some(bound) = bound {
                self.params.push(Box::new(bound));
                self.sql.push(format!("{column} {operator} ${}", self.params.len()));
            }
        }
    }

    /// Adds a text match on the static SQL expression `column`.
    pub fn push_match(&mut self, column: &'static str, text: Option<&TextMatch>) {
        let Some(text) = text else { return };
        let operator = match text {
            TextMatch::Contains(_) => "ILIKE",
            TextMatch::StartsWith(_) => "LIKE",
        };
        self.params.push(Box::new(text.patterns()));
        self.sql.push(format!("{column} {operator} ANY(${})", self.params.len()));
    }

    /// `WHERE a AND b …`, or nothing when no condition was added.
    pub fn where_sql(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.sql.join(" AND "))
        }
    }

    /// The number of parameters bound so far (the next one is `$len+1`).
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// True when no parameter is bound.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// The bound values, in placeholder order.
    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
    }

    /// One page of a filtered listing: `SELECT {select} FROM {from} WHERE …
    /// ORDER BY {order_by} LIMIT limit OFFSET offset`, and how many rows the
    /// conditions keep in all. `select`, `from` and `order_by` are static SQL
    /// (an `order_by` built from a listing's allowed fields only).
    pub async fn page(
        &self,
        db: &impl GenericClient,
        select: &str,
        from: &str,
        order_by: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Row>, i64), DbError> {
        let where_sql = self.where_sql();
        let mut params = self.params();
        let total: i64 = db.query_one(&format!("SELECT count(*) FROM {from} {where_sql}"), &params).await?.get(0);
        let n = params.len();
        let sql =
            format!("SELECT {select} FROM {from} {where_sql} ORDER BY {order_by} LIMIT ${} OFFSET ${}", n + 1, n + 2);
        params.push(&limit);
        params.push(&offset);
        Ok((db.query(&sql, &params).await?, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_text_is_matched_literally() {
        assert_eq!(like_literal(r"50%_off\now"), r"50\%\_off\\now");
        let contains = TextMatch::contains("a_b|c%").unwrap();
        assert_eq!(contains.patterns(), [r"%a\_b%", r"%c\%%"]);
        assert_eq!(TextMatch::starts_with("etl_").unwrap().patterns(), [r"etl\_%"]);
    }

    #[test]
    fn an_empty_or_tilde_pattern_filters_nothing() {
        assert_eq!(TextMatch::contains(""), None);
        assert_eq!(TextMatch::contains("~"), None);
        assert_eq!(TextMatch::contains("|"), None);
    }

    #[test]
    fn conditions_number_their_placeholders_in_order() {
        let mut c = Conditions::default();
        assert_eq!(c.where_sql(), "");
        c.push("dag_id = $?", "etl".to_string());
        c.push_opt::<bool>("is_paused = $?", None);
        c.push_any("state = ANY($?)", &[]);
        c.push_any("state = ANY($?)", &["queued".to_string()]);
        let day = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        c.push_range("start_date", &TimeRange { gte: Some(day), lt: Some(day), ..TimeRange::default() });
        c.push_match("run_id", TextMatch::contains("x").as_ref());
        assert_eq!(
            c.where_sql(),
            "WHERE dag_id = $1 AND state = ANY($2) AND start_date >= $3 AND start_date < $4 AND run_id ILIKE ANY($5)"
        );
        assert_eq!((c.len(), c.params().len()), (5, 5));
    }
}
