//! The times files Celery's prefork children write (`bench/celery/bench_celery.py`):
//! one fixed-width line per finished task with the times the task recorded
//! itself. While waiting, finished tasks are counted from the files' sizes
//! (no query to the result backend); afterwards the lines give the exact
//! window of each phase and the chain's hops.

use std::{collections::BTreeMap, path::Path};

use anyhow::{bail, Context};

/// Bytes of one line: `<phase> <i:9> <start:17.6> <end:17.6> <stored:17.6> <S|F>\n`.
pub const LINE_BYTES: u64 = 68;

/// What one task recorded about itself (epoch seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskTimes {
    /// The letter of the phase that sent it (preloaded, group, chain).
    pub phase: char,
    /// Its index within the phase.
    pub index: i64,
    /// When its body started.
    pub start: f64,
    /// When its body returned.
    pub end: f64,
    /// When Celery had stored (or sent) its result: the `task_postrun` signal.
    pub stored: f64,
    /// Whether it succeeded.
    pub succeeded: bool,
}

/// Parses one line (without its newline).
pub fn parse_line(line: &str) -> Result<TaskTimes, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [phase, index, start, end, stored, status] = fields[..] else {
        return Err(format!("expected 6 fields, found {}: {line:?}", fields.len()));
    };
    let mut phase_chars = phase.chars();
    let (Some(phase), None) = (phase_chars.next(), phase_chars.next()) else {
        return Err(format!("the phase must be one letter: {line:?}"));
    };
    let number = |field: &str| field.parse::<f64>().map_err(|e| format!("{field:?} is not a time ({e}): {line:?}"));
    Ok(TaskTimes {
        phase,
        index: index.parse().map_err(|e| format!("{index:?} is not an index ({e}): {line:?}"))?,
        start: number(start)?,
        end: number(end)?,
        stored: number(stored)?,
        succeeded: match status {
            "S" => true,
            "F" => false,
            other => return Err(format!("status must be S or F, not {other:?}: {line:?}")),
        },
    })
}

/// Tasks finished so far: the times files' total size over [`LINE_BYTES`].
pub fn finished(dir: &Path) -> std::io::Result<u64> {
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir)? {
        bytes += entry?.metadata()?.len();
    }
    Ok(bytes / LINE_BYTES)
}

/// Every line of every times file in `dir`.
pub fn read_all(dir: &Path) -> anyhow::Result<Vec<TaskTimes>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        for (number, line) in text.lines().enumerate() {
            out.push(parse_line(line).map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), number + 1))?);
        }
    }
    Ok(out)
}

/// From the first task start to the last result stored, over the `n` tasks of one phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Earliest start (epoch seconds).
    pub first_start: f64,
    /// Latest stored result (epoch seconds).
    pub last_stored: f64,
}

impl Window {
    /// Its length in seconds.
    pub fn seconds(&self) -> f64 {
        self.last_stored - self.first_start
    }
}

/// The tasks of `phase`, checked: exactly `n` of them, indices 0..n, all succeeded.
pub fn phase(times: &[TaskTimes], phase: char, n: usize) -> anyhow::Result<Vec<&TaskTimes>> {
    let mut by_index: BTreeMap<i64, &TaskTimes> = BTreeMap::new();
    for task in times.iter().filter(|t| t.phase == phase) {
        if !task.succeeded {
            bail!("task {} of phase {phase:?} failed; see the Celery worker logs", task.index);
        }
        if by_index.insert(task.index, task).is_some() {
            bail!("task {} of phase {phase:?} ran twice (redelivered?)", task.index);
        }
    }
    let expected = 0..n as i64;
    if by_index.len() != n || !by_index.keys().copied().eq(expected) {
        bail!("phase {phase:?} has {} distinct tasks, expected indices 0..{n}", by_index.len());
    }
    Ok(by_index.into_values().collect())
}

