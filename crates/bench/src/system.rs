//! The machine side of a benchmark: dropping caches, backing free
//! memory, and describing the machine and tool versions for the report.
//! Flushing one filesystem is the testbed's [`testbed::syncfs`].

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context;
use serde::Serialize;

/// `sync; echo 3 > /proc/sys/vm/drop_caches`: page cache, dentries and
/// inodes of every filesystem (the loop images' backing files included).
pub fn drop_caches() -> anyhow::Result<()> {
    rustix::fs::sync();
    std::fs::write("/proc/sys/vm/drop_caches", "3\n")
        .context("cannot write /proc/sys/vm/drop_caches (needs root)")
}

/// Loads `programs` (and their shared libraries) back into the page cache
/// by running each once with `--version`, output discarded.
///
/// A cold run means cold *data*: after dropping caches every tool would
/// otherwise also pay for reading its own executable from disk, which
/// charges qemu-img's dozens of libraries against it, not its copying.
pub fn warm_programs<'a>(programs: impl IntoIterator<Item = &'a Path>) {
    for program in programs {
        let _ = Command::new(program)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Reads `path` once so its data sits in the page cache: the data extents
/// of a regular file, every byte of a block device.
pub fn warm_input(path: &Path) -> anyhow::Result<()> {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot stat {}", path.display()))?;
    if !meta.file_type().is_block_device() {
        crate::limit::read_extents(path, 1)?;
        return Ok(());
    }
    let mut device =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut buf = copy_engine::AlignedBuf::new(8 << 20);
    while device
        .read(&mut buf)
        .with_context(|| format!("cannot read {}", path.display()))?
        > 0
    {}
    Ok(())
}

/// The data bytes of `inputs`, as sparsecp's layout sees them: the
/// allocation of files, the size of block devices.
pub fn input_data(inputs: &[std::path::PathBuf]) -> anyhow::Result<u64> {
    let mut data = 0;
    for path in inputs {
        let layout = copy_engine::Layout::of(path)?;
        data += match layout.kind {
            copy_engine::SourceKind::BlockDevice => layout.size,
            _ => layout.allocated,
        };
    }
    Ok(data)
}

/// Touches `bytes` of fresh anonymous memory (at most half of what the
/// kernel calls available) and frees it again, just before a timed run.
///
/// On a VM with virtio-balloon free page reporting (this CI machine's
/// kind), memory the guest frees goes back to the host a few seconds
/// later, and the guest's next touch of each such page stalls on a host
/// fault: measured here, 1.6 GB of page cache written 0.2-0.3 s slower
/// after a 5 s pause than right after other work, for every tool alike,
/// which blurs every ratio towards 1. The kernel hands out the most
/// recently freed pages first (reported ones wait at the tail of the free
/// lists), so freeing host-backed pages right before the run lets its
/// page-cache allocations find them, as on bare metal. Elsewhere this only
/// costs untimed time.
///
/// That untimed time is the host's to set: on 2026-12-03, with 15 GB of the
/// guest in page cache, this touch ran at 60-70 MB/s (40 s per run of the
/// install case, the stack in `folio_zero_user` under a huge-page fault),
/// and a full run reached only the install case's sixth warm+sync round in
/// 80 min; once that memory was freed and touched again, 2 GiB took 0.9 s.
pub fn back_free_memory(bytes: u64) {
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024);
    let bytes = bytes.min(available / 2) as usize;
    if bytes == 0 {
        return;
    }
    // Huge pages where the kernel allows them: faulting 2 MiB at a time
    // took 2.0 s for 7 GB here against 4.4 s in 4 KiB pages.
    let Ok(mut memory) = memmap2::MmapMut::map_anon(bytes) else {
        return;
    };
    let _ = memory.advise(memmap2::Advice::HugePage);
    for page in memory.chunks_mut(4096) {
        page[0] = 1;
    }
    std::hint::black_box(&memory);
}

/// Whether we run as root (loop devices, mounts and drop_caches need it).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// What machine and which tools a report was made with.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `uname -r`.
    pub kernel: String,
    /// Online CPUs.
    pub cpus: usize,
    /// `MemTotal` from /proc/meminfo, in bytes.
    pub memory: u64,
    /// The CPU model from /proc/cpuinfo.
    pub cpu_model: String,
    /// First line of each tool's `--version`, by tool.
    pub tools: Vec<(String, String)>,
}

impl Machine {
    /// Describes this machine and the versions of `tools`.
    pub fn describe(tools: &[(&str, &Path)]) -> Machine {
        let uname = rustix::system::uname();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|v| v.split_once(':'))
            .map_or_else(String::new, |(_, v)| v.trim().to_owned());
        Machine {
            kernel: uname.release().to_string_lossy().into_owned(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory,
            cpu_model,
            tools: tools
                .iter()
                .map(|(name, path)| ((*name).to_owned(), version(path)))
                .collect(),
        }
    }
}

/// The first line `program --version` prints (Go prints it for `version`).
fn version(program: &Path) -> String {
    let arg = if program.file_name().is_some_and(|n| n == "go") {
        "version"
    } else {
        "--version"
    };
    Command::new(program)
        .arg(arg)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines().next().map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The 1, 5 and 15 minute load averages from /proc/loadavg: other work on
/// the machine during a run shows here.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// `git describe --always --dirty` of the workspace this binary was built
/// from: which engine the sparsecp binary most likely is.
pub fn revision() -> String {
    Command::new("git")
        .arg("-C")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")))
        .args(["describe", "--always", "--dirty"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}
