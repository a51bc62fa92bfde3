//! Deciding, from a seed, what an OS-like tree contains: which directories,
//! which files of what sizes where, which zero runs inside them, and which
//! symlinks. Only integer arithmetic decides sizes, so a seed gives the same
//! tree on every machine.

use std::collections::BTreeSet;
use std::path::PathBuf;

use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{TreeSpec, BLOCK};
use crate::{KIB, MIB};

/// One regular file to write.
#[derive(Debug, Clone)]
pub(super) struct PlannedFile {
    /// Relative to the tree root.
    pub path: PathBuf,
    pub size: u64,
    /// Block-aligned `(offset, len)` runs of zeros, sorted, inside the
    /// file's whole blocks (never in a partial tail block).
    pub zero_runs: Vec<(u64, u64)>,
    pub executable: bool,
}

/// Everything [`super::generate_tree`] creates.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Every directory, parents before children.
    pub dirs: BTreeSet<PathBuf>,
    pub files: Vec<PlannedFile>,
    /// `(link, target)`, the target relative to the link's directory.
    pub symlinks: Vec<(PathBuf, PathBuf)>,
}

const SMALL_MAX: u64 = 64 * KIB;
const MEDIUM_MIN: u64 = 100 * KIB;
const MEDIUM_MAX: u64 = 8 * MIB;
/// Below this much non-small data the tree has no large files.
const LARGE_THRESHOLD: u64 = 64 * MIB;
/// Large files aim at this size; at full scale (~1.7 GB) they come out
/// around 100-200 MiB.
const LARGE_TARGET: u64 = 160 * MIB;

impl Plan {
    pub(super) fn new(spec: &TreeSpec, rng: &mut ChaCha8Rng) -> Plan {
        let mut plan = Plan::default();
        let mut names = Names::default();
        let packages: Vec<String> = (0..(spec.small_files / 12).clamp(4, 400))
            .map(|_| names.word(rng))
            .collect();

        // Small files: configuration, docs, scripts, headers. They may take
        // at most half the budget, so a tiny total still has room for data.
        let mut small_bytes = 0;
        for _ in 0..spec.small_files {
            let size = log_uniform(rng, 10, 16).clamp(KIB, SMALL_MAX);
            if small_bytes + size > spec.total_bytes / 2 {
                break;
            }
            small_bytes += size;
            let pkg = packages.choose(rng).expect("at least four packages");
            let stem = names.word(rng);
            let (path, executable) = match rng.random_range(0..100) {
                0..30 => (format!("etc/{pkg}/{stem}.conf"), false),
                30..55 => (format!("usr/share/doc/{pkg}/{stem}"), false),
                55..65 => (format!("usr/bin/{stem}"), true),
                65..90 => (format!("usr/share/{pkg}/{stem}.dat"), false),
                _ => (format!("usr/include/{pkg}/{stem}.h"), false),
            };
            plan.add_file(&mut names, path, size, executable);
        }

        // Large files: an initrd, databases, firmware, application packs.
        let rest = spec.total_bytes - small_bytes;
        let mut large_budget = if rest >= LARGE_THRESHOLD {
            rest * 45 / 100
        } else {
            0
        };
        let large_count = large_budget.div_ceil(LARGE_TARGET).max(3);
        let weights: Vec<u64> = (0..large_count)
            .map(|_| rng.random_range(50..150))
            .collect();
        let weight_sum: u64 = weights.iter().sum();
        let large_total = large_budget;
        for (i, weight) in weights.iter().enumerate() {
            if large_total == 0 {
                break;
            }
            let size = if i + 1 == weights.len() {
                large_budget
            } else {
                large_total * weight / weight_sum
            };
            large_budget -= size;
            let pkg = packages.choose(rng).expect("at least four packages");
            let stem = names.word(rng);
            let path = match i % 4 {
                0 => format!("boot/initrd.img-6.1.0-{}", i + 1),
                1 => format!("var/lib/{pkg}/{stem}.db"),
                2 => format!("usr/lib/firmware/{stem}.bin"),
                _ => format!("opt/{pkg}/{stem}.pack"),
            };
            plan.add_file(&mut names, path, size, false);
        }

        // Medium files: shared libraries and binaries, taking the rest
        // exactly, so the tree's size is total_bytes to the byte.
        let mut medium_budget = rest - large_total;
        while medium_budget > 0 {
            let mut size = log_uniform(rng, 16, 23).clamp(MEDIUM_MIN, MEDIUM_MAX);
            if size >= medium_budget || medium_budget - size < MEDIUM_MIN {
                size = medium_budget;
            }
            medium_budget -= size;
            let stem = names.word(rng);
            match rng.random_range(0..100) {
                0..60 => {
                    let major = rng.random_range(0..8);
                    let real = format!("usr/lib/x86_64-linux-gnu/lib{stem}.so.{major}");
                    let path = plan.add_file(&mut names, real, size, false);
                    // Development links, like libfoo.so -> libfoo.so.1.
                    if rng.random_range(0..4) == 0 {
                        let target = PathBuf::from(path.file_name().expect("a file name"));
                        let link = path.with_file_name(format!("lib{stem}.so"));
                        if names.claim(&link) {
                            plan.symlinks.push((link, target));
                        }
                    }
                }
                60..85 => {
                    plan.add_file(&mut names, format!("usr/bin/{stem}"), size, true);
                }
                _ => {
                    let pkg = packages.choose(rng).expect("at least four packages");
                    let path = format!("usr/lib/{pkg}/{stem}.so");
                    plan.add_file(&mut names, path, size, false);
                }
            }
        }

        // The usrmerge links every current distribution has.
        for dir in ["bin", "sbin", "lib"] {
            plan.add_dir(&PathBuf::from("usr").join(dir));
            plan.symlinks
                .push((PathBuf::from(dir), PathBuf::from("usr").join(dir)));
        }
        plan.add_zero_runs(spec, rng);
        plan
    }

