//! The limits that keep one DAG file from making the scheduler (or `gust dags
//! validate`, or the API that stores pushed files) allocate or work without
//! bound: its size, how deep its YAML nests, how many values and how much
//! text it holds once its aliases are expanded, and how many tasks it has.
//!
//! serde_yaml_ng bounds neither on its own: it reads a whole document into
//! memory as events before deserializing (about 64 bytes per flow-sequence
//! element and 250 per level of flow nesting, plus 2 µs of libyaml per level),
//! and its alias guard counts alias uses, not what they expand to, so an 8 kB
//! file with an anchor of 1,100 items used 1,100 times makes 1.2 million values (the tests
//! below show both). So [`check_yaml`] runs before it: a streaming pass of the
//! same parser (libyaml, through unsafe-libyaml, so both agree on every event)
//! that keeps one frame per open collection and one size per anchor, never the
//! values, computes an alias's expansion from its anchor's size instead of
//! expanding it, and stops at the first limit crossed.
//!
//! Invariant: a text that passes [`check_yaml`] deserializes into at most
//! [`MAX_YAML_NODES`] values holding at most [`MAX_YAML_TEXT_BYTES`] of text,
//! nested at most [`MAX_YAML_DEPTH`] deep (under serde_yaml_ng's own recursion
//! limit of 128, so that limit never speaks for ours).

use std::{collections::HashMap, marker::PhantomData, mem::MaybeUninit};

use unsafe_libyaml as unsafe_sys;

/// Largest DAG file, in bytes (4 MiB). A 100,000-task fan-out of noop tasks
/// (the bench's `big` scenario) takes 3.5 MB.
pub const MAX_DAG_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Deepest nesting of YAML collections in a DAG file; an alias counts as deep as its anchor's node.
pub const MAX_YAML_DEPTH: usize = 64;

/// Most YAML values (scalars, sequences and mappings, keys included) in a DAG
/// file, an alias counting as every value of its anchor's node.
pub const MAX_YAML_NODES: u64 = 1_000_000;

/// Most bytes of scalar text in a DAG file, an alias counting as all the text of its anchor's node (16 MiB).
pub const MAX_YAML_TEXT_BYTES: u64 = 16 * 1024 * 1024;

/// Most tasks in one DAG.
pub const MAX_TASKS: usize = 100_000;

/// A limit a DAG file crosses, with the line of the YAML where it did and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The file is larger than [`MAX_DAG_FILE_BYTES`].
    #[error(
        "the file is {bytes} bytes, over the limit of {MAX_DAG_FILE_BYTES} bytes (4 MiB) for a DAG file; \
         split it into several DAG files"
    )]
    FileTooLarge {
        /// The file's size.
        bytes: usize,
    },
    /// Collections nest deeper than [`MAX_YAML_DEPTH`].
    #[error(
        "line {line}: the YAML nests deeper than the limit of {MAX_YAML_DEPTH} levels for a DAG file \
         (an alias counts as deep as its anchor's node); flatten it"
    )]
    TooDeep {
        /// Line (1 for the first) where the limit was crossed.
        line: u64,
    },
    /// More than [`MAX_YAML_NODES`] values once aliases are expanded.
    #[error(
        "line {line}: the YAML holds more than the limit of {MAX_YAML_NODES} values for a DAG file once its \
         aliases (`*name`) are expanded, each alias counting as every value of its anchor (`&name`); \
         use large anchors less often, or split the DAG"
    )]
    TooManyNodes {
        /// Line (1 for the first) where the limit was crossed.
        line: u64,
    },
    /// More than [`MAX_YAML_TEXT_BYTES`] of text once aliases are expanded.
    #[error(
        "line {line}: the YAML holds more than the limit of {MAX_YAML_TEXT_BYTES} bytes (16 MiB) of text for a \
         DAG file once its aliases (`*name`) are expanded, each alias counting as all the text of its anchor \
         (`&name`); use long anchored text less often"
    )]
    TooMuchText {
        /// Line (1 for the first) where the limit was crossed.
        line: u64,
    },
    /// An alias inside the node its anchor names: an endless expansion.
    #[error(
        "line {line}: the alias `*{anchor}` is inside the node that `&{anchor}` names, so it would expand \
         without end; a DAG file cannot be recursive: alias a node that is complete"
    )]
    RecursiveAlias {
        /// Line (1 for the first) of the alias.
        line: u64,
        /// The anchor's name.
        anchor: String,
    },
    /// More than [`MAX_TASKS`] tasks.
    #[error("the DAG has {count} tasks, over the limit of {MAX_TASKS} tasks for one DAG; split it into several DAGs")]
    TooManyTasks {
        /// How many tasks the file has.
        count: usize,
    },
}

