//! Building the Go programs under `fixtures/` with the system Go, once.
//!
//! Each [`GoProgram`] names a module directory in `fixtures/`, the package
//! of its `main`, and the sources it needs, compiled into this crate so
//! that the installed gate builds them from any directory. The sources are
//! written to `go-programs/src/NAME-HASH/` and built to
//! `go-programs/NAME-HASH`, where HASH fingerprints them: a changed source
//! is a new build, an unchanged one is never rebuilt. `go-programs/` is in
//! the checkout's `target/` when it exists, else in the testbed's scratch
//! directory. The build is offline (`GOPROXY=off`, `GOTOOLCHAIN=local`)
//! with its caches beside it, so it works in a sandbox without a home
//! directory; it writes to a temporary name and renames, so concurrent test
//! threads never run a half-written binary.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{bail, Context};

/// A Go program under `fixtures/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoProgram {
    /// The binary's name, also the module's directory in `fixtures/`.
    pub name: &'static str,
    /// The `main` package, relative to the module (`.` or `./cmd/NAME`).
    pub package: &'static str,
    /// The files a build needs, `(path in the module, text)`.
    pub sources: &'static [(&'static str, &'static str)],
}

/// `fixtures/go-iocopy`: the installer's `io.Copy` between two `*os.File`.
pub const GO_IOCOPY: GoProgram = GoProgram {
    name: "go-iocopy",
    package: ".",
    sources: &[
        ("go.mod", include_str!("../../../fixtures/go-iocopy/go.mod")),
        (
            "main.go",
            include_str!("../../../fixtures/go-iocopy/main.go"),
        ),
    ],
};

/// `fixtures/go-sparsecopy`: the proposed fix, `sparsecopy.CopyFile`.
pub const GO_SPARSECOPY: GoProgram = GoProgram {
    name: "go-sparsecopy",
    package: "./cmd/go-sparsecopy",
    sources: &[
        (
            "go.mod",
            include_str!("../../../fixtures/go-sparsecopy/go.mod"),
        ),
        (
            "sparsecopy.go",
            include_str!("../../../fixtures/go-sparsecopy/sparsecopy.go"),
        ),
        (
            "cmd/go-sparsecopy/main.go",
            include_str!("../../../fixtures/go-sparsecopy/cmd/go-sparsecopy/main.go"),
        ),
    ],
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

/// Where sources, binaries and the Go caches go.
fn build_root() -> PathBuf {
    crate::cli::checkout_target()
        .unwrap_or_else(testbed::scratch_dir)
        .join("go-programs")
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
        let mut hasher = DefaultHasher::new();
        self.sources.hash(&mut hasher);
        let stem = format!("{}-{:016x}", self.name, hasher.finish());
        let dir = build_root();
        if dir.join(&stem).is_file() {
            return Ok(dir.join(&stem));
        }
        let go = testbed::find_tool("go").with_context(|| {
            format!(
                "{} needs the Go toolchain (golang-go); `go` is not installed",
                self.name
            )
        })?;
        let sources = dir.join("src").join(&stem);
        for (path, text) in self.sources {
            let path = sources.join(path);
            let parent = path.parent().expect("a file in the module");
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        let dir = dir
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", dir.display()))?;
        let binary = dir.join(&stem);
        let partial = dir.join(format!("{stem}.{}.partial", std::process::id()));
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
