//! Reading a Prometheus exposition in tests: one sample's value by name and
//! exact label set, and `promtool check metrics` as the format's lint.

use std::{collections::BTreeMap, io::Write, process::Stdio};

/// The labels of one sample line (`name{k="v",…} value`), its name and value.
fn parse_line(line: &str) -> Option<(&str, BTreeMap<String, String>, f64)> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let Some((name, labels)) = series.split_once('{') else { return Some((series, BTreeMap::new(), value)) };
    let labels = labels.strip_suffix('}')?;
    let mut parsed = BTreeMap::new();
    // Label values written by gust carry no `",` inside them, so splitting on it is exact here.
    for pair in labels.split("\",").filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once("=\"")?;
        parsed.insert(key.to_string(), value.trim_end_matches('"').to_string());
    }
    Some((name, parsed, value))
}

/// The value of the sample `name` with exactly `labels` in `exposition`; 0 when there is none
/// (a counter or gauge never touched is absent from a family).
pub fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let wanted: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(parse_line)
        .find(|(n, l, _)| *n == name && *l == wanted)
        .map_or(0.0, |(_, _, value)| value)
}

/// Every label set of the samples named `name`.
pub fn label_sets(exposition: &str, name: &str) -> Vec<BTreeMap<String, String>> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(parse_line)
        .filter(|(n, _, _)| *n == name)
        .map(|(_, labels, _)| labels)
        .collect()
}

/// Fails the test unless `promtool check metrics` accepts `exposition`; fails saying how to get
/// promtool when it is missing (`bash scripts/prometheus-check` installs it), never skips.
pub fn assert_promtool_accepts(exposition: &str, whose: &str) {
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = child.unwrap_or_else(|e| {
        panic!("promtool is needed to lint the {whose} metrics and cannot run ({e}): run `bash scripts/prometheus-check` (installs Debian's prometheus package) or put promtool on PATH")
    });
    child.stdin.take().expect("promtool's stdin").write_all(exposition.as_bytes()).expect("writing to promtool");
    let output = child.wait_with_output().expect("waiting for promtool");
    assert!(
        output.status.success(),
        "promtool check metrics refused the {whose} metrics:\n{}{}\n--- exposition ---\n{exposition}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_found_by_its_exact_labels_and_a_missing_one_reads_zero() {
        let text =
            "# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"1\",b=\"/p/{id}\"} 4\nx_total{a=\"1\"} 2\ny 7\n";
        assert_eq!(sample(text, "x_total", &[("a", "1"), ("b", "/p/{id}")]), 4.0);
        assert_eq!(sample(text, "x_total", &[("a", "1")]), 2.0);
        assert_eq!(sample(text, "y", &[]), 7.0);
        assert_eq!(sample(text, "x_total", &[("a", "2")]), 0.0);
        assert_eq!(label_sets(text, "x_total").len(), 2);
    }
}
