//! The command line as clap parses it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use copy_engine::{HoleMode, ReflinkMode, SparseMode};

/// Copy, inspect, dig and verify sparse disk images without losing their holes.
#[derive(Debug, Parser)]
#[command(name = "sparsecp", version, about, max_term_width = 100)]
#[command(
    after_help = "Exit status: 0 ok, 1 a verify verdict failed, 2 usage error, 3 an operation failed, 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy SRC to DST keeping holes; DST is replaced atomically (unless --in-place).
    Copy(CopyArgs),
    /// Show size, allocation and data extents of files.
    Inspect(InspectArgs),
    /// Punch every all-zero block of FILE out in place (content unchanged).
    Dig(DigArgs),
    /// Check that DST has SRC's content and allocates no more than promised.
    Verify(VerifyArgs),
}

/// `sparsecp copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Which zeros become holes: auto (holes stay holes; zero runs of sparse
    /// sources too, like cp), always (every zero block), never (fully allocated).
    #[arg(long, default_value = "auto", value_parser = parse::<SparseMode>)]
    pub sparse: SparseMode,
    /// Share extents with SRC (FICLONE) where the filesystem can: auto, always, never.
    #[arg(long, default_value = "auto", value_parser = parse::<ReflinkMode>)]
    pub reflink: ReflinkMode,
    /// Make the copy and the rename durable (fsync) before exiting.
    #[arg(long)]
    pub fsync: bool,
    /// After copying, verify content and allocation (as `sparsecp verify`;
    /// a block device is read back past its page cache).
    #[arg(long)]
    pub verify: bool,
    /// Do not check that the destination filesystem has room first.
    #[arg(long)]
    pub no_space_check: bool,
    /// Copy only the blocks this bmap file maps (bmaptool's format 2.0, as
    /// `bmaptool create` or `sparsecp inspect --bmap` writes it), checking
    /// each range's SHA-256; the rest of DST becomes holes. For sources that
    /// cannot show their holes: '-', a pipe, a fully allocated image. The
    /// bmap decides what is data: --sparse and --reflink do not apply.
    #[arg(long, value_name = "FILE.bmap", conflicts_with_all = ["verify", "in_place"])]
    pub bmap: Option<PathBuf>,
    /// Write into the existing DST file (truncate, then write) instead of
    /// replacing it atomically: for when the filesystem has no room for a
    /// second copy. NOT atomic: a failure or kill leaves DST truncated or
    /// partly written. A DST that does not exist is still created atomically.
    #[arg(long)]
    pub in_place: bool,
    /// Copy even if SRC backs a loop device mounted read-write (its latest
    /// writes may be missing from the copy), or DST backs an attached loop
    /// device.
    #[arg(long)]
    pub allow_attached: bool,
    /// Onto a block device: zero (the image's holes read as zeros on the
    /// device) or skip (holes left untouched, for a device known to be blank).
    #[arg(long, default_value = "zero", value_parser = parse::<HoleMode>)]
    pub holes: HoleMode,
    #[command(flatten)]
    pub output: Output,
    /// The source: a file, a block device, or '-' for standard input (copied
    /// to its end: exactly the bytes received, even from a writer that
    /// stopped early, which a stream cannot tell from one that ended).
    pub src: PathBuf,
    /// The destination file or directory, or a block device (written in
    /// place once held exclusively; refused if mounted, busy or too small).
    pub dst: PathBuf,
}

/// `sparsecp inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// List every data extent (by default the first 10).
    #[arg(long)]
    pub extents: bool,
    /// Also draw the files' allocation maps into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub map: Option<PathBuf>,
    /// Also write the file's bmap (bmaptool's format 2.0: its allocated
    /// 4 KiB blocks, each range with its SHA-256) to this file, for
    /// `sparsecp copy --bmap` or `bmaptool copy`; needs exactly one file.
    #[arg(long, value_name = "FILE.bmap")]
    pub bmap: Option<PathBuf>,
    #[command(flatten)]
    pub output: Output,
    /// Files or block devices to inspect.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `sparsecp dig`.
#[derive(Debug, Args)]
pub struct DigArgs {
    /// Dig even if FILE backs an attached loop device (a write through the
    /// device into a block being punched would be lost).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub output: Output,
    /// The file to dig holes in.
    pub file: PathBuf,
}

/// `sparsecp verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Largest allowed allocated(DST) / allocated(SRC) (default: SRC's
    /// allocation plus one block per SRC extent).
    #[arg(long, value_name = "R")]
    pub max_ratio: Option<f64>,
    #[command(flatten)]
    pub output: Output,
    /// The reference file.
    pub src: PathBuf,
    /// The file to check.
    pub dst: PathBuf,
}

/// How results are printed.
#[derive(Debug, Args)]
pub struct Output {
    /// Print the report as JSON on standard output.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, String> {
    s.parse()
}
