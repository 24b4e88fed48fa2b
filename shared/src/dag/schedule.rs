//! Schedules: 5-field cron expressions and `@daily`-style presets, and the
//! Airflow data-interval arithmetic built on them (times in UTC for now).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use croner::Cron;
use serde::{Deserialize, Serialize};

/// A parsed, valid schedule, stored as the cron text it stands for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Schedule {
    /// What the DAG file said, e.g. `@daily` or `0 3 * * *`.
    pub text: String,
    cron: String,
}

/// Why a schedule was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("bad schedule `{text}`: {problem} (use a 5-field cron such as \"0 3 * * *\" or one of @hourly, @daily, @weekly, @monthly, @yearly)")]
pub struct ScheduleError {
    /// The rejected text.
    pub text: String,
    /// What the cron parser said.
    pub problem: String,
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

impl Schedule {
    /// Parses a cron expression or preset.
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let text = text.trim();
        let cron = match PRESETS.iter().find(|(name, _)| *name == text) {
            Some((_, cron)) => cron.to_string(),
            None if text.starts_with('@') => {
                return Err(ScheduleError { text: text.into(), problem: "unknown preset".into() });
            }
            None => text.to_string(),
        };
        if cron.split_whitespace().count() != 5 {
            return Err(ScheduleError { text: text.into(), problem: "expected 5 fields".into() });
        }
        Cron::from_str(&cron).map_err(|e| ScheduleError { text: text.into(), problem: e.to_string() })?;
        Ok(Self { text: text.into(), cron })
    }

    fn cron(&self) -> Cron {
        Cron::from_str(&self.cron).expect("schedule was validated when parsed")
    }

    /// The latest data interval `[start, end)` that has ended by `now` and
    /// starts no earlier than `start_date`; a run for it is due.
    pub fn latest_complete_interval(
        &self,
        start_date: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let cron = self.cron();
        let end = cron.find_previous_occurrence(&now, true).ok()?;
        let start = cron.find_previous_occurrence(&end, false).ok()?;
        (start >= start_date).then_some((start, end))
    }
}

impl TryFrom<String> for Schedule {
    type Error = ScheduleError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Schedule::parse(&text)
    }
}

impl From<Schedule> for String {
    fn from(schedule: Schedule) -> String {
        schedule.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn daily_preset_gives_yesterday_as_the_latest_complete_interval() {
        let daily = Schedule::parse("@daily").unwrap();
        let interval = daily.latest_complete_interval(at(2026, 1, 1, 0, 0), at(2026, 3, 10, 15, 30));
        assert_eq!(interval, Some((at(2026, 3, 9, 0, 0), at(2026, 3, 10, 0, 0))));
    }

    #[test]
    fn an_interval_ending_exactly_now_is_complete() {
        let hourly = Schedule::parse("0 * * * *").unwrap();
        let interval = hourly.latest_complete_interval(at(2026, 1, 1, 0, 0), at(2026, 3, 10, 15, 0));
        assert_eq!(interval, Some((at(2026, 3, 10, 14, 0), at(2026, 3, 10, 15, 0))));
    }

    #[test]
    fn no_interval_is_due_before_start_date() {
        let daily = Schedule::parse("@daily").unwrap();
        assert_eq!(daily.latest_complete_interval(at(2026, 3, 10, 0, 0), at(2026, 3, 10, 12, 0)), None);
    }

    #[test]
    fn bad_cron_and_unknown_presets_are_rejected_with_a_hint() {
        for bad in ["61 * * * *", "* * *", "@fortnightly", "not a cron"] {
            let err = Schedule::parse(bad).unwrap_err();
            assert!(err.to_string().contains("5-field cron"), "{err}");
        }
    }

    #[test]
    fn schedule_survives_a_json_round_trip() {
        let s = Schedule::parse("@weekly").unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"@weekly\"");
        assert_eq!(serde_json::from_str::<Schedule>(&json).unwrap(), s);
    }
}
