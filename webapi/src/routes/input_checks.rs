//! Checks of input values that several operations share, each a 422 in
//! FastAPI's shape locating the value, as Airflow's pydantic models answer
//! the same input.

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

/// Airflow's multi-team `team_name` left out or null (gust has no teams), else a 422 at `body.team_name`.
pub(crate) fn no_team(team_name: Option<&str>) -> Result<(), ApiError> {
    match team_name {
        Some(team) => Err(ApiError::invalid(
            ["body", "team_name"],
            "value_error",
            format!("`team_name` (`{team}`) is not supported: gust has no teams; leave it out or null"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_note_and_a_team_are_422s_naming_their_field() {
        assert!(note_fits(Some(&"x".repeat(MAX_NOTE_LEN))).is_ok());
        let long = note_fits(Some(&"x".repeat(MAX_NOTE_LEN + 1))).unwrap_err();
        assert!(matches!(&long, ApiError::Invalid(errors) if errors[0].kind == "string_too_long"), "{long:?}");
        assert!(no_team(None).is_ok());
        assert!(no_team(Some("")).unwrap_err().to_string().contains("`team_name`"));
        assert!(at_least_zero(["query", "offset"], -1).to_string().contains("`offset` must be 0 or more, got -1"));
    }
}
