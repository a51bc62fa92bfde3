//! `cargo xtask tidy`: the house rules a reviewer would otherwise check by
//! hand. It also runs as a `#[test]`, so plain `cargo test` enforces it.
//!
//! - every Rust source file opens with a `//!` module doc;
//! - `unsafe` appears only in the allowed syscall wrappers, each block with a
//!   `// SAFETY:` comment right above it;
//! - no pending insta snapshots (`.snap.new`, `.pending-snap`);
//! - no cleanup that could hit someone else's devices or processes
//!   (`losetup -D`, `pkill`, `killall`).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// Files allowed to contain `unsafe`: small syscall wrappers rustix lacks.
const UNSAFE_ALLOWED: &[&str] = &[
    "crates/copy-engine/src/sys/fiemap.rs",
    "crates/copy-engine/src/sys/loop_status.rs",
];

/// Strings no code may run (they act on resources we do not own).
const FORBIDDEN: &[&str] = &["losetup -D", "pkill", "killall"];

/// Runs every check over the workspace at `root`; errors list all problems.
pub fn run(root: &Path) -> Result<()> {
    let problems = problems(root)?;
    if problems.is_empty() {
        println!("tidy: ok");
        return Ok(());
    }
    for p in &problems {
        eprintln!("tidy: {p}");
    }
    bail!("{} tidy problem(s)", problems.len())
}

/// Every problem found, one line each.
pub fn problems(root: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    for top in ["crates", "xtask", "tests", "fixtures"] {
        walk(&root.join(top), &mut files)?;
    }
    let mut problems = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(root)
            .unwrap_or(file)
            .to_string_lossy()
            .replace('\\', "/");
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.ends_with(".snap.new") || name.ends_with(".pending-snap") {
            problems.push(format!(
                "{rel}: pending snapshot; review it with `cargo insta review`"
            ));
            continue;
        }
        if !name.ends_with(".rs") {
            continue;
        }
        let text = fs::read_to_string(file)?;
        check_source(&rel, &text, &mut problems);
    }
    Ok(problems)
}

fn check_source(rel: &str, text: &str, problems: &mut Vec<String>) {
    let is_src = rel.contains("/src/") || rel.starts_with("xtask/");
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with("#!["));
    if is_src && !first.is_some_and(|l| l.starts_with("//!")) {
        problems.push(format!("{rel}: no `//!` module doc at the top"));
    }
    if rel == "xtask/src/tidy.rs" {
        return; // it names the forbidden words to forbid them
    }
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        if code.contains("unsafe {") || code.contains("unsafe fn") || code.contains("unsafe impl") {
            if !UNSAFE_ALLOWED.contains(&rel) {
                problems.push(format!(
                    "{rel}:{}: `unsafe` outside the allowed syscall wrappers",
                    i + 1
                ));
            } else if !lines[..i]
                .iter()
                .rev()
                .take(8)
                .any(|l| l.contains("// SAFETY:"))
            {
                problems.push(format!(
                    "{rel}:{}: `unsafe` block without a `// SAFETY:` comment",
                    i + 1
                ));
            }
        }
        for word in FORBIDDEN {
            if code.contains(word) {
                problems.push(format!(
                    "{rel}:{}: `{word}` acts on resources we do not own",
                    i + 1
                ));
            }
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_is_tidy() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let problems = problems(root).unwrap();
        assert!(
            problems.is_empty(),
            "tidy problems:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn tidy_catches_a_missing_doc_and_stray_unsafe() {
        let mut p = Vec::new();
        check_source("crates/x/src/a.rs", "fn main() { unsafe { } }\n", &mut p);
        assert_eq!(p.len(), 2, "{p:?}");
    }
}