    /// Adds a file, renaming it if the path is taken; returns its path.
    fn add_file(
        &mut self,
        names: &mut Names,
        path: String,
        size: u64,
        executable: bool,
    ) -> PathBuf {
        let path = names.unique(PathBuf::from(path));
        self.add_dir(path.parent().expect("files live in directories"));
        self.files.push(PlannedFile {
            path: path.clone(),
            size,
            zero_runs: Vec::new(),
            executable,
        });
        path
    }

    /// Adds `dir` and its ancestors.
    fn add_dir(&mut self, dir: &std::path::Path) {
        for dir in dir.ancestors().filter(|d| !d.as_os_str().is_empty()) {
            self.dirs.insert(dir.to_owned());
        }
    }

    /// Places `zero_run_share` of the tree's bytes as block-aligned zero
    /// runs in the files of 64 KiB and more, like the padding in binaries
    /// and the empty pages in databases.
    fn add_zero_runs(&mut self, spec: &TreeSpec, rng: &mut ChaCha8Rng) {
        let share = spec.zero_run_share.clamp(0.0, 1.0);
        let wanted_blocks = (spec.total_bytes as f64 * share) as u64 / BLOCK;
        let mut candidates: Vec<usize> = (0..self.files.len())
            .filter(|&i| self.files[i].size >= 64 * KIB)
            .collect();
        // A Fisher-Yates shuffle from our own rng keeps this reproducible.
        for i in (1..candidates.len()).rev() {
            candidates.swap(i, rng.random_range(0..=i));
        }
        let mut left = wanted_blocks;
        // First pass: 20-60% of a file; second: whatever is still needed.
        let mut zero_blocks = vec![0u64; self.files.len()];
        for pass in 0..2 {
            for &i in &candidates {
                let whole = self.files[i].size / BLOCK;
                let room = whole - zero_blocks[i];
                let take = if pass == 0 {
                    whole * rng.random_range(20..=60) / 100
                } else {
                    room
                };
                let take = take.min(room).min(left);
                zero_blocks[i] += take;
                left -= take;
            }
        }
        for (file, blocks) in self.files.iter_mut().zip(zero_blocks) {
            if blocks > 0 {
                file.zero_runs = place_runs(rng, file.size / BLOCK, blocks);
            }
        }
    }
}

/// Splits `zero` of a file's `whole` blocks into 1-4 runs at random places;
/// returns sorted byte `(offset, len)` pairs.
fn place_runs(rng: &mut ChaCha8Rng, whole: u64, zero: u64) -> Vec<(u64, u64)> {
    let runs = rng.random_range(1..=4).min(zero);
    let data = whole - zero;
    let lens = split(rng, zero, runs as usize, 1);
    let gaps = split(rng, data, runs as usize + 1, 0);
    let mut at = 0;
    let mut out = Vec::new();
    for (len, gap) in lens.iter().zip(&gaps) {
        at += gap;
        out.push((at * BLOCK, len * BLOCK));
        at += len;
    }
    out
}

/// Splits `total` into `parts` random parts of at least `min` each (as far
/// as `total` allows).
fn split(rng: &mut ChaCha8Rng, total: u64, parts: usize, min: u64) -> Vec<u64> {
    let floor = min.min(total / parts as u64);
    let spare = total - floor * parts as u64;
    let mut cuts: Vec<u64> = (0..parts - 1)
        .map(|_| rng.random_range(0..=spare))
        .collect();
    cuts.sort_unstable();
    cuts.push(spare);
    let mut prev = 0;
    cuts.into_iter()
        .map(|cut| {
            let part = floor + cut - prev;
            prev = cut;
            part
        })
        .collect()
}

/// A size spread evenly over powers of two from `2^lo` to `2^hi`, as file
/// sizes are in practice.
fn log_uniform(rng: &mut ChaCha8Rng, lo: u32, hi: u32) -> u64 {
    let exp = rng.random_range(lo..hi);
    rng.random_range(1u64 << exp..1u64 << (exp + 1))
}

/// Pronounceable, unique names.
#[derive(Default)]
struct Names {
    taken: BTreeSet<PathBuf>,
}

impl Names {
    fn word(&mut self, rng: &mut ChaCha8Rng) -> String {
        const ONSETS: &[&str] = &[
            "b", "c", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "x", "z", "st",
            "gl", "pr",
        ];
        const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "y"];
        (0..rng.random_range(2..=4))
            .flat_map(|_| [*ONSETS.choose(rng).unwrap(), *VOWELS.choose(rng).unwrap()])
            .collect()
    }

    /// Claims `path`; false if it was already taken.
    fn claim(&mut self, path: &std::path::Path) -> bool {
        self.taken.insert(path.to_owned())
    }

    /// `path`, or `path-2`, `path-3`, ... if taken; claimed.
    fn unique(&mut self, path: PathBuf) -> PathBuf {
        let mut candidate = path.clone();
        let mut n = 2;
        while !self.claim(&candidate) {
            let mut name = path.file_name().expect("a file name").to_owned();
            name.push(format!("-{n}"));
            candidate = path.with_file_name(name);
            n += 1;
        }
        candidate
    }
}
