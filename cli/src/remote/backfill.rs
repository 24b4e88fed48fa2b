//! `gust backfill create|list|pause|unpause|cancel`: Airflow 3's backfills over the API.

use std::io::Write;

use reqwest::Method;
use serde_json::json;

use super::{
    args::{BackfillCommand, BackfillCreateArgs, BackfillIdArgs, Reprocess},
    client::Client,
    json_object,
    output::{self, Column},
    RemoteError,
};

const BACKFILL_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("DAG", "dag_id"),
    ("FROM", "from_date"),
    ("TO", "to_date"),
    ("PAUSED", "is_paused"),
    ("REPROCESS", "reprocess_behavior"),
    ("CREATED", "created_at"),
    ("COMPLETED", "completed_at"),
];

/// Runs a `gust backfill` command.
pub fn run(command: BackfillCommand, client: &Client, out: &mut dyn Write) -> Result<(), RemoteError> {
    match command {
        BackfillCommand::Create(args) => create(client, &args, out),
        BackfillCommand::List(args) => {
            let query = [("dag_id", args.dag.clone()), ("order_by", "-id".into())];
            let body = client.get("/api/v2/backfills", &query)?;
            Ok(output::list(out, args.out.output, &body, "backfills", BACKFILL_COLUMNS)?)
        }
        BackfillCommand::Pause(args) => change(client, &args, "pause", "paused", out),
        BackfillCommand::Unpause(args) => change(client, &args, "unpause", "unpaused", out),
        BackfillCommand::Cancel(args) => change(client, &args, "cancel", "cancelled", out),
    }
}

/// A date as the API takes it: RFC 3339 as given, a bare `YYYY-MM-DD` as its midnight UTC.
pub fn api_date(text: &str) -> String {
    let text = text.trim();
    if chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok() {
        format!("{text}T00:00:00Z")
    } else {
        text.to_string()
    }
}

fn create(client: &Client, args: &BackfillCreateArgs, out: &mut dyn Write) -> Result<(), RemoteError> {
    let reprocess = match args.reprocess {
        Reprocess::None => "none",
        Reprocess::Failed => "failed",
        Reprocess::Completed => "completed",
    };
    let body = json!({
        "dag_id": args.dag,
        "from_date": api_date(&args.from),
        "to_date": api_date(&args.to),
        "run_backwards": args.run_backwards,
        "dag_run_conf": json_object("--conf", args.conf.as_deref())?,
        "reprocess_behavior": reprocess,
        "max_active_runs": args.max_active_runs,
    });
    let format = args.out.output;
    if args.dry_run {
        let answer = client.send(Method::POST, "/api/v2/backfills/dry_run", &body)?;
        if format == output::Output::Table {
            writeln!(out, "Would run {} logical date(s):", output::text(&answer["total_entries"]))?;
        }
        output::list(out, format, &answer, "backfills", &[("LOGICAL DATE", "logical_date")])?;
        return Ok(());
    }
    let backfill = client.send(Method::POST, "/api/v2/backfills", &body)?;
    let message = format!("Backfill {} of {} created", output::text(&backfill["id"]), args.dag);
    output::done(out, format, &backfill, &message)?;
    Ok(())
}

fn change(
    client: &Client,
    args: &BackfillIdArgs,
    action: &str,
    done: &str,
    out: &mut dyn Write,
) -> Result<(), RemoteError> {
    let backfill = client.send(Method::PUT, &format!("/api/v2/backfills/{}/{action}", args.id), &json!({}))?;
    output::done(out, args.out.output, &backfill, &format!("Backfill {} {done}", args.id))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_dates_are_midnight_utc_and_timestamps_pass_unchanged() {
        assert_eq!(api_date("2026-01-05"), "2026-01-05T00:00:00Z");
        assert_eq!(api_date("2026-01-05T03:00:00+01:00"), "2026-01-05T03:00:00+01:00");
        assert_eq!(api_date("yesterday"), "yesterday");
    }
}
