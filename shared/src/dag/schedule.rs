//! Schedules: 5-field cron expressions and `@daily`-style presets read in a
//! DAG's timezone, `@once`, and fixed intervals (`{every: 15m}`), with the
//! Airflow data-interval arithmetic built on them.
//!
//! Cron follows croner's daylight-saving rules, which match Airflow's: a
//! fixed-time job whose wall-clock time is skipped by a spring-forward runs at
//! the first instant after the gap, and one whose time repeats on a fall-back
//! runs once, at the first of the two instants; a job with a wildcard or stepped
//! hour runs at every real instant that matches. Fixed intervals are elapsed
//! time anchored at `start_date`, so the timezone does not move them.

use std::{str::FromStr, time::Duration};

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::{Deserialize, Serialize};

/// A parsed, valid schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredSchedule", into = "StoredSchedule")]
pub struct Schedule {
    /// How the schedule reads, e.g. `@daily`, `0 3 * * *`, `@once` or `every 15m`.
    pub text: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Cron(String),
    Once,
    Every(Duration),
}

/// The JSON form: the text of a cron or preset, or `{"every": "15m"}`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StoredSchedule {
    Text(String),
    Every { every: String },
}

/// Why a schedule was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "bad schedule `{text}`: {problem} (use a 5-field cron such as \"0 3 * * *\", one of @once, @hourly, @daily, \
     @weekly, @monthly, @yearly, or a fixed interval such as {{every: 15m}})"
)]
pub struct ScheduleError {
    /// The rejected schedule as written.
    pub text: String,
    /// What is wrong with it.
    pub problem: String,
}

/// A data interval `[start, end)`; its start is Airflow's logical date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataInterval {
    /// Start of the interval, the run's logical date.
    pub start: DateTime<Utc>,
    /// End of the interval, after which the run is due.
    pub end: DateTime<Utc>,
}

/// The span a DAG's intervals may start in, and the clock its cron is read on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScheduleBounds {
    /// No interval starts earlier.
    pub start_date: DateTime<Utc>,
    /// No interval starts later, when set.
    pub end_date: Option<DateTime<Utc>>,
    /// Timezone cron expressions are evaluated in.
    pub timezone: Tz,
}