/// Checks the YAML text of a DAG file against the size, depth, value and text
/// limits, without deserializing it. A syntax error is left for the
/// deserializer to report: up to it, the text was within the limits.
pub fn check_yaml(yaml: &str) -> Result<(), LimitError> {
    if yaml.len() > MAX_DAG_FILE_BYTES {
        return Err(LimitError::FileTooLarge { bytes: yaml.len() });
    }
    let mut budget = Budget::default();
    let mut events = Events::new(yaml);
    while let Some((event, line)) = events.next() {
        budget.take(event, line)?;
    }
    Ok(())
}

/// What an anchor's node expands to wherever an alias names it.
#[derive(Clone, Copy)]
struct Size {
    nodes: u64,
    text: u64,
    /// Levels of collections in the node (0 for a scalar).
    height: usize,
}

/// One collection being read.
struct Frame {
    anchor: Option<String>,
    nodes_before: u64,
    text_before: u64,
    /// Depth of this collection (1 for a top-level one).
    depth: usize,
    /// Deepest level reached inside it, aliases expanded.
    deepest: usize,
}

/// An anchor's latest definition: still being read, or complete.
enum Anchor {
    Open,
    Complete(Size),
}

#[derive(Default)]
struct Budget {
    open: Vec<Frame>,
    anchors: HashMap<String, Anchor>,
    nodes: u64,
    text: u64,
}

impl Budget {
    fn take(&mut self, event: Event, line: u64) -> Result<(), LimitError> {
        match event {
            Event::Start { anchor } => {
                self.nodes += 1;
                let depth = self.open.len() + 1;
                if depth > MAX_YAML_DEPTH {
                    return Err(LimitError::TooDeep { line });
                }
                if let Some(name) = &anchor {
                    self.anchors.insert(name.clone(), Anchor::Open);
                }
                self.open.push(Frame {
                    anchor,
                    nodes_before: self.nodes - 1,
                    text_before: self.text,
                    depth,
                    deepest: depth,
                });
            }
            Event::End => {
                let Some(frame) = self.open.pop() else { return Ok(()) };
                if let Some(parent) = self.open.last_mut() {
                    parent.deepest = parent.deepest.max(frame.deepest);
                }
                if let Some(name) = frame.anchor {
                    let size = Size {
                        nodes: self.nodes - frame.nodes_before,
                        text: self.text - frame.text_before,
                        height: frame.deepest - frame.depth + 1,
                    };
                    self.anchors.insert(name, Anchor::Complete(size));
                }
            }
            Event::Scalar { anchor, len } => {
                self.nodes += 1;
                self.text += len;
                if let Some(name) = anchor {
                    self.anchors.insert(name, Anchor::Complete(Size { nodes: 1, text: len, height: 0 }));
                }
            }
            Event::Alias { anchor } => match self.anchors.get(&anchor) {
                Some(Anchor::Open) => return Err(LimitError::RecursiveAlias { line, anchor }),
                Some(Anchor::Complete(size)) => {
                    let deepest = self.open.len() + size.height;
                    if deepest > MAX_YAML_DEPTH {
                        return Err(LimitError::TooDeep { line });
                    }
                    if let Some(frame) = self.open.last_mut() {
                        frame.deepest = frame.deepest.max(deepest);
                    }
                    self.nodes = self.nodes.saturating_add(size.nodes);
                    self.text = self.text.saturating_add(size.text);
                }
                // An unknown anchor is the deserializer's error to report.
                None => self.nodes += 1,
            },
        }
        if self.nodes > MAX_YAML_NODES {
            return Err(LimitError::TooManyNodes { line });
        }
        if self.text > MAX_YAML_TEXT_BYTES {
            return Err(LimitError::TooMuchText { line });
        }
        Ok(())
    }
}

/// The events [`check_yaml`] weighs; stream and document boundaries are skipped.
enum Event {
    Start { anchor: Option<String> },
    End,
    Scalar { anchor: Option<String>, len: u64 },
    Alias { anchor: String },
}

