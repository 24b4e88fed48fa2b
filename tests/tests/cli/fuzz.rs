//! A property test of the validator: mutated copies of the example DAG files
//! (byte flips, truncations, line deletions and duplications, from a fixed
//! seed) never make `gust dags validate` panic, and every file it rejects
//! gets a problem and a fix.

use crate::helpers::{workspace, Scratch};

/// xorshift64*: a fixed seed gives the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}

/// One mutation of `text`, its kind chosen by `rng`.
fn mutate(text: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut bytes = text.to_vec();
    match rng.below(5) {
        0 => {
            for _ in 0..=rng.below(3) {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
        }
        1 => bytes.truncate(rng.below(bytes.len())),
        2 => {
            let at = rng.below(bytes.len());
            let syntax = b"{}[]:-'\"#&*!|>%@` \t\n";
            bytes[at] = syntax[rng.below(syntax.len())];
        }
        _ => {
            let mut lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
            let at = rng.below(lines.len());
            if rng.below(2) == 0 {
                lines.remove(at);
            } else {
                let line = lines[at];
                lines.insert(rng.below(lines.len()), line);
            }
            bytes = lines.join(&b'\n');
        }
    }
    bytes
}

#[test]
fn mutated_dag_files_never_crash_the_validator_and_every_rejection_says_what_and_how_to_fix() {
    const PER_FILE: usize = 150;
    let scratch = Scratch::new("fuzz");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut written = 0;
    for (path, _, _) in gust_shared::dag_folder::dag_files(&workspace().join("dags")).unwrap() {
        let text = std::fs::read_to_string(&path).unwrap();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        for i in 0..PER_FILE {
            // A dag_id of its own, so each copy is judged alone and not as a duplicate of the others.
            let own = text.replacen("dag_id: ", &format!("dag_id: m{i}_"), 1);
            let mutated = mutate(own.as_bytes(), &mut rng);
            std::fs::write(scratch.dir.join("dags").join(format!("{stem}_{i:03}.yaml")), mutated).unwrap();
            written += 1;
        }
    }
    let run = scratch.gust(&["dags", "validate", "--format", "json", "--dags-folder", "dags"]);
    assert!(matches!(run.code, Some(0 | 1)), "exit {:?}, stderr:\n{}", run.code, run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let doc = run.json();
    let files = doc["files"].as_array().expect("files");
    assert_eq!(files.len(), written);
    let mut rejected = 0;
    for file in files {
        let errors = file["errors"].as_array().expect("errors");
        if file["dag_id"].is_null() {
            assert!(!errors.is_empty(), "a file without a DAG must have an error: {file}");
        }
        for error in errors {
            for key in ["problem", "fix"] {
                let text = error[key].as_str().unwrap_or_default();
                assert!(!text.trim().is_empty(), "empty {key} in {file}");
            }
            rejected += 1;
        }
    }
    // The mutations are not all harmless: most of them break the file.
    assert!(rejected > written / 3, "only {rejected} of {written} mutated files were rejected");
}