const PRESETS: &[(&str, &str)] = &[
    ("@hourly", "0 * * * *"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"),
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
];

const SHORTEST_EVERY: Duration = Duration::from_secs(1);

impl Schedule {
    /// Parses a cron expression, a preset, or `@once`.
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let text = text.trim();
        let fail = |problem: String| ScheduleError { text: text.into(), problem };
        if text == "@once" {
            return Ok(Self { text: text.into(), kind: Kind::Once });
        }
        let cron = match PRESETS.iter().find(|(name, _)| *name == text) {
            Some((_, cron)) => cron.to_string(),
            None if text.starts_with('@') => return Err(fail("unknown preset".into())),
            None => text.to_string(),
        };
        if cron.split_whitespace().count() != 5 {
            return Err(fail("expected 5 fields".into()));
        }
        Cron::from_str(&cron).map_err(|e| fail(e.to_string()))?;
        Ok(Self { text: text.into(), kind: Kind::Cron(cron) })
    }

    /// Parses a fixed interval such as `15m` or `1h 30m` (the value of `every:`).
    pub fn every(duration: &str) -> Result<Self, ScheduleError> {
        let fail = |problem: String| ScheduleError { text: format!("{{every: {duration}}}"), problem };
        let every = humantime::parse_duration(duration.trim())
            .map_err(|e| fail(format!("bad duration ({e}); write e.g. 30s, 15m, 1h 30m, 1d")))?;
        if every < SHORTEST_EVERY {
            return Err(fail("the interval must be at least 1s".into()));
        }
        let every = Duration::from_millis(u64::try_from(every.as_millis()).unwrap_or(u64::MAX));
        if TimeDelta::from_std(every).is_err() {
            return Err(fail("the interval is too long".into()));
        }
        Ok(Self { text: format!("every {}", humantime::format_duration(every)), kind: Kind::Every(every) })
    }

    /// Parses a schedule written in a DAG file: a string, or a map `{every: <duration>}`.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, ScheduleError> {
        match value {
            serde_json::Value::String(text) => Self::parse(text),
            serde_json::Value::Object(map) => match (map.get("every"), map.len()) {
                (Some(serde_json::Value::String(every)), 1) => Self::every(every),
                (Some(every), 1) => Self::every(&every.to_string()),
                _ => Err(ScheduleError {
                    text: serde_json::Value::Object(map.clone()).to_string(),
                    problem: "a map schedule takes exactly one key, `every`".into(),
                }),
            },
            other => {
                Err(ScheduleError { text: other.to_string(), problem: "expected a string or {every: …}".into() })
            }
        }
    }

    /// Whether this is `@once`: a single run at `start_date`.
    pub fn is_once(&self) -> bool {
        self.kind == Kind::Once
    }

    /// The first data interval after the one starting at `prev_start` (the
    /// first interval at all when `None`), whether or not it has ended yet;
    /// `None` when the bounds allow no more.
    pub fn next_interval_after(
        &self,
        prev_start: Option<DateTime<Utc>>,
        bounds: &ScheduleBounds,
    ) -> Option<DataInterval> {
        let start_date = bounds.start_date;
        let interval = match &self.kind {
            Kind::Once => match prev_start {
                None => Some(DataInterval { start: start_date, end: start_date }),
                Some(_) => None,
            },
            Kind::Every(every) => {
                let step = step_ms(*every);
                let index = match prev_start {
                    Some(prev) if prev >= start_date => (prev - start_date).num_milliseconds().div_euclid(step) + 1,
                    _ => 0,
                };
                every_interval(start_date, step, index)
            }
            Kind::Cron(expression) => {
                let clock = CronClock::new(expression, bounds.timezone);
                let first = clock.at_or_after(start_date)?;
                let start = match prev_start {
                    Some(prev) if prev >= first => clock.after(prev)?,
                    _ => first,
                };
                Some(DataInterval { start, end: clock.after(start)? })
            }
        };
        interval.filter(|i| bounds.end_date.is_none_or(|end_date| i.start <= end_date))
    }

    /// The latest data interval that has ended by `now` and starts within the
    /// bounds; a run for it is due.
    pub fn latest_complete_interval(&self, bounds: &ScheduleBounds, now: DateTime<Utc>) -> Option<DataInterval> {
        let start_date = bounds.start_date;
        let interval = match &self.kind {
            Kind::Once => Some(DataInterval { start: start_date, end: start_date }),
            Kind::Every(every) => {
                let step = step_ms(*every);
                let mut index = (now - start_date).num_milliseconds().div_euclid(step) - 1;
                if let Some(end_date) = bounds.end_date {
                    index = index.min((end_date - start_date).num_milliseconds().div_euclid(step));
                }
                every_interval(start_date, step, index)
            }
            Kind::Cron(expression) => {
                let clock = CronClock::new(expression, bounds.timezone);
                let mut end = clock.at_or_before(now)?;
                let mut start = clock.before(end)?;
                if let Some(end_date) = bounds.end_date.filter(|end_date| start > *end_date) {
                    start = clock.at_or_before(end_date)?;
                    end = clock.after(start)?;
                }
                Some(DataInterval { start, end })
            }
        };
        interval.filter(|i| {
            i.end <= now && i.start >= start_date && bounds.end_date.is_none_or(|end_date| i.start <= end_date)
        })
    }

    /// The intervals to create runs for now, oldest first, at most `max`:
    /// with `catchup`, every ended interval after `last_logical_date`;
    /// without, only the latest ended one, and only if it starts after
    /// `last_logical_date`. `@once` gives its single interval either way.
    pub fn due_intervals(
        &self,
        bounds: &ScheduleBounds,
        now: DateTime<Utc>,
        last_logical_date: Option<DateTime<Utc>>,
        catchup: bool,
        max: usize,
    ) -> Vec<DataInterval> {
        if !catchup && !self.is_once() {
            return self
                .latest_complete_interval(bounds, now)
                .filter(|i| last_logical_date.is_none_or(|last| i.start > last))
                .into_iter()
                .take(max)
                .collect();
        }
        let mut due = Vec::new();
        let mut prev = last_logical_date;
        while due.len() < max {
            match self.next_interval_after(prev, bounds) {
                Some(interval) if interval.end <= now => {
                    prev = Some(interval.start);
                    due.push(interval);
                }
                _ => break,
            }
        }
        due
    }

    /// The interval of the next run the scheduler will create: the first one
    /// due now, or else the next to end (its `end` is when it runs); `None`
    /// when the bounds allow no more.
    pub fn next_run(
        &self,
        bounds: &ScheduleBounds,
        now: DateTime<Utc>,
        last_logical_date: Option<DateTime<Utc>>,
        catchup: bool,
    ) -> Option<DataInterval> {
        if let Some(due) = self.due_intervals(bounds, now, last_logical_date, catchup, 1).pop() {
            return Some(due);
        }
        if self.is_once() {
            return None;
        }
        let latest_ended = if catchup { None } else { self.latest_complete_interval(bounds, now).map(|i| i.start) };
        self.next_interval_after(last_logical_date.max(latest_ended), bounds)
    }
}

