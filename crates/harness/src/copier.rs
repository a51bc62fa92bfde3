//! The ways to turn `active.img` into `passive.img` that the harness
//! compares: the installer's own (`iocopy`, `go-iocopy`), the usual tools
//! (`cp`), the proposed fixes (`go-sparse`, `harvester-fix`, `sparsecp`),
//! and any command line (`external`).

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use copy_engine::{CopyOptions, NoProgress};

use crate::go_programs::{GoProgram, GO_IOCOPY, GO_SPARSECOPY};

/// Go's `io.Copy` falls back to reads and writes of this size.
const IOCOPY_BUFFER: usize = 32 * 1024;

/// One named way to copy an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Copier {
    /// A plain read/write loop with a 32 KiB buffer: Go's `io.Copy`
    /// fallback path, writing every hole out as zeros.
    Iocopy,
    /// `fixtures/go-iocopy`, built with the system Go: the real runtime
    /// (`copy_file_range` first, then read/write).
    GoIocopy,
    /// `fixtures/go-sparsecopy`, built with the system Go: the Go fix,
    /// `sparsecopy.CopyFile`, keeping holes as `cp --sparse=auto` does
    /// (a clone where the filesystem shares extents).
    GoSparse,
    /// GNU `cp` with default flags (`--sparse=auto`, `--reflink=auto`).
    Cp,
    /// [`Copier::Iocopy`], then `fallocate --dig-holes` on the copy: the
    /// fix Harvester can apply without touching the copy itself.
    HarvesterFix,
    /// copy-engine in-process with [`CopyOptions::auto`].
    Sparsecp,
    /// copy-engine in-process with [`CopyOptions::always`].
    SparsecpAlways,
    /// Any command line; `{src}` and `{dst}` are replaced by shell-quoted
    /// paths and the result runs with `sh -c`.
    External {
        /// The name shown in tables (`external`, `external-2`, ...).
        name: String,
        /// The command template.
        template: String,
    },
}

impl Copier {
    /// Every builtin copier, in table order.
    pub fn builtins() -> Vec<Copier> {
        vec![
            Copier::Iocopy,
            Copier::GoIocopy,
            Copier::GoSparse,
            Copier::Cp,
            Copier::HarvesterFix,
            Copier::Sparsecp,
            Copier::SparsecpAlways,
        ]
    }

    /// The builtin copier called `name`.
    pub fn builtin(name: &str) -> anyhow::Result<Copier> {
        Copier::builtins()
            .into_iter()
            .find(|c| c.name() == name)
            .with_context(|| {
                let known: Vec<String> = Copier::builtins().iter().map(|c| c.name()).collect();
                format!("no copier {name:?}; builtins: {}", known.join(", "))
            })
    }

    /// An external copier from a command template with `{src}` and `{dst}`.
    pub fn external(
        name: impl Into<String>,
        template: impl Into<String>,
    ) -> anyhow::Result<Copier> {
        let template = template.into();
        if !(template.contains("{src}") && template.contains("{dst}")) {
            bail!("external copier {template:?} must mention both {{src}} and {{dst}}");
        }
        Ok(Copier::External {
            name: name.into(),
            template,
        })
    }

    /// A builtin name, or else a command template (what `gate --copier`
    /// accepts).
    pub fn from_name_or_command(arg: &str) -> anyhow::Result<Copier> {
        match Copier::builtin(arg) {
            Ok(copier) => Ok(copier),
            Err(_) if arg.contains('{') => Copier::external("external", arg),
            Err(e) => Err(e),
        }
    }

    /// The name shown in tables and reports.
    pub fn name(&self) -> String {
        match self {
            Copier::Iocopy => "iocopy".into(),
            Copier::GoIocopy => "go-iocopy".into(),
            Copier::GoSparse => "go-sparse".into(),
            Copier::Cp => "cp".into(),
            Copier::HarvesterFix => "harvester-fix".into(),
            Copier::Sparsecp => "sparsecp".into(),
            Copier::SparsecpAlways => "sparsecp-always".into(),
            Copier::External { name, .. } => name.clone(),
        }
    }