/// libyaml's events of one text, one at a time; ends at the end of the
/// stream or at the first syntax error.
struct Events<'input> {
    /// Boxed so it never moves while libyaml holds it.
    parser: Box<MaybeUninit<unsafe_sys::yaml_parser_t>>,
    done: bool,
    /// libyaml reads the input through a pointer kept in `parser`.
    _input: PhantomData<&'input [u8]>,
}

impl<'input> Events<'input> {
    fn new(input: &'input str) -> Self {
        let mut parser = Box::new(MaybeUninit::<unsafe_sys::yaml_parser_t>::uninit());
        // SAFETY: `yaml_parser_initialize` fills the whole struct before anything reads it; the
        // parser is heap-allocated and freed only in `drop`, and `_input` keeps the text alive
        // as long as the parser that points into it.
        let initialized = unsafe {
            let raw = parser.as_mut_ptr();
            let ok = unsafe_sys::yaml_parser_initialize(raw).ok;
            if ok {
                unsafe_sys::yaml_parser_set_encoding(raw, unsafe_sys::YAML_UTF8_ENCODING);
                unsafe_sys::yaml_parser_set_input_string(raw, input.as_ptr(), input.len() as u64);
            }
            ok
        };
        assert!(initialized, "libyaml could not allocate its parser");
        Events { parser, done: false, _input: PhantomData }
    }

    fn next(&mut self) -> Option<(Event, u64)> {
        while !self.done {
            let mut raw = MaybeUninit::<unsafe_sys::yaml_event_t>::uninit();
            // SAFETY: the parser was initialized in `new`; `yaml_parser_parse` fills the event
            // when it succeeds, and the event's strings are read before `yaml_event_delete` frees them.
            unsafe {
                let event = raw.as_mut_ptr();
                if unsafe_sys::yaml_parser_parse(self.parser.as_mut_ptr(), event).fail {
                    self.done = true;
                    return None;
                }
                let line = (*event).start_mark.line + 1;
                let data = &(*event).data;
                let converted = match (*event).type_ {
                    unsafe_sys::YAML_STREAM_END_EVENT => {
                        self.done = true;
                        None
                    }
                    unsafe_sys::YAML_SEQUENCE_START_EVENT => {
                        Some(Event::Start { anchor: text(data.sequence_start.anchor) })
                    }
                    unsafe_sys::YAML_MAPPING_START_EVENT => {
                        Some(Event::Start { anchor: text(data.mapping_start.anchor) })
                    }
                    unsafe_sys::YAML_SEQUENCE_END_EVENT | unsafe_sys::YAML_MAPPING_END_EVENT => Some(Event::End),
                    unsafe_sys::YAML_SCALAR_EVENT => {
                        Some(Event::Scalar { anchor: text(data.scalar.anchor), len: data.scalar.length })
                    }
                    unsafe_sys::YAML_ALIAS_EVENT => text(data.alias.anchor).map(|anchor| Event::Alias { anchor }),
                    _ => None,
                };
                unsafe_sys::yaml_event_delete(event);
                if let Some(converted) = converted {
                    return Some((converted, line));
                }
            }
        }
        None
    }
}

impl Drop for Events<'_> {
    fn drop(&mut self) {
        // SAFETY: initialized in `new` (which panics otherwise) and deleted only here.
        unsafe { unsafe_sys::yaml_parser_delete(self.parser.as_mut_ptr()) }
    }
}

