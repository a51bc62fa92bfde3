//! Building `fixtures/go-iocopy` with the system Go, once.
//!
//! The binary goes to `target/go-iocopy/go-iocopy` and is rebuilt only when
//! `main.go` or `go.mod` is newer. The build is offline (`GOPROXY=off`,
//! `GOTOOLCHAIN=local`) with its caches under `target/`, so it works in a
//! sandbox without a home directory; it writes to a temporary name and
//! renames, so concurrent test threads never run a half-written binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::Context;

/// The Go sources.
pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/go-iocopy")
}

/// Where the binary and the Go caches go.
fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/go-iocopy")
}

/// The path of an up-to-date `go-iocopy` binary, building it if needed.
pub fn binary() -> anyhow::Result<PathBuf> {
    static BUILD: Mutex<()> = Mutex::new(());
    let _serial = BUILD
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = build_dir();
    let binary = dir.join("go-iocopy");
    let sources = source_dir();
    let newest_source = ["main.go", "go.mod"]
        .iter()
        .map(|f| modified(&sources.join(f)))
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .max()
        .expect("two sources");
    if binary.is_file() && modified(&binary)? >= newest_source {
        return Ok(binary);
    }
    let go = testbed::find_tool("go")
        .context("go-iocopy needs the Go toolchain (golang-go); `go` is not installed")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let partial = dir.join(format!("go-iocopy.{}.partial", std::process::id()));
    let mut build = Command::new(go);
    build
        .current_dir(&sources)
        .args(["build", "-trimpath", "-o"])
        .arg(&partial)
        .arg(".")
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOCACHE", dir.join("gocache"))
        .env("GOPATH", dir.join("gopath"))
        .env("CGO_ENABLED", "0");
    if let Err(e) = testbed::run_tool(&mut build) {
        let _ = std::fs::remove_file(&partial);
        return Err(e.context(format!("cannot build {}", sources.display())));
    }
    std::fs::rename(&partial, &binary)
        .with_context(|| format!("cannot move the build to {}", binary.display()))?;
    Ok(binary)
}

fn modified(path: &Path) -> anyhow::Result<SystemTime> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .with_context(|| format!("cannot stat {}", path.display()))
}
