//! `gust dags next-runs`: the next scheduled runs of a DAG from the
//! scheduler's own schedule code ([`gust_shared::dag::Schedule`]), each in the
//! DAG's timezone and in UTC, with daylight-saving changes called out.

use std::fmt::Write as _;

use chrono::{DateTime, Offset, Utc};
use gust_shared::dag::Dag;

/// The table of the next `count` runs due after `after`, ending with a newline.
pub fn table(dag: &Dag, after: DateTime<Utc>, count: usize) -> String {
    let Some(schedule) = &dag.schedule else {
        return format!(
            "{}: manual only (schedule: null); runs are created by triggers, never by the scheduler\n",
            dag.dag_id
        );
    };
    let bounds = dag.schedule_bounds();
    let tz = dag.timezone;
    let mut out = format!("{}: schedule `{}`, timezone {tz}, catchup {}\n", dag.dag_id, schedule.text, dag.catchup);
    // The interval that ended last by `after` has had its run; the ones after it are next.
    let mut prev = schedule.latest_complete_interval(&bounds, after).map(|i| i.start);
    let mut intervals = Vec::new();
    while intervals.len() < count {
        let Some(interval) = schedule.next_interval_after(prev, &bounds) else { break };
        if prev == Some(interval.start) {
            break;
        }
        prev = Some(interval.start);
        if interval.end > after || schedule.is_once() {
            intervals.push(interval);
        }
        if schedule.is_once() {
            break;
        }
    }
    if intervals.is_empty() {
        let _ = writeln!(out, "no more runs: the DAG's end_date or @once schedule allows none after {}", utc(after));
        return out;
    }
    let mut rows = vec![[
        "#".to_string(),
        format!("runs at ({tz})"),
        "runs at (UTC)".to_string(),
        "logical date (UTC)".to_string(),
        String::new(),
    ]];
    let mut last_offset = None;
    for (i, interval) in intervals.iter().enumerate() {
        let local = interval.end.with_timezone(&tz);
        let offset = local.offset().fix();
        let note = match last_offset {
            Some(before) if before != offset => format!("<- UTC offset {before} -> {offset} (daylight saving)"),
            _ => String::new(),
        };
        last_offset = Some(offset);
        let local = local.format("%Y-%m-%d %H:%M:%S %:z %Z").to_string();
        rows.push([(i + 1).to_string(), local, utc(interval.end), utc(interval.start), note]);
    }
    let width = |column: usize| rows.iter().map(|row| row[column].chars().count()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2), width(3)];
    for [n, local, end, start, note] in &rows {
        let line = format!(
            "{n:>w0$}  {local:w1$}  {end:w2$}  {start:w3$}  {note}",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use gust_shared::dag::parse_dag_file;

    use super::*;

    #[test]
    fn runs_across_a_spring_forward_keep_their_wall_clock_time_and_show_the_offset_change() {
        let yaml = "dag_id: d\nschedule: '0 3 * * *'\ntimezone: Europe/Amsterdam\nstart_date: 2026-01-01\ntasks:\n  - {id: a, operator: noop}\n";
        let dag = parse_dag_file("d.yaml", yaml).unwrap();
        let table = table(&dag, Utc.with_ymd_and_hms(2026, 3, 27, 12, 0, 0).unwrap(), 3);
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(rows.len(), 3, "{table}");
        assert_eq!(
            rows[0], "1  2026-03-28 03:00:00 +01:00 CET   2026-03-28 02:00:00Z  2026-03-27 02:00:00Z",
            "{table}"
        );
        assert!(rows[1].starts_with("2  2026-03-29 03:00:00 +02:00 CEST  2026-03-29 01:00:00Z"), "{table}");
        assert!(rows[1].ends_with("<- UTC offset +01:00 -> +02:00 (daylight saving)"), "{table}");
        assert!(!rows[2].contains("daylight"), "{table}");
    }

    #[test]
    fn a_manual_dag_has_no_next_runs() {
        let dag = parse_dag_file("d.yaml", "dag_id: d\ntasks:\n  - {id: a, operator: noop}\n").unwrap();
        assert!(table(&dag, Utc::now(), 5).contains("manual only"));
    }

    #[test]
    fn an_end_date_stops_the_list() {
        let yaml = "dag_id: d\nschedule: '@daily'\nstart_date: 2026-01-01\nend_date: 2026-01-03\ntasks:\n  - {id: a, operator: noop}\n";
        let dag = parse_dag_file("d.yaml", yaml).unwrap();
        let table = table(&dag, Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(), 10);
        // Intervals may start up to end_date: Jan 1, 2 and 3.
        assert_eq!(table.lines().count(), 2 + 3, "{table}");
        let after_end = super::table(&dag, Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap(), 10);
        assert!(after_end.contains("no more runs"), "{after_end}");
    }
}
