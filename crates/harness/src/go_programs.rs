//! Building the Go programs under `fixtures/` with the system Go, once.
//!
//! Each [`GoProgram`] names a module directory in `fixtures/` and the
//! package of its `main`. Its binary goes to `target/go-programs/NAME` and
//! is rebuilt only when a `.go` file or `go.mod` of the module is newer.
//! The build is offline (`GOPROXY=off`, `GOTOOLCHAIN=local`) with its
//! caches under `target/`, so it works in a sandbox without a home
//! directory; it writes to a temporary name and renames, so concurrent test
//! threads never run a half-written binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::{bail, Context};

/// A Go program under `fixtures/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoProgram {
    /// The binary's name, also the module's directory in `fixtures/`.
    pub name: &'static str,
    /// The `main` package, relative to the module (`.` or `./cmd/NAME`).
    pub package: &'static str,
}

/// `fixtures/go-iocopy`: the installer's `io.Copy` between two `*os.File`.
pub const GO_IOCOPY: GoProgram = GoProgram {
    name: "go-iocopy",
    package: ".",
};

/// `fixtures/go-sparsecopy`: the proposed fix, `sparsecopy.CopyFile`.
pub const GO_SPARSECOPY: GoProgram = GoProgram {
    name: "go-sparsecopy",
    package: "./cmd/go-sparsecopy",
};

/// The environment every `go` command of the harness runs with: offline,
/// the installed toolchain, caches under `target/go-programs`.
pub fn go_env() -> Vec<(&'static str, PathBuf)> {
    let dir = build_root();
    vec![
        ("GOFLAGS", "-mod=mod".into()),
        ("GOTOOLCHAIN", "local".into()),
        ("GOPROXY", "off".into()),
        ("GOCACHE", dir.join("gocache")),
        ("GOPATH", dir.join("gopath")),
        ("CGO_ENABLED", "0".into()),
    ]
}

/// Where binaries and the Go caches go.
fn build_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/go-programs")
}

impl GoProgram {
    /// The module's sources.
    pub fn source_dir(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures")
            .join(self.name)
    }

    /// The path of an up-to-date binary, building it if needed.
    pub fn binary(&self) -> anyhow::Result<PathBuf> {
        static BUILD: Mutex<()> = Mutex::new(());
        let _serial = BUILD
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let sources = self.source_dir();
        let newest_source = newest_source(&sources)?;
        let dir = build_root();
        let binary = dir.join(self.name);
        if binary.is_file() && modified(&binary)? >= newest_source {
            return Ok(binary);
        }
        let go = testbed::find_tool("go").with_context(|| {
            format!(
                "{} needs the Go toolchain (golang-go); `go` is not installed",
                self.name
            )
        })?;
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", dir.display()))?;
        let binary = dir.join(self.name);
        let partial = dir.join(format!("{}.{}.partial", self.name, std::process::id()));
        let out = Command::new(go)
            .current_dir(&sources)
            .args(["build", "-trimpath", "-o"])
            .arg(&partial)
            .arg(self.package)
            .envs(go_env())
            .output()
            .context("cannot run go build")?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&partial);
            bail!(
                "go build of {} failed ({}): {}",
                sources.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        std::fs::rename(&partial, &binary)
            .with_context(|| format!("cannot move the build to {}", binary.display()))?;
        Ok(binary)
    }
}

/// The latest modification time of `go.mod` and the `.go` files under
/// `dir` (tests included: rebuilding for a test edit costs a second).
fn newest_source(dir: &Path) -> anyhow::Result<SystemTime> {
    let go_mod = modified(&dir.join("go.mod"))?;
    Ok(newest_go_file(dir)?.map_or(go_mod, |t| t.max(go_mod)))
}

fn newest_go_file(dir: &Path) -> anyhow::Result<Option<SystemTime>> {
    let mut newest = None;
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        let time = if kind.is_dir() {
            newest_go_file(&path)?
        } else if path.extension().is_some_and(|e| e == "go") {
            Some(modified(&path)?)
        } else {
            None
        };
        newest = newest.max(time);
    }
    Ok(newest)
}

fn modified(path: &Path) -> anyhow::Result<SystemTime> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .with_context(|| format!("cannot stat {}", path.display()))
}
