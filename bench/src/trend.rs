//! Time series sampled at a fixed pace (the soak's) and their trend: a
//! least-squares line through the samples taken after the warm-up, its slope
//! stated per hour, and a verdict on it.
//!
//! Invariants: every series of a [`Timeline`] has one slot per tick (`None`
//! where nothing was read at that tick), so `values[i]` was read at `t_s[i]`;
//! a verdict other than `stable` needs a slope both beyond the series'
//! [`Tolerance`] and at least [`SIGNIFICANCE`] standard errors from zero.

use serde::Serialize;

use crate::stats;

/// How many standard errors a slope must be from zero to count as growth (or shrinkage).
pub const SIGNIFICANCE: f64 = 3.0;
/// Fewest samples after the warm-up that a trend is fitted on.
pub const MIN_SAMPLES: usize = 5;
/// Share of the fitted window whose median is reported as the series' start and end level.
const EDGE_SHARE: f64 = 0.1;

/// Smallest change per hour that counts, whatever the noise: the larger of `abs` and `rel` × the mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    /// In the series' unit per hour.
    pub abs_per_h: f64,
    /// As a share of the series' mean, per hour.
    pub rel_per_h: f64,
}

impl Tolerance {
    /// The tolerance for a series whose mean is `mean`.
    pub fn at(self, mean: f64) -> f64 {
        self.abs_per_h.max(self.rel_per_h * mean.abs())
    }
}

/// What the trend of a series says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No change beyond the tolerance, or none distinguishable from the noise.
    Stable,
    /// Rises beyond the tolerance and the noise.
    Grows,
    /// Falls beyond the tolerance and the noise.
    Shrinks,
    /// Fewer than [`MIN_SAMPLES`] samples after the warm-up.
    TooFewSamples,
}

/// The least-squares line through a series after the warm-up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    /// Slope, in the series' unit per hour.
    pub per_hour: f64,
    /// Standard error of the slope (residuals taken as independent, so rather too small than too large).
    pub stderr_per_hour: f64,
    /// Mean of the fitted samples.
    pub mean: f64,
    /// Median of the first tenth of the fitted window (at least 3 samples).
    pub start: f64,
    /// Median of the last tenth of the fitted window (at least 3 samples).
    pub end: f64,
    /// Samples fitted.
    pub samples: usize,
    /// The change per hour below which the series counts as stable.
    pub tolerance_per_hour: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// `stable`, or e.g. `grows: 3.2 MiB per hour`.
    pub summary: String,
    /// Why a growth is what the configuration makes it, when it is (e.g. history kept without retention).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
}

/// Fits a line through `points` (`(hours, value)`) and judges its slope against `tolerance`.
pub fn fit(points: &[(f64, f64)], tolerance: Tolerance, unit: &str) -> Trend {
    let n = points.len();
    let mean = if n == 0 { f64::NAN } else { points.iter().map(|p| p.1).sum::<f64>() / n as f64 };
    let edge = ((n as f64 * EDGE_SHARE).ceil() as usize).max(3).min(n);
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let start = stats::median(&values[..edge]).unwrap_or(f64::NAN);
    let end = stats::median(&values[n - edge..]).unwrap_or(f64::NAN);
    let tolerance_per_hour = tolerance.at(mean);
    let mut trend = Trend {
        per_hour: f64::NAN,
        stderr_per_hour: f64::NAN,
        mean,
        start,
        end,
        samples: n,
        tolerance_per_hour,
        verdict: Verdict::TooFewSamples,
        summary: format!("too few samples ({n}) after the warm-up"),
        expected: None,
    };
    if n < MIN_SAMPLES {
        return trend;
    }
    let x_mean = points.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let sxx: f64 = points.iter().map(|p| (p.0 - x_mean).powi(2)).sum();
    if sxx <= 0.0 {
        return trend;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - x_mean) * (p.1 - mean)).sum();
    let slope = sxy / sxx;
    let intercept = mean - slope * x_mean;
    let residuals: f64 = points.iter().map(|p| (p.1 - (intercept + slope * p.0)).powi(2)).sum();
    let stderr = (residuals / (n - 2) as f64 / sxx).sqrt();
    trend.per_hour = slope;
    trend.stderr_per_hour = stderr;
    let significant = slope.abs() > SIGNIFICANCE * stderr;
    trend.verdict = match (slope.abs() > tolerance_per_hour && significant, slope > 0.0) {
        (false, _) => Verdict::Stable,
        (true, true) => Verdict::Grows,
        (true, false) => Verdict::Shrinks,
    };
    let unit = if unit.is_empty() { String::new() } else { format!(" {unit}") };
    trend.summary = match trend.verdict {
        Verdict::Grows => format!("grows: {}{unit} per hour", crate::report::fmt_num(slope)),
        Verdict::Shrinks => format!("shrinks: {}{unit} per hour", crate::report::fmt_num(-slope)),
        _ => "stable".into(),
    };
    trend
}