fn step_ms(every: Duration) -> i64 {
    i64::try_from(every.as_millis()).expect("fixed intervals are validated when parsed")
}

fn every_interval(start_date: DateTime<Utc>, step_ms: i64, index: i64) -> Option<DataInterval> {
    if index < 0 {
        return None;
    }
    let start = start_date.checked_add_signed(TimeDelta::try_milliseconds(index.checked_mul(step_ms)?)?)?;
    let end = start.checked_add_signed(TimeDelta::try_milliseconds(step_ms)?)?;
    Some(DataInterval { start, end })
}

/// A cron expression read on the wall clock of one timezone.
struct CronClock {
    cron: Cron,
    timezone: Tz,
}

impl CronClock {
    fn new(expression: &str, timezone: Tz) -> Self {
        Self { cron: Cron::from_str(expression).expect("schedule was validated when parsed"), timezone }
    }

    fn at_or_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.find(t, true, true)
    }

    fn after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.find(t, false, true)
    }

    fn at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.find(t, true, false)
    }

    fn before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.find(t, false, false)
    }

    fn find(&self, t: DateTime<Utc>, inclusive: bool, forward: bool) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.timezone);
        let found = if forward {
            self.cron.find_next_occurrence(&local, inclusive)
        } else {
            self.cron.find_previous_occurrence(&local, inclusive)
        };
        found.ok().map(|at| at.with_timezone(&Utc))
    }
}

impl TryFrom<StoredSchedule> for Schedule {
    type Error = ScheduleError;
    fn try_from(stored: StoredSchedule) -> Result<Self, Self::Error> {
        match stored {
            StoredSchedule::Text(text) => Schedule::parse(&text),
            StoredSchedule::Every { every } => Schedule::every(&every),
        }
    }
}

