//! `gust db clean` (Airflow's `airflow db clean`): deletes finished runs
//! with their task instances, tries, logs and XComs, dead letters and event
//! log records older than a cutoff, straight in the database of the settings
//! (`GUST__DATABASE__URL`), a batch per transaction ([`gust_shared::retention`]).
//! Queued and running runs are never touched, nor the latest scheduled run
//! of a DAG (the scheduler plans the next one from it).

use std::{
    io::{BufRead, IsTerminal, Write},
    time::Instant,
};

use chrono::{DateTime, Utc};
use gust_shared::{
    db::{self, DbError},
    retention::{self, CleanRequest, TableCounts},
    settings::{Settings, SettingsError},
};

use crate::args::DbCleanArgs;

/// Why `gust db clean` could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    /// The settings do not load.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A flag's value is malformed.
    #[error("{0}")]
    Argument(String),
    /// Nobody confirmed and standard input is no terminal to ask on.
    #[error(
        "refusing to delete without confirmation: standard input is not a terminal; \
         pass --yes to delete, or --dry-run to only count"
    )]
    NotConfirmed,
    /// Writing the report or reading the answer failed.
    #[error("cannot write the report or read the answer: {0}")]
    Io(#[from] std::io::Error),
}

/// What a clean ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The rows were deleted, or there was nothing to delete.
    Done,
    /// `--dry-run`: counted only.
    Counted,
    /// The person at the terminal said no.
    Declined,
}

/// Runs `gust db clean`: counts, asks unless `--yes` (refusing when it cannot
/// ask), deletes in batches, and reports per table on `out`; progress goes
/// to standard error.
pub async fn run(args: &DbCleanArgs, out: &mut impl Write) -> Result<Outcome, CleanError> {
    let before = cutoff(&args.before, Utc::now())?;
    if args.batch_size < 1 {
        return Err(CleanError::Argument(format!("--batch-size must be at least 1, got {}", args.batch_size)));
    }
    let settings = Settings::load()?;
    let pool = db::connect(&settings.database.url, 2).await?;
    let request = CleanRequest { before, dag_ids: args.dag_id.clone(), batch_size: args.batch_size };
    let expired = retention::count(&pool, &request).await?;
    let scope =
        if args.dag_id.is_empty() { "every DAG".to_string() } else { format!("DAG {}", args.dag_id.join(", ")) };
    writeln!(out, "Rows older than {} of {scope}:", before.to_rfc3339())?;
    write_counts(out, &expired)?;
    if args.dry_run {
        writeln!(out, "Dry run: nothing was deleted.")?;
        return Ok(Outcome::Counted);
    }
    if expired.total() == 0 {
        writeln!(out, "Nothing to delete.")?;
        return Ok(Outcome::Done);
    }
    if !args.yes && !confirmed(out)? {
        writeln!(out, "Nothing was deleted.")?;
        return Ok(Outcome::Declined);
    }
    let started = Instant::now();
    let mut batches = 0u64;
    let deleted = retention::clean(&pool, &request, |batch| {
        batches += 1;
        eprintln!(
            "batch {batches}: {} runs, {} task instances, {} log lines, {} dead letters, {} event log records deleted",
            batch.dag_runs, batch.task_instances, batch.task_logs, batch.dead_letters, batch.event_log
        );
    })
    .await?;
    writeln!(out, "Deleted in {:.1}s ({batches} transactions):", started.elapsed().as_secs_f64())?;
    write_counts(out, &deleted)?;
    Ok(Outcome::Done)
}

/// Asks on the terminal; without one, refuses.
fn confirmed(out: &mut impl Write) -> Result<bool, CleanError> {
    if !std::io::stdin().is_terminal() {
        return Err(CleanError::NotConfirmed);
    }
    write!(out, "Delete these rows? This cannot be undone. [y/N] ")?;
    out.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

/// One line per table: its name and its count.
fn write_counts(out: &mut impl Write, counts: &TableCounts) -> std::io::Result<()> {
    for (table, count) in counts.tables() {
        writeln!(out, "  {table:<20} {count:>12}")?;
    }
    Ok(())
}

/// `--before`: an RFC 3339 time, a date or date-time in UTC, or an age such as `90d` (that long before `now`).
pub fn cutoff(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, CleanError> {
    if let Ok(age) = humantime::parse_duration(text.trim()) {
        return Ok(retention::cutoff_for(now, age));
    }
    crate::files::parse_instant(text, chrono_tz::UTC)
        .map_err(|problem| CleanError::Argument(format!("--before: {problem}, or an age such as 90d (that long ago)")))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_cutoff_is_a_time_a_date_or_an_age() {
        let now = Utc.with_ymd_and_hms(2026, 3, 31, 12, 0, 0).unwrap();
        assert_eq!(cutoff("2026-01-01", now).unwrap(), Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
        assert_eq!(
            cutoff("2026-01-01T06:00:00+02:00", now).unwrap(),
            Utc.with_ymd_and_hms(2026, 1, 1, 4, 0, 0).unwrap()
        );
        assert_eq!(cutoff("30d", now).unwrap(), Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());
        let error = cutoff("last tuesday", now).unwrap_err().to_string();
        assert!(error.contains("--before") && error.contains("90d"), "{error}");
    }
}