/// One sampled quantity, e.g. the scheduler's RSS.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// `<group>.<subject>`, e.g. `rss_mib.scheduler`.
    pub key: String,
    /// What kind of quantity, e.g. `rss_mib`, `table_mib`, `queue_messages`.
    pub group: String,
    /// What it is measured on: a process, a table, a queue, a DAG.
    pub subject: String,
    /// What it is, for people.
    pub label: String,
    /// Its unit.
    pub unit: String,
    /// One value per tick of the timeline (`null`: not read at that tick).
    pub values: Vec<Option<f64>>,
    /// Smallest change per hour that counts.
    pub tolerance: Tolerance,
    /// The trend after the warm-up, once [`Timeline::analyse`] ran.
    pub trend: Option<Trend>,
}

/// What a new series is; see [`Timeline::record`].
#[derive(Debug, Clone, Copy)]
pub struct Kind<'a> {
    /// The series' group.
    pub group: &'a str,
    /// Label, with `{}` replaced by the subject.
    pub label: &'a str,
    /// Unit.
    pub unit: &'a str,
    /// Smallest change per hour that counts.
    pub tolerance: Tolerance,
}

/// Series sampled at the same ticks.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// Intended seconds between two ticks.
    pub every_s: f64,
    /// Seconds from the start that the trends leave out.
    pub warmup_s: f64,
    /// Seconds since the start at each tick.
    pub t_s: Vec<f64>,
    /// The series.
    pub series: Vec<Series>,
}

/// Keeps four decimals: the JSON stays short and nothing sampled here is more precise.
fn rounded(value: f64) -> f64 {
    (value * 1e4).round() / 1e4
}

impl Timeline {
    /// An empty timeline ticking every `every_s`, whose first `warmup_s` seconds the trends skip.
    pub fn new(every_s: f64, warmup_s: f64) -> Timeline {
        Timeline { every_s, warmup_s, t_s: Vec::new(), series: Vec::new() }
    }

    /// Starts a tick at `t_s` seconds; every series gets an empty slot for it.
    pub fn tick(&mut self, t_s: f64) {
        self.t_s.push(rounded(t_s));
        for series in &mut self.series {
            series.values.push(None);
        }
    }

    /// Records `value` for `subject` of `kind` at the current tick, creating the series on first use.
    pub fn record(&mut self, kind: Kind<'_>, subject: &str, value: f64) {
        let Some(slot) = self.t_s.len().checked_sub(1) else { return };
        if !value.is_finite() {
            return;
        }
        let key = format!("{}.{subject}", kind.group);
        let index = match self.series.iter().position(|s| s.key == key) {
            Some(index) => index,
            None => {
                self.series.push(Series {
                    key,
                    group: kind.group.into(),
                    subject: subject.into(),
                    label: kind.label.replace("{}", subject),
                    unit: kind.unit.into(),
                    values: vec![None; self.t_s.len()],
                    tolerance: kind.tolerance,
                    trend: None,
                });
                self.series.len() - 1
            }
        };
        self.series[index].values[slot] = Some(rounded(value));
    }

    /// The `(hours since start, value)` points of `series` after the warm-up.
    pub fn fitted_points(&self, series: &Series) -> Vec<(f64, f64)> {
        self.t_s
            .iter()
            .zip(&series.values)
            .filter(|(t, _)| **t >= self.warmup_s)
            .filter_map(|(t, v)| Some((t / 3600.0, (*v)?)))
            .collect()
    }

    /// Fits the trend of every series.
    pub fn analyse(&mut self) {
        let trends: Vec<Trend> =
            self.series.iter().map(|s| fit(&self.fitted_points(s), s.tolerance, &s.unit)).collect();
        for (series, trend) in self.series.iter_mut().zip(trends) {
            series.trend = Some(trend);
        }
    }

    /// Drops the series for which `keep` is false.
    pub fn retain(&mut self, keep: impl FnMut(&Series) -> bool) {
        self.series.retain(keep);
    }