impl From<Schedule> for StoredSchedule {
    fn from(schedule: Schedule) -> StoredSchedule {
        match schedule.kind {
            Kind::Every(every) => StoredSchedule::Every { every: humantime::format_duration(every).to_string() },
            Kind::Cron(_) | Kind::Once => StoredSchedule::Text(schedule.text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::{America::New_York, Europe::Amsterdam};

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn local(tz: Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        tz.with_ymd_and_hms(y, m, d, h, min, 0).earliest().unwrap().with_timezone(&Utc)
    }

    fn utc_from(start_date: DateTime<Utc>) -> ScheduleBounds {
        ScheduleBounds { start_date, end_date: None, timezone: Tz::UTC }
    }

    fn interval(start: DateTime<Utc>, end: DateTime<Utc>) -> DataInterval {
        DataInterval { start, end }
    }

    /// The starts of the first `n` intervals from `bounds.start_date`.
    fn starts(schedule: &Schedule, bounds: &ScheduleBounds, n: usize) -> Vec<DateTime<Utc>> {
        let far_future = at(2100, 1, 1, 0, 0);
        schedule.due_intervals(bounds, far_future, None, true, n).iter().map(|i| i.start).collect()
    }

    #[test]
    fn next_run_is_the_due_interval_or_else_the_next_to_end() {
        let daily = Schedule::parse("@daily").unwrap();
        let bounds = utc_from(at(2026, 1, 1, 0, 0));
        let now = at(2026, 3, 10, 15, 30);
        // Yesterday's interval has ended and has no run yet: it is due now.
        let due = daily.next_run(&bounds, now, Some(at(2026, 3, 8, 0, 0)), false);
        assert_eq!(due, Some(interval(at(2026, 3, 9, 0, 0), at(2026, 3, 10, 0, 0))));
        // It has its run: the next is today's, which runs at midnight.
        let next = daily.next_run(&bounds, now, Some(at(2026, 3, 9, 0, 0)), false);
        assert_eq!(next, Some(interval(at(2026, 3, 10, 0, 0), at(2026, 3, 11, 0, 0))));
        // Without catchup a DAG that never ran skips to the latest interval, not the first.
        let fresh = daily.next_run(&bounds, now, None, false);
        assert_eq!(fresh, Some(interval(at(2026, 3, 9, 0, 0), at(2026, 3, 10, 0, 0))));
        // With catchup it starts at start_date.
        let catchup = daily.next_run(&bounds, now, None, true);
        assert_eq!(catchup, Some(interval(at(2026, 1, 1, 0, 0), at(2026, 1, 2, 0, 0))));
    }

    #[test]
    fn daily_preset_gives_yesterday_as_the_latest_complete_interval() {
        let daily = Schedule::parse("@daily").unwrap();
        let latest = daily.latest_complete_interval(&utc_from(at(2026, 1, 1, 0, 0)), at(2026, 3, 10, 15, 30));
        assert_eq!(latest, Some(interval(at(2026, 3, 9, 0, 0), at(2026, 3, 10, 0, 0))));
    }

    #[test]
    fn an_interval_ending_exactly_now_is_complete() {
        let hourly = Schedule::parse("0 * * * *").unwrap();
        let latest = hourly.latest_complete_interval(&utc_from(at(2026, 1, 1, 0, 0)), at(2026, 3, 10, 15, 0));
        assert_eq!(latest, Some(interval(at(2026, 3, 10, 14, 0), at(2026, 3, 10, 15, 0))));
    }

    #[test]
    fn no_interval_is_due_before_start_date() {
        let daily = Schedule::parse("@daily").unwrap();
        assert_eq!(daily.latest_complete_interval(&utc_from(at(2026, 3, 10, 0, 0)), at(2026, 3, 10, 12, 0)), None);
    }

    #[test]
    fn the_first_interval_starts_at_the_first_cron_time_on_or_after_start_date() {
        let daily = Schedule::parse("@daily").unwrap();
        let bounds = utc_from(at(2026, 1, 1, 10, 0));
        assert_eq!(
            daily.next_interval_after(None, &bounds),
            Some(interval(at(2026, 1, 2, 0, 0), at(2026, 1, 3, 0, 0)))
        );
    }

    #[test]
    fn bad_cron_and_unknown_presets_are_rejected_with_a_hint() {
        for bad in ["61 * * * *", "* * *", "@fortnightly", "not a cron"] {
            let err = Schedule::parse(bad).unwrap_err();
            assert!(err.to_string().contains("5-field cron"), "{err}");
        }
    }

    #[test]
    fn bad_fixed_intervals_are_rejected_with_a_hint() {
        let err = Schedule::every("soon").unwrap_err().to_string();
        assert!(err.starts_with("bad schedule `{every: soon}`: bad duration"), "{err}");
        assert!(Schedule::every("0s").unwrap_err().to_string().contains("at least 1s"));
        let err = Schedule::from_value(&serde_json::json!({"evry": "15m"})).unwrap_err().to_string();
        assert!(err.contains("exactly one key, `every`"), "{err}");
        assert!(Schedule::from_value(&serde_json::json!(5)).unwrap_err().to_string().contains("expected a string"));
    }

    #[test]
    fn schedule_survives_a_json_round_trip() {
        let s = Schedule::parse("@weekly").unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"@weekly\"");
        assert_eq!(serde_json::from_str::<Schedule>(&json).unwrap(), s);
    }

    #[test]
    fn once_and_fixed_intervals_survive_a_json_round_trip() {
        let every = Schedule::every("1h 30m").unwrap();
        assert_eq!(every.text, "every 1h 30m");
        let json = serde_json::to_value(&every).unwrap();
        assert_eq!(json, serde_json::json!({"every": "1h 30m"}));
        assert_eq!(serde_json::from_value::<Schedule>(json).unwrap(), every);
        let once = Schedule::parse("@once").unwrap();
        assert_eq!(serde_json::from_value::<Schedule>(serde_json::to_value(&once).unwrap()).unwrap(), once);
    }

    #[test]
    fn cron_is_read_on_the_dag_timezone_wall_clock() {
        let daily = Schedule::parse("@daily").unwrap();
        let bounds = ScheduleBounds { start_date: at(2026, 1, 1, 0, 0), end_date: None, timezone: Amsterdam };
        let latest = daily.latest_complete_interval(&bounds, at(2026, 1, 10, 12, 0)).unwrap();
        assert_eq!(latest, interval(at(2026, 1, 8, 23, 0), at(2026, 1, 9, 23, 0)));
    }

    #[test]
    fn amsterdam_spring_forward_moves_a_skipped_2am_run_to_3am_and_shortens_the_day() {
        // 2026-03-29: clocks jump from 02:00 CET to 03:00 CEST; 02:00 does not exist that day.
        let at_two = Schedule::parse("0 2 * * *").unwrap();
        let bounds =
            ScheduleBounds { start_date: local(Amsterdam, 2026, 3, 27, 0, 0), end_date: None, timezone: Amsterdam };
        assert_eq!(
            starts(&at_two, &bounds, 4),
            vec![
                local(Amsterdam, 2026, 3, 27, 2, 0),
                local(Amsterdam, 2026, 3, 28, 2, 0),
                local(Amsterdam, 2026, 3, 29, 3, 0),
                local(Amsterdam, 2026, 3, 30, 2, 0),
            ]
        );
        let daily = Schedule::parse("@daily").unwrap();
        let spring_day = daily.next_interval_after(Some(local(Amsterdam, 2026, 3, 28, 0, 0)), &bounds).unwrap();
        assert_eq!(spring_day.start, at(2026, 3, 28, 23, 0));
        assert_eq!(spring_day.end - spring_day.start, TimeDelta::hours(23));
    }

    #[test]
    fn amsterdam_fall_back_runs_a_repeated_time_once_and_hourly_runs_both_hours() {
        // 2026-10-25: clocks go from 03:00 CEST back to 02:00 CET; 02:00-02:59 happens twice.
        let at_half_two = Schedule::parse("30 2 * * *").unwrap();
        let bounds =
            ScheduleBounds { start_date: local(Amsterdam, 2026, 10, 24, 0, 0), end_date: None, timezone: Amsterdam };
        assert_eq!(
            starts(&at_half_two, &bounds, 3),
            vec![at(2026, 10, 24, 0, 30), at(2026, 10, 25, 0, 30), at(2026, 10, 26, 1, 30)]
        );
        let hourly = Schedule::parse("@hourly").unwrap();
        let night = ScheduleBounds { start_date: at(2026, 10, 24, 23, 0), ..bounds };
        let utc_hours: Vec<_> = (23..=27).map(|h| at(2026, 10, 24, 0, 0) + TimeDelta::hours(h)).collect();
        assert_eq!(starts(&hourly, &night, 5), utc_hours, "every real hour, the repeated one included");
        let daily = Schedule::parse("@daily").unwrap();
        let fall_day = daily.next_interval_after(Some(local(Amsterdam, 2026, 10, 24, 0, 0)), &bounds).unwrap();
        assert_eq!(fall_day.end - fall_day.start, TimeDelta::hours(25));
    }

    #[test]
    fn new_york_spring_forward_and_fall_back_follow_the_same_rules() {
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT. 2026-11-01: 02:00 EDT falls back to 01:00 EST.
        let at_half_two = Schedule::parse("30 2 * * *").unwrap();
        let spring =
            ScheduleBounds { start_date: local(New_York, 2026, 3, 7, 0, 0), end_date: None, timezone: New_York };
        assert_eq!(
            starts(&at_half_two, &spring, 3),
            vec![at(2026, 3, 7, 7, 30), at(2026, 3, 8, 7, 0), at(2026, 3, 9, 6, 30)],
            "the skipped 02:30 runs at 03:00 EDT"
        );
        let at_half_one = Schedule::parse("30 1 * * *").unwrap();
        let fall =
            ScheduleBounds { start_date: local(New_York, 2026, 10, 31, 0, 0), end_date: None, timezone: New_York };
        assert_eq!(
            starts(&at_half_one, &fall, 3),
            vec![at(2026, 10, 31, 5, 30), at(2026, 11, 1, 5, 30), at(2026, 11, 2, 6, 30)],
            "the repeated 01:30 runs once, at 01:30 EDT"
        );
    }

    #[test]
    fn latest_complete_interval_agrees_with_walking_forward_across_a_fall_back() {
        let hourly = Schedule::parse("@hourly").unwrap();
        let bounds =
            ScheduleBounds { start_date: local(New_York, 2026, 10, 31, 0, 0), end_date: None, timezone: New_York };
        let walked = hourly.due_intervals(&bounds, at(2026, 11, 1, 8, 10), None, true, 1000);
        assert_eq!(walked.last().copied(), hourly.latest_complete_interval(&bounds, at(2026, 11, 1, 8, 10)));
        let repeated: Vec<_> = walked.iter().filter(|i| i.start >= at(2026, 11, 1, 4, 0)).map(|i| i.start).collect();
        assert_eq!(
            repeated,
            vec![at(2026, 11, 1, 4, 0), at(2026, 11, 1, 5, 0), at(2026, 11, 1, 6, 0), at(2026, 11, 1, 7, 0)]
        );
        assert!(walked.windows(2).all(|w| w[0].end == w[1].start), "intervals tile the time line");
    }

    #[test]
    fn day_31_runs_only_in_months_that_have_one_and_monthly_runs_on_the_first() {
        let on_31st = Schedule::parse("0 0 31 * *").unwrap();
        let bounds = utc_from(at(2026, 1, 1, 0, 0));
        assert_eq!(
            starts(&on_31st, &bounds, 4),
            vec![at(2026, 1, 31, 0, 0), at(2026, 3, 31, 0, 0), at(2026, 5, 31, 0, 0), at(2026, 7, 31, 0, 0)]
        );
        let jan = on_31st.next_interval_after(None, &bounds).unwrap();
        assert_eq!(jan.end, at(2026, 3, 31, 0, 0), "an interval lasts until the next cron time");
        let monthly = Schedule::parse("@monthly").unwrap();
        let from_mid_january = utc_from(at(2026, 1, 15, 0, 0));
        assert_eq!(
            starts(&monthly, &from_mid_january, 3),
            vec![at(2026, 2, 1, 0, 0), at(2026, 3, 1, 0, 0), at(2026, 4, 1, 0, 0)]
        );
        let latest = monthly.latest_complete_interval(&from_mid_january, at(2026, 3, 31, 23, 59)).unwrap();
        assert_eq!(latest, interval(at(2026, 2, 1, 0, 0), at(2026, 3, 1, 0, 0)));
    }

    #[test]
    fn no_interval_starting_after_end_date_is_created() {
        let daily = Schedule::parse("@daily").unwrap();
        let bounds = ScheduleBounds { end_date: Some(at(2026, 1, 3, 0, 0)), ..utc_from(at(2026, 1, 1, 0, 0)) };
        let now = at(2026, 2, 1, 0, 0);
        let all: Vec<_> = daily.due_intervals(&bounds, now, None, true, 100).iter().map(|i| i.start).collect();
        assert_eq!(all, vec![at(2026, 1, 1, 0, 0), at(2026, 1, 2, 0, 0), at(2026, 1, 3, 0, 0)]);
        assert_eq!(daily.next_interval_after(Some(at(2026, 1, 3, 0, 0)), &bounds), None);
        assert_eq!(
            daily.latest_complete_interval(&bounds, now),
            Some(interval(at(2026, 1, 3, 0, 0), at(2026, 1, 4, 0, 0))),
            "without catchup, the last interval the end_date allows"
        );
        let every = Schedule::every("12h").unwrap();
        let latest = every.latest_complete_interval(&bounds, now).unwrap();
        assert_eq!(latest.start, at(2026, 1, 3, 0, 0));
        let before_start = ScheduleBounds { end_date: Some(at(2025, 12, 1, 0, 0)), ..bounds };
        assert_eq!(daily.due_intervals(&before_start, now, None, true, 100), vec![]);
        assert_eq!(daily.latest_complete_interval(&before_start, now), None);
    }

    #[test]
    fn once_runs_a_single_zero_length_interval_at_start_date_once_it_has_passed() {
        let once = Schedule::parse("@once").unwrap();
        let bounds = utc_from(at(2026, 5, 1, 12, 0));
        assert_eq!(once.due_intervals(&bounds, at(2026, 5, 1, 11, 59), None, true, 10), vec![]);
        let due = vec![interval(at(2026, 5, 1, 12, 0), at(2026, 5, 1, 12, 0))];
        assert_eq!(once.due_intervals(&bounds, at(2026, 5, 1, 12, 0), None, false, 10), due);
        assert_eq!(once.due_intervals(&bounds, at(2027, 1, 1, 0, 0), None, true, 10), due);
        assert_eq!(once.due_intervals(&bounds, at(2027, 1, 1, 0, 0), Some(at(2026, 5, 1, 12, 0)), false, 10), vec![]);
        let ended = ScheduleBounds { end_date: Some(at(2026, 4, 1, 0, 0)), ..bounds };
        assert_eq!(once.due_intervals(&ended, at(2027, 1, 1, 0, 0), None, true, 10), vec![]);
    }

    #[test]
    fn every_15m_is_anchored_at_start_date() {
        let every = Schedule::every("15m").unwrap();
        let bounds = ScheduleBounds { start_date: at(2026, 1, 1, 0, 7), end_date: None, timezone: Amsterdam };
        assert_eq!(
            starts(&every, &bounds, 3),
            vec![at(2026, 1, 1, 0, 7), at(2026, 1, 1, 0, 22), at(2026, 1, 1, 0, 37)]
        );
        let now = at(2026, 1, 1, 10, 0);
        let latest = every.latest_complete_interval(&bounds, now).unwrap();
        assert_eq!(latest, interval(at(2026, 1, 1, 9, 37), at(2026, 1, 1, 9, 52)));
        let after_odd = every.next_interval_after(Some(at(2026, 1, 1, 9, 40)), &bounds).unwrap();
        assert_eq!(after_odd.start, at(2026, 1, 1, 9, 52), "a start off the grid snaps to the next grid point");
        let caught_up = every.due_intervals(&bounds, now, Some(at(2026, 1, 1, 9, 7)), true, 10);
        assert_eq!(caught_up.iter().map(|i| i.start).collect::<Vec<_>>(), vec![at(2026, 1, 1, 9, 22), latest.start]);
    }

    #[test]
    fn catchup_lists_every_missed_interval_oldest_first_up_to_the_maximum() {
        let daily = Schedule::parse("@daily").unwrap();
        let bounds = utc_from(at(2026, 1, 1, 0, 0));
        let now = at(2026, 1, 6, 1, 0);
        let all: Vec<_> = daily.due_intervals(&bounds, now, None, true, 100).iter().map(|i| i.start).collect();
        assert_eq!(all, (1..=5).map(|d| at(2026, 1, d, 0, 0)).collect::<Vec<_>>());
        let two = daily.due_intervals(&bounds, now, None, true, 2);
        assert_eq!(two.iter().map(|i| i.start).collect::<Vec<_>>(), vec![at(2026, 1, 1, 0, 0), at(2026, 1, 2, 0, 0)]);
        let rest = daily.due_intervals(&bounds, now, Some(at(2026, 1, 3, 0, 0)), true, 100);
        assert_eq!(rest.iter().map(|i| i.start).collect::<Vec<_>>(), vec![at(2026, 1, 4, 0, 0), at(2026, 1, 5, 0, 0)]);
        assert_eq!(daily.due_intervals(&bounds, now, None, true, 0), vec![]);
    }

    #[test]
    fn without_catchup_only_the_latest_interval_is_due_and_never_an_older_one() {
        let daily = Schedule::parse("@daily").unwrap();
        let bounds = utc_from(at(2026, 1, 1, 0, 0));
        let now = at(2026, 1, 6, 1, 0);
        let latest = vec![interval(at(2026, 1, 5, 0, 0), at(2026, 1, 6, 0, 0))];
        assert_eq!(daily.due_intervals(&bounds, now, None, false, 100), latest);
        assert_eq!(daily.due_intervals(&bounds, now, Some(at(2026, 1, 2, 0, 0)), false, 100), latest);
        assert_eq!(daily.due_intervals(&bounds, now, Some(at(2026, 1, 5, 0, 0)), false, 100), vec![]);
        assert_eq!(daily.due_intervals(&bounds, now, Some(at(2026, 1, 9, 0, 0)), false, 100), vec![]);
        assert_eq!(daily.due_intervals(&bounds, now, None, false, 0), vec![]);
    }
}