/// First start to last stored result of `tasks`; `None` when there are none.
pub fn window(tasks: &[&TaskTimes]) -> Option<Window> {
    let first_start = tasks.iter().map(|t| t.start).min_by(f64::total_cmp)?;
    let last_stored = tasks.iter().map(|t| t.stored).max_by(f64::total_cmp)?;
    Some(Window { first_start, last_stored })
}

/// Hops of a chain whose tasks are in index order: start(n+1) − end(n), in ms.
pub fn hops_ms(chain: &[&TaskTimes]) -> Vec<f64> {
    chain.windows(2).map(|pair| (pair[1].start - pair[0].end) * 1000.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(phase: char, index: i64, start: f64, end: f64, stored: f64, status: char) -> String {
        format!("{phase} {index:>9} {start:17.6} {end:17.6} {stored:17.6} {status}\n")
    }

    fn task(phase: char, index: i64, start: f64, stored: f64) -> TaskTimes {
        TaskTimes { phase, index, start, end: start, stored, succeeded: true }
    }

    #[test]
    fn a_line_is_as_long_as_the_python_side_writes_it() {
        let written = line('p', 12, 1764512345.123456, 1764512345.2, 1764512345.3, 'S');
        assert_eq!(written.len() as u64, LINE_BYTES);
        let parsed = parse_line(written.trim_end()).unwrap();
        assert_eq!(parsed.phase, 'p');
        assert_eq!(parsed.index, 12);
        assert_eq!(parsed.start, 1764512345.123456);
        assert_eq!(parsed.stored, 1764512345.3);
        assert!(parsed.succeeded);
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        assert!(parse_line("p 1 2.0").unwrap_err().contains("expected 6 fields"));
        assert!(parse_line("pg 1 1.0 2.0 3.0 S").unwrap_err().contains("one letter"));
        assert!(parse_line("p 1 1.0 2.0 3.0 X").unwrap_err().contains("S or F"));
        assert!(!parse_line("p 1 1.0 2.0 3.0 F").unwrap().succeeded);
    }

    #[test]
    fn a_phase_needs_every_index_once_and_no_failure() {
        let ok = vec![task('p', 1, 2.0, 2.5), task('g', 0, 9.0, 9.5), task('p', 0, 1.0, 3.0)];
        let tasks = phase(&ok, 'p', 2).unwrap();
        assert_eq!(tasks.iter().map(|t| t.index).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(window(&tasks), Some(Window { first_start: 1.0, last_stored: 3.0 }));
        assert_eq!(window(&tasks).unwrap().seconds(), 2.0);

        assert!(phase(&ok, 'p', 3).unwrap_err().to_string().contains("expected indices 0..3"));
        let twice = vec![task('p', 0, 1.0, 2.0), task('p', 0, 1.5, 2.5)];
        assert!(phase(&twice, 'p', 1).unwrap_err().to_string().contains("ran twice"));
        let mut failed = task('p', 0, 1.0, 2.0);
        failed.succeeded = false;
        assert!(phase(&[failed], 'p', 1).unwrap_err().to_string().contains("failed"));
    }

    #[test]
    fn hops_run_from_one_task_returning_to_the_next_starting() {
        let chain = [
            TaskTimes { phase: 'c', index: 0, start: 1.0, end: 1.001, stored: 1.003, succeeded: true },
            TaskTimes { phase: 'c', index: 1, start: 1.004, end: 1.005, stored: 1.006, succeeded: true },
        ];
        let hops = hops_ms(&chain.iter().collect::<Vec<_>>());
        assert_eq!(hops.len(), 1);
        assert!((hops[0] - 3.0).abs() < 1e-6, "{hops:?}");
    }

    #[test]
    fn finished_tasks_are_counted_from_file_sizes() {
        let dir = std::env::temp_dir().join(format!("gust-bench-times-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("times-1"), line('p', 0, 1.0, 1.0, 1.0, 'S').repeat(3)).unwrap();
        std::fs::write(dir.join("times-2"), line('p', 3, 1.0, 1.0, 1.0, 'S')).unwrap();
        assert_eq!(finished(&dir).unwrap(), 4);
        assert_eq!(read_all(&dir).unwrap().len(), 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