    /// The series with `key`.
    pub fn get(&self, key: &str) -> Option<&Series> {
        self.series.iter().find(|s| s.key == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: Tolerance = Tolerance { abs_per_h: 1.0, rel_per_h: 0.02 };

    /// `n` points one minute apart from `start` hours, `value(i)` each.
    fn points(n: usize, value: impl Fn(usize) -> f64) -> Vec<(f64, f64)> {
        (0..n).map(|i| (i as f64 / 60.0, value(i))).collect()
    }

    #[test]
    fn a_straight_line_has_its_slope_per_hour_and_grows_beyond_the_tolerance() {
        let trend = fit(&points(30, |i| 20.0 + 0.1 * i as f64), MIB, "MiB");
        assert!((trend.per_hour - 6.0).abs() < 1e-9, "{trend:?}");
        assert_eq!(trend.verdict, Verdict::Grows);
        assert_eq!(trend.summary, "grows: 6.00 MiB per hour");
        assert!((trend.start - 20.1).abs() < 1e-9 && (trend.end - 22.8).abs() < 1e-9, "{trend:?}");
    }

    #[test]
    fn a_flat_noisy_series_is_stable() {
        let trend = fit(&points(60, |i| if i % 2 == 0 { 19.0 } else { 21.0 }), MIB, "MiB");
        assert_eq!(trend.verdict, Verdict::Stable, "{trend:?}");
        assert_eq!(trend.summary, "stable");
    }

    #[test]
    fn a_slope_below_the_tolerance_is_stable_however_clean() {
        let trend = fit(&points(30, |i| 100.0 + 0.01 * i as f64), MIB, "MiB");
        assert!((trend.per_hour - 0.6).abs() < 1e-9);
        assert!(
            (trend.tolerance_per_hour - 0.02 * trend.mean).abs() < 1e-9,
            "2 % of a mean of 100 beats the 1 MiB floor"
        );
        assert_eq!(trend.verdict, Verdict::Stable);
    }

    #[test]
    fn a_slope_within_the_noise_is_stable_however_steep() {
        let spiky = |i: usize| if i % 5 == 4 { 50.0 } else { 20.0 };
        let trend = fit(&points(20, spiky), MIB, "MiB");
        assert!(trend.per_hour > 20.0 && trend.per_hour < SIGNIFICANCE * trend.stderr_per_hour, "{trend:?}");
        assert_eq!(trend.verdict, Verdict::Stable, "{trend:?}");
    }

    #[test]
    fn a_count_without_unit_reads_without_a_double_space() {
        let trend = fit(&points(30, |i| i as f64), MIB, "");
        assert_eq!(trend.summary, "grows: 60.0 per hour");
    }

    #[test]
    fn a_falling_series_shrinks() {
        let trend = fit(&points(30, |i| 50.0 - 0.2 * i as f64), MIB, "MiB");
        assert_eq!(trend.verdict, Verdict::Shrinks);
        assert_eq!(trend.summary, "shrinks: 12.0 MiB per hour");
    }

    #[test]
    fn too_few_samples_get_no_slope() {
        let trend = fit(&points(4, |i| i as f64), MIB, "MiB");
        assert_eq!(trend.verdict, Verdict::TooFewSamples);
        assert!(trend.per_hour.is_nan());
        assert_eq!(fit(&[], MIB, "MiB").verdict, Verdict::TooFewSamples);
    }

    #[test]
    fn the_timeline_aligns_late_series_and_skips_the_warm_up() {
        let kind = Kind { group: "rss_mib", label: "{} RSS", unit: "MiB", tolerance: MIB };
        let late = Kind { group: "queue_messages", label: "messages in {}", unit: "", tolerance: MIB };
        let mut timeline = Timeline::new(60.0, 120.0);
        for i in 0..10 {
            timeline.tick(60.0 * i as f64);
            timeline.record(kind, "scheduler", 10.0 + i as f64);
            if i >= 3 {
                timeline.record(late, "q", f64::from(i));
            }
        }
        let late = timeline.get("queue_messages.q").unwrap();
        assert_eq!(late.values[..4], [None, None, None, Some(3.0)]);
        assert_eq!(late.label, "messages in q");
        let rss = timeline.get("rss_mib.scheduler").unwrap();
        assert_eq!(timeline.fitted_points(rss).len(), 8, "ticks at 0 and 60 s are the warm-up");
        timeline.analyse();
        let trend = timeline.get("rss_mib.scheduler").unwrap().trend.clone().unwrap();
        assert!((trend.per_hour - 60.0).abs() < 1e-6, "{trend:?}");
    }

    #[test]
    fn values_keep_four_decimals_and_non_finite_ones_are_not_recorded() {
        let kind = Kind { group: "g", label: "{}", unit: "", tolerance: MIB };
        let mut timeline = Timeline::new(1.0, 0.0);
        timeline.record(kind, "before any tick", 1.0);
        assert!(timeline.series.is_empty());
        timeline.tick(0.0);
        timeline.record(kind, "a", 1.234_567);
        timeline.record(kind, "b", f64::NAN);
        assert_eq!(timeline.get("g.a").unwrap().values, vec![Some(1.2346)]);
        assert!(timeline.get("g.b").is_none());
    }
}
