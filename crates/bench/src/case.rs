//! What a benchmark case is: contenders that each turn the same input into
//! the same output, the pairs to compare, and the cache modes to run in.

use std::path::PathBuf;

use serde::Serialize;

use crate::child::Step;

/// How caches and flushing are handled in a series of runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Source in the page cache, no flush: what the tool's own wall time
    /// shows (the reference figures).
    Warm,
    /// Source in the page cache, the tool's writes flushed (`syncfs`) as
    /// part of the timed run: writeback counted for everyone alike.
    WarmSync,
    /// Caches dropped before each run (`sync; echo 3 >
    /// /proc/sys/vm/drop_caches`), then flushed like `WarmSync`.
    ColdSync,
}

impl Mode {
    /// Every mode, in the order they run.
    pub const ALL: [Mode; 3] = [Mode::Warm, Mode::WarmSync, Mode::ColdSync];

    /// Whether the timed run ends with a flush of the written filesystem.
    pub fn syncs(self) -> bool {
        self != Mode::Warm
    }

    /// Whether caches are dropped before each run.
    pub fn cold(self) -> bool {
        self == Mode::ColdSync
    }

    /// At most how many bytes of page cache a run of this mode over
    /// `data` bytes of input fills: the output's (a copy writes no more
    /// than it reads), the output's again as the loop device's backing
    /// file caches it during the flush, and in cold mode the input's
    /// twice (the filesystem's cache and its backing file's), plus 256 MiB
    /// for everything else.
    pub fn page_cache_fill(self, data: u64) -> u64 {
        let copies = match self {
            Mode::Warm => 1,
            Mode::WarmSync => 2,
            Mode::ColdSync => 4,
        };
        copies * data + (256 << 20)
    }

    /// `warm`, `warm+sync`, `cold+sync`.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Warm => "warm",
            Mode::WarmSync => "warm+sync",
            Mode::ColdSync => "cold+sync",
        }
    }
}

/// Whose tool a contender is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// sparsecp.
    Ours,
    /// Another tool doing the same job.
    Theirs,
    /// A floor no tool can beat (read once, write once).
    Limit,
}

/// One way of doing the case's job.
#[derive(Debug, Clone, Serialize)]
pub struct Contender {
    /// Short name shown in tables: `sparsecp auto`, `cp --sparse=auto`.
    pub name: String,
    /// Ours, theirs, or the limit.
    pub role: Role,
    /// The commands of one run, timed together.
    pub steps: Vec<Step>,
    /// The file the run writes or changes: checked against the case's
    /// reference after the warm-up, removed after every run.
    pub output: Option<PathBuf>,
    /// Recreate `output` from this dense file before every run (untimed),
    /// for tools that change a file in place.
    pub fresh_from: Option<PathBuf>,
    /// Whether stdout is a sparsecp JSON report worth summarising.
    pub reports_json: bool,
    /// Whether `output` must equal the case's reference: false for a limit
    /// that writes the same ranges with other bytes.
    pub same_content: bool,
}

impl Contender {
    /// A contender writing `output` with `steps`.
    pub fn new(name: &str, role: Role, steps: Vec<Step>, output: Option<PathBuf>) -> Contender {
        Contender {
            name: name.to_owned(),
            role,
            reports_json: role == Role::Ours,
            same_content: true,
            steps,
            output,
            fresh_from: None,
        }
    }

    /// The steps as one shell-like line, for reports.
    pub fn command(&self) -> String {
        self.steps
            .iter()
            .map(Step::display)
            .collect::<Vec<_>>()
            .join(" && ")
    }
}

/// Something a case needs alive while it runs: a filesystem, a loop
/// device, a big fixture file. Dropped (unmounted, detached, removed) with
/// the case.
#[derive(Debug)]
pub enum Guard {
    /// A scratch filesystem.
    Fs(testbed::ScratchFs),
    /// A loop device.
    Loop(testbed::LoopDevice),
    /// A file removed on drop.
    File(RemoveOnDrop),
}

/// A file removed when dropped.
#[derive(Debug)]
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.0) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("bench: cannot remove {}: {e}", self.0.display()),
        }
    }
}

/// A benchmark case, ready to run.
#[derive(Debug)]
pub struct Case {
    /// The name `--case` selects.
    pub name: &'static str,
    /// One line on what is measured.
    pub title: String,
    /// The input, described (sizes, allocation, extents).
    pub fixture: String,
    /// What every output must equal, byte for byte.
    pub reference: PathBuf,
    /// A directory on the written filesystem, flushed in sync modes.
    pub sync_dir: PathBuf,
    /// Inputs read once (untimed) before every warm run, so that "warm"
    /// holds even when other work on the machine evicts them: by default
    /// the reference, which is the source of every copy case.
    pub warm_inputs: Vec<PathBuf>,
    /// The contenders, in the order each round runs them.
    pub contenders: Vec<Contender>,
    /// `(ours, theirs)` indexes into `contenders` to compare.
    pub pairs: Vec<(usize, usize)>,
    /// The modes to run, in order.
    pub modes: Vec<Mode>,
    /// Contenders that cannot run here, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Kept alive while the case runs.
    pub guards: Vec<Guard>,
    /// A block device the contenders write (their `output`): refilled
    /// with random bytes before every run, flushed with `sync_dir` in sync
    /// modes, and never removed (see `crate::device`).
    pub device: Option<PathBuf>,
}

impl Case {
    /// An empty case; contenders come from [`Case::add`].
    pub fn new(
        name: &'static str,
        title: String,
        fixture: String,
        reference: PathBuf,
        sync_dir: PathBuf,
    ) -> Case {
        Case {
            name,
            title,
            fixture,
            warm_inputs: vec![reference.clone()],
            reference,
            sync_dir,
            contenders: Vec::new(),
            pairs: Vec::new(),
            modes: Mode::ALL.to_vec(),
            skipped: Vec::new(),
            guards: Vec::new(),
            device: None,
        }
    }

    /// Adds a contender if every program it runs exists; otherwise records
    /// why it is skipped (`why_missing` explains a missing program).
    pub fn add(
        &mut self,
        contender: Contender,
        why_missing: impl Fn(&std::path::Path) -> String,
    ) -> Option<usize> {
        if let Some(step) = contender.steps.iter().find(|s| !s.program.is_file()) {
            self.skipped
                .push((contender.name, why_missing(&step.program)));
            return None;
        }
        self.contenders.push(contender);
        Some(self.contenders.len() - 1)
    }

    /// Compares `ours` with `theirs` if both were added.
    pub fn pair(&mut self, ours: Option<usize>, theirs: Option<usize>) {
        if let (Some(a), Some(b)) = (ours, theirs) {
            self.pairs.push((a, b));
        }
    }
}
