//! Order statistics for benchmark samples: percentiles, medians and the
//! median/min/max summary the report prints for every metric.

use serde::Serialize;

/// The `p`-th percentile (0–100) of `samples`, interpolating linearly between
/// the two closest ranks (the "linear" method of numpy and R type 7);
/// `None` when there are no samples or `p` is outside 0–100. NaNs are ignored.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if !(0.0..=100.0).contains(&p) {
        return None;
    }
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let lower = rank.floor() as usize;
    let upper = rank.ceil() as usize;
    let weight = rank - lower as f64;
    Some(sorted[lower] + (sorted[upper] - sorted[lower]) * weight)
}

/// The median of `samples` (the mean of the two middle values for an even count).
pub fn median(samples: &[f64]) -> Option<f64> {
    percentile(samples, 50.0)
}

/// Median, minimum and maximum of the repetitions of one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Median over the repetitions.
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// How many values there were.
    pub n: usize,
}

/// Summarises `samples`; `None` when there are none.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    let clean: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
    let median = median(&clean)?;
    let min = clean.iter().copied().fold(f64::INFINITY, f64::min);
    let max = clean.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(Summary { median, min, max, n: clean.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_samples_have_no_statistics() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(median(&[]), None);
        assert_eq!(summarize(&[]), None);
        assert_eq!(summarize(&[f64::NAN]), None);
    }

    #[test]
    fn a_single_sample_is_every_percentile() {
        for p in [0.0, 1.0, 50.0, 99.0, 100.0] {
            assert_eq!(percentile(&[7.5], p), Some(7.5));
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let samples: Vec<f64> = (1..=101).map(f64::from).collect(); // 1..=101, shuffled order does not matter
        assert_eq!(percentile(&samples, 0.0), Some(1.0));
        assert_eq!(percentile(&samples, 90.0), Some(91.0));
        assert_eq!(percentile(&samples, 99.0), Some(100.0));
        assert_eq!(percentile(&samples, 100.0), Some(101.0));
        // numpy.percentile([10, 20, 30, 40], 90) == 37.0
        let p90 = percentile(&[40.0, 10.0, 30.0, 20.0], 90.0).unwrap();
        assert!((p90 - 37.0).abs() < 1e-9, "{p90}");
    }

    #[test]
    fn out_of_range_percentiles_are_refused() {
        assert_eq!(percentile(&[1.0], -1.0), None);
        assert_eq!(percentile(&[1.0], 100.5), None);
    }

    #[test]
    fn nans_are_ignored() {
        assert_eq!(median(&[f64::NAN, 1.0, 3.0]), Some(2.0));
    }

    #[test]
    fn summary_has_median_min_max_and_count() {
        let s = summarize(&[5.0, 1.0, 9.0]).unwrap();
        assert_eq!(s, Summary { median: 5.0, min: 1.0, max: 9.0, n: 3 });
    }
}