/// A NUL-terminated string of libyaml's, or `None` for a null pointer.
///
/// # Safety
/// `ptr` is null or points to a NUL-terminated string that lives while this runs.
unsafe fn text(ptr: *const u8) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: as the caller promises.
    let c = unsafe { std::ffi::CStr::from_ptr(ptr.cast()) };
    Some(String::from_utf8_lossy(c.to_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The classic: nine levels of nine aliases, a billion `lol`s from under a kilobyte.
    fn billion_laughs() -> String {
        let mut yaml = String::from("dag_id: laughs\nlol0: &lol0 lol\n");
        for level in 1..=9 {
            let aliases = vec![format!("*lol{}", level - 1); 9].join(", ");
            yaml.push_str(&format!("lol{level}: &lol{level} [{aliases}]\n"));
        }
        yaml.push_str("tasks:\n  - {id: a, operator: noop}\n");
        yaml
    }

    /// An anchor of `n` items, used `n` times: quadratic in the file's size.
    fn square(n: usize) -> String {
        let items = vec!["1"; n].join(",");
        let aliases = vec!["*row"; n].join(",");
        format!("dag_id: square\nrow: &row [{items}]\nall: [{aliases}]\ntasks:\n  - {{id: a, operator: noop}}\n")
    }

    #[test]
    fn serde_yaml_ng_refuses_the_billion_laughs_by_its_own_alias_guard() {
        let err = serde_yaml_ng::from_str::<serde_json::Value>(&billion_laughs()).unwrap_err();
        assert_eq!(err.to_string(), "repetition limit exceeded");
    }

    #[test]
    fn serde_yaml_ng_expands_an_alias_of_a_long_list_each_time_it_is_used() {
        let yaml = square(1100);
        assert!(yaml.len() < 8_000, "{} bytes", yaml.len());
        let value: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap();
        let expanded: usize = value["all"].as_array().unwrap().iter().map(|row| row.as_array().unwrap().len()).sum();
        assert_eq!(expanded, 1100 * 1100, "what the alias guard lets through, and check_yaml refuses");
        assert_eq!(check_yaml(&yaml), Err(LimitError::TooManyNodes { line: 3 }));
    }

    #[test]
    fn a_billion_laughs_is_refused_by_the_value_limit_before_anything_is_expanded() {
        assert_eq!(check_yaml(&billion_laughs()), Err(LimitError::TooManyNodes { line: 9 }));
    }

    #[test]
    fn aliases_within_the_limits_are_accepted() {
        check_yaml(&square(500)).unwrap();
        check_yaml("a: &a {x: [1, 2]}\nb: *a\nc: [*a, *a]\n").unwrap();
    }

    #[test]
    fn deep_nesting_is_refused_at_the_depth_limit_and_an_alias_counts_as_deep_as_its_anchor() {
        let at_limit = format!("{}{}", "[".repeat(MAX_YAML_DEPTH), "]".repeat(MAX_YAML_DEPTH));
        check_yaml(&at_limit).unwrap();
        let over = format!("{}{}", "[".repeat(MAX_YAML_DEPTH + 1), "]".repeat(MAX_YAML_DEPTH + 1));
        assert_eq!(check_yaml(&over), Err(LimitError::TooDeep { line: 1 }));
        let half = MAX_YAML_DEPTH / 2 + 1;
        let aliased = format!(
            "a: &deep {}{}\nb: {}*deep{}\n",
            "[".repeat(half),
            "]".repeat(half),
            "[".repeat(half),
            "]".repeat(half)
        );
        assert_eq!(check_yaml(&aliased), Err(LimitError::TooDeep { line: 2 }));
    }

    #[test]
    fn a_million_levels_of_nesting_are_refused_without_reading_past_the_limit() {
        let deep = "[".repeat(1_000_000);
        assert_eq!(check_yaml(&deep), Err(LimitError::TooDeep { line: 1 }));
    }

    #[test]
    fn long_anchored_text_is_counted_each_time_it_is_used() {
        let line = "x".repeat(1 << 20);
        let aliases = vec!["*big"; 16].join(", ");
        let yaml = format!("big: &big {line}\nall: [{aliases}]\n");
        assert_eq!(check_yaml(&yaml), Err(LimitError::TooMuchText { line: 2 }));
    }

    #[test]
    fn an_alias_inside_its_own_anchor_is_refused_as_recursive() {
        let err = check_yaml("a: &loop [1, *loop]\n").unwrap_err();
        assert_eq!(err, LimitError::RecursiveAlias { line: 1, anchor: "loop".into() });
        assert!(err.to_string().contains("`*loop` is inside the node that `&loop` names"), "{err}");
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_before_it_is_parsed() {
        let big = format!("dag_id: big\n# {}\n", "x".repeat(MAX_DAG_FILE_BYTES));
        let err = check_yaml(&big).unwrap_err();
        assert_eq!(err, LimitError::FileTooLarge { bytes: big.len() });
        assert!(err.to_string().contains("split it into several DAG files"), "{err}");
    }

    #[test]
    fn broken_yaml_is_left_to_the_deserializer() {
        check_yaml("dag_id: [unclosed").unwrap();
        check_yaml("a: *nowhere\n").unwrap();
        check_yaml("\u{0}\u{1}").unwrap();
    }
}
