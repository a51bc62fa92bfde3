//! The shared set-up of a benchmark run: the programs to measure, and one
//! loop-mounted ext4 holding `active.img` and the other ext4 fixtures,
//! built on first use so that `--case` runs only pay for what they need.

use std::path::{Path, PathBuf};

use anyhow::Context;
use testbed::{FsKind, ScratchFs, GIB};

use crate::fixtures::{self, FileFacts};
use crate::peers::Peers;

/// Logical size of the full-scale Harvester `active.img` (the
/// `harvester-install` scenario's).
const ACTIVE_SIZE: u64 = 3072 * testbed::MIB;

/// Where the programs under test are.
#[derive(Debug, Clone)]
pub struct Tools {
    /// The sparsecp binary measured.
    pub sparsecp: PathBuf,
    /// This binary, for the limit helpers.
    pub bench: PathBuf,
    /// The built Go io.Copy program, or why it could not be built.
    pub go_iocopy: Result<PathBuf, String>,
    /// xcp, uutils cp and bmaptool.
    pub peers: Peers,
}

impl Tools {
    /// A system program by name, from `$PATH` or sbin; the bare name if it
    /// is not installed (the case then skips it, saying so).
    pub fn system(name: &str) -> PathBuf {
        testbed::find_tool(name).unwrap_or_else(|| PathBuf::from(name))
    }

    /// The Go io.Copy program (a path that does not exist if the build
    /// failed; [`Tools::why_missing`] then says why).
    pub fn go(&self) -> PathBuf {
        self.go_iocopy
            .clone()
            .unwrap_or_else(|_| PathBuf::from("go-iocopy"))
    }

    /// A peer's program: its path, or its bare name if it could not be
    /// installed ([`Tools::why_missing`] then says why).
    pub fn peer(found: &Result<PathBuf, String>, name: &str) -> PathBuf {
        found.clone().unwrap_or_else(|_| PathBuf::from(name))
    }

    /// Why `program` cannot run.
    pub fn why_missing(&self, program: &Path) -> String {
        let peers = [
            ("go-iocopy", &self.go_iocopy),
            ("xcp", &self.peers.xcp),
            ("coreutils", &self.peers.uutils),
            ("bmaptool", &self.peers.bmaptool),
        ];
        for (name, found) in peers {
            if let Err(e) = found {
                if program == Path::new(name) {
                    return format!("cannot install or build {name}: {e}");
                }
            }
        }
        format!("{} is not installed", program.display())
    }
}

/// The state shared by every case of a run.
#[derive(Debug)]
pub struct Lab {
    /// 1.0 for the full-scale images, less for `--quick`.
    pub scale: f64,
    /// The programs.
    pub tools: Tools,
    active: Option<(PathBuf, FileFacts)>,
    // Dropped last: everything above lives on it.
    ext4: Option<ScratchFs>,
}

impl Lab {
    /// A lab that builds its filesystems and images on first use.
    pub fn new(scale: f64, tools: Tools) -> Lab {
        Lab {
            scale,
            tools,
            active: None,
            ext4: None,
        }
    }

    /// Logical size of `active.img` at this scale.
    pub fn active_size(&self) -> u64 {
        (ACTIVE_SIZE as f64 * self.scale) as u64
    }

    /// The root of the ext4 scratch filesystem: room for `active.img`, a
    /// dense twin, a dense copy being dug and one copy in flight.
    pub fn ext4(&mut self) -> anyhow::Result<PathBuf> {
        if self.ext4.is_none() {
            let size = (4 * self.active_size() + 2 * GIB).next_multiple_of(GIB);
            eprintln!(
                "setting up: ext4 of {} on a loop device",
                copy_engine::human_bytes(size)
            );
            // noinit_itable: no background inode-table zeroing competing
            // with the timed runs for the disk.
            let fs = ScratchFs::with_options(FsKind::Ext4, size, Some("noinit_itable"))
                .context("cannot make the ext4 scratch filesystem")?;
            self.ext4 = Some(fs);
        }
        Ok(self.ext4.as_ref().expect("just made").path().to_owned())
    }

    /// `active.img` on the ext4 filesystem, built on first use.
    pub fn active(&mut self) -> anyhow::Result<(PathBuf, FileFacts)> {
        if let Some(active) = &self.active {
            return Ok(active.clone());
        }
        let path = self.ext4()?.join("active.img");
        eprintln!(
            "setting up: building active.img ({} logical) the installer's way (harvester-install scenario)",
            copy_engine::human_bytes(self.active_size())
        );
        let (scenario, facts) = fixtures::build_active_image(&path, self.scale)?;
        eprintln!(
            "setting up: active.img ({scenario}) is {}",
            facts.describe()
        );
        self.active = Some((path, facts));
        Ok(self.active.clone().expect("just built"))
    }
}
