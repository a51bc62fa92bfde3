//! Sparse backing files for images, and the disk-backed directory they live in.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;

/// `statfs(2)` magic of tmpfs: images there would eat RAM, and tmpfs lacks
/// the extent behaviour the copy tests are about.
const TMPFS_MAGIC: u64 = 0x0102_1994;

/// A sparse file of a fixed size, removed on drop.
///
/// With `KEEP_IMAGES=1` in the environment the file is kept instead, and its
/// path is printed to stderr so it can be inspected after a failing test.
#[derive(Debug)]
pub struct BackingFile {
    path: PathBuf,
}

impl BackingFile {
    /// Creates `path` (which must not exist yet) as a sparse file of `size`
    /// bytes: no data blocks are allocated until something writes them.
    pub fn create(path: &Path, size: u64) -> anyhow::Result<BackingFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("cannot create backing file {}", path.display()))?;
        // From here on the guard owns the file, so a failure removes it.
        let backing = BackingFile {
            path: path.to_owned(),
        };
        file.set_len(size)
            .with_context(|| format!("cannot size {} to {size} bytes", path.display()))?;
        Ok(backing)
    }

    /// Takes charge of the existing file at `path` (a copy of another
    /// backing file, say): it is removed on drop like a created one.
    pub fn adopt(path: &Path) -> anyhow::Result<BackingFile> {
        if !path.is_file() {
            anyhow::bail!("cannot adopt {}: not a regular file", path.display());
        }
        Ok(BackingFile {
            path: path.to_owned(),
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BackingFile {
    fn drop(&mut self) {
        if keep_images() {
            eprintln!("KEEP_IMAGES: kept {}", self.path.display());
            return;
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("testbed: cannot remove {}: {e}", self.path.display()),
        }
    }
}

/// Whether `KEEP_IMAGES=1` asks us to keep images for inspection.
pub(crate) fn keep_images() -> bool {
    std::env::var_os("KEEP_IMAGES").is_some_and(|v| v == "1")
}

/// A disk-backed directory for images, created if needed.
///
/// `$SPARSECP_SCRATCH` if set, else `<workspace>/target/scratch`. If the
/// chosen directory is on tmpfs we fall back to `/var/tmp/sparsecp-scratch`
/// and say so on stderr: images on tmpfs cost RAM and behave differently.
///
/// # Panics
///
/// If neither the chosen directory nor the fallback can be created.
pub fn scratch_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(choose_scratch_dir).clone()
}

fn choose_scratch_dir() -> PathBuf {
    let preferred = match std::env::var_os("SPARSECP_SCRATCH") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/scratch"),
    };
    let fallback = PathBuf::from("/var/tmp/sparsecp-scratch");
    match prepare(&preferred) {
        // Canonical, so it reads the same here as in `losetup` and mountinfo.
        Ok(false) => return preferred.canonicalize().unwrap_or(preferred),
        Ok(true) => eprintln!(
            "testbed: {} is on tmpfs; using {} for images instead",
            preferred.display(),
            fallback.display()
        ),
        Err(e) => eprintln!(
            "testbed: cannot use {} ({e:#}); using {} for images instead",
            preferred.display(),
            fallback.display()
        ),
    }
    if let Err(e) = prepare(&fallback) {
        panic!("no usable scratch directory: {}: {e:#}", fallback.display());
    }
    fallback
}

/// Creates `dir` and tells whether it is on tmpfs.
fn prepare(dir: &Path) -> anyhow::Result<bool> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let stat =
        rustix::fs::statfs(dir).with_context(|| format!("cannot statfs {}", dir.display()))?;
    #[allow(clippy::unnecessary_cast)] // f_type's type differs between targets
    Ok(stat.f_type as u64 == TMPFS_MAGIC)
}

/// A fresh, unused path in [`scratch_dir`] named `<stem>-<pid>-<n>.img`.
pub fn fresh_image_path(stem: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = scratch_dir();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{stem}-{}-{n}.img", std::process::id()));
        // A stale file from an earlier run with the same pid: skip its name
        // rather than clobber what someone kept with KEEP_IMAGES.
        if !path.exists() {
            return path;
        }
    }
}
