//! The committed seed corpora of untrusted input, `tests/corpus/<kind>/`, and
//! the mutations the property tests of the parsers apply to them.
//!
//! Property tests (proptest), not cargo-fuzz: cargo-fuzz needs a nightly
//! toolchain, which neither the developers' machines nor CI have. proptest runs
//! on stable inside `cargo nextest`, with a fixed number of cases so each
//! property takes seconds, and shrinks a failing input to a small one that it
//! records under `proptest-regressions/` (committed, and replayed first on
//! every run).
//!
//! A corpus file's name states what the parser must do with it: `ok_*` is
//! accepted, `err_*` refused. Its first line may say more, in the format's own
//! comment syntax: `refused: <text>` (the error contains the text) or
//! `renders: <text>` (a template's output, trimmed, is the text).

use std::path::PathBuf;

use proptest::{prelude::*, sample::Index};

/// One corpus file: its name and its bytes.
pub(crate) struct CorpusFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl CorpusFile {
    /// The bytes as text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// Whether the name says the parser must accept it.
    pub fn must_pass(&self) -> bool {
        self.name.starts_with("ok_")
    }

    /// The text after `<key>: ` on the first line, up to a closing `#}` or the line's end.
    pub fn expectation(&self, key: &str) -> Option<String> {
        let text = self.text();
        let first = text.lines().next()?;
        let rest = &first[first.find(&format!("{key}: "))? + key.len() + 2..];
        Some(rest.split("#}").next().unwrap_or(rest).trim().to_string())
    }
}

/// The files of `tests/corpus/<kind>/`, in name order; there is at least one of each kind.
pub(crate) fn files(kind: &str) -> Vec<CorpusFile> {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus").join(kind);
    let mut files: Vec<CorpusFile> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .map(|entry| {
            let path = entry.expect("a readable corpus folder").path();
            let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
            CorpusFile { bytes: std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())), name }
        })
        .collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!files.is_empty(), "no corpus files in {}", folder.display());
    files
}

/// One edit of a corpus file, at positions relative to its length.
#[derive(Debug, Clone)]
pub(crate) enum Mutation {
    /// Flip one bit of one byte.
    FlipBit(Index, u8),
    /// Cut the text at a point.
    Truncate(Index),
    /// Overwrite one byte with a byte that means something to a parser.
    Overwrite(Index, u8),
    /// Insert a token of the format's syntax.
    Insert(Index, &'static str),
    /// Delete one line.
    DeleteLine(Index),
    /// Copy one line to another place.
    DuplicateLine(Index, Index),
}

/// Bytes that are syntax in YAML, JSON or Jinja.
const SYNTAX: &[u8] = b"{}[]:-,'\"#&*!|>%@`\\ \t\n\r0\x00\xff";

/// Tokens that change the structure of YAML, JSON or Jinja text.
const TOKENS: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "&a ",
    "*a",
    "<<: ",
    "!!binary ",
    "---\n",
    "...\n",
    "? ",
    "- ",
    ": ",
    "\"\\u0000\"",
    "1e999",
    "-0",
    "null",
    "[[[[",
    "]]]]",
    "{\"version\": 3}",
    "\u{feff}",
    "\u{2028}",
    "é",
];

/// One mutation, any kind.
pub(crate) fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), proptest::sample::select(SYNTAX)).prop_map(|(at, byte)| Mutation::Overwrite(at, byte)),
        (any::<Index>(), proptest::sample::select(TOKENS)).prop_map(|(at, token)| Mutation::Insert(at, token)),
        any::<Index>().prop_map(Mutation::DeleteLine),
        (any::<Index>(), any::<Index>()).prop_map(|(from, to)| Mutation::DuplicateLine(from, to)),
    ]
}

/// `bytes` with `mutations` applied in order.
pub(crate) fn mutate(bytes: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    for mutation in mutations {
        let len = bytes.len().max(1);
        match mutation {
            Mutation::FlipBit(at, bit) if !bytes.is_empty() => bytes[at.index(len)] ^= 1 << bit,
            Mutation::Truncate(at) => bytes.truncate(at.index(len)),
            Mutation::Overwrite(at, byte) if !bytes.is_empty() => bytes[at.index(len)] = *byte,
            Mutation::Insert(at, token) => {
                let at = at.index(len + 1).min(bytes.len());
                bytes.splice(at..at, token.bytes());
            }
            Mutation::DeleteLine(at) | Mutation::DuplicateLine(at, _) => {
                let mut lines: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
                let line = at.index(lines.len());
                if let Mutation::DuplicateLine(_, to) = mutation {
                    let copy = lines[line].clone();
                    lines.insert(to.index(lines.len() + 1), copy);
                } else {
                    lines.remove(line);
                }
                bytes = lines.join(&b'\n');
            }
            _ => {}
        }
    }
    bytes
}
