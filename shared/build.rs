//! Build-time facts the crate embeds:
//! - the migrations: `refinery::embed_migrations!` reads `migrations/` at
//!   compile time and cargo does not watch that folder by itself;
//! - the git commit, for every binary's `--version` (`GUST_GIT_COMMIT`). A
//!   release build is redone when HEAD moves; a debug build keeps the commit
//!   it was first built at, so a commit does not rebuild the whole workspace.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (output.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=build.rs");
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=GUST_GIT_COMMIT={commit}");
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        for path in ["HEAD", "logs/HEAD"] {
            if let Some(path) = git(&["rev-parse", "--git-path", path]) {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
}
