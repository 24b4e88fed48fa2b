//! Checks of input values that several operations share, each a 422 in
//! FastAPI's shape locating the value, as Airflow's pydantic models answer
//! the same input.

use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

/// Longest note a DAG run may carry, in characters (Airflow's limit).
pub(crate) const MAX_NOTE_LEN: usize = 1000;

/// The 422 for a count or offset at `loc` (e.g. `["query", "offset"]`) that is below zero.
pub(crate) fn at_least_zero<const N: usize>(loc: [&str; N], value: i64) -> ApiError {
    let name = loc.last().copied().unwrap_or("value");
    ApiError::invalid(loc, "greater_than_equal", format!("`{name}` must be 0 or more, got {value}"))
}

/// A run's note at most [`MAX_NOTE_LEN`] characters long, else a 422 at `body.note`.
pub(crate) fn note_fits(note: Option<&str>) -> Result<(), ApiError> {
    match note {
        Some(note) if note.chars().count() > MAX_NOTE_LEN => Err(ApiError::invalid(
            ["body", "note"],
            "string_too_long",
            format!("`note` must be at most {MAX_NOTE_LEN} characters"),
        )),
        _ => Ok(()),
    }
}

/// Whether `text` is blank as the document's `\S` pattern sees it: only
/// ECMAScript white space (JSON Schema's regex dialect), which unlike Rust's
/// includes U+FEFF and excludes U+0085.
pub(crate) fn is_blank(text: &str) -> bool {
    text.chars().all(|c| (c.is_whitespace() && c != '\u{85}') || c == '\u{feff}')
}

/// Reads a `T` and refuses it while the body is read when `check` does, so a
/// value that breaks a constraint of the schema makes the whole body a 422
/// locating the field (as pydantic's validators do), in bulk entities too.
pub(crate) fn checked<'de, D, T>(deserializer: D, check: impl Fn(&T) -> Result<(), ApiError>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let value = T::deserialize(deserializer)?;
    check(&value).map_err(|error| serde::de::Error::custom(error.to_string()))?;
    Ok(value)
}

/// A body's `note`, refused while the body is read when longer than [`MAX_NOTE_LEN`].
pub(crate) fn bounded_note<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    checked(deserializer, |note: &Option<String>| note_fits(note.as_deref()))
}

/// Airflow's multi-team `team_name` in a request body, as `Option<NoTeam>`: gust has
/// no teams, so only `null` (or leaving it out) deserializes, and any team makes the
/// body a 422 locating the field, wherever the body holds it (bulk entities too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoTeam;

impl<'de> Deserialize<'de> for NoTeam {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let team = serde_json::Value::deserialize(deserializer)?;
        Err(serde::de::Error::custom(format!(
            "`team_name` ({team}) is not supported: gust has no teams; leave it out or null"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_note_a_negative_offset_and_a_team_are_refused_naming_their_field() {
        assert!(note_fits(Some(&"x".repeat(MAX_NOTE_LEN))).is_ok());
        let long = note_fits(Some(&"x".repeat(MAX_NOTE_LEN + 1))).unwrap_err();
        assert!(matches!(&long, ApiError::Invalid(errors) if errors[0].kind == "string_too_long"), "{long:?}");
        let team = serde_json::from_value::<Option<NoTeam>>(serde_json::json!("a")).unwrap_err().to_string();
        assert!(team.contains("`team_name` (\"a\") is not supported"), "{team}");
        assert_eq!(serde_json::from_value::<Option<NoTeam>>(serde_json::Value::Null).unwrap(), None);
        assert!(is_blank(" \u{feff}\t") && !is_blank("\u{85}") && !is_blank(" a "));
        assert!(at_least_zero(["query", "offset"], -1).to_string().contains("`offset` must be 0 or more, got -1"));
    }
}