    /// What it does, in one line, for reports.
    pub fn describe(&self) -> String {
        match self {
            Copier::Iocopy => "read/write loop, 32 KiB buffer (io.Copy fallback)".into(),
            Copier::GoIocopy => "Go io.Copy on two *os.File (fixtures/go-iocopy)".into(),
            Copier::GoSparse => {
                "Go: FICLONE, else SEEK_DATA/SEEK_HOLE with zero blocks skipped (fixtures/go-sparsecopy)"
                    .into()
            }
            Copier::Cp => "cp SRC DST (GNU cp, default flags)".into(),
            Copier::HarvesterFix => "iocopy, then fallocate --dig-holes DST".into(),
            Copier::Sparsecp => "copy-engine, CopyOptions::auto()".into(),
            Copier::SparsecpAlways => "copy-engine, CopyOptions::always()".into(),
            Copier::External { template, .. } => format!("sh -c {template:?}"),
        }
    }

    /// The tools it needs installed, for skip messages.
    pub fn required_tools(&self) -> &'static [&'static str] {
        match self {
            Copier::GoIocopy | Copier::GoSparse => &["go"],
            Copier::Cp => &["cp"],
            Copier::HarvesterFix => &["fallocate"],
            Copier::External { .. } => &["sh"],
            _ => &[],
        }
    }

    /// Copies `src` to `dst` (created or truncated).
    pub fn copy(&self, src: &Path, dst: &Path) -> anyhow::Result<()> {
        match self {
            Copier::Iocopy => iocopy(src, dst),
            Copier::GoIocopy => go_program(GO_IOCOPY, src, dst),
            Copier::GoSparse => go_program(GO_SPARSECOPY, src, dst),
            Copier::Cp => run(Command::new("cp").arg("--").arg(src).arg(dst)),
            Copier::HarvesterFix => {
                iocopy(src, dst)?;
                run(Command::new("fallocate").arg("--dig-holes").arg(dst))
            }
            Copier::Sparsecp => engine_copy(src, dst, &CopyOptions::auto()),
            Copier::SparsecpAlways => engine_copy(src, dst, &CopyOptions::always()),
            Copier::External { template, .. } => {
                let line = template
                    .replace("{src}", &shell_quote(&src.to_string_lossy()))
                    .replace("{dst}", &shell_quote(&dst.to_string_lossy()));
                run(Command::new("sh").arg("-c").arg(line))
            }
        }
    }
}

impl fmt::Display for Copier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// What Go's `io.Copy` does when `copy_file_range` is unavailable: read
/// 32 KiB, write it, until end of file. Holes come out as written zeros.
pub fn iocopy(src: &Path, dst: &Path) -> anyhow::Result<()> {
    let mut input = File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
    let mut output =
        File::create(dst).with_context(|| format!("cannot create {}", dst.display()))?;
    let mut buffer = vec![0u8; IOCOPY_BUFFER];
    loop {
        let n = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", src.display())),
        };
        output
            .write_all(&buffer[..n])
            .with_context(|| format!("cannot write {}", dst.display()))?;
    }
    Ok(())
}

fn engine_copy(src: &Path, dst: &Path, options: &CopyOptions) -> anyhow::Result<()> {
    copy_engine::copy(src, dst, options, &NoProgress).with_context(|| {
        format!(
            "copy-engine cannot copy {} to {}",
            src.display(),
            dst.display()
        )
    })?;
    Ok(())
}

/// Runs a Go program of `fixtures/` as `PROGRAM SRC DST`.
fn go_program(program: GoProgram, src: &Path, dst: &Path) -> anyhow::Result<()> {
    run(Command::new(program.binary()?).arg(src).arg(dst))
}

/// Runs a command, failing with its stderr unless it exits successfully.
fn run(cmd: &mut Command) -> anyhow::Result<()> {
    testbed::run_tool(cmd).map(drop)
}

/// Quotes `s` for `sh`: single quotes, with embedded ones as `'\''`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
