//! `cargo xtask test`: everything CI needs, in order, stopping at the first
//! failure with a message saying which step failed.
//!
//! 1. `cargo xtask tidy` (house rules, see `tidy.rs`)
//! 2. `cargo fmt --all -- --check`
//! 3. `cargo clippy --workspace --all-targets -- -D warnings`
//! 4. `go test ./...` in `fixtures/go-sparsecopy` (the Go fix's table
//!    tests), when `go` is installed (it is in CI; without it the step
//!    says it skips)
//! 5. `cargo insta test --workspace --check --unreferenced=reject`, with
//!    `PROPTEST_CASES=2000` (runs every test, the loop-device ones too)
//! 6. the GitHub workflows and action.yml against GitHub's schemas
//!    (check-jsonschema's built-in ones; `.ci/setup` installs it)
//! 7. no loop device backed by our images is left attached.

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::{bail, Context};
use harness::go_programs::{go_env, GO_SPARSECOPY};
use testbed::leaks::{leaked_loop_devices, our_loop_devices, AttachedLoop};
use xshell::{cmd, Shell};

/// Arguments of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Property-test cases per property.
    #[arg(long, default_value_t = 2000)]
    proptest_cases: u32,
}

/// Runs `cargo xtask test`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(workspace_root());
    if !is_root() {
        eprintln!(
            "xtask test: not running as root: the loop-device tests will skip \
             (each prints SKIP and its reason); run with sudo to run them"
        );
    }
    // Devices attached before we start are someone else's (a concurrent
    // run); we only answer for the ones that appear during ours and whose
    // owner process has exited.
    let before: BTreeSet<AttachedLoop> = our_loop_devices().into_iter().collect();
    let started = Instant::now();
    step("cargo xtask tidy", || crate::tidy::run(&workspace_root()))?;
    step("cargo fmt --all -- --check", || {
        cmd!(sh, "cargo fmt --all -- --check").run()?;
        Ok(())
    })?;
    step(
        "cargo clippy --workspace --all-targets -- -D warnings",
        || {
            cmd!(sh, "cargo clippy --workspace --all-targets -- -D warnings").run()?;
            Ok(())
        },
    )?;
    step("go test ./... in fixtures/go-sparsecopy", || {
        let Some(go) = testbed::find_tool("go") else {
            eprintln!("xtask test: SKIP go test: `go` is not installed (golang-go)");
            return Ok(());
        };
        let _in_module = sh.push_dir(GO_SPARSECOPY.source_dir());
        let mut go_test = cmd!(sh, "{go} test ./...");
        for (key, value) in go_env() {
            go_test = go_test.env(key, value);
        }
        go_test.run()?;
        Ok(())
    })?;
    let cases = args.proptest_cases.to_string();
    step(
        "cargo insta test --workspace --check --unreferenced=reject",
        || {
            cmd!(
                sh,
                "cargo insta test --workspace --check --unreferenced=reject"
            )
            .env("PROPTEST_CASES", &cases)
            .run()
            .context("tests failed (a snapshot change needs `cargo insta review`)")?;
            Ok(())
        },
    )?;
    step(
        "workflow and action schemas (check-jsonschema)",
        check_schemas,
    )?;
    step("no loop device left attached", || {
        let left: Vec<AttachedLoop> = leaked_loop_devices()
            .into_iter()
            .filter(|l| !before.contains(l))
            .collect();
        if !left.is_empty() {
            let list: Vec<String> = left
                .iter()
                .map(|l| format!("{} -> {}", l.device.display(), l.backing.display()))
                .collect();
            bail!("loop devices left attached:\n  {}", list.join("\n  "));
        }
        Ok(())
    })?;
    eprintln!(
        "xtask test: all steps passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Checks `.github/workflows/*.yml` and `action.yml` against the schemas
/// check-jsonschema ships (no network); skipped, saying so, without it.
fn check_schemas() -> anyhow::Result<()> {
    let root = workspace_root();
    let Some(checker) = testbed::find_tool("check-jsonschema") else {
        eprintln!(
            "xtask test: SKIP the schema check: check-jsonschema is not installed \
             (.ci/setup installs it; or pip install check-jsonschema)"
        );
        return Ok(());
    };
    let mut workflows: Vec<std::path::PathBuf> = std::fs::read_dir(root.join(".github/workflows"))
        .context("cannot list .github/workflows")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    workflows.sort();
    let sh = Shell::new()?;
    sh.change_dir(&root);
    cmd!(
        sh,
        "{checker} --builtin-schema vendor.github-workflows {workflows...}"
    )
    .run()?;
    cmd!(
        sh,
        "{checker} --builtin-schema vendor.github-actions action.yml"
    )
    .run()?;
    Ok(())
}

fn step(name: &str, body: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    eprintln!("xtask test: {name}");
    let started = Instant::now();
    body().with_context(|| format!("step failed: {name}"))?;
    eprintln!(
        "xtask test: {name}: ok ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_owned()
}

fn is_root() -> bool {
    // With no tools asked for, the only reason to skip is not being root.
    testbed::skip_reason(&[]).is_none()
}
